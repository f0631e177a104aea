"""How the leader's control plane scales: nodes and tasks in one process, no Raft.

For each size (nodes, tasks in 100 services), a fresh child process runs
`swarmlite.testing.leadersim.LeaderSim`: the leader's real orchestrators, allocator,
scheduler and dispatcher, one in-memory session per node, and measures

- deploy_s: 100 services created until every task is on a node and every node holds
  its assignments;
- scale_s: one service scaled +10 until the new tasks are placed and told;
- node_down_s: the busiest node marked DOWN until its tasks are placed elsewhere and
  told (services have no restart delay: the leader's work, not the policy's wait);
- bytes_per_task: the leader's RSS growth over the deploy, per task; peak_rss_mb;
- loop_restarts: times the leader's loops failed and were all restarted (should be 0).

    python scripts/bench/scale.py --quick      # 10/1,000, 30/3,000, 100/10,000
    python scripts/bench/scale.py              # up to 1,000 nodes / 100,000 tasks
    python scripts/bench/scale.py --size 300x30000 [--pymalloc] [--runs 5]

The children run on the daemon's C allocator (`swarmlite.malloc`: jemalloc when the
system has it, else glibc's; `SWARMLITE_MALLOC=glibc` asks for glibc's) and with its
collector thresholds (`daemon.tune_gc`), as the daemon does; `--pymalloc` runs them on
Python's own allocator instead. Each row says which ("malloc"). With `--runs N` each size
runs N times (a fresh child each) and its row is the median of each measure, the most loop
restarts, and every run's deploy time in "deploy_runs_s". Prints a table, then one JSON
line: {"sizes": [{"nodes": N, "tasks": T, "deploy_s": ..., ...}, ...]}.

With `--agents N`, real agents against a real cluster instead: three `swarmlite daemon`
managers on 127.0.0.1 (the integration tests' harness, tests/integration/conftest.py, real
mutual TLS, no container runtime), then N agents in `--agent-procs` processes
(scripts/bench/_agents.py): each joins with the worker token (its own key, a certificate
from the cluster CA) and runs a real Session (TLS stream to the leader's dispatcher,
heartbeats) and a real Worker on the fake runtime. Measured: seconds from the agents' start
until each is READY in `node ls` (polled every second: an upper bound), and until its
session got its first SessionInfo (the agents' own clock); optionally a service of
`--replicas` tasks until `service ls` shows them all running; then over `--idle` seconds
the CPU share of the leader, the followers and the agent processes (/proc/<pid>/stat
utime+stime over wall time), their RSS, the sessions lost, and whether every agent is
still READY. Every process it started is SIGKILLed by pid at exit, also on failure.

    python scripts/bench/scale.py --agents 1000 [--agent-procs 4] [--idle 30]
                                   [--replicas 1000] [--keep-dir]

Prints a table, then one JSON line: {"agents": {"n": N, "ready_s_max": ...,
"leader_cpu_idle": ..., "leader_rss_mb": ..., ...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _harness import CLUSTER, load

QUICK = [(10, 1_000), (30, 3_000), (100, 10_000)]
FULL = [*QUICK, (300, 30_000), (1_000, 100_000)]
SERVICES = 100


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _one(nodes: int, tasks: int) -> dict[str, object]:
    from swarmlite.malloc import MALLOC_ENV
    from swarmlite.testing.leadersim import LeaderSim

    async with LeaderSim(nodes) as sim:
        before = _rss_bytes()
        deploy = await sim.deploy(SERVICES, max(1, tasks // SERVICES))
        after = _rss_bytes()
        placed = sim.progress().placed
        await asyncio.sleep(0.5)  # let the loops go idle
        scale = await sim.scale(sim.services[0], 10)
        node_down, held = await sim.node_down(sim.busiest_node())
        resyncs = getattr(sim.loop_stats, "resyncs", None)
        return {
            "nodes": nodes,
            "tasks": placed,
            "deploy_s": round(deploy, 3),
            "node_down_s": round(node_down, 3),
            "node_down_tasks": held,
            "scale_s": round(scale, 4),
            "bytes_per_task": round((after - before) / max(1, placed)),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "loop_restarts": sim.loop_restarts,
            "malloc": os.environ.get(MALLOC_ENV, "python"),
            "loop_resyncs": dict(resyncs) if isinstance(resyncs, dict) else None,
        }


def _child(nodes: int, tasks: int, *, pymalloc: bool = False) -> dict[str, object]:
    from swarmlite.malloc import MALLOC_ENV, daemon_environ

    if pymalloc:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONMALLOC", MALLOC_ENV)}
    else:
        env = daemon_environ()  # as `swarmlite daemon` runs
    proc = subprocess.run(
        [sys.executable, __file__, "--child", f"{nodes}x{tasks}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"size {nodes}x{tasks} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _size(text: str) -> tuple[int, int]:
    try:
        nodes, tasks = (int(part) for part in text.lower().split("x"))
    except ValueError:
        message = f"a size is NODESxTASKS, e.g. 100x10000: {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if nodes < 1 or tasks < SERVICES:
        raise argparse.ArgumentTypeError(f"at least 1 node and {SERVICES} tasks: {text!r}")
    return nodes, tasks


# ---------------------------------------------------------------------- --agents N

_HERE = Path(__file__).resolve().parent
_AGENT_PROCESS = _HERE / "_agents.py"
AGENT_PREFIX = "agent-"
READY_TIMEOUT_S = 600.0  # give up waiting for READY (the goal is 60 s)
SERVICE_TIMEOUT_S = 600.0
SETTLE_S = 5.0  # after the last READY (or the deploy), before the idle window


def _note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _cpu_s(pid: int) -> float:
    """utime + stime of `pid` in seconds (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pid_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class _AgentProcs:
    """The agent processes and what they said (read by one thread each)."""

    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    ready_s: dict[str, float] = field(default_factory=dict)  # hostname -> s after t0
    status: dict[int, dict[str, int]] = field(default_factory=dict)  # proc index -> latest
    by_manager: dict[int, dict[str, int]] = field(default_factory=dict)  # proc -> addr -> n
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, index: int, config: dict[str, object], log: Path) -> None:
        with open(log, "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, str(_AGENT_PROCESS), json.dumps(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=dict(os.environ, PYTHONMALLOC="malloc"),
                start_new_session=True,
            )
        self.procs.append(proc)
        threading.Thread(target=self._read, args=(index, proc), daemon=True).start()

    def _read(self, index: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            message = json.loads(line)
            with self.lock:
                if "ready" in message:
                    self.ready_s[message["ready"]] = message["s"]
                elif "status" in message:
                    self.status[index] = message["status"]
                    self.by_manager[index] = message.get("by_manager", {})

    def total(self, key: str) -> int:
        with self.lock:
            return sum(status.get(key, 0) for status in self.status.values())

    def most(self, key: str) -> int:
        with self.lock:
            return max((status.get(key, 0) for status in self.status.values()), default=0)

    def sessions_on(self, address: str) -> int:
        with self.lock:
            return sum(counts.get(address, 0) for counts in self.by_manager.values())

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"agent process {proc.pid} exited with {proc.returncode}")

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def _agent_rows(cluster: Any, via: Any) -> list[Any]:
    rows = cluster.try_node_ls(via) or []
    return [r for r in rows if r.hostname.startswith(AGENT_PREFIX)]


