"""Per-task container metrics: the sampler's rounds on FakeRuntime, and the families made
from them (names, the stack/service/slot/node/task labels, values)."""

from __future__ import annotations

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from swarmlite.agent.driver import ContainerRequest, ContainerStats
from swarmlite.api import STACK_LABEL, Task, TaskState
from swarmlite.metrics.containers import TaskStatsCollector, TaskStatsSampler
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_service, make_task
from swarmlite.testing.fakeruntime import FAKE_MEMORY, FakeImage, FakeRuntime

WEB = make_service("shop_web", image="busybox", labels={STACK_LABEL: "shop"})


def running(task: Task, container_id: str) -> Task:
    status = msgspec.structs.replace(
        task.status, state=TaskState.RUNNING, container_id=container_id
    )
    return msgspec.structs.replace(task, status=status)


async def start(runtime: FakeRuntime, task: Task) -> str:
    container_id = await runtime.create(ContainerRequest(task=task, name=task.id, labels={}))
    await runtime.start(container_id)
    return container_id


def scrape(sampler: TaskStatsSampler) -> dict[tuple[str, str], float]:
    """Samples by (name, task label)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TaskStatsCollector(sampler))
    text = generate_latest(registry).decode()
    return {
        (s.name, s.labels["task"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_each_running_task_is_read_and_labelled() -> None:
    clock = FakeClock()
    runtime = FakeRuntime(clock, images=[FakeImage(ref="busybox")])
    one = make_task(WEB, id="t1", slot=1, node_id="n1")
    two = make_task(WEB, id="t2", slot=2, node_id="n1")
    tasks = [running(one, await start(runtime, one)), running(two, await start(runtime, two))]
    runtime.set_stats(
        tasks[1].status.container_id,
        ContainerStats(
            cpu_seconds=1.5,
            memory_bytes=3 << 20,
            memory_limit_bytes=64 << 20,
            rx_bytes=10,
            tx_bytes=20,
        ),
    )
    pending = make_task(WEB, id="t3", slot=3, node_id="n1", state=TaskState.PENDING)
    sampler = TaskStatsSampler(lambda: [*tasks, pending], runtime, clock)
    clock.advance(10)
    await sampler.sample()

    samples = scrape(sampler)
    assert samples[("swarmlite_task_memory_usage_bytes", "t1")] == FAKE_MEMORY
    assert samples[("swarmlite_task_cpu_seconds_total", "t1")] > 0
    assert samples[("swarmlite_task_cpu_seconds_total", "t2")] == 1.5
    assert samples[("swarmlite_task_memory_usage_bytes", "t2")] == 3 << 20
    assert samples[("swarmlite_task_memory_limit_bytes", "t2")] == 64 << 20
    assert samples[("swarmlite_task_network_receive_bytes_total", "t2")] == 10
    assert samples[("swarmlite_task_network_transmit_bytes_total", "t2")] == 20
    assert {task for _, task in samples} == {"t1", "t2"}  # t3 has no container yet

    registry = CollectorRegistry(auto_describe=False)
    registry.register(TaskStatsCollector(sampler))
    families = text_string_to_metric_families(generate_latest(registry).decode())
    memory = next(f for f in families if f.name == "swarmlite_task_memory_usage_bytes")
    labels = {s.labels["task"]: s.labels for s in memory.samples}
    assert labels["t2"] == {
        "stack": "shop",
        "service": "shop_web",
        "slot": "2",
        "node": "n1",
        "task": "t2",
    }


async def test_a_task_that_stopped_leaves_at_the_next_round() -> None:
    clock = FakeClock()
    runtime = FakeRuntime(clock, images=[FakeImage(ref="busybox")])
    task = make_task(WEB, id="t1", node_id="n1")
    tasks = [running(task, await start(runtime, task))]
    sampler = TaskStatsSampler(lambda: tasks, runtime, clock)
    await sampler.sample()
    assert ("swarmlite_task_memory_usage_bytes", "t1") in scrape(sampler)

    runtime.exit(tasks[0].status.container_id, 0)  # gone before the task's report came
    await sampler.sample()
    assert scrape(sampler) == {}
    assert runtime.names().count("stats") == 2
