"""Benchmark swarmlite's Raft, plain and with its storage sealed, against pysyncobj on this
machine, in one run.

Systems: `swarmlite`; `swarmlite-sealed`, the same with every raft record sealed with
AES-GCM (encryption at rest, `swarmlite.raft.sealing`); `pysyncobj`.
For each system: three node processes on 127.0.0.1, then
1. sequential commit latency (p50/p99): writes one at a time on the leader;
2. pipelined throughput: writes/s with many writes in flight on the leader;
3. leader failover: SIGKILL the leader, time until a write commits on a new leader
   (median over several rounds, each on a fresh, healthy cluster).
The workloads run inside the node processes (see `_bench_protocol.py` for the protocol
and the launch contract), so no client RPC layer is measured. Prints a table, then one
JSON line with the results; a system that cannot run is skipped with a reason and nulls.
Under the table, the cost of encryption: sealed vs plain swarmlite's throughput (%) and
p50 (ms), against the goal (under 10 % of throughput, under 0.2 ms of p50).

Owns the runs: ports, data and TLS directories, process lifecycle, statistics, output.
Does not own any Raft code: what is system-specific lives in each system's `prepare`
and `argv` functions below and in its node script. Every process it starts is killed
by pid (its own process group) before it exits, also on error, Ctrl-C or SIGTERM.

    python scripts/bench/raft.py [--quick] [--only swarmlite|swarmlite-sealed|pysyncobj]
                                 [--json-out FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import queue
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import IO, Any

from _bench_protocol import (
    SEQ,
    STATUS,
    THROUGHPUT,
    WRITE_UNTIL_OK,
    Message,
    decode,
    encode,
    format_peers,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent.parent
NODES = 3
HEALTHY_TIMEOUT_S = 30.0
STATUS_TIMEOUT_S = 5.0
FAILOVER_WRITE_TIMEOUT_S = 20.0
RESULT_KEYS = ("p50_ms", "p99_ms", "writes_per_s", "failover_s")
# The goal for encryption at rest (issue 13): sealed vs plain swarmlite.
SEALING_MAX_THROUGHPUT_LOSS_PCT = 10.0
SEALING_MAX_P50_COST_MS = 0.2


@dataclass(frozen=True)
class Params:
    seq_writes: int
    throughput_s: float
    inflight: int
    failover_rounds: int
    paired_rounds: int  # alternating plain/sealed rounds for the cost of encryption

    def describe(self) -> str:
        return (
            f"{self.seq_writes} sequential writes, {self.throughput_s:g} s of throughput with "
            f"{self.inflight} in flight, {self.failover_rounds} failover rounds; the cost of "
            f"encryption from {self.paired_rounds} alternating plain/sealed rounds (each at "
            f"least {PAIRED_MIN_WRITES} sequential writes and {PAIRED_MIN_SECONDS:g} s of "
            f"throughput on both)"
        )


FULL = Params(
    seq_writes=1000, throughput_s=10.0, inflight=1000, failover_rounds=5, paired_rounds=30
)
# Each paired round writes at least this much on each system: a p50 from fewer writes, or a
# rate from a shorter burst (1,000 in flight take a moment to fill), is mostly noise.
PAIRED_MIN_WRITES = 100
PAIRED_MIN_SECONDS = 1.0
QUICK = Params(seq_writes=200, throughput_s=3.0, inflight=1000, failover_rounds=3, paired_rounds=4)


class SystemUnavailable(Exception):
    """The system cannot run here (missing node script or library); it is skipped."""


class BenchError(Exception):
    """A node misbehaved: died, timed out or answered with an error."""


# --- systems: everything system-specific is in this section -------------------------


@dataclass(frozen=True)
class NodeLaunch:
    """What a system's argv builder gets for one node of one cluster."""

    index: int  # 1..NODES
    ports: tuple[int, ...]  # ports[i - 1] is node i's port on 127.0.0.1
    data_dir: Path  # empty, fresh for every cluster
    cert_dir: Path | None  # this node's TLS material, from the system's prepare()


