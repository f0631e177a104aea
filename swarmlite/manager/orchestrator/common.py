"""What every orchestrator loop shares: the words for a task's life, a plan, a service loop.

Owns three things. The *classification* of a task against the nodes it may run on
(live, stopping, finished, ended unexpectedly), so that every loop says it the same way.
The ``Plan``: the working copy of one service's tasks inside a store update function, which
collects creations, desired-state changes and deletions into one ``Tx``. And
``ServiceLoop``: a ``ReconcileLoop`` that marks services dirty from events and re-plans each
dirty service in its own compare-and-set transaction, waking itself up when a plan asks to
act later (a restart delay, an update's delay or monitor period).

Partial planning: a service dirty only because some of its tasks changed (or the nodes
they sit on) is dirty in those tasks' keys (slots, or nodes for global tasks), and a loop
that can (``plan_keys``) plans only those keys: the same planning code, run on the tasks
of those keys. Every other key is as its last plan left it, since anything that could
change what it needs brings a task event of that key, a service event, or a wake-up,
all of which plan the service whole (as do a resync, a cluster change and a retry).
A task event that no plan of the loop can act on dirties nothing (``reads_task``): the
scheduler placing a task on an up node, for the replicated orchestrator; a task still
wanted, for the reaper; a task of another mode's service, for every mode's loop.

Invariant: a plan is a pure function of the store's state and the wall time it is given,
so a new leader (or a retried transaction) plans the same thing from the same state.
Times stored on objects are wall times (``Clock.wall``); wake-ups convert them to the
loop's monotonic clock.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, ValuesView
from typing import Any

import msgspec

from swarmlite.api import (
    Node,
    NodeAvailability,
    NodeState,
    Service,
    Task,
    TaskState,
    TaskStatus,
    new_id,
)
from swarmlite.clock import Clock
from swarmlite.errors import InvalidArgument, SwarmliteError
from swarmlite.log import kv
from swarmlite.manager.constraints import (
    Constraint,
    parse_constraints,
    takes_global_task,
)
from swarmlite.manager.loop import ReconcileLoop
from swarmlite.store import Event, ReadTx, Store, Tx

log = logging.getLogger(__name__)

replace = msgspec.structs.replace

# Desired states meaning "this task should be (or have been) run": services want RUNNING,
# jobs want COMPLETE. Everything a manager asks to stop gets SHUTDOWN.
ACTIVE_DESIRED = (TaskState.RUNNING, TaskState.COMPLETE)
# Times closer than this count as equal (wall/monotonic conversions are floats).
EPSILON = 1e-6
# After a failed round for one service, try it again this much later.
RETRY_SECONDS = 1.0

Key = int | str  # a slot number (replicated, replicated jobs) or a node id (global modes)
Nodes = Mapping[str, Node]


# -- classification -------------------------------------------------------------------


def node_gone(task: Task, nodes: Nodes) -> bool:
    """The task's node is DOWN or no longer exists: it will never report again."""
    if not task.node_id:
        return False
    node = nodes.get(task.node_id)
    return node is None or node.status.state is NodeState.DOWN


def on_drained_node(task: Task, nodes: Nodes) -> bool:
    node = nodes.get(task.node_id) if task.node_id else None
    return node is not None and node.spec.availability is NodeAvailability.DRAIN


def is_finished(task: Task, nodes: Nodes) -> bool:
    """Nothing runs for this task any more, nor ever will."""
    if task.status.state.terminal or node_gone(task, nodes):
        return True
    # Never reached a node and told to stop: no agent will ever start it.
    return task.desired_state is TaskState.SHUTDOWN and task.status.state < TaskState.ASSIGNED


def is_occupying(task: Task, nodes: Nodes) -> bool:
    """The task holds its slot: it runs or will, or is being stopped where it runs.

    A task being stopped on a drained node no longer holds its slot: its replacement is
    started elsewhere at once.
    """
    if is_finished(task, nodes):
        return False
    return not (task.desired_state is TaskState.SHUTDOWN and on_drained_node(task, nodes))


def is_live(task: Task, nodes: Nodes) -> bool:
    """Wanted and not ended: the one task a slot may hold."""
    return task.desired_state in ACTIVE_DESIRED and is_occupying(task, nodes)


