"""Benchmark the autoscaler: the time from a load step to its first new task running.

A small cluster as the autoscale integration test has it (tests/integration/stacks/
test_autoscale.py): m1 (a manager that runs tasks) and `--workers` workers, each a real
daemon on its own private dockerd. One stack, `auto`, with one service, `auto_burner`:
1 replica of swl/busybox:1, a CPU limit of 0.1 core, `x-autoscale: {min: 1, max: 3, cpu:
50, cooldown_up: 2s, cooldown_down: 8s}` (the test's values, not the defaults of 10 s / 30 s:
the cool-downs do not enter the measured times, as each run starts more than `cooldown_up`
after the last change; a short `cooldown_down` only shortens the wait between runs). Each
task binds a directory and spins while `burn` exists in it (the test's shell loop, which
looks for the file every 0.2 s), so the load is one file away.

Once the service runs and is idle (1 replica, 1 task running, the last change at least
`cooldown_up` old, and a few sampling intervals of idle readings), each of `--runs` runs:

1. t0 = time.monotonic(); create the burn file;
2. every 0.1 s, through the control API (SERVICE_INSPECT and TASK_LS, the client the CLI
   uses, as the harness does): the *decision* is the first poll that sees the service's
   replicas above 1; *running* is the first poll that sees a task of slot >= 2, desired
   running, RUNNING. Both are the time the answering call returned (upper bounds, by at
   most one poll). The leader's own stamp of the decision (`autoscale.changed_at`, wall
   time on the same machine) is kept too, as `decision_stamp`, with its reason;
3. remove the burn file, wait until the service is back to 1 replica with 1 task running
   (the cool-down), and idle again, then wait a random 0-2 s more (uniform over the
   longer of the sampling interval and the autoscaler's period). Without that delay every
   load step would come at the same phase of the autoscaler's tick: the cool-down ends with
   a decision taken on a tick, and the waits after it are nearly constant, so the decisions
   came at either 1.9 s or 3.9 s and nothing in between.

Prints each run, then min/median/max of both figures with the agent's sampling interval
(swarmlite.agent.usage.DEFAULT_INTERVAL) and the autoscaler's period
(swarmlite.manager.orchestrator.autoscaler.PERIOD), then, as its last line, one JSON object.

Owns the runs and the output; the cluster is the stack integration tests' harness
(tests/integration/stacks/conftest.py, loaded by path), whose close() SIGKILLs every daemon
and stops every dockerd, also on a failure, Ctrl-C or SIGTERM. Needs root, docker.io and
busybox-static (`scripts/setup`).

    python scripts/bench/autoscale.py [--quick] [--runs 5] [--workers 1] [--keep-dir]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from _harness import STACKS, load

from swarmlite.agent.usage import DEFAULT_INTERVAL
from swarmlite.api import Service, Task, TaskState
from swarmlite.api.control import NameRef, TaskFilter
from swarmlite.api.routes import SERVICE_INSPECT, TASK_LS
from swarmlite.manager.orchestrator.autoscaler import PERIOD

STACK = "auto"
SERVICE = f"{STACK}_burner"
COOLDOWN_UP, COOLDOWN_DOWN = 2.0, 8.0
POLL = 0.1
LIMIT = 120.0  # one wait: a load step, a cool-down, a deploy
# Enough for the agent to take readings of an idle task over two whole intervals and for
# the autoscaler to look at them once.
SETTLE = 2 * DEFAULT_INTERVAL + PERIOD
PHASE = max(DEFAULT_INTERVAL, PERIOD)  # a random delay in [0, PHASE) before each load step
SPIN = (  # tests/integration/stacks/test_autoscale.py
    "while :; do if [ -e /ctl/burn ]; then while [ -e /ctl/burn ]; do :; done; "
    "else sleep 0.2; fi; done"
)


def _compose(ctl: Path) -> str:
    return f"""\
