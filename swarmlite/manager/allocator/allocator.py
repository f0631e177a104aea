"""The allocator loop: networks, nodes, services and tasks get their addresses on the leader.

Owns when allocation happens and how its writes are committed; the rules are ``plan``'s.
After every commit that can change an allocation (a network, service or node came, went or
changed; a task was created, deleted, finished, or lost its attachments; the cluster's
labels changed), it commits ``plan_step`` batches, each compare-and-set against the state it
was computed from, until a step has nothing to write. Does not own which tasks exist (the
orchestrator), where they run (the scheduler, which waits for a task's attachments) nor
what nodes are told (the dispatcher, through ``netstate``).

Invariant: everything it knows is in the store, so a new leader's allocator starts with
a pass over the whole state, writes only what is missing, and never hands out what an
earlier leader gave (idempotent; a step that lost a race is recomputed by ``Store.update``).
Problems (a refused subnet, a port conflict, a full network) are logged when they first
appear and when they clear; tasks that wait because of one carry it in
``status.pending_reason``; a node without an ingress address has only the log. What a step
reads of tasks, nodes and holders comes from indexes kept from the watch (``taskindex``,
``holdings``), so a round costs what changed, not the cluster's size.
"""

from __future__ import annotations

import logging
import random

from swarmlite.api import Network, Node, Service, Task
from swarmlite.clock import Clock
from swarmlite.errors import SwarmliteError
from swarmlite.log import kv
from swarmlite.manager.allocator.holdings import Holdings
from swarmlite.manager.allocator.ipam import Pools
from swarmlite.manager.allocator.plan import Step, find_ingress, plan_step
from swarmlite.manager.allocator.taskindex import TaskIndex
from swarmlite.manager.loop import ReconcileLoop
from swarmlite.store import Event, ReadTx, Store, Tx

log = logging.getLogger(__name__)

MAX_STEPS = 1000  # batches per round: far more than any real round needs
RETRY_SECONDS = 1.0  # after a failed round


def _task_matters(old: Task | None, new: Task | None) -> bool:
    """Whether a task change can change an allocation (status reports mostly cannot)."""
    if old is None or new is None:
        return True
    return (
        old.networks != new.networks
        or old.status.state.terminal != new.status.state.terminal
        or old.desired_state != new.desired_state
        or old.spec.networks != new.spec.networks
    )


def _node_matters(old: Node | None, new: Node | None) -> bool:
    if old is None or new is None:
        return True
    return old.mesh_address != new.mesh_address or (old.status.addr, old.status.addresses) != (
        new.status.addr,
        new.status.addresses,
    )


class Allocator(ReconcileLoop):
    name = "allocator"
    kinds = ("network", "service", "task", "node", "cluster")

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        pools: Pools | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(store, clock)
        self.pools = pools or Pools()
        self.rng = rng
        self._dirty = False
        self._problems: dict[str, str] = {}  # object id -> problem last logged
        # The tasks as the last step saw them, kept true from the watch (see ``_tasks``).
        self._index: TaskIndex | None = None
        # Who holds which address, and the nodes that need one, kept the same way.
        self._holdings: Holdings | None = None

    def start(self) -> None:
        self._dirty = True
        self._index = None  # a new snapshot: built again on the next step
        self._holdings = None

    def _tasks(self, read: ReadTx) -> TaskIndex:
        """The index of ``read``'s tasks. The store pushes to the watch as it applies and
        ``read`` is the store itself, so taking the watch's events now brings the index
        to exactly ``read``; without a usable watch it is built from ``read``."""
        events = self.take_pending()
        if events is None or self._index is None:
            self._index = TaskIndex.build(read)
            self._holdings = None  # built again with it, from the same ``read``
            return self._index
        self._index_events(events)
        return self._index

    def _index_events(self, events: list[Event]) -> None:
        """Every event of the watch reaches the index exactly once: through ``changed`` or
        taken by ``_tasks``."""
        index = self._index
        if index is None:
            return
        if self._holdings is not None:
            self._holdings.events(events)
        for event in events:
            old, new = event.old, event.new
            if isinstance(old, Task) or isinstance(new, Task):
                index.update(
                    old if isinstance(old, Task) else None, new if isinstance(new, Task) else None
                )

    def changed(self, events: list[Event]) -> None:
        self._index_events(events)
        if self._dirty:
            return
        for event in events:
            old, new = event.old, event.new
            if isinstance(old, Task) or isinstance(new, Task):
                matters = _task_matters(
                    old if isinstance(old, Task) else None, new if isinstance(new, Task) else None
                )
            elif isinstance(old, Node) or isinstance(new, Node):
                matters = _node_matters(
                    old if isinstance(old, Node) else None, new if isinstance(new, Node) else None
                )
            elif isinstance(old, Service) and isinstance(new, Service):
                matters = old.spec != new.spec or old.endpoint != new.endpoint
            elif isinstance(old, Network) and isinstance(new, Network):
                matters = old.spec != new.spec or old.status != new.status
            else:
                matters = True  # created, deleted, or the cluster object
            if matters:
                self._dirty = True
                return

    async def reconcile(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        try:
            await self._allocate()
        except SwarmliteError:
            self._dirty = True
            self.wake_at(self.clock.monotonic() + RETRY_SECONDS)
            raise

    async def _allocate(self) -> None:
        last = Step()

        def step(read: ReadTx) -> Tx | None:
            nonlocal last
            tasks = self._tasks(read)
            last = plan_step(read, self.pools, self.rng, tasks, self._holdings_of(read))
            return last.tx or None

        for _ in range(MAX_STEPS):
            await self.store.update(step)
            if last.tx:
                log.debug("allocated %s", kv(phase=last.phase, writes=len(last.tx)))
                continue
            self._report(last.problems)
            return
        log.warning("allocation did not finish in one round %s", kv(steps=MAX_STEPS))
        self._dirty = True

    def _holdings_of(self, read: ReadTx) -> Holdings:
        """The holdings of ``read``, once ``_tasks(read)`` brought the indexes to it; built
        again when there are none, or when the ingress network is another one."""
        ingress = find_ingress(read)
        holdings = self._holdings
        if (
            holdings is None
            or holdings.stale
            or holdings.ingress_id != (ingress.id if ingress is not None else "")
        ):
            holdings = self._holdings = Holdings.build(read, ingress)
        return holdings

    def _report(self, problems: dict[str, str]) -> None:
        for key, problem in sorted(problems.items()):
            if self._problems.get(key) != problem:
                log.warning("cannot allocate %s", kv(object=key, problem=problem))
        for key in sorted(set(self._problems) - set(problems)):
            log.info("allocation problem cleared %s", kv(object=key))
        self._problems = dict(problems)
