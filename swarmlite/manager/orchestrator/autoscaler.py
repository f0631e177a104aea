"""The autoscaler: a leader loop that sets a replicated service's replicas from what its
tasks use, within the bounds its labels declare (``api/autoscale.py``).

Every ``period`` seconds, for each replicated service with autoscale labels, it averages
the fresh readings of its running tasks (``manager/usage.py``: CPU and memory as % of each
task's limit, else reservation, else one core for CPU; requests per second per task from
the routing mesh's counts) and asks, per target, for ``ceil(replicas * reading / target)``
replicas, as Kubernetes' HPA does; a reading within 10% of its target asks for no change.
The largest ask wins, clamped to [min, max]. Then:

- up: at once, unless the last change is less than ``cooldown_up`` old;
- down: only once the last change is ``cooldown_down`` old, and then to the largest ask
  seen over that window (a short dip does not shrink the service);
- during a rolling update or rollback (or while one is paused) it changes nothing;
- below min or above max (a service made before its labels, labels changed), it moves the
  replicas into the bounds at once.

It never fights a user: a replicas change it did not make (``service scale``, a stack
deploy) is recorded as a change by hand (``AutoscaleStatus.by_hand``), and the autoscaler
then waits a full cool-down, both ways, before it changes the replicas again. The control
API refuses a scale outside [min, max] up front, and a stack deploy keeps the replicas the
autoscaler chose. Every change (its own, or one by hand it noticed) is one write of the
service with ``autoscale`` saying why, so the event log shows each decision with its reason
(``swarmlite events``: a service update with ``replicas.old/new``, ``by=autoscaler``,
``reason=...``), as do ``service inspect`` and the new tasks' message in ``service ps``.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import msgspec

from swarmlite.api import AutoscaleStatus, Service, ServiceMode, TaskState, UpdateState
from swarmlite.api.autoscale import AutoscaleSpec, autoscale_spec, declared
from swarmlite.clock import Clock
from swarmlite.errors import InvalidArgument
from swarmlite.log import kv
from swarmlite.manager.loop import ReconcileLoop
from swarmlite.manager.usage import Usage
from swarmlite.store import ReadTx, Store, Tx

log = logging.getLogger(__name__)

PERIOD = 2.0
TOLERANCE = 0.1
_NO_CHANGE_STATES = (
    UpdateState.UPDATING,
    UpdateState.PAUSED,
    UpdateState.ROLLBACK_STARTED,
    UpdateState.ROLLBACK_PAUSED,
)


@dataclass(frozen=True)
class Observation:
    """The averages over a service's running tasks that have fresh readings."""

    cpu: float | None = None  # % of each task's CPU budget
    memory: float | None = None  # % of each task's memory budget
    rps: float | None = None  # requests per second per running task


def ask(spec: AutoscaleSpec, replicas: int, seen: Observation) -> tuple[int, str]:
    """The replicas the readings ask for (clamped to the spec's bounds), and why."""
    asks: list[tuple[int, str]] = []
    for name, target, value, unit in (
        ("cpu", spec.cpu, seen.cpu, "%"),
        ("memory", spec.memory, seen.memory, "%"),
        ("rps", spec.rps, seen.rps, " req/s"),
    ):
        if target is None or value is None:
            continue
        ratio = value / target
        wanted = replicas if abs(ratio - 1) <= TOLERANCE else math.ceil(replicas * ratio)
        asks.append((wanted, f"{name} {value:.0f}{unit} per task, target {target:g}{unit}"))
    if not asks:
        wanted, why = replicas, "no readings yet"
    else:
        wanted, why = max(asks)
    if wanted > spec.max:
        return spec.max, f"{why} (at most {spec.max})"
    if wanted < spec.min:
        return spec.min, f"{why} (at least {spec.min})"
    return wanted, why


