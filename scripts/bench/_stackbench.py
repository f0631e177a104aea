"""The measurement core shared by `stack.py` (one node) and `stack_lab.py` (a 3-host lab).

Owns what both benchmarks do the same way: the rows (deploy of a new stack until all of its
1, 10, 50 replicas run, scale 10 -> 50, rolling update of 10 replicas, `docker kill` of a
replica's container until another one runs), the polling clock (`until`: from the start of
a command until the observer sees the outcome, every POLL s, at most LIMIT s), a fresh stack
per measurement (removed, its containers gone, before the next), the rounds and their
medians, the docker CLI and the swarmlite CLI as the systems' commands, and the table and
JSON line printed at the end.

Does not own what differs between the two, which each script passes in: the `Observer`
(where the containers are listed, how an image is recognised, and whether the system's own
task list must agree), the `Commands` that deploy, scale and remove a stack, the compose
file, and how a system starts and stops. A time ends only when the observer sees the whole
outcome, never when a command returns: commands are run detached.

Loaded by the two scripts as a plain import (their directory is on sys.path when run).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from swarmlite.testing.dockerd import engine_request

DOCKER = Path("/usr/local/bin/docker")  # docker CLI 28 (scripts/setup)
STACK_LABEL = "com.docker.stack.namespace"
POLL = 0.05
LIMIT = 300.0  # one measurement
METRICS = (
    "deploy_1_s",
    "deploy_10_s",
    "deploy_50_s",
    "scale_10_to_50_s",
    "rolling_update_10_s",
    "kill_to_replacement_s",
)

Result = dict[str, dict[str, float | None]]  # {metric: {system: seconds or None}}


def note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def env(**extra: str) -> dict[str, str]:
    """This process's environment without SWARMLITE_* and DOCKER_*, plus ``extra``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("SWARMLITE_", "DOCKER_"))}
    kept.update(extra)
    return kept


def popen(argv: list[str], environ: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish(proc: subprocess.Popen[bytes], what: str) -> str:
    """Wait for ``proc``; its stdout. RuntimeError with its output if it failed."""
    try:
        out, err = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"{what} took over {LIMIT:g} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}: {err.decode()} {out.decode()}")
    return out.decode()


def until(what: str, check: Callable[[], bool], started: float) -> float:
    """Seconds from ``started`` until ``check()`` holds (polled every POLL s)."""
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > LIMIT:
            raise RuntimeError(f"timed out after {LIMIT:g} s waiting for {what}")
        time.sleep(POLL)


# --------------------------------------------------------------------------- the commands


class Commands(Protocol):
    """What drives a system: each call starts its command detached and returns at once,
    except ``rm``, which returns when the command has succeeded."""

    def deploy(self, stack: str, replicas: int, image: str) -> subprocess.Popen[bytes]: ...
    def scale(self, stack: str, replicas: int) -> subprocess.Popen[bytes]: ...
    def rm(self, stack: str) -> None: ...


