"""What the tasks of autoscaled services use, as their nodes report it: the leader's table.

Owns the latest reading of each task (CPU cores, memory bytes) and each node's request rate
per service (the routing mesh's count over the report's interval), from the agents'
UsageReports (the dispatcher hands them over; only the leader serves sessions). Readings
live in memory only, never in the store: they come every few seconds and matter only for
the autoscaler's next decision. A reading older than ``max_age`` is gone (its node or task
went quiet), so a decision never rests on stale numbers; a new leader starts empty and
decides once fresh readings arrive.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmlite.api.control import UsageReport
from swarmlite.clock import Clock

DEFAULT_MAX_AGE = 15.0


@dataclass(frozen=True)
class Reading:
    cpu: float  # cores, averaged over the agent's interval
    memory_bytes: int
    at: float  # monotonic time it arrived


class Usage:
    def __init__(self, clock: Clock, *, max_age: float = DEFAULT_MAX_AGE) -> None:
        self.clock = clock
        self.max_age = max_age
        self._tasks: dict[str, Reading] = {}
        self._rates: dict[tuple[str, str], tuple[float, float]] = {}  # (service, node) -> rps, at

    def take(self, node_id: str, report: UsageReport) -> None:
        """One node's report."""
        now = self.clock.monotonic()
        for task in report.tasks:
            self._tasks[task.task_id] = Reading(task.cpu, task.memory_bytes, now)
        interval = max(report.interval, 0.001)
        for service_id, count in report.requests.items():
            self._rates[(service_id, node_id)] = (max(0, count) / interval, now)
        self._prune(now)

    def task(self, task_id: str) -> Reading | None:
        """The task's latest reading, if fresh."""
        reading = self._tasks.get(task_id)
        if reading is None or self.clock.monotonic() - reading.at > self.max_age:
            return None
        return reading

    def requests_per_second(self, service_id: str) -> float | None:
        """The service's requests per second over every node that reported them lately
        (None: no node did, e.g. it publishes no port)."""
        now = self.clock.monotonic()
        rates = [
            rate
            for (service, _), (rate, at) in self._rates.items()
            if service == service_id and now - at <= self.max_age
        ]
        return sum(rates) if rates else None

    def _prune(self, now: float) -> None:
        for task_id in [t for t, r in self._tasks.items() if now - r.at > self.max_age]:
            del self._tasks[task_id]
        for key in [k for k, (_, at) in self._rates.items() if now - at > self.max_age]:
            del self._rates[key]
