"""What this node's tasks of autoscaled services use, sent to the leader every few seconds.

Owns the sampling for the autoscaler: every ``interval`` seconds, for each running task
whose service carries autoscale labels (``api/autoscale.py``), one reading of its
container's counters from the runtime (``RuntimeDriver.stats``), turned into CPU cores used
since the task's previous reading and memory in use; and, when the node's networking can
count them, the requests the routing mesh of this node passed to each service since the
previous report (a connection is counted where it enters the mesh, so a node reports them
whether or not it runs a task of that service). Both go to the dispatcher in one
``UsageReport``. A node without such tasks asks its runtime nothing, and a round with
nothing to say sends nothing.

A reading that fails (the container just went away) leaves that task out of the report; a
report that cannot be sent (no session right now) is dropped: the next one is only
``interval`` later, and the autoscaler acts only on fresh readings. Mesh counts that go
down were reset (a rule was rebuilt) and count from zero.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from swarmlite.agent.driver import RuntimeDriver
from swarmlite.api import Task, TaskState
from swarmlite.api.autoscale import declared
from swarmlite.api.control import AgentMessage, TaskUsage, UsageReport
from swarmlite.clock import Clock
from swarmlite.errors import SwarmliteError
from swarmlite.log import kv

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0

MeshCounts = Callable[[], Awaitable[dict[str, int]]]


class UsageReporter:
    def __init__(
        self,
        tasks: Callable[[], Mapping[str, Task]],
        driver: RuntimeDriver,
        send: Callable[[AgentMessage], Awaitable[None]],
        clock: Clock,
        *,
        requests: MeshCounts | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self._tasks = tasks
        self._driver = driver
        self._send = send
        self._clock = clock
        self._requests = requests
        self.interval = interval
        self._cpu: dict[str, tuple[float, float]] = {}  # task id -> (cpu seconds, monotonic)
        self._counts: dict[str, int] = {}  # service id -> the mesh's count last time
        self._active: set[str] = set()  # services with requests in the last report
        self._last_report: float | None = None

    async def run(self) -> None:
        while True:
            await self._clock.sleep(self.interval)
            report = await self.sample()
            if report is None:
                continue
            try:
                await self._send(report)
            except SwarmliteError as exc:
                log.debug("usage report not sent %s", kv(error=exc.message))

    async def sample(self) -> UsageReport | None:
        """One round: the report to send, or None when there is nothing to say."""
        now = self._clock.monotonic()
        watched = [
            t
            for t in self._tasks().values()
            if declared(t.service_labels)
            and t.status.state is TaskState.RUNNING
            and t.status.container_id
        ]
        readings = await self._readings(watched, now)
        requests = await self._mesh_requests()
        if not watched and not requests:
            self._last_report = None
            return None
        interval = now - self._last_report if self._last_report is not None else self.interval
        self._last_report = now
        return UsageReport(interval=interval, tasks=readings, requests=requests)

    async def _readings(self, watched: list[Task], now: float) -> list[TaskUsage]:
        readings: list[TaskUsage] = []
        for task in watched:
            try:
                stats = await self._driver.stats(task.status.container_id)
            except SwarmliteError as exc:
                log.debug("no usage reading %s", kv(task=task.id, error=exc.message))
                continue
            before = self._cpu.get(task.id)
            self._cpu[task.id] = (stats.cpu_seconds, now)
            if before is None or now <= before[1]:
                continue  # a rate needs two readings
            cores = max(0.0, stats.cpu_seconds - before[0]) / (now - before[1])
            readings.append(TaskUsage(task_id=task.id, cpu=cores, memory_bytes=stats.memory_bytes))
        live = {t.id for t in watched}
        for gone in set(self._cpu) - live:
            del self._cpu[gone]
        return readings

    async def _mesh_requests(self) -> dict[str, int]:
        """What the mesh passed to each service since the last round: every service with
        new requests (a connection is counted where it enters, often a node that runs no
        task of it), and a 0 once for one that had some last time and now has none."""
        if self._requests is None:
            return {}
        try:
            counts = await self._requests()
        except SwarmliteError as exc:
            log.debug("no mesh counts %s", kv(error=exc.message))
            return {}
        out: dict[str, int] = {}
        for service_id, count in counts.items():
            before = self._counts.get(service_id)
            if before is not None:
                delta = count - before if count >= before else count
                if delta or service_id in self._active:
                    out[service_id] = delta
        self._counts = dict(counts)
        self._active = {service_id for service_id, delta in out.items() if delta}
        return out