services:
  burner:
    image: swl/busybox:1
    command: ["sh", "-c", {json.dumps(SPIN)}]
    volumes: ["{ctl}:/ctl:ro"]
    stop_grace_period: 1s
    deploy:
      replicas: 1
      resources: {{limits: {{cpus: "0.1"}}}}
      x-autoscale:
        min: 1
        max: 3
        cpu: 50
        cooldown_up: {COOLDOWN_UP:g}s
        cooldown_down: {COOLDOWN_DOWN:g}s
"""


def _note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _until(what: str, check: Callable[[], bool], limit: float = LIMIT) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {limit:g} s waiting for {what}")
        time.sleep(POLL)


@dataclass(frozen=True)
class Run:
    decision: float  # s from t0 until a poll saw replicas > 1
    decision_stamp: float | None  # s from t0 until the leader's changed_at of that change
    running: float  # s from t0 until a poll saw a task of slot >= 2 RUNNING
    reason: str  # the autoscaler's reason for that change
    replicas: int  # the most replicas seen before that task ran
    cooldown: float  # s from removing the burn file until back to 1 replica running


class Bench:
    def __init__(self, stacks: Any, ctl: Path) -> None:
        self.stacks = stacks  # conftest.StackCluster
        self.burn = ctl / "burn"

    def service(self) -> Service:
        found: Service = self.stacks.call(SERVICE_INSPECT, NameRef(ref=SERVICE)).service
        return found

    def live(self) -> list[Task]:
        """The service's tasks that should run and do."""
        tasks = self.stacks.call(TASK_LS, TaskFilter(service=SERVICE, all=False)).tasks
        return [
            t
            for t in tasks
            if t.desired_state is TaskState.RUNNING and t.status.state is TaskState.RUNNING
        ]

    def idle(self) -> bool:
        """1 replica, 1 task running, and the last change at least `cooldown_up` old."""
        service = self.service()
        status = service.autoscale
        return (
            service.spec.replicas == 1
            and status is not None
            and status.replicas == 1
            and time.time() - status.changed_at >= COOLDOWN_UP
            and len(self.live()) == 1
        )

    def wait_idle(self) -> None:
        _until("1 idle replica", self.idle)
        # Readings of the idle task, none of the burn; then a random phase (the docstring).
        time.sleep(SETTLE + random.uniform(0.0, PHASE))
        if not self.idle():
            raise RuntimeError(f"{SERVICE} changed while idle: {self.service().autoscale}")

    def run(self) -> Run:
        decision: float | None = None
        stamp: float | None = None
        reason = ""
        most = 1
        t0_wall = time.time()
        t0 = time.monotonic()
        self.burn.touch()
        try:
            while True:
                service = self.service()
                seen = time.monotonic() - t0
                most = max(most, service.spec.replicas)
                if decision is None and service.spec.replicas > 1:
                    decision = seen
                    status = service.autoscale
                    if status is not None and status.previous == 1 and not status.by_hand:
                        stamp = status.changed_at - t0_wall
                        reason = status.reason
                new = [t for t in self.live() if t.slot >= 2]
                seen = time.monotonic() - t0
                if new:
                    if decision is None:  # both within one poll: this poll bounds both
                        decision = seen
                    running = seen
                    break
                if seen > LIMIT:
                    raise RuntimeError(f"no task of slot >= 2 running after {LIMIT:g} s")
                time.sleep(POLL)
        finally:
            self.burn.unlink(missing_ok=True)
        started = time.monotonic()
        _until(
            "back to 1 replica",
            lambda: self.service().spec.replicas == 1 and len(self.live()) == 1,
        )
        cooldown = time.monotonic() - started
        return Run(decision, stamp, running, reason, most, cooldown)