def ended_unexpectedly(task: Task, nodes: Nodes, *, job: bool = False) -> bool:
    """The task stopped without being asked to (what a restart policy is about).

    For a service, exiting 0 is an unexpected end too; for a job it is success.
    """
    state = task.status.state
    if state in (TaskState.FAILED, TaskState.REJECTED, TaskState.ORPHANED):
        return True
    if state is TaskState.COMPLETE:
        return not job
    if state.terminal:  # SHUTDOWN: we asked for it
        return False
    return node_gone(task, nodes)


def exited_zero(task: Task) -> bool:
    return task.status.state is TaskState.COMPLETE or task.status.exit_code == 0


def ended_at(task: Task) -> float:
    """When the task ended: its terminal status's time, or when a manager gave up on it."""
    return task.status.timestamp if task.status.state.terminal else task.updated_at


def is_ready(task: Task) -> bool:
    """Running and, if it has a health check, not (yet) known unhealthy or starting."""
    return task.status.state is TaskState.RUNNING and task.status.health in ("", "healthy")


def _same_but_placement(old: Task, new: Task) -> bool:
    """Equal in every fact a plan reads except where the task is (its node) and its state
    and that state's time: what the scheduler's write changes."""
    before, after = old.status, new.status
    return (
        old.desired_state is new.desired_state
        and (
            before is after
            or (before.health, before.exit_code, before.err)
            == (after.health, after.exit_code, after.err)
        )
        and old.slot == new.slot
        and old.service_id == new.service_id
        and old.spec_version == new.spec_version
        and old.job_iteration == new.job_iteration
        and old.created_at == new.created_at
        and (old.spec is new.spec or old.spec == new.spec)
    )


def plan_reads_change(old: Task, new: Task) -> bool:
    """Whether an update of a task changed anything an orchestrator's plan reads: not its
    networks (the allocator's), nor the scheduler's words on why it waits, nor the time of
    the write while it is meant to run (``ended_at`` reads that only once it is not)."""
    # Field by field, not by comparing two tuples of them: this runs for every task event
    # in every orchestrator loop, and most events differ in the first fields looked at.
    before, after = old.status, new.status
    if not (
        old.node_id == new.node_id
        and (before is after or (before.state, before.timestamp) == (after.state, after.timestamp))
        and _same_but_placement(old, new)
    ):
        return True
    return old.desired_state > TaskState.RUNNING and old.updated_at != new.updated_at


def placed_only(old: Task, new: Task, nodes: Nodes) -> bool:
    """The scheduler's write and nothing more: a wanted pending task put on a node that is
    up and not drained. It stays live as it was, so no slot's plan changes (a node that
    goes down or is drained later brings its own event)."""
    if old.node_id or not new.node_id or new.desired_state not in ACTIVE_DESIRED:
        return False
    if old.status.state is not TaskState.PENDING or new.status.state is not TaskState.ASSIGNED:
        return False
    if node_gone(new, nodes) or on_drained_node(new, nodes):
        return False
    return _same_but_placement(old, new)


def task_order(task: Task) -> tuple[float, str]:
    """Oldest first: tasks of one slot are created one after another."""
    return (task.created_at, task.id)


def task_key(task: Task) -> Key:
    return task.slot if task.slot else task.node_id


# -- plans ----------------------------------------------------------------------------


def new_task(
    service: Service,
    *,
    now: float,
    slot: int = 0,
    node_id: str = "",
    desired: TaskState = TaskState.RUNNING,
    rng: random.Random | None = None,
) -> Task:
    """A fresh task of ``service`` from its current spec, waiting for the scheduler."""
    return Task(
        id=new_id(rng),
        created_at=now,
        updated_at=now,
        service_id=service.id,
        service_name=service.spec.name,
        service_labels=service.spec.labels,
        slot=slot,
        node_id=node_id,
        desired_state=desired,
        spec=service.spec.task,
        spec_version=service.spec_version,
        job_iteration=service.job_iteration,
        status=TaskStatus(state=TaskState.PENDING, timestamp=now, message="pending"),
    )


