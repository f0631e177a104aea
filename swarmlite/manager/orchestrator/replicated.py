"""The replicated orchestrator: a replicated service's slots 1..replicas each hold one task.

Owns, for services in REPLICATED mode: creating the missing task of a slot, shutting
down the highest slots on scale-down, marking tasks that ended (or whose node is DOWN,
removed or drained) as desired SHUTDOWN, refilling their slot per the restart policy, and
driving rolling updates (``update``). Does not own placement (the scheduler picks a node
for each PENDING task), deleting tasks (``reaper``), or what happens to tasks of a removed
service (``reaper``). Invariant: outside a start-first update, a slot holds at most one
live task, and the highest slots go first.

A service dirty only in some slots (their tasks changed, or the nodes under them, or a
scale changed only the slots between the old and the new count) plans only those slots
(``plan_keys``), unless an update or rollback runs or would start: every rule above but
the update's looks at one slot at a time.
"""

from __future__ import annotations

import functools

import msgspec

from swarmlite.api import Service, ServiceMode, Task
from swarmlite.manager.orchestrator.common import (
    Key,
    Plan,
    ServiceLoop,
    keep_one_live,
    mark_ended,
    new_task,
    nodes_of,
    placed_only,
    shut_down_live,
    tasks_of,
)
from swarmlite.manager.orchestrator.restart import refill
from swarmlite.manager.orchestrator.update import advance_update, update_in_progress
from swarmlite.store import ReadTx


class ReplicatedOrchestrator(ServiceLoop):
    name = "orchestrator.replicated"
    node_scoped = True  # nodes are read only through the tasks placed on them

    def handles(self, service: Service) -> bool:
        return service.spec.mode is ServiceMode.REPLICATED

    def reads_task(self, old: Task | None, new: Task | None) -> bool:
        """Not the scheduler placing a task (``placed_only``): the slot stays as planned."""
        if not super().reads_task(old, new):
            return False
        return old is None or new is None or not placed_only(old, new, nodes_of(self.memory))

    def plan_service(self, rt: ReadTx, service_id: str, now: float) -> Plan | None:
        service = rt.get(Service, service_id)
        if service is None or not self.handles(service):
            return None
        return self._plan(rt, service, now, None)

    def plan_keys(
        self, rt: ReadTx, service_id: str, keys: frozenset[Key], now: float
    ) -> Plan | None:
        """Only the slots in ``keys``: when no update runs and every key is a slot (a task
        without one means a mode change). A plan that would start an update plans whole."""
        service = rt.get(Service, service_id)
        if service is None or not self.handles(service):
            return None
        if update_in_progress(service) or not all(isinstance(k, int) and k >= 1 for k in keys):
            return self._plan(rt, service, now, None)
        plan = self._plan(rt, service, now, keys)
        if plan.service_changed:
            return self._plan(rt, service, now, None)
        return plan

    def keys_changed(self, old: Service, new: Service) -> set[Key] | None:
        """A scale and nothing else, with no update to resume: only the slots between the
        old and the new count (created on a scale up, shut down on a scale down)."""
        if old.update_status is not None or new.update_status is not None:
            return None
        if old.spec.replicas == new.spec.replicas:
            return None
        same = msgspec.structs.replace(
            old,
            spec=msgspec.structs.replace(old.spec, replicas=new.spec.replicas),
            previous_spec=new.previous_spec,
            version=new.version,
            updated_at=new.updated_at,
        )
        if same != new:
            return None
        low, high = sorted((max(0, old.spec.replicas), max(0, new.spec.replicas)))
        return set(range(low + 1, high + 1))

    def _plan(self, rt: ReadTx, service: Service, now: float, keys: frozenset[Key] | None) -> Plan:
        nodes = nodes_of(rt)
        plan = Plan(service, tasks_of(rt, service.id, keys), now)
        # Tasks without a slot do not belong to a replicated service (a mode change).
        shut_down_live(plan, [t for t in plan.tasks.values() if t.slot < 1], nodes)
        mark_ended(plan, nodes)
        replicas = max(0, service.spec.replicas)
        slots = list(range(1, replicas + 1))
        if keys is not None:  # the slots of ``keys`` only
            slots = sorted(k for k in keys if isinstance(k, int) and 1 <= k <= replicas)

        def make(key: Key) -> Task:
            assert isinstance(key, int)
            return new_task(service, now=now, slot=key, rng=self.rng)

        groups = plan.by_key(lambda t: t.slot >= 1)
        for slot in slots:
            tasks = groups.get(slot, [])
            keep_one_live(plan, tasks, nodes, same=lambda t: t.spec == service.spec.task)
            refill(plan, service, tasks, nodes, functools.partial(make, slot))
        advance_update(plan, list(slots), nodes, make)
        for key, tasks in groups.items():
            if isinstance(key, int) and key > replicas:
                shut_down_live(plan, tasks, nodes)
        return plan