@dataclass(frozen=True)
class System:
    name: str
    # Once per run: check the system can run (else SystemUnavailable) and create what all
    # its clusters share; returns each node index's cert dir (or None).
    prepare: Callable[[Path], Mapping[int, Path | None]]
    argv: Callable[[NodeLaunch], list[str]]


def _node_argv(script: str, launch: NodeLaunch, *, extra: tuple[str, ...] = ()) -> list[str]:
    argv = [sys.executable, str(BENCH_DIR / script), "--id", str(launch.index)]
    argv += ["--dir", str(launch.data_dir), "--peers", format_peers(launch.ports)]
    if launch.cert_dir is not None:
        argv += ["--certs", str(launch.cert_dir)]
    return argv + list(extra)


def _swarmlite_prepare(workdir: Path) -> Mapping[int, Path | None]:
    if not (BENCH_DIR / "_swarmlite_node.py").exists():
        raise SystemUnavailable("scripts/bench/_swarmlite_node.py does not exist yet")
    try:
        from swarmlite.ca import RootCA, issue_node_cert, write_credentials
    except ImportError as exc:
        raise SystemUnavailable(f"swarmlite.ca has no certificate helpers yet ({exc})") from exc
    cluster_id = f"bench-{secrets.token_hex(4)}"
    ca = RootCA.create(cluster_id)
    cert_dirs: dict[int, Path | None] = {}
    for index in range(1, NODES + 1):
        cert_dir = workdir / "certs" / f"node-{index}"  # write_credentials makes it 0700
        credentials = issue_node_cert(ca, f"node-{index}", "manager", cluster_id)
        write_credentials(cert_dir, credentials)
        cert_dirs[index] = cert_dir
    return cert_dirs


def _pysyncobj_prepare(_workdir: Path) -> Mapping[int, Path | None]:
    if importlib.util.find_spec("pysyncobj") is None:
        raise SystemUnavailable("pysyncobj is not installed (pip install '.[bench]')")
    return dict.fromkeys(range(1, NODES + 1))


SYSTEMS = (
    System("swarmlite", _swarmlite_prepare, partial(_node_argv, "_swarmlite_node.py")),
    System(
        "swarmlite-sealed",
        _swarmlite_prepare,
        partial(_node_argv, "_swarmlite_node.py", extra=("--sealed",)),
    ),
    System("pysyncobj", _pysyncobj_prepare, partial(_node_argv, "_pysyncobj_node.py")),
)


# --- node processes and clusters ------------------------------------------------------