class Plan:
    """The working copy of one service's tasks; ``tx()`` holds what changed."""

    def __init__(self, service: Service | None, tasks: Iterable[Task], now: float) -> None:
        self.service = self._service_read = service
        self.now = now
        self.tasks: dict[str, Task] = {t.id: t for t in tasks}
        self._read = dict(self.tasks)  # as the store holds them: what an update patches
        self._created: dict[str, Task] = {}
        self._updated: dict[str, Task] = {}
        self._deleted: dict[str, Task] = {}
        self._service_changed = False
        self.wake: float | None = None  # wall time at which to plan again

    def wake_at(self, when: float) -> None:
        if self.wake is None or when < self.wake:
            self.wake = when

    def create(self, task: Task) -> Task:
        self.tasks[task.id] = task
        self._created[task.id] = task
        return task

    def set_desired(self, task: Task, state: TaskState) -> Task:
        """Change what ``task`` should do; no-op when it already wants that."""
        current = self.tasks[task.id]
        if current.desired_state is state:
            return current
        changed = replace(current, desired_state=state, updated_at=self.now)
        self.tasks[task.id] = changed
        if task.id in self._created:
            self._created[task.id] = changed
        else:
            self._updated[task.id] = changed
        return changed

    def delete(self, task: Task) -> None:
        current = self.tasks.pop(task.id)
        self._updated.pop(task.id, None)
        self._deleted[task.id] = current

    def set_service(self, service: Service) -> None:
        """Write ``service`` with the plan, unless it is the service as read: a write that
        changes nothing would still be an event, and its plan the same write again."""
        self.service = service
        self._service_changed = service != self._service_read

    def by_key(self, keep: Callable[[Task], bool] | None = None) -> dict[Key, list[Task]]:
        """Current tasks grouped by slot (or node for global ones), oldest first."""
        groups: dict[Key, list[Task]] = {}
        for task in sorted(self.tasks.values(), key=task_order):
            if keep is None or keep(task):
                groups.setdefault(task_key(task), []).append(task)
        return groups

    @property
    def service_changed(self) -> bool:
        """The plan writes the service (an update started, moved on or ended)."""
        return self._service_changed

    @property
    def created(self) -> list[Task]:
        return list(self._created.values())

    def tx(self) -> Tx | None:
        tx = Tx()
        if self._service_changed and self.service is not None:
            tx.update(self.service)
        for task in self._created.values():
            tx.create(task)
        for task in self._updated.values():
            tx.patch(self._read[task.id], task)
        for task in self._deleted.values():
            tx.delete(task)
        return tx or None


def mark_ended(plan: Plan, nodes: Nodes, *, job: bool = False) -> None:
    """Tell every wanted task that ended, or sits on a down or drained node, to stop.

    A job task that completed keeps its desired COMPLETE: it did what was wanted.
    """
    for task in list(plan.tasks.values()):
        if task.desired_state not in ACTIVE_DESIRED:
            continue
        if job and task.status.state is TaskState.COMPLETE:
            continue
        if task.status.state.terminal or node_gone(task, nodes) or on_drained_node(task, nodes):
            plan.set_desired(task, TaskState.SHUTDOWN)


def shut_down_live(plan: Plan, tasks: Iterable[Task], nodes: Nodes) -> None:
    for task in tasks:
        if is_live(plan.tasks[task.id], nodes):
            plan.set_desired(task, TaskState.SHUTDOWN)


def keep_one_live(plan: Plan, tasks: list[Task], nodes: Nodes, same: Callable[[Task], Any]) -> None:
    """Among live tasks of one slot that are alike (``same``), keep the most advanced."""
    groups: dict[Any, list[Task]] = {}
    for task in tasks:
        if is_live(plan.tasks[task.id], nodes):
            groups.setdefault(same(task), []).append(plan.tasks[task.id])
    for group in groups.values():
        if len(group) > 1:
            group.sort(key=lambda t: (t.status.state.rank, t.created_at, t.id))
            for extra in group[:-1]:
                plan.set_desired(extra, TaskState.SHUTDOWN)


# -- the loop -------------------------------------------------------------------------


