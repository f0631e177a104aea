"""The scheduler loop: give every pending task a node, or say why it has none.

Owns when scheduling happens and what it writes: a PENDING task (still meant to run) either
gets ``node_id``, the generic resources it was assigned there, and status ASSIGNED
("scheduler assigned task to node"), or stays PENDING with ``status.pending_reason`` (and
``message``) saying why. A global task arrives with its
node already set and is only checked against that node. Does not own the placement rules
(``place``, ``filters``) nor which tasks exist (the orchestrator).

What makes a pass: new or changed pending tasks; and every pending task again when
something could change the answer: a node joins, leaves or changes (state, availability,
role, labels, platform, resources, generic resources), a task stops occupying a node
(frees resources, generic resources, ports, replica room), or a service's published ports
change.

The loop keeps one ClusterView across passes, built from the store in ``start`` (again on
a resync) and kept true by the events ``changed`` hands it, and the set of tasks waiting for
it; so a pass costs what it places, not the size of the cluster. A pass first takes the
events its watch holds, so that it sees the store as it is. It grows the kept view with its
placements; a placement whose write did not land (the task changed meanwhile) is taken out
of it again when the pass ends; after a write that failed (its fate unknown) the view is
built again from the store before the next pass.

Invariants: one pass places all its tasks against one view, equal to the view built from
the store when the pass starts, counting its own placements; writes go in transactions
of at most MAX_TX_TASKS tasks (of any services), each task written only if it still waits
as the pass saw it (same node, spec and desired state); a reason is written only when it
changed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import msgspec

from swarmlite.api import Node, Service, Task, TaskState
from swarmlite.clock import Clock
from swarmlite.errors import SwarmliteError
from swarmlite.log import kv
from swarmlite.manager.loop import ReconcileLoop
from swarmlite.manager.scheduler.filters import Filter
from swarmlite.manager.scheduler.place import Decision, Planner
from swarmlite.manager.scheduler.view import (
    ClusterView,
    is_schedulable,
    occupies_node,
)
from swarmlite.store import Event, ReadTx, Store, Tx

log = logging.getLogger(__name__)

ASSIGNED_MESSAGE = "scheduler assigned task to node"
MAX_TX_TASKS = 200  # tasks per transaction: keeps one raft entry small
FAILED_ROUND_RETRY = 1.0  # seconds before a pass whose write failed is tried again

replace = msgspec.structs.replace


def _node_changed(old: Node, new: Node) -> bool:
    """Whether a node update can change where tasks go (heartbeats alone cannot)."""
    a, b = old.status, new.status
    return (
        old.spec != new.spec
        or a.state != b.state
        or a.hostname != b.hostname
        or (a.os, a.arch) != (b.os, b.arch)
        or (a.nano_cpus, a.memory_bytes) != (b.nano_cpus, b.memory_bytes)
        or a.generic_resources != b.generic_resources
    )


def _same_pending(old: Task, new: Task) -> bool:
    """Whether ``old`` was pending and ``new`` differs from it in nothing placement reads."""
    return (
        is_schedulable(old)
        and old.node_id == new.node_id
        and old.desired_state == new.desired_state
        and old.spec == new.spec
    )


class Scheduler(ReconcileLoop):
    name = "scheduler"
    kinds = ("node", "task", "service")

    def __init__(
        self, store: Store, clock: Clock, *, filters: Sequence[Filter] | None = None
    ) -> None:
        super().__init__(store, clock)
        self.planner = Planner(filters)
        self.view = ClusterView([], {}, clock.wall())  # kept across passes: see the docstring
        self._waiting: set[str] = set()  # ids of every schedulable task, as of the events
        self._dirty: set[str] = set()  # ids of pending tasks to (re)consider
        self._all = False  # reconsider every pending task
        self._stale = False  # build the view again before the next pass

    # ------------------------------------------------------------------ dirty marks

    def start(self) -> None:
        """The state from scratch (called again on a resync): everything kept is rebuilt."""
        read = self.memory
        self.view = ClusterView.build(read, self.clock.wall())
        self._waiting = {task.id for task in read.find(Task, is_schedulable)}
        self._dirty.clear()
        self._all = True
        self._stale = False

    def changed(self, events: list[Event]) -> None:
        view = self.view
        for event in events:
            view.apply(event)
            old, new = event.old, event.new
            if isinstance(old, Task) or isinstance(new, Task):
                self._task_changed(event)
            elif isinstance(old, Node) or isinstance(new, Node):
                if not (isinstance(old, Node) and isinstance(new, Node)):
                    self._all = True  # joined or removed
                elif _node_changed(old, new):
                    self._all = True
            elif isinstance(old, Service) and (
                not isinstance(new, Service) or old.spec.endpoint != new.spec.endpoint
            ):
                self._all = True

    def _task_changed(self, event: Event) -> None:
        old = event.old if isinstance(event.old, Task) else None
        new = event.new if isinstance(event.new, Task) else None
        if new is not None and is_schedulable(new):
            self._waiting.add(new.id)
            if old is None or not _same_pending(old, new):
                self._dirty.add(new.id)
        elif old is not None:
            self._waiting.discard(old.id)
            if new is None:
                self._dirty.discard(old.id)
        if old is not None and occupies_node(old) and (new is None or not occupies_node(new)):
            self._all = True  # resources, a port or replica room came free

    # ------------------------------------------------------------------ a pass

    async def reconcile(self) -> None:
        # Commits applied since the last batch (a retried round, a wake-up): take them now,
        # so that the pass sees the store as it is.
        late = self.take_pending()
        if late:
            self.changed(late)
        if not self._all and not self._dirty:
            return
        read = self.memory
        ids = self._waiting if self._all else self._dirty
        found = (read.get(Task, task_id) for task_id in ids)
        tasks = [task for task in found if task is not None and is_schedulable(task)]
        self._all = False
        self._dirty.clear()
        if not tasks:
            return
        try:
            await self._schedule(tasks)
        except SwarmliteError:
            # Whatever was not written is tried again: rewriting what was is a no-op. What
            # was written is not known for sure: the view is built again from the store.
            self._dirty.update(task.id for task in tasks)
            self._stale = True
            self.wake_at(self.clock.monotonic() + FAILED_ROUND_RETRY)
            raise

    def pass_view(self, now: float) -> ClusterView:
        """The view a pass at wall time ``now`` reads (built again first if a write failed)."""
        if self._stale:
            self.view = ClusterView.build(self.memory, now)
            self._stale = False
        return self.view.at(now)

    async def _schedule(self, tasks: list[Task]) -> None:
        now = self.clock.wall()
        view = self.pass_view(now)
        decisions = self.planner.plan(view, tasks)
        # Only decisions that change their task are written (a reason that is the same
        # again is not); ``_writes`` checks again against the task as it is then.
        todo = [decision for decision in decisions if _changes(decision)]
        landed: set[str] = set()  # tasks whose placement was written
        written = 0
        for start in range(0, len(todo), MAX_TX_TASKS):
            chunk = todo[start : start + MAX_TX_TASKS]
            result = await self.store.update(functools.partial(_writes, chunk=chunk, now=now))
            written += len(result.objects)
            landed.update(
                obj.id
                for obj in result.objects
                if isinstance(obj, Task) and obj.status.state == TaskState.ASSIGNED
            )
        for decision in decisions:
            if decision.placed and decision.task.id not in landed:
                view.unplace(decision.task, decision.node_id)
        placed = sum(1 for decision in decisions if decision.placed)
        log.log(
            logging.INFO if written else logging.DEBUG,
            "scheduling pass %s",
            kv(tasks=len(tasks), placed=placed, pending=len(tasks) - placed, written=written),
        )


def _changes(decision: Decision) -> bool:
    """Whether writing ``decision`` would change its task (as the pass read it)."""
    status = decision.task.status
    return decision.placed or (status.pending_reason, status.message) != (decision.reason,) * 2


def _writes(read: ReadTx, *, chunk: list[Decision], now: float) -> Tx:
    """The writes for ``chunk``: only to tasks still as the pass read them."""
    tx = Tx()
    present: dict[str, bool] = {}  # node id -> still in the store
    for decision in chunk:
        task = read.get(Task, decision.task.id)
        if task is None:
            continue  # deleted since
        # The store hands out what it holds: the very object the pass read is unchanged.
        if task is not decision.task and not (
            is_schedulable(task) and _same_pending(decision.task, task)
        ):
            continue  # changed since in a way that matters: its update event brought it back
        if decision.placed:
            node_id = decision.node_id
            if node_id not in present:
                present[node_id] = read.get(Node, node_id) is not None
            if not present[node_id]:
                continue  # the node left: its delete event reconsiders every pending task
            status = replace(
                task.status,
                state=TaskState.ASSIGNED,
                message=ASSIGNED_MESSAGE,
                timestamp=now,
                pending_reason="",
                err="",
            )
            placed = replace(
                task,
                node_id=decision.node_id,
                assigned_generic_resources=list(decision.assigned),
                status=status,
            )
            tx.patch(task, placed)
        elif (task.status.pending_reason, task.status.message) != (decision.reason,) * 2:
            status = replace(task.status, pending_reason=decision.reason, message=decision.reason)
            tx.patch(task, replace(task, status=status))
    return tx
