"""Each running task's container as Prometheus sees it: CPU, memory and network bytes.

Owns the background sampling of the runtime's stats (`TaskStatsSampler`: every running
task of this node, one one-shot reading each, every `interval` seconds) and the metric
families made from the latest readings (`TaskStatsCollector`), labelled by stack,
service, slot, node and task. The sampler runs only while metrics are on (the daemon
starts it with the listener), so a node without metrics asks its runtime nothing. Does
not own which tasks run here (the worker's view, given as a callable) nor how a runtime
reads its stats (`agent.driver.RuntimeDriver.stats`).

A scrape shows the readings of the last round, at most `interval` old; a task that
stopped leaves at the next round. A reading that fails (the container just went away,
the runtime is busy) is left out of that round and logged at debug level: metrics never
make a task or the node fail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from swarmlite.agent.driver import ContainerStats, RuntimeDriver
from swarmlite.api import STACK_LABEL, Task, TaskState
from swarmlite.clock import Clock
from swarmlite.errors import SwarmliteError
from swarmlite.log import kv
from swarmlite.metrics.cluster import PREFIX

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0
LABELS = ["stack", "service", "slot", "node", "task"]


@dataclass(frozen=True)
class TaskSample:
    task: Task
    stats: ContainerStats


def task_labels(task: Task) -> list[str]:
    """The label values of a task's series, in `LABELS` order (slot 0: a global task)."""
    stack = task.service_labels.get(STACK_LABEL, "")
    return [stack, task.service_name, str(task.slot), task.node_id, task.id]


class TaskStatsSampler:
    """Reads the stats of every running task here, every `interval` seconds, until cancelled."""

    def __init__(
        self,
        tasks: Callable[[], Iterable[Task]],
        driver: RuntimeDriver,
        clock: Clock,
        *,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self._tasks = tasks
        self._driver = driver
        self._clock = clock
        self._interval = interval
        self.samples: dict[str, TaskSample] = {}  # task id -> its latest reading

    async def run(self) -> None:
        while True:
            await self.sample()
            await self._clock.sleep(self._interval)

    async def sample(self) -> None:
        """One round: a reading of each running task's container, replacing the last round."""
        fresh: dict[str, TaskSample] = {}
        for task in list(self._tasks()):
            container = task.status.container_id
            if task.status.state is not TaskState.RUNNING or not container:
                continue
            try:
                stats = await self._driver.stats(container)
            except SwarmliteError as exc:
                log.debug("no stats for a task %s", kv(task=task.id, error=exc.message))
                continue
            fresh[task.id] = TaskSample(task, stats)
        self.samples = fresh


class TaskStatsCollector:
    def __init__(self, sampler: TaskStatsSampler) -> None:
        self._sampler = sampler

    def collect(self) -> Iterable[Metric]:
        def counter(name: str, help_text: str) -> CounterMetricFamily:
            return CounterMetricFamily(f"{PREFIX}_task_{name}", help_text, labels=LABELS)

        def gauge(name: str, help_text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{PREFIX}_task_{name}", help_text, labels=LABELS)

        cpu = counter("cpu_seconds", "CPU time the task's container used (user + system).")
        memory = gauge(
            "memory_usage_bytes",
            "Memory the task's container uses, less the page cache the kernel can drop.",
        )
        limit = gauge(
            "memory_limit_bytes", "The task's memory limit (0: none below the node's memory)."
        )
        rx = counter(
            "network_receive_bytes", "Bytes the task's container received (loopback excluded)."
        )
        tx = counter(
            "network_transmit_bytes", "Bytes the task's container sent (loopback excluded)."
        )
        for sample in self._sampler.samples.values():
            labels, stats = task_labels(sample.task), sample.stats
            cpu.add_metric(labels, stats.cpu_seconds)
            memory.add_metric(labels, stats.memory_bytes)
            limit.add_metric(labels, stats.memory_limit_bytes)
            rx.add_metric(labels, stats.rx_bytes)
            tx.add_metric(labels, stats.tx_bytes)
        yield from (cpu, memory, limit, rx, tx)
