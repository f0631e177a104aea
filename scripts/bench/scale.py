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
    python scripts/bench/scale.py --size 300x30000

The children run on glibc's malloc, as the daemon does. Prints a table, then one JSON
line: {"sizes": [{"nodes": N, "tasks": T, "deploy_s": ..., ...}, ...]}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time

QUICK = [(10, 1_000), (30, 3_000), (100, 10_000)]
FULL = [*QUICK, (300, 30_000), (1_000, 100_000)]
SERVICES = 100


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _one(nodes: int, tasks: int) -> dict[str, object]:
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
            "loop_resyncs": dict(resyncs) if isinstance(resyncs, dict) else None,
        }


def _child(nodes: int, tasks: int) -> dict[str, object]:
    env = dict(os.environ, PYTHONMALLOC="malloc")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes up to 100 nodes")
    parser.add_argument("--size", type=_size, action="append", help="NODESxTASKS (repeatable)")
    parser.add_argument("--child", type=_size, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(asyncio.run(_one(*args.child))))
        return
    sizes = args.size or (QUICK if args.quick else FULL)
    rows = []
    header = "nodes  tasks    deploy_s  node_down_s  scale_s  B/task  peak_MB  restarts"
    print(header, flush=True)
    started = time.perf_counter()
    for nodes, tasks in sizes:
        row = _child(nodes, tasks)
        rows.append(row)
        print(
            f"{row['nodes']:>5}  {row['tasks']:>7}  {row['deploy_s']:>8}  "
            f"{row['node_down_s']:>11}  {row['scale_s']:>7}  {row['bytes_per_task']:>6}  "
            f"{row['peak_rss_mb']:>7}  {row['loop_restarts']:>8}",
            flush=True,
        )
    print(f"# {time.perf_counter() - started:.0f} s in all", flush=True)
    print(json.dumps({"sizes": rows}))


if __name__ == "__main__":
    main()
