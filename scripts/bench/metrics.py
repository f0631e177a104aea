"""Benchmark what Prometheus metrics cost an idle node: CPU and RSS, with and without them.

Three single-node clusters side by side, each a real daemon started by `swarmlite init` on
its own private dockerd, each running the same stack of `--tasks` replicas of swl/web:1
(busybox httpd, idle), in three variants:

- `off`: no `--metrics-addr` (nothing listens, no stats are sampled);
- `on`: `--metrics-addr 127.0.0.1:<free port>`, never scraped (the listener and the
  task-stats sampler, every 5 s, run);
- `scraped`: the same, and this script GETs `/metrics` every `--scrape-every` seconds
  (15 s, Prometheus' default), the first at the start of the window.

After the stacks run and the daemons sat `--settle` seconds, one window of `--seconds`:
CPU time (utime + stime from /proc/PID/stat) of each daemon, and of its dockerd with that
dockerd's children (containerd: the runtime's side of the stats calls), over the window;
RSS (VmRSS) of each daemon at its end. The variants run at the same time, so that the
machine's other work weighs on each alike. Prints a table, then one JSON line.

Owns the runs and the output. The nodes are the stack integration tests' harness
(tests/integration/stacks/conftest.py, loaded by path), so the daemons run as there; every
daemon is SIGKILLed and every dockerd stopped before this script exits. Needs root,
docker.io and busybox-static (`scripts/setup`).

    python scripts/bench/metrics.py [--quick] [--seconds 60] [--tasks 5] [--keep-dir]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _harness import STACKS, load

VARIANTS = ("off", "on", "scraped")
_TICKS = os.sysconf("SC_CLK_TCK")


def _note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _cpu_s(pid: int) -> float:
    """utime + stime of `pid`, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # fields 14 and 15 of proc(5)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text()
        found += [int(p) for p in text.split()]
    return found


def _tree_cpu_s(pid: int) -> float:
    return _cpu_s(pid) + sum(_cpu_s(child) for child in _children(pid))


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _compose(root: Path, tasks: int) -> Path:
    path = root / "idle.yml"
    path.write_text(
        f"services:\n  web:\n    image: swl/web:1\n    deploy:\n      replicas: {tasks}\n"
    )
    return path


def _scrape(addr: str) -> tuple[float, int]:
    """Seconds the GET took, and the bytes of the answer."""
    started = time.monotonic()
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as response:
        body = response.read()
    return time.monotonic() - started, len(body)


def run(root: Path, seconds: float, tasks: int, settle: float, every: float) -> dict[str, Any]:
    stacks = load(STACKS)
    compose = _compose(root, tasks)
    nodes: dict[str, Any] = {}
    addrs: dict[str, str] = {}
    try:
        for variant in VARIANTS:
            node = stacks.StackCluster(stacks.harness.Cluster(root / variant))
            nodes[variant] = node
            extra: list[str] = []
            if variant != "off":
                addrs[variant] = f"127.0.0.1:{stacks.harness.free_port()}"
                extra = ["--metrics-addr", addrs[variant]]
            _note(f"{variant}: init on a private dockerd, deploy {tasks} tasks")
            node.init("m1", *extra)
            done = node.deploy("idle", compose)
            if done.returncode != 0:
                raise RuntimeError(f"{variant}: stack deploy failed: {done.stderr}")
        _note(f"settling for {settle:g} s, then measuring for {seconds:g} s")
        time.sleep(settle)
        daemons = {v: n.cluster.pid(n.cluster.nodes["m1"]) for v, n in nodes.items()}
        dockerds = {v: n.dockerds["m1"].pid for v, n in nodes.items()}
        before = {v: (_cpu_s(daemons[v]), _tree_cpu_s(dockerds[v])) for v in VARIANTS}
        started = time.monotonic()
        scrapes: list[tuple[float, int]] = []
        while (elapsed := time.monotonic() - started) < seconds:
            if len(scrapes) * every <= elapsed:
                scrapes.append(_scrape(addrs["scraped"]))
            time.sleep(min(0.5, max(0.0, seconds - elapsed)))
        window = time.monotonic() - started
        result: dict[str, Any] = {"seconds": round(window, 1), "tasks": tasks}
        for v in VARIANTS:
            daemon_cpu = _cpu_s(daemons[v]) - before[v][0]
            dockerd_cpu = _tree_cpu_s(dockerds[v]) - before[v][1]
            result[v] = {
                "daemon_cpu_pct": round(100 * daemon_cpu / window, 2),
                "daemon_rss_mb": round(_rss_mb(daemons[v]), 1),
                "dockerd_cpu_pct": round(100 * dockerd_cpu / window, 2),
            }
        result["scrapes"] = len(scrapes)
        result["scrape_ms"] = round(1000 * max(t for t, _ in scrapes), 1)
        result["scrape_bytes"] = max(size for _, size in scrapes)
        return result
    finally:
        for node in nodes.values():
            node.close()


def _report(r: dict[str, Any]) -> None:
    print(f"{r['tasks']} idle tasks per node, {r['seconds']:g} s window")
    print(f"{'variant':<10} {'daemon CPU':>11} {'daemon RSS':>11} {'dockerd CPU':>12}")
    for v in VARIANTS:
        row = r[v]
        print(
            f"{v:<10} {row['daemon_cpu_pct']:>10.2f}% {row['daemon_rss_mb']:>8.1f} MB "
            f"{row['dockerd_cpu_pct']:>11.2f}%"
        )
    print(
        f"scraped {r['scrapes']} times; slowest scrape {r['scrape_ms']:g} ms, "
        f"{r['scrape_bytes']} bytes"
    )
    print(json.dumps(r))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s window, 2 tasks, 5 s settle")
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    parser.add_argument("--tasks", type=int, default=5, help="replicas per node")
    parser.add_argument("--settle", type=float, default=15.0, help="idle before measuring")
    parser.add_argument("--scrape-every", type=float, default=15.0)
    parser.add_argument("--keep-dir", action="store_true", help="keep the nodes' directories")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("error: needs root (private dockerds)", file=sys.stderr)
        return 1
    seconds, tasks, settle = args.seconds, args.tasks, args.settle
    if args.quick:
        seconds, tasks, settle = 20.0, 2, 5.0
    root = Path(tempfile.mkdtemp(prefix="swl-bench-metrics-"))
    try:
        _report(run(root, seconds, tasks, settle, args.scrape_every))
    finally:
        if args.keep_dir:
            _note(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