class NodeProcess:
    """One node script, spoken to over its stdin/stdout; its stderr goes to a log file."""

    def __init__(self, index: int, argv: list[str], log_path: Path) -> None:
        self.index = index
        self.log_path = log_path
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_DIR), env.get("PYTHONPATH")]))
        with log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                cwd=REPO_DIR,
                env=env,
                text=True,
                encoding="utf-8",
                bufsize=1,
                start_new_session=True,  # its own process group, to kill what it forks too
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._stdin: IO[str] = self.proc.stdin
        self._replies: queue.Queue[Message | None] = queue.Queue()
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            try:
                self._replies.put(decode(line))
            except ValueError:
                print(f"node {self.index}: not a protocol line: {line!r}", file=sys.stderr)
        self._replies.put(None)  # end of file: the node is gone

    def send(self, cmd: str, **args: Any) -> int:
        self._next_id += 1
        try:
            self._stdin.write(encode({"id": self._next_id, "cmd": cmd, **args}))
            self._stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise self._failure(f"cannot send {cmd!r}: the node has exited") from exc
        return self._next_id

    def receive(self, request_id: int, timeout: float) -> Message | None:
        """The reply to request_id, or None if none came within timeout."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                reply = self._replies.get(timeout=remaining)
            except queue.Empty:
                return None
            if reply is None:
                self._replies.put(None)  # keep reporting the exit to later calls
                raise self._failure("the node exited")
            if reply.get("id") != request_id:
                continue  # a late reply to a request we gave up on
            if "error" in reply:
                raise self._failure(f"error reply: {reply['error']}")
            return reply
        return None

    def request(self, cmd: str, timeout: float, **args: Any) -> Message:
        reply = self.receive(self.send(cmd, **args), timeout)
        if reply is None:
            raise self._failure(f"no reply to {cmd!r} within {timeout:g} s")
        return reply

    def _failure(self, what: str) -> BenchError:
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
        except OSError:
            tail = []
        lines = "".join(f"\n    | {line}" for line in tail)
        return BenchError(f"node {self.index} (pid {self.pid}): {what}; its log ends:{lines}")

    def sigkill(self) -> None:
        """SIGKILL the node itself (the failover measurement)."""
        os.kill(self.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Kill the node's process group and reap it. Safe to call twice."""
        if self.proc.returncode is None:
            # Not reaped yet, so the pid (and its group id) still belongs to our child.
            with suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait()
        with suppress(OSError):
            self._stdin.close()


@dataclass
class Cluster:
    nodes: list[NodeProcess] = field(default_factory=list)

    def statuses(self) -> list[Message]:
        return [node.request(STATUS, STATUS_TIMEOUT_S) for node in self.nodes]

    def wait_healthy(self, timeout: float = HEALTHY_TIMEOUT_S) -> NodeProcess:
        """Wait until every node is ready and all agree on one leader; return the leader."""
        deadline = time.monotonic() + timeout
        statuses: list[Message] = []
        while time.monotonic() < deadline:
            statuses = self.statuses()
            leaders = [node for node, st in zip(self.nodes, statuses, strict=True) if st["leader"]]
            leader_ids = {st["leader_id"] for st in statuses}
            if (
                all(st["ready"] for st in statuses)
                and len(leaders) == 1
                and len(leader_ids) == 1
                and None not in leader_ids
            ):
                return leaders[0]
            time.sleep(0.05)
        raise BenchError(f"no healthy cluster with one leader within {timeout:g} s: {statuses}")