def _wait_ready(
    cluster: Any, via: Any, agents: _AgentProcs, n: int, started: float
) -> dict[str, float]:
    """Poll `node ls` until all n agents are READY; first time each was seen READY."""
    seen: dict[str, float] = {}
    last_note = 0.0
    while len(seen) < n:
        agents.check_alive()
        now = time.monotonic()
        if now - started > READY_TIMEOUT_S:
            raise RuntimeError(
                f"only {len(seen)} of {n} agents READY after {READY_TIMEOUT_S:g} s "
                f"(joined {agents.total('joined')}, errors {agents.total('errors')})"
            )
        for row in _agent_rows(cluster, via):
            if row.state == "ready":
                seen.setdefault(row.hostname, time.monotonic() - started)
        if now - last_note > 10:
            last_note = now
            _note(
                f"{now - started:.0f} s: joined {agents.total('joined')}, "
                f"sessions {agents.total('connected')}, READY in node ls {len(seen)}/{n}"
            )
        time.sleep(1.0)
    return seen


def _until_ok(cluster: Any, via: Any, *args: str) -> None:
    """A CLI command, again while it fails (an election may be under way); 60 s at most."""
    cluster.wait(
        f"`swarmlite {' '.join(args)}` to succeed",
        lambda: cluster.cli(*args, host=via.host).returncode == 0,
        interval=1.0,
    )


