"""Fixtures for the agent: a small in-memory runtime driver, a fake clock, task factories.

The driver here is private to these tests until `swarmlite.testing.fakeruntime` exists.
It records every call, knows which images exist, lets a test make a container exit, turn
unhealthy, ignore its stop signal (so that the grace period runs on the fake clock), and
raise a chosen error from the next call of a method.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from swarmlite.agent.driver import (
    LABEL_TASK,
    ContainerRequest,
    ContainerState,
    LogEntry,
    RuntimeInfo,
)
from swarmlite.api import ContainerSpec, Task, TaskState, TaskTemplate
from swarmlite.api.task import TaskStatus
from swarmlite.errors import ImageNotFound, NotFound, SwarmliteError
from swarmlite.testing.clock import FakeClock


@dataclass
class FakeContainer:
    id: str
    request: ContainerRequest | None
    labels: dict[str, str]
    status: str = "created"
    exit_code: int | None = None
    health: str = ""
    ignores_signal: bool = False
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    logs: list[LogEntry] = field(default_factory=list)
    log_grew: asyncio.Event = field(default_factory=asyncio.Event)


class FakeDriver:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.images: set[str] = {"busybox"}
        self.containers: dict[str, FakeContainer] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.failures: dict[str, list[SwarmliteError]] = {}
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ test controls

    def fail_next(self, method: str, error: SwarmliteError, times: int = 1) -> None:
        self.failures.setdefault(method, []).extend([error] * times)

    def add_container(
        self, task: Task, *, status: str = "running", labels: dict[str, str] | None = None
    ) -> FakeContainer:
        """A container left by an earlier run of the agent."""
        cid = f"c{next(self._ids)}"
        container = FakeContainer(
            id=cid, request=None, labels=labels or {LABEL_TASK: task.id}, status=status
        )
        self.containers[cid] = container
        return container

    def exit(self, cid: str, code: int) -> None:
        container = self.containers[cid]
        container.status, container.exit_code = "exited", code
        container.exited.set()
        container.log_grew.set()

    def write_log(self, cid: str, line: str, stream: str = "stdout") -> None:
        container = self.containers[cid]
        container.logs.append(LogEntry(stream=stream, timestamp=self.clock.wall(), line=line))
        container.log_grew.set()

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        pending = self.failures.get(name)
        if pending:
            raise pending.pop(0)

    def _get(self, cid: str) -> FakeContainer:
        try:
            return self.containers[cid]
        except KeyError:
            raise NotFound(f"no such container: {cid}") from None

    # ------------------------------------------------------------------ RuntimeDriver

    async def info(self) -> RuntimeInfo:
        return RuntimeInfo("fake", "1", "linux", "x86_64", 10**9, 2**30)

    async def pull(self, image: str, progress: Callable[[str], None] | None = None) -> None:
        self._call("pull", image)
        if image not in self.images:
            raise ImageNotFound(f"image {image!r} not found")

    async def create(self, request: ContainerRequest) -> str:
        self._call("create", request.name)
        cid = f"c{next(self._ids)}"
        self.containers[cid] = FakeContainer(id=cid, request=request, labels=request.labels)
        return cid

    async def start(self, container_id: str) -> None:
        self._call("start", container_id)
        container = self._get(container_id)
        container.status = "running"
        spec = container.request.task.spec.container if container.request else None
        if spec is not None and spec.healthcheck is not None:
            container.health = "starting"

    async def inspect(self, container_id: str) -> ContainerState:
        self._call("inspect", container_id)
        c = self._get(container_id)
        return ContainerState(
            id=c.id,
            task_id=c.labels.get(LABEL_TASK, ""),
            labels=dict(c.labels),
            status=c.status,
            exit_code=c.exit_code,
            health=c.health,
        )

    async def wait(self, container_id: str) -> int:
        self._call("wait", container_id)
        container = self._get(container_id)
        await container.exited.wait()
        assert container.exit_code is not None
        return container.exit_code

    async def stop(self, container_id: str, *, signal: str = "", grace: float = 10.0) -> None:
        self._call("stop", container_id, signal, grace)
        container = self._get(container_id)
        if container.status != "running":
            return
        if container.ignores_signal:
            await self.clock.sleep(grace)
            self.exit(container_id, 137)
        else:
            self.exit(container_id, 143 if signal in ("", "SIGTERM") else 0)

    async def remove(self, container_id: str) -> None:
        self._call("remove", container_id)
        self.containers.pop(container_id, None)

    async def list_containers(self, labels: dict[str, str]) -> list[ContainerState]:
        self._call("list_containers", dict(labels))
        found = []
        for c in self.containers.values():
            if all(c.labels.get(k) == v for k, v in labels.items()):
                found.append(await self.inspect(c.id))
        return found

    async def _logs(self, container_id: str, follow: bool, tail: int) -> AsyncIterator[LogEntry]:
        container = self._get(container_id)
        sent = 0 if tail < 0 else max(0, len(container.logs) - tail)
        while True:
            container.log_grew.clear()
            while sent < len(container.logs):
                yield container.logs[sent]
                sent += 1
            if not follow or container.status != "running":
                return
            await container.log_grew.wait()

    def logs(
        self, container_id: str, *, follow: bool = False, tail: int = -1
    ) -> AsyncIterator[LogEntry]:
        self.calls.append(("logs", container_id, follow, tail))
        return self._logs(container_id, follow, tail)

    async def close(self) -> None:
        pass


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def driver(clock: FakeClock) -> FakeDriver:
    return FakeDriver(clock)


def make_task(
    task_id: str = "t1",
    *,
    image: str = "busybox",
    state: TaskState = TaskState.ASSIGNED,
    desired: TaskState = TaskState.RUNNING,
    container_id: str = "",
    **container: Any,
) -> Task:
    return Task(
        id=task_id,
        service_id="s1",
        service_name="shop_web",
        slot=1,
        node_id="n1",
        desired_state=desired,
        spec=TaskTemplate(container=ContainerSpec(image=image, **container)),
        status=TaskStatus(state=state, container_id=container_id),
    )


@pytest.fixture
def task_factory() -> Callable[..., Task]:
    return make_task


def with_desired(task: Task, desired: TaskState) -> Task:
    return msgspec.structs.replace(task, desired_state=desired)


@pytest.fixture
def desired() -> Callable[[Task, TaskState], Task]:
    return with_desired