def free_ports(count: int) -> tuple[int, ...]:
    """Ports free on 127.0.0.1 right now (all bound at once, so they differ)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return tuple(sock.getsockname()[1] for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def cluster(system: System, cert_dirs: Mapping[int, Path | None], base: Path) -> Iterator[Cluster]:
    """Start NODES fresh nodes of system under base; kill them all on the way out."""
    ports = free_ports(NODES)
    running = Cluster()
    try:
        for index in range(1, NODES + 1):
            data_dir = base / f"node-{index}"
            data_dir.mkdir(parents=True)
            launch = NodeLaunch(index, ports, data_dir, cert_dirs[index])
            log_path = base / f"node-{index}.log"
            running.nodes.append(NodeProcess(index, system.argv(launch), log_path))
        yield running
    finally:
        for node in running.nodes:
            node.stop()


# --- measurements --------------------------------------------------------------------


@dataclass
class Result:
    system: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    writes_per_s: float | None = None
    failover_s: float | None = None
    failover_rounds: list[float] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100.0 * len(ordered)) - 1)]


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def measure_steady(
    system: System, cert_dirs: Mapping[int, Path | None], base: Path, params: Params, result: Result
) -> None:
    with cluster(system, cert_dirs, base) as running:
        leader = running.wait_healthy()
        progress(f"{system.name}: leader is node {leader.index}; {params.seq_writes} sequential")
        reply = leader.request(SEQ, timeout=params.seq_writes * 10.0 + 30.0, n=params.seq_writes)
        latencies = [float(v) for v in reply["latencies_ms"]]
        if len(latencies) != params.seq_writes:
            raise BenchError(f"seq returned {len(latencies)} latencies, not {params.seq_writes}")
        result.p50_ms = percentile(latencies, 50)
        result.p99_ms = percentile(latencies, 99)
        progress(f"{system.name}: p50 {result.p50_ms:.2f} ms; throughput {params.throughput_s:g} s")
        reply = leader.request(
            THROUGHPUT,
            timeout=params.throughput_s + 60.0,
            seconds=params.throughput_s,
            inflight=params.inflight,
        )
        result.writes_per_s = int(reply["writes"]) / float(reply["seconds"])


def measure_failover(system: System, cert_dirs: Mapping[int, Path | None], base: Path) -> float:
    """One round: a fresh healthy cluster, SIGKILL its leader, seconds until a new commit."""
    with cluster(system, cert_dirs, base) as running:
        leader = running.wait_healthy()
        leader.request(SEQ, timeout=30.0, n=1)  # quorum proven by a committed write
        survivors = [node for node in running.nodes if node is not leader]
        killed_at = time.time()
        leader.sigkill()
        pending = {
            node: node.send(WRITE_UNTIL_OK, timeout=FAILOVER_WRITE_TIMEOUT_S) for node in survivors
        }
        deadline = time.monotonic() + FAILOVER_WRITE_TIMEOUT_S + 10.0
        while pending and time.monotonic() < deadline:
            for node, request_id in list(pending.items()):
                reply = node.receive(request_id, timeout=0.01)
                if reply is None:
                    continue
                del pending[node]
                if reply["ok_at"] is not None:
                    return float(reply["ok_at"]) - killed_at
        raise BenchError(f"no write committed within {FAILOVER_WRITE_TIMEOUT_S:g} s of the kill")


@dataclass
class Paired:
    """Plain and sealed swarmlite measured in alternating rounds, both clusters up at once:
    drift in this machine's load falls on both alike, so the difference is the sealing's."""

    rounds: int
    plain_p50_ms: float
    sealed_p50_ms: float
    plain_writes_per_s: float
    sealed_writes_per_s: float
    p50_diffs_ms: list[float] = field(default_factory=list)  # sealed - plain, per round

    @property
    def throughput_pct(self) -> float:
        return (self.sealed_writes_per_s - self.plain_writes_per_s) / self.plain_writes_per_s * 100

    @property
    def p50_ms(self) -> float:
        return self.sealed_p50_ms - self.plain_p50_ms


def measure_sealing_paired(workdir: Path, params: Params, rounds: int) -> Paired:
    """``rounds`` rounds of a share of the sequential writes and of the throughput time (at
    least PAIRED_MIN_*) on each of a plain and a sealed cluster, the order swapped every
    round (ABBA)."""
    plain, sealed = SYSTEMS[0], SYSTEMS[1]
    latencies: dict[str, list[float]] = {plain.name: [], sealed.name: []}
    writes = {plain.name: 0.0, sealed.name: 0.0}
    seconds = {plain.name: 0.0, sealed.name: 0.0}
    diffs: list[float] = []
    base = workdir / "paired"
    with (
        cluster(plain, plain.prepare(base / plain.name), base / plain.name / "c") as one,
        cluster(sealed, sealed.prepare(base / sealed.name), base / sealed.name / "c") as two,
    ):
        leaders = {plain.name: one.wait_healthy(), sealed.name: two.wait_healthy()}
        n = max(PAIRED_MIN_WRITES, params.seq_writes // rounds)
        span = max(PAIRED_MIN_SECONDS, params.throughput_s / rounds)
        for round_no in range(rounds):
            order = (plain, sealed) if round_no % 2 == 0 else (sealed, plain)
            p50s: dict[str, float] = {}
            rates: dict[str, float] = {}
            for system in order:
                leader = leaders[system.name]
                reply = leader.request(SEQ, timeout=n * 10.0 + 30.0, n=n)
                got = [float(v) for v in reply["latencies_ms"]]
                latencies[system.name] += got
                p50s[system.name] = percentile(got, 50)
                reply = leader.request(
                    THROUGHPUT, timeout=span + 60.0, seconds=span, inflight=params.inflight
                )
                writes[system.name] += int(reply["writes"])
                seconds[system.name] += float(reply["seconds"])
                rates[system.name] = int(reply["writes"]) / float(reply["seconds"])
            diffs.append(p50s[sealed.name] - p50s[plain.name])
            progress(
                f"paired round {round_no + 1}/{rounds}: sealed - plain p50 {diffs[-1]:+.3f} ms, "
                f"writes/s {rates[sealed.name]:,.0f} vs {rates[plain.name]:,.0f}"
            )
    return Paired(
        rounds=rounds,
        plain_p50_ms=percentile(latencies[plain.name], 50),
        sealed_p50_ms=percentile(latencies[sealed.name], 50),
        plain_writes_per_s=writes[plain.name] / seconds[plain.name],
        sealed_writes_per_s=writes[sealed.name] / seconds[sealed.name],
        p50_diffs_ms=diffs,
    )


def run_system(system: System, workdir: Path, params: Params) -> Result:
    result = Result(system.name)
    base = workdir / system.name
    base.mkdir()
    # Any failure costs this system its results, not the whole run.
    try:
        cert_dirs = system.prepare(base)
        measure_steady(system, cert_dirs, base / "steady", params, result)
        for round_no in range(1, params.failover_rounds + 1):
            seconds = measure_failover(system, cert_dirs, base / f"failover-{round_no}")
            progress(f"{system.name}: failover round {round_no}: {seconds:.3f} s")
            result.failover_rounds.append(seconds)
        result.failover_s = statistics.median(result.failover_rounds)
    except SystemUnavailable as exc:
        result.skipped = str(exc)
        progress(f"{system.name}: skipped: {exc}")
    except Exception as exc:
        result.error = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
        progress(f"{system.name}: FAILED: {exc}")
    return result


# --- output --------------------------------------------------------------------------


NAME_WIDTH = max(len("system"), *(len(system.name) for system in SYSTEMS))


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_table(results: list[Result], params: Params, quick: bool, paired: Paired | None) -> None:
    print(f"Raft benchmark ({'quick' if quick else 'full'}): {params.describe()};")
    print(f"3 nodes per system on 127.0.0.1, {os.cpu_count()} CPU cores.")
    print()
    header = (
        f"{'system':<{NAME_WIDTH}} {'p50 ms':>9} {'p99 ms':>9} {'writes/s':>10} {'failover s':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.skipped is not None:
            print(f"{r.system:<{NAME_WIDTH}} skipped: {r.skipped}")
            continue
        print(
            f"{r.system:<{NAME_WIDTH}} {_cell(r.p50_ms, 2):>9} {_cell(r.p99_ms, 2):>9} "
            f"{_cell(r.writes_per_s, 0):>10} {_cell(r.failover_s, 3):>11}"
        )
        if r.failover_rounds:
            rounds = ", ".join(f"{s:.3f}" for s in r.failover_rounds)
            print(f"{'':<{NAME_WIDTH}} failover rounds: {rounds}")
        if r.error is not None:
            print(f"{'':<{NAME_WIDTH}} failed: {r.error.splitlines()[0]}")
    cost = encryption_cost(results, paired)
    if cost is not None:
        throughput_pct, p50_ms = cost
        met = -throughput_pct < SEALING_MAX_THROUGHPUT_LOSS_PCT and p50_ms < SEALING_MAX_P50_COST_MS
        how = (
            "the table's rows, measured one after the other"
            if paired is None
            else f"{paired.rounds} alternating rounds with both clusters up"
        )
        print()
        print(
            f"encryption at rest (swarmlite-sealed vs swarmlite, {how}): throughput "
            f"{throughput_pct:+.1f} %, p50 {p50_ms:+.3f} ms; goal: loss under "
            f"{SEALING_MAX_THROUGHPUT_LOSS_PCT:g} % and under {SEALING_MAX_P50_COST_MS:g} ms: "
            f"{'met' if met else 'NOT met'}"
        )
        if paired is not None:
            diffs = ", ".join(f"{d:+.2f}" for d in paired.p50_diffs_ms)
            print(
                f"  paired: plain p50 {paired.plain_p50_ms:.2f} ms, "
                f"{paired.plain_writes_per_s:,.0f} writes/s; sealed p50 "
                f"{paired.sealed_p50_ms:.2f} ms, {paired.sealed_writes_per_s:,.0f} writes/s; "
                f"p50 difference per round (ms): {diffs}"
            )
    print()


def encryption_cost(results: list[Result], paired: Paired | None) -> tuple[float, float] | None:
    """Sealed vs plain swarmlite: (throughput change in %, p50 change in ms), from the paired
    rounds when they ran, else from the table's rows."""
    if paired is not None:
        return paired.throughput_pct, paired.p50_ms
    by_name = {r.system: r for r in results}
    plain, sealed = by_name.get("swarmlite"), by_name.get("swarmlite-sealed")
    if plain is None or sealed is None:
        return None
    if plain.writes_per_s is None or sealed.writes_per_s is None or not plain.writes_per_s:
        return None
    if plain.p50_ms is None or sealed.p50_ms is None:
        return None
    throughput_pct = (sealed.writes_per_s - plain.writes_per_s) / plain.writes_per_s * 100.0
    return throughput_pct, sealed.p50_ms - plain.p50_ms