def _elections(root: Path) -> int:
    """Times a manager became leader, from the managers' logs (1 for a quiet run)."""
    logs = [root / name / "swarmlite.log" for name in ("m1", "m2", "m3")]
    return sum(log.read_text(errors="replace").count(" role=leader ") for log in logs)


def _deploy(cluster: Any, via: Any, replicas: int) -> float:
    """A service of `replicas` tasks on the agents; seconds until `service ls` shows all
    of them running."""
    for name in ("m1", "m2", "m3"):  # the managers have no runtime here
        _until_ok(cluster, via, "node", "update", "--availability", "drain", name)
    started = time.monotonic()
    _until_ok(
        cluster, via, "service", "create", "-d", "--name", "bench", "--replicas", str(replicas),
        "swl/web:1",
    )  # fmt: skip
    want = f"{replicas}/{replicas}"
    while time.monotonic() - started < SERVICE_TIMEOUT_S:
        done = cluster.cli("service", "ls", "--format", "json", host=via.host)
        if done.returncode == 0:
            rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
            if any(r.get("Name") == "bench" and r.get("Replicas") == want for r in rows):
                return time.monotonic() - started
        time.sleep(2.0)
    raise RuntimeError(f"service bench not at {want} after {SERVICE_TIMEOUT_S:g} s")


