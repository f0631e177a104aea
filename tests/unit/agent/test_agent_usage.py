"""The usage reporter: CPU as cores between two readings, memory as read, the mesh's
requests as differences, and nothing asked or sent when nothing is autoscaled."""

from __future__ import annotations

from typing import Any

import msgspec

from swarmlite.agent.driver import ContainerStats
from swarmlite.agent.usage import UsageReporter
from swarmlite.api import Task, TaskState, TaskStatus
from swarmlite.api.autoscale import PREFIX
from swarmlite.api.control import TaskUsage
from swarmlite.errors import NotFound
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_service, make_task


class Stats:
    """The one driver call the reporter makes; counts the calls."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.calls = 0

    async def stats(self, container_id: str) -> ContainerStats:
        self.calls += 1
        if container_id not in self.cpu:
            raise NotFound(f"container {container_id} is gone")
        return ContainerStats(
            cpu_seconds=self.cpu[container_id],
            memory_bytes=1000,
            memory_limit_bytes=0,
            rx_bytes=0,
            tx_bytes=0,
        )


def running(task: Task, container: str) -> Task:
    status = TaskStatus(state=TaskState.RUNNING, container_id=container)
    return msgspec.structs.replace(task, status=status)


def reporter(tasks: dict[str, Task], stats: Stats, clock: FakeClock, **kw: Any) -> UsageReporter:
    async def send(message: object) -> None:
        raise AssertionError("sample() does not send")

    return UsageReporter(lambda: tasks, stats, send, clock, **kw)  # type: ignore[arg-type]


async def test_cpu_is_cores_between_two_readings_of_autoscaled_tasks_only() -> None:
    clock = FakeClock()
    scaled = make_service("web", labels={PREFIX + "max": "3", PREFIX + "cpu": "50"})
    plain = make_service("db")
    a = running(make_task(scaled, slot=1), "c-a")
    b = running(make_task(plain, slot=1), "c-b")
    tasks = {a.id: a, b.id: b}
    stats = Stats()
    stats.cpu = {"c-a": 10.0, "c-b": 99.0}
    usage = reporter(tasks, stats, clock)

    first = await usage.sample()
    assert first is not None and first.tasks == []  # a rate needs two readings
    clock.advance(2)
    stats.cpu["c-a"] = 11.0
    second = await usage.sample()
    assert second is not None
    assert second.tasks == [TaskUsage(task_id=a.id, cpu=0.5, memory_bytes=1000)]
    assert second.interval == 2
    assert stats.calls == 2  # db's container was never asked

    del stats.cpu["c-a"]  # gone: left out, not an error
    clock.advance(2)
    third = await usage.sample()
    assert third is not None and third.tasks == []


async def test_nothing_autoscaled_and_no_requests_sends_nothing() -> None:
    clock = FakeClock()
    plain = running(make_task(make_service("db"), slot=1), "c-b")
    stats = Stats()
    usage = reporter({plain.id: plain}, stats, clock)
    assert await usage.sample() is None
    assert stats.calls == 0


async def test_mesh_requests_are_differences_with_resets_and_one_closing_zero() -> None:
    clock = FakeClock()
    counts = {"svc": 100}

    async def requests() -> dict[str, int]:
        return dict(counts)

    usage = reporter({}, Stats(), clock, requests=requests)
    assert await usage.sample() is None  # the first count is the baseline
    counts["svc"] = 130
    clock.advance(2)
    report = await usage.sample()
    assert report is not None and report.requests == {"svc": 30}
    counts["svc"] = 5  # the counter was made again
    report = await usage.sample()
    assert report is not None and report.requests == {"svc": 5}
    report = await usage.sample()  # no new requests: one zero, so the rate drops
    assert report is not None and report.requests == {"svc": 0}
    assert await usage.sample() is None
