"""The task reaper: keeps task history bounded and clears out tasks of removed services.

Owns deleting tasks, for every service mode. Per slot (per node for global services) at
most ``cluster.spec.settings.task_history_limit`` finished tasks are kept (default 5; a
negative limit keeps all), the newest ones; more are kept when the restart policy's
``max_attempts`` needs them to count attempts, and the newest task of a slot is always kept
(its end decides the slot's restart). A completed task of a job's current iteration is
never deleted: it is the job's record of being done. When a service is removed, its
tasks still wanted are told to stop, and its finished ones are deleted. A task is
finished when its status is terminal, its node is DOWN or gone, or it was told to stop
before reaching a node; only tasks a manager no longer wants run (desired SHUTDOWN, or a
completed job task) are deleted.

History is trimmed slot by slot, so a service dirty only in some slots (or nodes) trims
only those (``plan_keys``); a removed service's tasks are handled all at once.
"""

from __future__ import annotations

import random

from swarmlite.api import Cluster, ClusterSettings, Service, Task, TaskState
from swarmlite.clock import Clock
from swarmlite.manager.orchestrator.common import (
    Key,
    Plan,
    ServiceLoop,
    is_finished,
    nodes_of,
    shut_down_live,
    task_order,
    tasks_of,
)
from swarmlite.store import Event, ReadTx, Store


def history_limit(rt: ReadTx) -> int:
    clusters = rt.list(Cluster)
    settings = clusters[0].spec.settings if clusters else ClusterSettings()
    return settings.task_history_limit


class TaskReaper(ServiceLoop):
    name = "orchestrator.reaper"
    node_scoped = True  # nodes are read only through the tasks placed on them

    def __init__(self, store: Store, clock: Clock, *, rng: random.Random | None = None) -> None:
        super().__init__(store, clock, rng=rng)
        # Removed services that may still have tasks: found by one scan in ``start``, then
        # from delete events, so that a full pass need not scan every task.
        self._gone: set[str] = set()
        self._limit: int | None = None  # the history limit, until the cluster changes

    def handles(self, service: Service) -> bool:
        return True

    def start(self) -> None:
        super().start()
        self._limit = None
        services = {s.id for s in self.memory.list(Service)}
        self._gone = {t.service_id for t in self.memory.list(Task)} - services

    def changed(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event.object, Cluster):
                self._limit = None  # read again (in ``reads_task``) from the store
        super().changed(events)
        for event in events:
            if isinstance(event.old, Service) and event.new is None:
                self._gone.add(event.old.id)

    def reads_task(self, old: Task | None, new: Task | None) -> bool:
        """A task event can let this loop delete something only when the task's service is
        gone, or the task is now one a slot may drop (finished and no longer wanted), or a
        task is created while no history is kept (its slot's newest, always kept until
        then, may go). A deletion, or a change that leaves the task wanted, drops nothing."""
        task = new if new is not None else old
        assert task is not None
        if not self.handles_id(task.service_id):  # the service is gone
            return True
        if new is None:
            return False
        if old is None:
            return self._history_limit() == 0
        return _droppable(new) and is_finished(new, nodes_of(self.memory))

    def _history_limit(self) -> int:
        if self._limit is None:
            self._limit = history_limit(self.memory)
        return self._limit

    def all_service_ids(self) -> set[str]:
        ids = {s.id for s in self.memory.list(Service)}
        self._gone = {g for g in self._gone if g not in ids and self.memory.tasks_of_service(g)}
        return ids | self._gone

    def plan_service(self, rt: ReadTx, service_id: str, now: float) -> Plan | None:
        return self._plan(rt, service_id, now, None)

    def plan_keys(
        self, rt: ReadTx, service_id: str, keys: frozenset[Key], now: float
    ) -> Plan | None:
        """History is trimmed per key: only the keys in ``keys`` (a removed service's tasks
        are all handled at once)."""
        return self._plan(rt, service_id, now, keys)

    def _plan(
        self, rt: ReadTx, service_id: str, now: float, keys: frozenset[Key] | None
    ) -> Plan | None:
        service = rt.get(Service, service_id)
        # A removed service's tasks are handled all at once, whatever ``keys`` says.
        tasks = tasks_of(rt, service_id, None if service is None else keys)
        if not tasks:
            return None
        nodes = nodes_of(rt)
        plan = Plan(None, tasks, now)
        if service is None:
            shut_down_live(plan, tasks, nodes)
            for task in tasks:
                current = plan.tasks[task.id]
                if current.desired_state is TaskState.SHUTDOWN and is_finished(current, nodes):
                    plan.delete(current)
            return plan
        limit = history_limit(rt)
        if limit < 0:
            return None
        policy = service.spec.task.restart_policy
        keep = max(limit, policy.max_attempts + 1 if policy.max_attempts > 0 else 0)
        job = service.spec.mode.is_job
        for group in plan.by_key().values():
            finished = [t for t in group if is_finished(t, nodes)]
            newest = max(group, key=task_order)
            reapable = [
                t
                for t in finished
                if _droppable(t) and not (job and t.job_iteration == service.job_iteration)
            ]
            reapable.sort(key=task_order, reverse=True)
            for task in reapable[keep:]:
                if task is not newest:
                    plan.delete(task)
        return plan


def _droppable(task: Task) -> bool:
    """No manager wants it run any more: told to stop, or a completed job task."""
    return task.desired_state is TaskState.SHUTDOWN or (
        task.desired_state is TaskState.COMPLETE and task.status.state is TaskState.COMPLETE
    )