def _idle_cpu(pids: dict[str, int], idle_s: float) -> dict[str, float]:
    """Share of one core each process used over `idle_s` of wall time."""
    before = {name: _cpu_s(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(idle_s)
    wall = time.monotonic() - started
    return {name: round((_cpu_s(pid) - before[name]) / wall, 3) for name, pid in pids.items()}


def _agents_run(
    n: int, procs: int, idle_s: float, replicas: int, root: Path, result: dict[str, Any]
) -> None:
    """Fills `result` as it goes, so that a failed run still shows what it measured."""
    harness = load(CLUSTER)
    cluster = harness.Cluster(root)
    agents = _AgentProcs()
    result.update(n=n, procs=procs)
    try:
        _note("building 3 managers on 127.0.0.1")
        m1 = cluster.init("m1")
        cluster.join("m2", "manager", via=m1)
        cluster.join("m3", "manager", via=m1)
        cluster.heal()
        token = cluster.token("worker", m1)
        elections = _elections(root)
        managers = [cluster.nodes[name].addr for name in ("m1", "m2", "m3")]
        _note(f"starting {n} agents in {procs} processes")
        t0 = time.time()
        started = time.monotonic()
        per = -(-n // procs)
        for index in range(procs):
            first, count = index * per, min(per, n - index * per)
            if count <= 0:
                break
            config = {
                "token": token,
                "managers": managers,
                "prefix": AGENT_PREFIX,
                "first": first,
                "count": count,
                "joins_in_flight": 8,
                "t0": t0,
            }
            agents.start(index, config, root / f"agents-{index}.log")
        seen = _wait_ready(cluster, m1, agents, n, started)
        result["ready_s_max"] = round(max(seen.values()), 1)  # node ls: upper bound
        result["ready_s_p50"] = round(statistics.median(seen.values()), 1)
        with agents.lock:
            own = list(agents.ready_s.values())
        result["session_s_max"] = round(max(own), 2) if own else None  # agents' own clock
        result["elections_ramp"] = _elections(root) - elections
        if replicas:
            _note(f"deploying {replicas} replicas")
            result["replicas"] = replicas
            result["deploy_s"] = round(_deploy(cluster, m1, replicas), 1)
        time.sleep(SETTLE_S)
        rows = cluster.heal()
        (leader,) = cluster.leaders(rows)
        followers = [name for name in ("m1", "m2", "m3") if name != leader]
        pids = {name: cluster.pid(cluster.nodes[name]) for name in ("m1", "m2", "m3")}
        pids.update({f"agents{i}": proc.pid for i, proc in enumerate(agents.procs)})
        lost_before = agents.total("lost")
        elections = _elections(root)
        _note(f"idle for {idle_s:g} s (leader {leader})")
        cpu = _idle_cpu(pids, idle_s)
        result["elections_idle"] = _elections(root) - elections
        agents.check_alive()
        still = [r for r in _agent_rows(cluster, m1) if r.state == "ready"]
        # A session open on a manager that no longer leads hears nothing and beats for
        # nothing; one open on the leader while its node shows DOWN was given up on.
        result["sessions_on_leader"] = agents.sessions_on(cluster.nodes[leader].addr)
        result.update(
            leader_cpu_idle=cpu[leader],
            follower_cpu_idle=max(cpu[name] for name in followers),
            agents_cpu_idle=round(sum(v for k, v in cpu.items() if k.startswith("agents")), 3),
            leader_rss_mb=_pid_rss_mb(pids[leader]),
            follower_rss_mb=max(_pid_rss_mb(pids[name]) for name in followers),
            agents_rss_mb=round(sum(_pid_rss_mb(p.pid) for p in agents.procs), 1),
            ready_after_idle=len(still),
            sessions_lost_idle=agents.total("lost") - lost_before,
            sessions_lost=agents.total("lost"),
            heartbeat_period_s=agents.most("period_ms") / 1000,
        )
    finally:
        agents.kill()
        cluster.close()


def _agents_main(args: argparse.Namespace) -> None:
    # SIGTERM unwinds like Ctrl-C, so that the `finally` kills what this run started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    root = Path(tempfile.mkdtemp(prefix="swarmlite-agents-"))
    r: dict[str, Any] = {}
    try:
        _agents_run(args.agents, args.agent_procs, args.idle, args.replicas, root, r)
    except BaseException as exc:
        _note(f"failed; logs under {root}")
        for log in sorted(root.glob("agents-*.log")):
            tail = log.read_text(errors="replace")[-2000:]
            if tail:
                _note(f"{log.name}:\n{tail}")
        print(json.dumps({"agents": {**r, "error": str(exc) or type(exc).__name__}}))
        raise
    if not args.keep_dir:
        shutil.rmtree(root, ignore_errors=True)
    rows = [
        ("agents (processes)", f"{r['n']} ({r['procs']})"),
        ("READY in node ls, slowest (goal < 60 s)", f"{r['ready_s_max']} s"),
        ("READY in node ls, median", f"{r['ready_s_p50']} s"),
        ("session up, slowest (agents' own clock)", f"{r['session_s_max']} s"),
    ]
    if "deploy_s" in r:
        rows.append((f"{r['replicas']} replicas running", f"{r['deploy_s']} s"))
    rows += [
        (f"leader CPU at idle, {args.idle:g} s (goal < 0.5)", f"{r['leader_cpu_idle']} core"),
        ("follower CPU at idle (busier)", f"{r['follower_cpu_idle']} core"),
        ("agent processes CPU at idle (sum)", f"{r['agents_cpu_idle']} core"),
        ("leader RSS", f"{r['leader_rss_mb']} MB"),
        ("follower RSS (larger)", f"{r['follower_rss_mb']} MB"),
        ("agent processes RSS (sum)", f"{r['agents_rss_mb']} MB"),
        ("READY after the idle window", f"{r['ready_after_idle']}/{r['n']}"),
        ("sessions open on the leader then", f"{r['sessions_on_leader']}/{r['n']}"),
        ("sessions lost (idle window / whole run)",
         f"{r['sessions_lost_idle']} / {r['sessions_lost']}"),
        ("heartbeat period the agents were told", f"{r['heartbeat_period_s']:g} s"),
        ("leader elections (ramp / idle window)",
         f"{r['elections_ramp']} / {r['elections_idle']}"),
    ]  # fmt: skip
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}", flush=True)
    print(json.dumps({"agents": r}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes up to 100 nodes")
    parser.add_argument("--size", type=_size, action="append", help="NODESxTASKS (repeatable)")
    parser.add_argument(
        "--pymalloc", action="store_true", help="children on Python's allocator, not the daemon's"
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="each size this many times; its row is the median [1]"
    )
    parser.add_argument("--child", type=_size, help=argparse.SUPPRESS)
    parser.add_argument(
        "--agents", type=int, metavar="N", help="N real agents against a real 3-manager cluster"
    )
    parser.add_argument("--agent-procs", type=int, default=4, help="agent processes [4]")
    parser.add_argument("--idle", type=float, default=30.0, help="idle window, s [30]")
    parser.add_argument(
        "--replicas", type=int, default=0, help="with --agents: then deploy this many [0]"
    )
    parser.add_argument("--keep-dir", action="store_true", help="keep the daemons' dirs")
    args = parser.parse_args()
    if args.child is not None:
        from swarmlite.daemon import tune_gc
        from swarmlite.malloc import tune_glibc

        tune_glibc()  # the leader's process as the daemon sets it (its malloc: ``_child``)
        tune_gc()
        print(json.dumps(asyncio.run(_one(*args.child))))
        return
    if args.agents is not None:
        for flag, value, least in (
            ("--agents", args.agents, 1),
            ("--agent-procs", args.agent_procs, 1),
            ("--replicas", args.replicas, 0),
        ):
            if value < least:
                parser.error(f"{flag} must be at least {least}, got {value}")
        if args.idle <= 0:
            parser.error(f"--idle must be more than 0 seconds, got {args.idle:g}")
        _agents_main(args)
        return
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    sizes = args.size or (QUICK if args.quick else FULL)
    rows = []
    header = "nodes  tasks    deploy_s  node_down_s  scale_s  B/task  peak_MB  restarts  malloc"
    print(header, flush=True)
    started = time.perf_counter()
    for nodes, tasks in sizes:
        runs = []
        for _ in range(args.runs):
            runs.append(_child(nodes, tasks, pymalloc=args.pymalloc))
            _print_row(runs[-1])
        row = runs[0] if len(runs) == 1 else _median_row(runs)
        if len(runs) > 1:
            _print_row(row, label="median")
        rows.append(row)
    print(f"# {time.perf_counter() - started:.0f} s in all", flush=True)
    print(json.dumps({"sizes": rows}))


_MEDIAN_OF = ("deploy_s", "node_down_s", "scale_s", "bytes_per_task", "peak_rss_mb")


def _median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One size's runs as one row: the median of each measure, the most loop restarts,
    and every run's deploy time (``deploy_runs_s``)."""
    row = dict(runs[0])
    for key in _MEDIAN_OF:
        row[key] = statistics.median(run[key] for run in runs)
    row["loop_restarts"] = max(run["loop_restarts"] for run in runs)
    row["deploy_runs_s"] = [run["deploy_s"] for run in runs]
    return row


def _print_row(row: dict[str, Any], label: str = "") -> None:
    print(
        f"{row['nodes']:>5}  {row['tasks']:>7}  {row['deploy_s']:>8}  "
        f"{row['node_down_s']:>11}  {row['scale_s']:>7}  {row['bytes_per_task']:>6}  "
        f"{row['peak_rss_mb']:>7}  {row['loop_restarts']:>8}  {row['malloc']}  {label}".rstrip(),
        flush=True,
    )


if __name__ == "__main__":
    main()
