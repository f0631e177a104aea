"""Benchmark a swarmlite cluster of real daemons on 127.0.0.1, driven through the CLI.

One cluster of three managers and two workers (each daemon its own process, data dir,
socket and port), then
1. `init` until it returns (the CLI returns once the daemon is ready);
2. `join` until the node is READY in `node ls` (a manager, then a worker);
3. worker SIGKILL until `node ls` shows it DOWN (median over rounds; the worker is
   restarted and READY again between rounds);
4. leader SIGKILL until a new leader commits a write: `node update --label-add` on a
   surviving manager succeeds (median over rounds; the old leader is restarted between
   rounds, so every round starts from three reachable managers);
5. idle RSS (VmRSS in /proc/<pid>/status) of a worker, the leader and a follower after the
   cluster sat idle.
Every time is measured through the CLI, so it includes one CLI process (about 0.4 s of
Python start-up on the reference machine): a time is when the command that first saw the
outcome returned (an upper bound); for failure detection the start of that command (a lower
bound) is printed too. Prints a table, then one JSON line with the results.

Owns the runs, the statistics and the output. The cluster itself is the integration tests'
harness (tests/integration/conftest.py, loaded by path), so that the benchmark and the tests
drive daemons the same way; every daemon is SIGKILLed by pid before this script exits.

    python scripts/bench/cluster.py [--quick] [--keep-dir]

With `--lab`, only the idle footprint, the way a node runs: a 3-host `swarmlite lab` (h1 the
manager, h2 and h3 workers; each host a network namespace with its own dockerd, the mesh
and overlays on), idle for `--idle` seconds once every node is READY, then each daemon's
RSS and its wireguard-go's, against issue 14's targets (worker < 40 MB, manager < 60 MB).
Needs root and what `scripts/setup` installs; the lab is always taken down.

    python scripts/bench/cluster.py --lab [--idle 30]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import CLUSTER, load

WORKER_DETECTION_TARGET_S = 3.5
WORKER_RSS_TARGET_MB = 60.0
MANAGER_RSS_TARGET_MB = 80.0
LAB_WORKER_RSS_TARGET_MB = 40.0  # issue 14: with the network on, on a lab
LAB_MANAGER_RSS_TARGET_MB = 60.0


@dataclass(frozen=True)
class Params:
    rounds: int
    idle_s: float

    def describe(self) -> str:
        return f"{self.rounds} rounds per failure, {self.idle_s:g} s idle before RSS"


def _note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _build(cluster: Any) -> dict[str, float]:
    started = time.monotonic()
    m1 = cluster.init("m1")
    init_s = time.monotonic() - started

    def join_until_ready(name: str, role: str) -> float:
        token = cluster.token(role, m1)
        node_name = name
        started = time.monotonic()
        done = cluster.join_cmd(name, token, m1)
        assert done.returncode == 0, done.stderr

        def ready() -> bool:
            rows = cluster.try_node_ls(m1)
            row = cluster.row(rows, cluster.nodes[node_name]) if rows else None
            return row is not None and row.state == "ready"

        cluster.wait(f"{name} READY", ready)
        return time.monotonic() - started

    join_manager_s = join_until_ready("m2", "manager")
    join_until_ready("m3", "manager")
    join_worker_s = join_until_ready("w1", "worker")
    join_until_ready("w2", "worker")
    cluster.heal()
    return {"init_s": init_s, "join_manager_s": join_manager_s, "join_worker_s": join_worker_s}


def _worker_detection(cluster: Any, rounds: int) -> tuple[list[float], list[float]]:
    """(upper bounds, lower bounds) of SIGKILL-to-DOWN for w1, one per round."""
    worker = cluster.nodes["w1"]
    upper: list[float] = []
    lower: list[float] = []
    for index in range(rounds):
        cluster.heal()
        via = cluster.a_manager()
        killed = cluster.kill(worker)
        while True:
            asked = time.monotonic()
            rows = cluster.try_node_ls(via)
            row = cluster.row(rows, worker) if rows else None
            if row is not None and row.state == "down":
                upper.append(time.monotonic() - killed)
                lower.append(asked - killed)
                break
            if time.monotonic() - killed > 60:
                raise RuntimeError("w1 not DOWN within 60 s of its SIGKILL")
        _note(f"worker detection round {index + 1}: {lower[-1]:.2f}-{upper[-1]:.2f} s")
        cluster.start(worker)
    cluster.heal()
    return upper, lower


def _leader_failover(cluster: Any, rounds: int) -> list[float]:
    """SIGKILL of the leader until a write commits through a survivor, one per round."""
    times: list[float] = []
    for index in range(rounds):
        rows = cluster.heal()
        (name,) = cluster.leaders(rows)
        leader = cluster.nodes[name]
        survivor = cluster.a_manager(exclude=(leader,))
        killed = cluster.kill(leader)
        while True:
            done = cluster.cli(
                "node", "update", "--label-add", f"bench={index}", "w2", host=survivor.host
            )
            if done.returncode == 0:
                times.append(time.monotonic() - killed)
                break
            if time.monotonic() - killed > 60:
                raise RuntimeError(f"no write committed within 60 s: {done.stderr}")
        _note(f"leader failover round {index + 1}: {times[-1]:.2f} s")
        cluster.start(leader)
    cluster.heal()
    return times


def _idle_rss(cluster: Any, idle_s: float) -> dict[str, float]:
    rows = cluster.heal()
    (leader_name,) = cluster.leaders(rows)
    follower = next(n for n in ("m1", "m2", "m3") if n != leader_name)
    _note(f"idle for {idle_s:g} s")
    time.sleep(idle_s)
    return {
        "worker_rss_mb": _rss_mb(cluster.pid(cluster.nodes["w2"])),
        "leader_rss_mb": _rss_mb(cluster.pid(cluster.nodes[leader_name])),
        "follower_rss_mb": _rss_mb(cluster.pid(cluster.nodes[follower])),
    }


def run(params: Params, root: Path) -> dict[str, Any]:
    harness = load(CLUSTER)
    cluster = harness.Cluster(root)
    try:
        _note("building 3 managers + 2 workers")
        result: dict[str, Any] = _build(cluster)
        upper, lower = _worker_detection(cluster, params.rounds)
        failover = _leader_failover(cluster, params.rounds)
        result.update(_idle_rss(cluster, params.idle_s))
    finally:
        cluster.close()
    result.update(
        worker_down_s=_median(upper),
        worker_down_lower_s=_median(lower),
        worker_down_rounds=upper,
        leader_failover_s=_median(failover),
        leader_failover_rounds=failover,
    )
    return result


def _report(params: Params, quick: bool, r: dict[str, Any]) -> None:
    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    rounds = ", ".join(f"{t:.2f}" for t in r["worker_down_rounds"])
    failovers = ", ".join(f"{t:.2f}" for t in r["leader_failover_rounds"])
    rows = [
        ("init until ready", f"{r['init_s']:.2f} s", ""),
        ("manager join until READY", f"{r['join_manager_s']:.2f} s", ""),
        ("worker join until READY", f"{r['join_worker_s']:.2f} s", ""),
        (
            "worker SIGKILL until DOWN (median)",
            f"{r['worker_down_s']:.2f} s (>= {r['worker_down_lower_s']:.2f}; {rounds})",
            f"<= {WORKER_DETECTION_TARGET_S} s: "
            + mark(r["worker_down_s"] <= WORKER_DETECTION_TARGET_S),
        ),
        ("leader SIGKILL until a write commits (median)", f"{r['leader_failover_s']:.2f} s", ""),
        ("  rounds", failovers, ""),
        (
            "idle RSS, worker",
            f"{r['worker_rss_mb']:.1f} MB",
            f"< {WORKER_RSS_TARGET_MB:g} MB: " + mark(r["worker_rss_mb"] < WORKER_RSS_TARGET_MB),
        ),
        (
            "idle RSS, manager (leader)",
            f"{r['leader_rss_mb']:.1f} MB",
            f"< {MANAGER_RSS_TARGET_MB:g} MB: " + mark(r["leader_rss_mb"] < MANAGER_RSS_TARGET_MB),
        ),
        (
            "idle RSS, manager (follower)",
            f"{r['follower_rss_mb']:.1f} MB",
            f"< {MANAGER_RSS_TARGET_MB:g} MB: "
            + mark(r["follower_rss_mb"] < MANAGER_RSS_TARGET_MB),
        ),
    ]
    print(f"Cluster benchmark ({'quick' if quick else 'full'}): {params.describe()};")
    print(f"3 managers + 2 workers on 127.0.0.1, {os.cpu_count()} CPU cores.")
    print()
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {target}".rstrip())
    print()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _wireguard_go(daemon: int) -> int | None:
    """The wireguard-go the daemon started (its child, or a child of its ``ip``/helper)."""
    todo = _children(daemon)
    while todo:
        pid = todo.pop()
        if _comm(pid).startswith("wireguard-go"):
            return pid
        with contextlib.suppress(OSError):
            todo += _children(pid)
    return None


def lab_footprint(idle_s: float) -> list[dict[str, Any]]:
    """Each host's daemon RSS (and its wireguard-go's) on an idle 3-host lab."""
    from swarmlite.api.control import ListRequest
    from swarmlite.api.routes import NODE_LS
    from swarmlite.lab.daemons import daemon_pid
    from swarmlite.testing.labkit import lab_up

    _note("lab up: 3 hosts, h1 the manager")
    with lab_up("--nodes", "3", "--managers", "1", prefix="swl-bench-") as lab:
        rows = lab.control().call(NODE_LS, ListRequest()).nodes
        if len(rows) != 3 or not all(row.node.status.state.value == "ready" for row in rows):
            raise RuntimeError(f"not every lab node is READY: {rows}")
        _note(f"idle for {idle_s:g} s")
        time.sleep(idle_s)
        found = []
        for host in lab.state.hosts:
            pid = daemon_pid(host)
            if pid is None:
                raise RuntimeError(f"{host.name} has no daemon")
            wg = _wireguard_go(pid)
            found.append(
                {
                    "host": host.name,
                    "role": host.role,
                    "rss_mb": round(_rss_mb(pid), 1),
                    "wireguard_go_mb": round(_rss_mb(wg), 1) if wg else None,
                }
            )
        return found


def _lab_report(idle_s: float, hosts: list[dict[str, Any]]) -> None:
    print(f"Idle footprint on a 3-host lab, network on, after {idle_s:g} s idle:")
    print()
    for row in hosts:
        target = LAB_MANAGER_RSS_TARGET_MB if row["role"] == "manager" else LAB_WORKER_RSS_TARGET_MB
        mark = "ok" if row["rss_mb"] < target else "MISSED"
        wg = f"{row['wireguard_go_mb']} MB" if row["wireguard_go_mb"] is not None else "none"
        print(
            f"{row['host']} ({row['role']:<7})  daemon {row['rss_mb']:5.1f} MB  "
            f"(< {target:g} MB: {mark})  wireguard-go {wg}"
        )
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description="swarmlite cluster benchmark")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 5 s idle")
    parser.add_argument("--keep-dir", action="store_true", help="keep data dirs and logs")
    parser.add_argument(
        "--lab", action="store_true", help="only the idle footprint, on a 3-host lab"
    )
    parser.add_argument("--idle", type=float, default=30.0, help="with --lab: seconds idle")
    args = parser.parse_args()
    if args.lab:
        hosts = lab_footprint(args.idle)
        _lab_report(args.idle, hosts)
        print(json.dumps({"lab_idle_s": args.idle, "hosts": hosts}), flush=True)
        return 0
    params = Params(rounds=3, idle_s=5.0) if args.quick else Params(rounds=5, idle_s=10.0)
    root = Path(tempfile.mkdtemp(prefix="swarmlite-bench-cluster-")).resolve()
    try:
        result = run(params, root)
    finally:
        if args.keep_dir:
            _note(f"data dirs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    _report(params, args.quick, result)
    summary = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
    summary["worker_down_rounds"] = [round(t, 3) for t in result["worker_down_rounds"]]
    summary["leader_failover_rounds"] = [round(t, 3) for t in result["leader_failover_rounds"]]
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