class ServiceLoop(ReconcileLoop):
    """Re-plans each dirty service in one transaction. Subclasses write ``plan_service``."""

    name = "orchestrator"
    kinds = ("service", "task", "node", "cluster")
    # True when a plan reads a node only for the tasks placed on it (liveness, drain): a
    # node change then re-plans only the services with tasks there, not every service.
    node_scoped = False
    # Plan a service dirty only in some keys through ``plan_keys``; False plans every dirty
    # service whole (what partial planning must always end up equal to).
    partial = True
    # Let an update of a task that changes nothing a plan reads (``plan_reads_change``),
    # the creation of a task by this loop's own plan, and a task event this loop's plans
    # cannot act on (``reads_task``) dirty nothing; False makes every task event dirty its
    # key (the reference).
    skip_unread = True

    def __init__(self, store: Store, clock: Clock, *, rng: random.Random | None = None) -> None:
        super().__init__(store, clock)
        self.rng = rng
        self._dirty: set[str] = set()  # services to plan whole
        self._keys: dict[str, set[Key]] = {}  # services dirty only in these keys
        self._everything = False
        self._due: dict[str, float] = {}  # service id -> monotonic time to plan again
        # Tasks this loop created, as stored, until their create event is read: the plan
        # that made one already counted it (see ``skip_unread``).
        self._echo: dict[str, Task] = {}
        self._handled: dict[str, bool] = {}  # service id -> handles(it): see handles_id

    # -- to override

    def handles(self, service: Service) -> bool:
        """Whether this loop owns ``service`` (by mode)."""
        raise NotImplementedError

    def plan_service(self, rt: ReadTx, service_id: str, now: float) -> Plan | None:
        """The plan for one service, from ``rt`` only (it may run more than once)."""
        raise NotImplementedError

    def plan_keys(
        self, rt: ReadTx, service_id: str, keys: frozenset[Key], now: float
    ) -> Plan | None:
        """The plan for only the tasks of ``keys``, when every other key of the service is
        as its last plan left it. By default (a loop that cannot tell), the whole plan."""
        return self.plan_service(rt, service_id, now)

    def keys_changed(self, old: Service, new: Service) -> set[Key] | None:
        """The only keys an update of a service can change the plan of (planned then with
        ``plan_keys``), or None: plan it whole. By default (a loop that cannot tell), None."""
        return None

    def reads_task(self, old: Task | None, new: Task | None) -> bool:
        """Whether a task's event (``old`` None: created; ``new`` None: deleted) can change
        this loop's plan; asked only when ``skip_unread``. By default, unless the task's
        service is gone or of a mode this loop does not handle, as the store holds it now:
        a plan of such a service is empty, and a later mode change brings its own event."""
        task = new if new is not None else old
        assert task is not None
        return self.handles_id(task.service_id)

    def handles_id(self, service_id: str) -> bool:
        """``handles`` for the service as the store holds it (False: gone), remembered
        until the service's next event."""
        handled = self._handled.get(service_id)
        if handled is None:
            service = self.memory.get(Service, service_id)
            if service is None:
                return False  # not remembered: nothing would ever forget it
            handled = self._handled[service_id] = self.handles(service)
        return handled

    def all_service_ids(self) -> set[str]:
        return {s.id for s in self.memory.list(Service) if self.handles(s)}

    def node_changed(self, old: Node | None, new: Node | None) -> bool:
        """Whether a node change can matter to this loop: it came, went, or changed in
        what placement and liveness read (not, say, its last heartbeat time)."""
        if old is None or new is None:
            return True
        return _node_facts(old) != _node_facts(new)

    # -- ReconcileLoop

    def start(self) -> None:
        self._everything = True
        self._echo.clear()
        self._handled.clear()

    def changed(self, events: list[Event]) -> None:
        for event in events:
            obj = event.object
            if isinstance(obj, Task):  # most events, by far
                old_task = event.old if isinstance(event.old, Task) else None
                if self.skip_unread:
                    if old_task is None and self._echo.pop(obj.id, None) is obj:
                        continue  # made by this loop's plan, as it wrote it
                    now_task = obj if event.new is obj else None  # None: deleted
                    if (
                        old_task is not None
                        and now_task is not None
                        and not plan_reads_change(old_task, obj)
                    ):
                        continue  # e.g. the allocator gave it its networks
                    if not self.reads_task(old_task, now_task):
                        continue
                self._task_dirty(obj)
                if old_task is not None and old_task is not obj:
                    self._task_dirty(old_task)
            elif isinstance(obj, Service):
                self._handled.pop(obj.id, None)
                old_service = event.old if isinstance(event.old, Service) else None
                keys = (
                    self.keys_changed(old_service, obj)
                    if self.partial and old_service is not None and event.new is obj
                    else None
                )
                if keys is None:
                    self._dirty.add(obj.id)
                elif obj.id not in self._dirty:
                    self._keys.setdefault(obj.id, set()).update(keys)
            elif isinstance(obj, Node):
                old = event.old if isinstance(event.old, Node) else None
                new = event.new if isinstance(event.new, Node) else None
                if not self.node_changed(old, new):
                    continue
                if self.node_scoped:
                    # Tasks never move between nodes; one placed or removed since this
                    # event brought (or brings) its own task event.
                    for task in self.memory.tasks_on_node(obj.id):
                        self._task_dirty(task)
                else:
                    self._everything = True
            else:
                self._everything = True

    def _task_dirty(self, task: Task) -> None:
        if not self.partial:
            self._dirty.add(task.service_id)
        elif task.service_id not in self._dirty:
            self._keys.setdefault(task.service_id, set()).add(task_key(task))

    async def reconcile(self) -> None:
        now_mono = self.clock.monotonic()
        for service_id, when in list(self._due.items()):
            if when <= now_mono + EPSILON:
                del self._due[service_id]
                self._dirty.add(service_id)
        ids = self._dirty
        if self._everything:
            ids |= self.all_service_ids()
        keys = {s: frozenset(k) for s, k in self._keys.items() if s not in ids}
        self._dirty, self._keys, self._everything = set(), {}, False
        for service_id in sorted(ids | keys.keys()):
            try:
                await self._plan_and_commit(service_id, keys.get(service_id))
            except SwarmliteError as exc:
                log.warning(
                    "%s could not reconcile a service %s",
                    self.name,
                    kv(service=service_id, error=exc.message, retry_in=RETRY_SECONDS),
                )
                self._schedule_mono(service_id, self.clock.monotonic() + RETRY_SECONDS)
        if self._due:
            self.wake_at(min(self._due.values()))

    async def _plan_and_commit(self, service_id: str, keys: frozenset[Key] | None) -> None:
        """Plan the service (only ``keys`` of it, when given) and commit the plan."""
        now = self.clock.wall()
        wake: list[float | None] = [None]
        created: set[str] = set()  # ids of the tasks the committed plan creates

        def fn(rt: ReadTx) -> Tx | None:
            created.clear()
            if keys is None:
                plan = self.plan_service(rt, service_id, now)
            else:
                plan = self.plan_keys(rt, service_id, keys, now)
            if plan is None:
                wake[0] = None
                return None
            wake[0] = plan.wake
            created.update(task.id for task in plan.created)
            return plan.tx()

        result = await self.store.update(fn)
        if created and self.skip_unread:
            for obj in result.objects:
                if isinstance(obj, Task) and obj.id in created:
                    self._echo[obj.id] = obj
        if wake[0] is not None:
            delay = max(0.0, wake[0] - now)
            self._schedule_mono(service_id, self.clock.monotonic() + delay)

    def _schedule_mono(self, service_id: str, when: float) -> None:
        current = self._due.get(service_id)
        if current is None or when < current:
            self._due[service_id] = when
        self.wake_at(self._due[service_id])


