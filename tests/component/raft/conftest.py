"""Fixtures for Raft members as real processes: clusters torn down by pid, writers that
remember which writes were acknowledged, and waits on what a user can observe.

A write is acknowledged when `ProcCluster.put` returned; a write that raised may or may not
have been applied. Every acknowledged value must survive whatever the test does to the
processes: readable later with the same value, or a later one from the same writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from swarmlite.errors import SwarmliteError
from swarmlite.testing.raftcluster import ProcCluster
from swarmlite.testing.raftproc import StatusReply

MakeCluster = Callable[..., ProcCluster]


@pytest.fixture
async def make_cluster(tmp_path: Path) -> AsyncIterator[MakeCluster]:
    """`make_cluster(size, **kwargs)`: a ProcCluster whose processes are killed afterwards."""
    made: list[ProcCluster] = []

    def make(size: int, **kwargs: Any) -> ProcCluster:
        cluster = ProcCluster(tmp_path / f"cluster{len(made)}", size, **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        await cluster.close()


def sigkill(cluster: ProcCluster, node_id: str) -> None:
    """`cluster.kill(node_id)`, then close the pipe of the process it dropped.

    ProcCluster.kill leaves the killed process's stdout pipe open (a ResourceWarning, so an
    error, when it is collected); test_kill_closes_the_pipe_of_the_killed_member shows it.
    """
    proc = cluster.members[node_id].proc
    cluster.kill(node_id)
    if proc is not None and proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def kill() -> Callable[[ProcCluster, str], None]:
    """`kill(cluster, node_id)`: SIGKILL a member (see `sigkill`)."""
    return sigkill


class Writers:
    """`count` concurrent writers; writer i writes 1, 2, 3, ... to key `{prefix}{i}`."""

    def __init__(self, cluster: ProcCluster, count: int, prefix: str = "w") -> None:
        self.cluster = cluster
        self.keys = [f"{prefix}{i}" for i in range(count)]
        self.acked: dict[str, int] = {}  # key -> last value whose put returned
        self.attempted: dict[str, int] = {}  # key -> last value a put was started with
        self.acks = 0
        self.failures: list[SwarmliteError] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._write(key)) for key in self.keys]

    async def _write(self, key: str) -> None:
        value = 0
        while not self._stop.is_set():
            value += 1
            self.attempted[key] = value
            try:
                await self.cluster.put(key, str(value).encode(), timeout=10.0)
            except SwarmliteError as exc:  # unacknowledged: may or may not be applied
                self.failures.append(exc)
                await asyncio.sleep(0.05)
                continue
            self.acked[key] = value
            self.acks += 1

    async def wait_acks(self, more: int, timeout: float = 20.0) -> None:
        """Wait until `more` further writes have been acknowledged."""
        target = self.acks + more
        deadline = time.monotonic() + timeout
        while self.acks < target:
            for task in self._tasks:
                if task.done():
                    task.result()  # a writer died of something other than SwarmliteError
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {self.acks} of {target} writes acknowledged within {timeout}s; "
                    f"last failures: {self.failures[-3:]}"
                )
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def check_readable(self) -> None:
        """Every acknowledged write reads back (linearizably) as itself or a later value."""
        assert self.acked, "no write was acknowledged"
        for key, acked in self.acked.items():
            raw = await self.cluster.get(key)
            assert raw is not None, f"{key}: acknowledged value {acked} lost, key missing"
            value = int(raw)
            assert acked <= value <= self.attempted[key], (
                f"{key}: read {value}, acknowledged {acked}, last attempted {self.attempted[key]}"
            )


@pytest.fixture
async def writers(make_cluster: MakeCluster) -> AsyncIterator[Callable[..., Writers]]:
    """`writers(cluster, count)`: Writers on `cluster` (not started); stopped afterwards,
    before the cluster's processes are killed."""
    made: list[Writers] = []

    def make(cluster: ProcCluster, count: int, prefix: str = "w") -> Writers:
        made.append(Writers(cluster, count, prefix))
        return made[-1]

    yield make
    for w in made:
        await w.cancel()


@pytest.fixture
def caught_up() -> Callable[..., Any]:
    """`await caught_up(cluster, nodes)`: see `wait_caught_up`."""
    return wait_caught_up


@pytest.fixture
def logged() -> Callable[..., Any]:
    """`await logged(path, text)`: see `wait_logged`."""
    return wait_logged


async def wait_caught_up(
    cluster: ProcCluster, nodes: list[str], timeout: float = 15.0
) -> dict[str, StatusReply]:
    """Wait until each of `nodes` has applied the leader's commit index; their statuses."""
    deadline = time.monotonic() + timeout
    while True:
        statuses: dict[str, StatusReply] = {}
        with contextlib.suppress(SwarmliteError):
            leader = await cluster.leader(timeout=max(0.1, deadline - time.monotonic()))
            lead = await cluster.status(leader)
            for node in nodes:
                statuses[node] = await cluster.status(node)
            if all(s.applied == lead.commit for s in statuses.values()):
                return statuses
        if time.monotonic() > deadline:
            raise AssertionError(f"not caught up within {timeout}s: {statuses}")
        await asyncio.sleep(0.1)


def log_lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines()


async def wait_logged(path: Path, text: str, timeout: float = 5.0) -> str:
    """The first line of the log at `path` that contains `text`, waiting for it."""
    deadline = time.monotonic() + timeout
    while True:
        for line in log_lines(path):
            if text in line:
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} never logged {text!r}")
        await asyncio.sleep(0.05)
