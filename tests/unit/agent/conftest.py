"""Fixtures for the agent: `testing.fakeruntime` on a fake clock, and task factories.

The fake records each driver call (`calls`, `names()`), so a test can check what was and
was not asked of the runtime: no second create after a restart, the stop signal and grace
period used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from swarmlite.agent.driver import ContainerRequest
from swarmlite.api import ContainerSpec, Task, TaskState, TaskTemplate
from swarmlite.api.task import TaskStatus
from swarmlite.errors import NotFound
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.fakeruntime import DEAF, FakeImage, FakeRuntime

DEAF_COMMAND = ["deaf"]  # a command that ignores its stop signal (runs until SIGKILL)


class AgentRuntime(FakeRuntime):
    """FakeRuntime with two conveniences for these tests."""

    def exists(self, container_id: str) -> bool:
        try:
            self.container(container_id)
        except NotFound:
            return False
        return True

    async def run_container(self, request: ContainerRequest) -> str:
        """A container made without this agent (by an earlier run of it, say), running."""
        container_id = await self.create(request)
        await self.start(container_id)
        self.calls.clear()  # what the test checks afterwards is the agent's doing
        return container_id


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def driver(clock: FakeClock) -> AgentRuntime:
    runtime = AgentRuntime(clock, images=[FakeImage(ref="busybox")])
    runtime.programs[tuple(DEAF_COMMAND)] = DEAF
    return runtime


def make_task(
    task_id: str = "t1",
    *,
    image: str = "busybox",
    state: TaskState = TaskState.ASSIGNED,
    desired: TaskState = TaskState.RUNNING,
    container_id: str = "",
    slot: int = 1,
    **container: Any,
) -> Task:
    return Task(
        id=task_id,
        service_id="s1",
        service_name="shop_web",
        slot=slot,
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