def measure(root: Path, runs: int, workers: int) -> list[Run]:
    stacks = load(STACKS)
    made = stacks.StackCluster(stacks.harness.Cluster(root / "cluster"))
    ctl = root / "ctl"
    ctl.mkdir()
    try:
        _note(f"starting m1 and {workers} worker(s), each on a private dockerd")
        m1 = made.init("m1")
        for i in range(1, workers + 1):
            made.join(f"w{i}", "worker", via=m1)
        made.cluster.heal()
        compose = root / "auto.yml"
        compose.write_text(_compose(ctl))
        done = made.deploy(STACK, compose)
        if done.returncode != 0:
            raise RuntimeError(f"stack deploy exited {done.returncode}: {done.stderr}")
        bench = Bench(made, ctl)
        _note("deployed; waiting until the service is idle")
        bench.wait_idle()
        found: list[Run] = []
        for index in range(runs):
            run = bench.run()
            found.append(run)
            stamp = "-" if run.decision_stamp is None else f"{run.decision_stamp:.2f}"
            _note(
                f"run {index + 1}/{runs}: decision {run.decision:.2f} s (stamp {stamp}), "
                f"new task running {run.running:.2f} s, up to {run.replicas} replicas, "
                f"cool-down {run.cooldown:.1f} s; reason: {run.reason}"
            )
            if index + 1 < runs:
                bench.wait_idle()
        return found
    finally:
        (ctl / "burn").unlink(missing_ok=True)
        made.close()


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def _report(runs: list[Run], workers: int) -> None:
    print(
        f"autoscaler: 1 replica of 0.1 core, cpu target 50%, max 3, cooldown_up "
        f"{COOLDOWN_UP:g}s, cooldown_down {COOLDOWN_DOWN:g}s; m1 + {workers} worker(s)"
    )
    print(f"agent sampling interval {DEFAULT_INTERVAL:g} s, autoscaler period {PERIOD:g} s")
    print("| run | decision | decision (stamp) | new task running | replicas | cool-down |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        stamp = "-" if r.decision_stamp is None else f"{r.decision_stamp:.2f} s"
        print(
            f"| {i} | {r.decision:.2f} s | {stamp} | {r.running:.2f} s | {r.replicas} | "
            f"{r.cooldown:.1f} s |"
        )
    decision = _spread([r.decision for r in runs])
    running = _spread([r.running for r in runs])
    for name, s in (("decision", decision), ("new task running", running)):
        print(f"{name}: min {s['min']:.2f} s, median {s['median']:.2f} s, max {s['max']:.2f} s")
    stamps = [r.decision_stamp for r in runs if r.decision_stamp is not None]
    summary = {
        "runs": len(runs),
        "decision_s": decision,
        "running_s": running,
        "decision_stamp_s": _spread(stamps) if stamps else None,
        "rounds": [
            {
                "decision": round(r.decision, 3),
                "running": round(r.running, 3),
                "replicas": r.replicas,
                "reason": r.reason,
                "cooldown": round(r.cooldown, 1),
            }
            for r in runs
        ],
        "sampling_interval_s": DEFAULT_INTERVAL,
        "period_s": PERIOD,
    }
    print(json.dumps(summary), flush=True)


def _terminated(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt  # runs every `finally`, as Ctrl-C does


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="load steps (default 5)")
    parser.add_argument("--quick", action="store_true", help="2 runs")
    parser.add_argument("--workers", type=int, default=1, help="workers besides m1")
    parser.add_argument("--keep-dir", action="store_true", help="keep the nodes' directories")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("error: needs root (private dockerds)", file=sys.stderr)
        return 1
    runs = 2 if args.quick else args.runs
    if runs < 1:
        parser.error("--runs must be at least 1")
    signal.signal(signal.SIGTERM, _terminated)
    root = Path(tempfile.mkdtemp(prefix="swl-bench-autoscale-")).resolve()
    try:
        found = measure(root, runs, args.workers)
    except KeyboardInterrupt:
        _note("interrupted; the cluster is stopped")
        return 130
    finally:
        if args.keep_dir:
            _note(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    _report(found, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