class Autoscaler(ReconcileLoop):
    name = "autoscaler"
    kinds = ("service",)

    def __init__(self, store: Store, clock: Clock, usage: Usage, *, period: float = PERIOD) -> None:
        super().__init__(store, clock)
        self.usage = usage
        self.period = period
        self._asks: dict[str, deque[tuple[float, int]]] = {}  # service id -> (wall, ask)
        self._watched: dict[str, float] = {}  # service id -> wall time this loop first saw it

    async def reconcile(self) -> None:
        services = [s for s in self.memory.list(Service) if _autoscaled(s)]
        for gone in set(self._watched) - {s.id for s in services}:
            self._asks.pop(gone, None)
            del self._watched[gone]
        for service in services:
            await self._decide(service)
        if services:
            self.wake_at(self.clock.monotonic() + self.period)

    async def _decide(self, service: Service) -> None:
        try:
            spec = autoscale_spec(service.spec.labels)
        except InvalidArgument as exc:  # the control API refuses these; an old store may not
            log.warning("autoscale labels ignored %s", kv(service=service.spec.name, error=exc))
            return
        assert spec is not None
        now = self.clock.wall()
        replicas = service.spec.replicas
        status = service.autoscale
        if status is not None and status.replicas != replicas:
            why = f"scaled by hand from {status.replicas} to {replicas} replicas"
            await self._write(service, replicas, status.replicas, now, why, by_hand=True)
            return
        if replicas < spec.min or replicas > spec.max:
            bound = spec.min if replicas < spec.min else spec.max
            why = f"{replicas} replicas is outside {spec.min}..{spec.max}"
            await self._write(service, bound, replicas, now, why)
            return
        update = service.update_status
        if update is not None and update.state in _NO_CHANGE_STATES:
            return  # a rolling update decides the tasks now
        wanted, why = ask(spec, replicas, self._observe(service))
        asks = self._asks.setdefault(service.id, deque())
        asks.append((now, wanted))
        while asks and asks[0][0] < now - spec.cooldown_down:
            asks.popleft()
        since = now - status.changed_at if status is not None else math.inf
        # A shrink needs a whole window of asks (a new leader starts without any).
        watched = now - self._watched.setdefault(service.id, now)
        if wanted > replicas and since >= spec.cooldown_up:
            await self._write(service, wanted, replicas, now, why)
        elif wanted < replicas and min(since, watched) >= spec.cooldown_down:
            highest = max(ask for _, ask in asks)
            if highest < replicas:
                await self._write(service, highest, replicas, now, why)
        if status is None and wanted == replicas:
            await self._write(service, replicas, replicas, now, "autoscaling started")

    def _observe(self, service: Service) -> Observation:
        tasks = [
            t
            for t in self.memory.tasks_of_service(service.id)
            if t.desired_state is TaskState.RUNNING and t.status.state is TaskState.RUNNING
        ]
        resources = service.spec.task.resources
        cores = (resources.limits.nano_cpus or resources.reservations.nano_cpus or 10**9) / 1e9
        memory = resources.limits.memory_bytes or resources.reservations.memory_bytes
        readings = [r for t in tasks if (r := self.usage.task(t.id)) is not None]
        cpu = mem = None
        if readings:
            cpu = 100.0 * sum(r.cpu for r in readings) / len(readings) / cores
            if memory:
                mem = 100.0 * sum(r.memory_bytes for r in readings) / len(readings) / memory
        total = self.usage.requests_per_second(service.id)
        rps = total / max(1, len(tasks)) if total is not None else None
        return Observation(cpu=cpu, memory=mem, rps=rps)

    async def _write(
        self,
        service: Service,
        replicas: int,
        previous: int,
        now: float,
        why: str,
        *,
        by_hand: bool = False,
    ) -> None:
        if previous != replicas and not by_hand:
            why = f"{why}: {previous} -> {replicas} replicas"
        status = AutoscaleStatus(
            replicas=replicas, previous=previous, changed_at=now, by_hand=by_hand, reason=why
        )
        expected = service.version

        def write(read: ReadTx) -> Tx | None:
            current = read.get(Service, service.id)
            if current is None or current.version != expected:
                return None  # changed meanwhile: the next round decides again
            spec = msgspec.structs.replace(current.spec, replicas=replicas)
            return Tx().update(msgspec.structs.replace(current, spec=spec, autoscale=status))

        await self.store.update(write)
        self._asks.pop(service.id, None)
        log.info(
            "autoscaled %s",
            kv(service=service.spec.name, replicas=replicas, previous=previous, reason=why),
        )


def _autoscaled(service: Service) -> bool:
    return service.spec.mode is ServiceMode.REPLICATED and declared(service.spec.labels)