# -- placement -------------------------------------------------------------------------


def service_constraints(service: Service) -> tuple[Constraint, ...] | None:
    """The service's parsed constraints; None (placed nowhere) when one cannot be read."""
    try:
        return parse_constraints(service.spec.task.placement.constraints)
    except InvalidArgument as exc:
        log.warning("service has an invalid constraint %s", kv(service=service.id, error=exc))
        return None


def eligible_nodes(nodes: Nodes, constraints: tuple[Constraint, ...] | None) -> list[str]:
    """Ids of the nodes that may get a new task, sorted."""
    if constraints is None:
        return []
    return sorted(node.id for node in nodes.values() if takes_global_task(node, constraints))


def _node_facts(node: Node) -> tuple[object, ...]:
    status = node.status
    return (node.spec, status.state, status.hostname, status.os, status.arch)


class NodeView(Mapping[str, Node]):
    """The nodes of ``rt``, each read when asked for: a plan of a few tasks reads only the
    nodes under them (listing them all only when it iterates)."""

    def __init__(self, rt: ReadTx) -> None:
        self._rt = rt
        self._all: dict[str, Node] | None = None

    def _every(self) -> dict[str, Node]:
        if self._all is None:
            self._all = {node.id: node for node in self._rt.list(Node)}
        return self._all

    def __getitem__(self, node_id: str) -> Node:
        node = self._rt.get(Node, node_id) if node_id else None
        if node is None:
            raise KeyError(node_id)
        return node

    def __iter__(self) -> Iterator[str]:
        return iter(self._every())

    def __len__(self) -> int:
        return len(self._every())

    def values(self) -> ValuesView[Node]:
        return self._every().values()


def nodes_of(rt: ReadTx) -> Nodes:
    return NodeView(rt)


def tasks_of(rt: ReadTx, service_id: str, keys: frozenset[Key] | None = None) -> list[Task]:
    """The service's tasks, from the store's index (in store order: oldest write first);
    only those of ``keys`` when given."""
    tasks = rt.tasks_of_service(service_id)
    if keys is None:
        return tasks
    return [t for t in tasks if (t.slot if t.slot else t.node_id) in keys]  # task_key, inlined
