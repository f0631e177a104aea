"""One pysyncobj node for `raft.py`: a replicated dict, driven over `_bench_protocol`.

Owns the pysyncobj side of the benchmark: the SyncObj subclass, its configuration (a
file journal in `--dir`, every timing left at pysyncobj's default) and the workloads,
which run inside this process on pysyncobj's callback API. Does not own timing
statistics or the cluster's lifecycle: `raft.py` starts, measures and kills.

Invariant: a write counts as committed when pysyncobj calls its callback with
FAIL_REASON.SUCCESS, which it does right after applying the entry on this node.
Callbacks run on pysyncobj's tick thread; the protocol loop runs on the main thread.

Launch contract and protocol: see `_bench_protocol.py`. `--certs` is accepted and
ignored (pysyncobj cannot use TLS certificates).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _bench_protocol import (
    SEQ,
    STATUS,
    THROUGHPUT,
    WRITE_UNTIL_OK,
    Message,
    parse_peers,
    serve,
    value_for,
)
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

log = logging.getLogger("pysyncobj_node")

# How long one write may take before the workload gives up on it (a healthy cluster
# commits in well under a second with default timings).
WRITE_TIMEOUT_S = 10.0
# How long `throughput` waits for the writes still in flight when its window closes.
DRAIN_TIMEOUT_S = 15.0


class ReplicatedDict(SyncObj):  # type: ignore[misc]
    """The replicated state machine: a dict of key -> 16-byte value."""

    def __init__(self, self_address: str, partners: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_address, partners, conf)
        self._data: dict[str, str] = {}

    @replicated  # type: ignore[untyped-decorator]
    def set(self, key: str, value: str) -> None:
        self._data[key] = value


class Pending:
    """One write's outcome, set from pysyncobj's tick thread."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: Any = None
        self.committed_at = 0.0  # time.time() when the callback ran

    def callback(self, _result: Any, error: Any) -> None:
        self.committed_at = time.time()
        self.error = error
        self.done.set()

    def wait(self, timeout: float) -> bool:
        """True if the write committed within timeout."""
        return self.done.wait(timeout) and self.error == FAIL_REASON.SUCCESS


class Node:
    """The protocol handlers around one ReplicatedDict."""

    def __init__(self, obj: ReplicatedDict) -> None:
        self.obj = obj

    def _require_leader(self) -> None:
        if not self.obj._isLeader():
            raise RuntimeError("not the leader")

    def status(self, _request: Message) -> Message:
        leader = self.obj._getLeader()
        connected = all(self.obj.isNodeConnected(node) for node in self.obj.otherNodes)
        return {
            "leader": bool(self.obj._isLeader()),
            "leader_id": None if leader is None else str(leader.id),
            "ready": bool(self.obj.isReady()) and connected,
        }

    def seq(self, request: Message) -> Message:
        self._require_leader()
        latencies: list[float] = []
        for i in range(int(request["n"])):
            pending = Pending()
            started = time.perf_counter()
            self.obj.set(f"seq-{i}", value_for(i), callback=pending.callback)
            if not pending.wait(WRITE_TIMEOUT_S):
                raise RuntimeError(f"write {i} failed: reason={pending.error}")
            latencies.append((time.perf_counter() - started) * 1000.0)
        return {"latencies_ms": latencies}

    def throughput(self, request: Message) -> Message:
        self._require_leader()
        seconds = float(request["seconds"])
        inflight = int(request["inflight"])
        lock = threading.Lock()
        drained = threading.Event()
        counts = {"issued": 0, "outstanding": 0, "committed": 0, "failed": 0}
        deadline = 0.0

        def issue() -> None:
            with lock:
                i = counts["issued"]
                counts["issued"] += 1
                counts["outstanding"] += 1
            self.obj.set(f"tp-{i % 100_000}", value_for(i), callback=on_done)

        def on_done(_result: Any, error: Any) -> None:
            now = time.perf_counter()
            with lock:
                counts["outstanding"] -= 1
                if error != FAIL_REASON.SUCCESS:
                    counts["failed"] += 1
                elif now <= deadline:
                    counts["committed"] += 1
                again = now < deadline and error == FAIL_REASON.SUCCESS
                if counts["outstanding"] == 0 and not again:
                    drained.set()
            if again:
                issue()

        started = time.perf_counter()
        deadline = started + seconds
        for _ in range(inflight):
            issue()
        time.sleep(max(0.0, deadline - time.perf_counter()))
        if not drained.wait(DRAIN_TIMEOUT_S):
            log.warning("throughput drain timed out outstanding=%d", counts["outstanding"])
        if counts["failed"]:
            raise RuntimeError(f"{counts['failed']} writes failed during the throughput run")
        return {"writes": counts["committed"], "seconds": seconds}

    def write_until_ok(self, request: Message) -> Message:
        deadline = time.monotonic() + float(request["timeout"])
        attempt = 0
        while time.monotonic() < deadline:
            if not self.obj._isLeader():
                time.sleep(0.001)
                continue
            pending = Pending()
            self.obj.set(f"failover-{attempt}", value_for(attempt), callback=pending.callback)
            attempt += 1
            remaining = deadline - time.monotonic()
            if pending.wait(max(0.0, min(remaining, WRITE_TIMEOUT_S))):
                return {"ok_at": pending.committed_at}
            log.info("failover write failed attempt=%d reason=%s", attempt, pending.error)
        return {"ok_at": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--peers", required=True)
    parser.add_argument("--certs", type=Path, default=None)
    args = parser.parse_args()

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s node={args.id} %(levelname)s %(name)s %(message)s",
    )
    peers = {i: f"{host}:{port}" for i, (host, port) in parse_peers(args.peers).items()}
    self_address = peers.pop(args.id)
    args.dir.mkdir(parents=True, exist_ok=True)
    conf = SyncObjConf(journalFile=str(args.dir / "journal.bin"))
    obj = ReplicatedDict(self_address, sorted(peers.values()), conf)
    log.info("started self=%s partners=%s", self_address, sorted(peers.values()))

    node = Node(obj)
    try:
        serve(
            {
                STATUS: node.status,
                SEQ: node.seq,
                THROUGHPUT: node.throughput,
                WRITE_UNTIL_OK: node.write_until_ok,
            }
        )
    finally:
        obj.destroy()


if __name__ == "__main__":
    main()