def summary(results: list[Result], paired: Paired | None) -> dict[str, float | None]:
    by_name = {r.system: r for r in results}
    out: dict[str, float | None] = {}
    for system in SYSTEMS:
        r = by_name.get(system.name, Result(system.name))
        for key, digits in zip(RESULT_KEYS, (3, 3, 1, 3), strict=True):
            value = getattr(r, key)
            out[f"{system.name}_{key}"] = None if value is None else round(value, digits)
    cost = encryption_cost(results, paired)
    out["encryption_paired_rounds"] = None if paired is None else paired.rounds
    out["encryption_writes_per_s_pct"] = None if cost is None else round(cost[0], 2)
    out["encryption_p50_ms"] = None if cost is None else round(cost[1], 3)
    return out


def _raise_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: nodes get killed


def main() -> int:
    parser = argparse.ArgumentParser(
        description="swarmlite Raft (plain, sealed) vs pysyncobj benchmark"
    )
    parser.add_argument("--quick", action="store_true", help=QUICK.describe() + " (about 60 s)")
    parser.add_argument("--only", choices=[s.name for s in SYSTEMS], help="run one system")
    parser.add_argument("--json-out", type=Path, help="also write the JSON result to this file")
    parser.add_argument("--keep-dir", action="store_true", help="keep data dirs and node logs")
    args = parser.parse_args()
    params = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    workdir = Path(tempfile.mkdtemp(prefix="swarmlite-bench-"))
    results: list[Result] = []
    paired: Paired | None = None
    try:
        for system in SYSTEMS:
            if args.only in (None, system.name):
                results.append(run_system(system, workdir, params))
        if args.only is None:
            try:
                paired = measure_sealing_paired(workdir, params, params.paired_rounds)
            except Exception as exc:  # the table still stands; the cost falls back to it
                progress(f"paired rounds FAILED: {exc}")
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
    finally:
        if args.keep_dir:
            progress(f"data dirs and node logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print_table(results, params, args.quick, paired)
    line = json.dumps(summary(results, paired))
    if args.json_out is not None:
        args.json_out.write_text(line + "\n")
    print(line, flush=True)
    return 1 if any(r.error is not None for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