class DockerCli:
    """The docker CLI on one Engine API socket (DOCKER_HOST), with an empty client config;
    its stacks are deployed from ``compose``."""

    def __init__(self, host: str, config: Path, compose: Path) -> None:
        if not DOCKER.is_file():
            raise RuntimeError(f"{DOCKER} (the docker CLI) is not installed; see scripts/setup")
        config.mkdir(parents=True, exist_ok=True)
        self._env = {"DOCKER_HOST": host, "DOCKER_CONFIG": str(config)}
        self._compose = compose

    def popen(self, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        return popen([str(DOCKER), *args], env(**self._env, **extra))

    def ok(self, *args: str) -> str:
        return finish(self.popen(*args), f"docker {' '.join(args)}")

    def deploy(self, stack: str, replicas: int, image: str) -> subprocess.Popen[bytes]:
        args = ("stack", "deploy", "--detach=true", "-c", str(self._compose), stack)
        return self.popen(*args, REPLICAS=str(replicas), IMAGE=image)

    def scale(self, stack: str, replicas: int) -> subprocess.Popen[bytes]:
        return self.popen("service", "scale", "--detach", f"{stack}_web={replicas}")

    def rm(self, stack: str) -> None:
        """`docker stack rm`, again while swarm refuses it because the stack's network is
        still "in use by task": it removes the network while the tasks on it stop."""
        deadline = time.monotonic() + LIMIT
        while True:
            try:
                self.ok("stack", "rm", stack)
                return
            except RuntimeError as exc:
                if "in use" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


class SwarmliteCli:
    """The `swarmlite` CLI on ``host`` (its -H), stacks from ``compose``."""

    def __init__(self, host: str, compose: Path) -> None:
        self._host = host
        self._compose = compose

    def _cli(self, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        return popen([sys.executable, "-m", "swarmlite", "-H", self._host, *args], env(**extra))

    def deploy(self, stack: str, replicas: int, image: str) -> subprocess.Popen[bytes]:
        args = ("stack", "deploy", "-d", "-c", str(self._compose), stack)
        return self._cli(*args, REPLICAS=str(replicas), IMAGE=image)

    def scale(self, stack: str, replicas: int) -> subprocess.Popen[bytes]:
        return self._cli("service", "scale", "-d", f"{stack}_web={replicas}")

    def rm(self, stack: str) -> None:
        finish(self._cli("stack", "rm", stack), f"swarmlite stack rm {stack}")


# --------------------------------------------------------------------------- the observer


@dataclass(frozen=True)
class Seen:
    host: str  # "" where there is one dockerd
    id: str
    state: str
    image: str  # what the observer's image_key() gives for the ref it was created from


class Observer(ABC):
    """What a benchmark sees of the containers of a stack (the ones labelled STACK_LABEL)."""

    @abstractmethod
    def containers(self, stack: str) -> list[Seen]: ...

    @abstractmethod
    def socket_of(self, host: str) -> Path:
        """The Engine API socket of the dockerd that runs the containers of ``host``."""

    def image_key(self, image: str) -> str:
        """What ``Seen.image`` holds for containers of the image ref ``image``."""
        return image

    def agrees(self, stack: str, replicas: int) -> bool:
        """Whether the system's own task list has ``replicas`` of ``stack`` running (asked
        only once the containers are there); True for an observer that does not ask."""
        return True

    def running(self, stack: str, image: str) -> list[Seen]:
        key = self.image_key(image)
        return [c for c in self.containers(stack) if c.state == "running" and c.image == key]

    def converged(self, stack: str, replicas: int, image: str) -> bool:
        """``replicas`` containers of ``stack`` run, all of ``image``, and the system agrees."""
        running = [c for c in self.containers(stack) if c.state == "running"]
        key = self.image_key(image)
        if len(running) != replicas or any(c.image != key for c in running):
            return False
        return self.agrees(stack, replicas)

    def kill(self, victim: Seen) -> None:
        status, body = engine_request(
            self.socket_of(victim.host), "POST", f"/containers/{victim.id}/kill"
        )
        if status != 204:
            where = f" on {victim.host}" if victim.host else ""
            raise RuntimeError(f"kill {victim.id}{where}: {status} {body!r}")


# --------------------------------------------------------------------------- measurements


class Runner:
    """The rows of one system: its ``commands``, seen by ``observer``; ``v1`` and ``v2`` are
    the image refs deployed (and updated to); stacks are named ``<prefix>1``, ``<prefix>2``..."""

    def __init__(
        self, name: str, commands: Commands, observer: Observer, v1: str, v2: str, prefix: str
    ) -> None:
        self.name = name
        self.commands = commands
        self.observer = observer
        self.v1, self.v2 = v1, v2
        self._stacks = (f"{prefix}{i}" for i in range(1, 10_000))

    @contextlib.contextmanager
    def stack(self) -> Iterator[str]:
        """A fresh stack name; the stack is removed, and its containers gone, afterwards."""
        name = next(self._stacks)
        try:
            yield name
        finally:
            self.commands.rm(name)
            until(
                f"no container of {name}",
                lambda: not self.observer.containers(name),
                time.monotonic(),
            )

    def _timed(
        self, what: str, proc: Callable[[], subprocess.Popen[bytes]], check: Callable[[], bool]
    ) -> float:
        """Seconds from starting ``proc`` until ``check()``; the command must succeed too."""
        started = time.monotonic()
        running = proc()
        took = until(what, check, started)
        finish(running, f"{self.name} {what}")
        return took

    def _deploy(self, stack: str, replicas: int, image: str) -> float:
        return self._timed(
            f"deploy {stack}: {replicas} running {image}",
            lambda: self.commands.deploy(stack, replicas, image),
            lambda: self.observer.converged(stack, replicas, image),
        )

    def deploy(self, replicas: int) -> float:
        with self.stack() as stack:
            return self._deploy(stack, replicas, self.v1)

    def scale(self, before: int, after: int) -> float:
        with self.stack() as stack:
            self._deploy(stack, before, self.v1)
            return self._timed(
                f"scale {stack}: {after} running",
                lambda: self.commands.scale(stack, after),
                lambda: self.observer.converged(stack, after, self.v1),
            )

    def rolling_update(self, replicas: int) -> float:
        with self.stack() as stack:
            self._deploy(stack, replicas, self.v1)
            return self._deploy(stack, replicas, self.v2)

    def kill(self) -> float:
        with self.stack() as stack:
            self._deploy(stack, 1, self.v1)
            [victim] = self.observer.running(stack, self.v1)
            started = time.monotonic()
            self.observer.kill(victim)

            def replaced() -> bool:
                running = self.observer.running(stack, self.v1)
                others = [c for c in running if c.id != victim.id]
                return bool(others) and self.observer.agrees(stack, 1)

            return until("a replacement running", replaced, started)


def measure(runner: Runner, rounds: int) -> dict[str, float]:
    """Every row ``rounds`` times, in turn; the median of each."""
    found: dict[str, list[float]] = {m: [] for m in METRICS}
    steps: list[tuple[str, Callable[[], float]]] = [
        ("deploy_1_s", lambda: runner.deploy(1)),
        ("deploy_10_s", lambda: runner.deploy(10)),
        ("deploy_50_s", lambda: runner.deploy(50)),
        ("scale_10_to_50_s", lambda: runner.scale(10, 50)),
        ("rolling_update_10_s", lambda: runner.rolling_update(10)),
        ("kill_to_replacement_s", runner.kill),
    ]
    for index in range(rounds):
        for metric, step in steps:
            took = step()
            found[metric].append(took)
            note(f"{runner.name} round {index + 1}: {metric} = {took:.2f}")
    return {m: statistics.median(v) for m, v in found.items()}


def measure_system(name: str, start: Callable[[], Runner], rounds: int) -> dict[str, float | None]:
    """``start()`` the system (it returns its runner) and measure it; every row None, with
    the traceback on stderr, if anything failed, so that the other systems still run."""
    note(f"{name}: starting")
    try:
        return dict(measure(start(), rounds))
    except Exception:
        note(f"{name} failed:\n{traceback.format_exc()}")
        return dict.fromkeys(METRICS)


# --------------------------------------------------------------------------- the output


def report(
    result: Result, names: list[str], *, rows: Mapping[str, str] | None = None, missing: str
) -> None:
    """The table: a row per metric (named by ``rows``, else the metric), a column per
    system; ``missing`` where a system has no time."""

    def cell(value: float | None) -> str:
        return missing if value is None else f"{value:.2f} s"

    print("| measurement | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for metric, values in result.items():
        label = metric if rows is None else rows[metric]
        print(f"| {label} | " + " | ".join(cell(values.get(n)) for n in names) + " |")


def summary(result: Result) -> None:
    """The last line: ``result`` as one JSON object, times rounded to the millisecond."""
    rounded = {
        m: {n: (None if v is None else round(v, 3)) for n, v in values.items()}
        for m, values in result.items()
    }
    print(json.dumps(rounded), flush=True)
