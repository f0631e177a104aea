"""One swarmlite Raft member for `raft.py`: the real store on the real Raft, driven over
`_bench_protocol`.

Owns the swarmlite side of the benchmark: it wires a member exactly as the component tests
do (`swarmlite.testing.raftproc.build`: the store as state machine, fsync'd log segments,
the transport over mutual TLS) and runs the workloads inside this process. A write is one
store transaction (create or compare-and-set update of a Config object holding a 16-byte
value), committed when it is applied on this node.

`--sealed` (beyond the launch contract; the `swarmlite-sealed` system) seals every raft
record with AES-GCM under keys from `swarmlite.raft.sealing.load_keys(<the node's raft
dir>)`, as a manager's raft directory is: the only difference from plain `swarmlite`.

The asyncio loop runs in the main thread; the protocol loop reads stdin in a second thread
and hands each command to the event loop.

Launch contract and protocol: see `_bench_protocol.py`.
"""

from __future__ import annotations

import argparse
import asyncio
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
from cryptography import x509

from swarmlite import log as swl_log
from swarmlite.ca import read_credentials
from swarmlite.errors import SwarmliteError
from swarmlite.raft import Member
from swarmlite.testing.raftproc import RaftProcess, build
from swarmlite.testing.raftproc import serve as serve_member

log = logging.getLogger("swarmlite_node")


class Node:
    def __init__(self, proc: RaftProcess, loop: asyncio.AbstractEventLoop) -> None:
        self.proc = proc
        self.loop = loop

    def _run(self, coro: Any) -> Message:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()  # type: ignore[no-any-return]

    def _require_leader(self) -> None:
        if not self.proc.node.is_leader:
            raise RuntimeError("not the leader")

    def status(self, _request: Message) -> Message:
        node = self.proc.node
        status = node.status()
        return {
            "leader": node.is_leader,
            "leader_id": node.leader_id,
            "ready": node.leader_id is not None and node.applied >= status.commit,
        }

    def seq(self, request: Message) -> Message:
        self._require_leader()

        async def run() -> Message:
            latencies = []
            for i in range(int(request["n"])):
                started = time.perf_counter()
                await self.proc.put(f"seq-{i}", value_for(i).encode())
                latencies.append((time.perf_counter() - started) * 1000.0)
            return {"latencies_ms": latencies}

        return self._run(run())

    def throughput(self, request: Message) -> Message:
        self._require_leader()
        seconds = float(request["seconds"])
        inflight = int(request["inflight"])

        async def run() -> Message:
            committed = 0
            deadline = time.perf_counter() + seconds

            async def writer(w: int) -> None:
                nonlocal committed
                i = 0
                while time.perf_counter() < deadline:
                    await self.proc.put(f"tp-{w}", value_for(i).encode())
                    i += 1
                    if time.perf_counter() <= deadline:
                        committed += 1

            started = time.perf_counter()
            async with asyncio.TaskGroup() as tasks:
                for w in range(inflight):
                    tasks.create_task(writer(w))
            log.info("throughput drained after %.2fs", time.perf_counter() - started)
            return {"writes": committed, "seconds": seconds}

        return self._run(run())

    def write_until_ok(self, request: Message) -> Message:
        async def run() -> Message:
            deadline = time.monotonic() + float(request["timeout"])
            attempt = 0
            while time.monotonic() < deadline:
                if not self.proc.node.is_leader:
                    await asyncio.sleep(0.001)
                    continue
                attempt += 1
                try:
                    await self.proc.put(f"failover-{attempt}", value_for(attempt).encode())
                except SwarmliteError as exc:
                    log.info("failover write failed attempt=%d error=%s", attempt, exc)
                    continue
                return {"ok_at": time.time()}
            return {"ok_at": None}

        return self._run(run())


def _cluster_id(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    return str(names[0].value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--peers", required=True)
    parser.add_argument("--certs", type=Path, required=True)
    parser.add_argument("--sealed", action="store_true", help="seal the raft data at rest")
    args = parser.parse_args()
    swl_log.setup(logging.INFO)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    logging.getLogger("aiohttp").setLevel(logging.ERROR)

    peers = parse_peers(args.peers)
    members = [Member(f"node-{i}", f"{host}:{port}", True) for i, (host, port) in peers.items()]
    host, port = peers[args.id]
    cluster_id = _cluster_id(read_credentials(args.certs).cert_pem)

    async def run() -> None:
        proc = build(
            f"node-{args.id}",
            str(args.dir / "raft"),
            str(args.certs),
            cluster_id,
            bootstrap=members,
            address=f"{host}:{port}",
            sealed=args.sealed,
        )
        node = Node(proc, asyncio.get_running_loop())
        handlers = {
            STATUS: node.status,
            SEQ: node.seq,
            THROUGHPUT: node.throughput,
            WRITE_UNTIL_OK: node.write_until_ok,
        }

        def protocol() -> None:
            try:
                serve(handlers)
            finally:
                node.loop.call_soon_threadsafe(proc.node.stop)

        threading.Thread(target=protocol, daemon=True).start()
        await serve_member(proc, host, port, announce=False)

    asyncio.run(run())


if __name__ == "__main__":
    main()
