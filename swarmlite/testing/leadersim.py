"""A leader in one process, for measuring the control plane: no Raft, no network.

Owns `LeaderSim`: a MemoryStore committed through a LocalProposer, the leader's real
control loops (orchestrators, allocator, scheduler) and the dispatcher's real pusher
loop with one in-memory session per node. A session encodes every message it is sent,
as a real one does, and keeps the task ids the node holds (its last `Assignments` with the
`AssignmentChanges` since applied), so that "every node holds its assignments" can be
checked. Nodes stay READY unless the sim marks one
DOWN (nothing times out: the sim beats for every node).

What it measures is the leader's work between a write and the moment every node was
told: `deploy`, `node_down` and `scale` each return the seconds from the first write to
the last store write or session message before everything was in place (the sim checks
only when the leader has gone quiet, so its own checks do not count). If the
leader's loops fail, they are torn down and started again as the manager does, and
`loop_restarts` counts it: a healthy run has none.

Used by `scripts/bench/scale.py` and by tests that compare runs; never by the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from swarmlite.api import (
    Cluster,
    ClusterSpec,
    Node,
    NodeState,
    Service,
    ServiceMode,
    Task,
    TaskState,
)
from swarmlite.api.control import AssignmentChanges, Assignments, ManagerMessage
from swarmlite.clock import SystemClock
from swarmlite.manager.allocator import Allocator
from swarmlite.manager.allocator.ipam import SIZE_LABEL
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.dispatcher import dispatcher as dispatch
from swarmlite.manager.heartbeats import Heartbeats
from swarmlite.manager.logbroker import LogBroker
from swarmlite.manager.loop import LoopStats, ReconcileLoop
from swarmlite.manager.orchestrator import orchestrator_loops
from swarmlite.manager.scheduler import Scheduler
from swarmlite.store import ApplyResult, LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.factories import make_node, make_service

replace = msgspec.structs.replace

_encoder = msgspec.msgpack.Encoder()


class _Stream:
    """Where a session's frames go: counted and dropped."""

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.closed_with: Exception | None = None

    async def send(self, frame: bytes) -> None:
        self.frames += 1
        self.bytes += len(frame)

    async def close(self) -> None:
        return None

    async def close_with_error(self, error: Exception) -> None:
        self.closed_with = error


class _Activity:
    """When the leader last did something a node or the store saw."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.count = 0

    def mark(self) -> None:
        self.last = time.perf_counter()
        self.count += 1


class _Proposer(LocalProposer):
    def __init__(self, memory: MemoryStore, activity: _Activity) -> None:
        super().__init__(memory)
        self.activity = activity

    async def propose(self, data: bytes) -> ApplyResult:
        result = await super().propose(data)
        self.activity.mark()
        return result


class _Session(dispatch._Session):  # the dispatcher's own session, with a memory
    def __init__(self, node_id: str, activity: _Activity) -> None:
        self.sink = _Stream()
        super().__init__(node_id, self.sink)  # type: ignore[arg-type]
        self.activity = activity
        self.assigned: set[str] = set()  # what the node holds, kept in place

    async def send(self, message: ManagerMessage) -> None:
        await self.sink.send(_encoder.encode(message))
        if isinstance(message, Assignments):
            self.assigned = {task.id for task in message.tasks}
        elif isinstance(message, AssignmentChanges):
            self.assigned.difference_update(message.removed)
            self.assigned.update(task.id for task in message.tasks)
        self.activity.mark()


class _Raft:
    """What the dispatcher asks of the raft member: who leads, who the managers are."""

    leader_id = "leader"
    is_leader = True

    def members(self) -> list[Any]:
        return []

    def leader_address(self) -> str:
        return "127.0.0.1:4242"


@dataclass
class Placed:
    """How far a wait got: tasks that should run and are on a node, and nodes told."""

    tasks: int = 0
    placed: int = 0
    nodes_behind: int = 0


class LeaderSim:
    """``async with LeaderSim(nodes=100) as sim: await sim.deploy(100, 100)``."""

    def __init__(self, nodes: int, *, max_pending: int | None = None) -> None:
        self.memory = MemoryStore()
        self.activity = _Activity()
        self.store = Store(self.memory, _Proposer(self.memory, self.activity))
        self.clock = SystemClock()
        self.node_ids = [f"node{i:05d}" for i in range(nodes)]
        self.max_pending = max_pending
        self.loop_stats = LoopStats()
        self.loop_restarts = 0
        self.services: list[str] = []
        self.down: set[str] = set()
        self.sessions: dict[str, _Session] = {}  # as first opened, by node
        ctx = ManagerContext(
            node_id="leader",
            cluster_id="sim",
            addr="127.0.0.1:4242",
            store=self.store,
            raft=_Raft(),  # type: ignore[arg-type]
            clock=self.clock,
            client_ssl=lambda: None,  # type: ignore[arg-type,return-value]
        )
        self.dispatcher = dispatch.Dispatcher(ctx, LogBroker(), Heartbeats(self.clock))
        self.dispatcher.loop_stats = self.loop_stats
        self._runner: asyncio.Task[None] | None = None
        self._beater: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> LeaderSim:
        # Networks sized for the cluster, as its operator would at init
        # (--default-addr-pool-mask-length): the default /24 ingress holds 253 nodes.
        size = 24 if len(self.node_ids) < 250 else 20
        spec = ClusterSpec(labels={SIZE_LABEL: str(size)})
        tx = Tx().create(Cluster(id="sim", spec=spec))
        for node_id in self.node_ids:
            tx.create(make_node(node_id, hostname=node_id, cpus=64, memory="256G"))
            if len(tx.ops) >= 500:
                await self.store.propose(tx)
                tx = Tx()
        if tx.ops:
            await self.store.propose(tx)
        for node_id in self.node_ids:
            self.sessions[node_id] = _Session(node_id, self.activity)
            self.dispatcher.sessions[node_id] = self.sessions[node_id]
        self._runner = asyncio.create_task(self._supervise())
        self._beater = asyncio.create_task(self._beat())
        # A cluster that is up: every node has its addresses and has been told its (empty)
        # assignments and its networks, before anything is measured on it.
        await self.settled(quiet=0.2)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in (self._runner, self._beater):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _loops(self) -> list[ReconcileLoop]:
        loops: list[ReconcileLoop] = [
            *orchestrator_loops(self.store, self.clock),
            Allocator(self.store, self.clock),
            Scheduler(self.store, self.clock),
        ]
        for loop in loops:
            loop.stats = self.loop_stats
            if self.max_pending is not None and hasattr(loop, "max_pending"):
                loop.max_pending = self.max_pending
        return loops

    async def _supervise(self) -> None:
        """Run the loops and the dispatcher; if any fails, restart them all (as the manager
        does) and count it."""
        while True:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self.dispatcher.run())
                    for loop in self._loops():
                        group.create_task(loop.run())
            except Exception:  # counted: a healthy run has none
                self.loop_restarts += 1
                await asyncio.sleep(0.01)

    def session_error(self, node_id: str) -> Exception | None:
        """What the dispatcher closed ``node_id``'s session with (None: still open)."""
        session = self.sessions[node_id]
        return session.sink.closed_with

    def beat(self) -> None:
        """A heartbeat from every node not marked down, now."""
        for node_id in self.node_ids:
            if node_id not in self.down:
                self.dispatcher.beat(node_id)

    async def _beat(self) -> None:
        while True:
            self.beat()
            await asyncio.sleep(0.2)

    # ------------------------------------------------------------------ what it does

    async def deploy(self, services: int, replicas: int) -> float:
        """Create ``services`` replicated services of ``replicas`` each; the seconds until
        every task is on a node and every node holds its assignments."""
        started = time.perf_counter()
        for _ in range(services):
            # No restart delay: a node-down measures the leader's work, not the policy's wait.
            service = make_service(
                f"svc{len(self.services):04d}", replicas=replicas, restart_delay=0
            )
            self.services.append(service.id)
            await self.store.propose(Tx().create(service))
        return await self.settled() - started

    async def scale(self, service_id: str, by: int) -> float:
        """Add ``by`` replicas to one service; the seconds until they are placed and told."""
        started = time.perf_counter()

        def edit(service: Service) -> Service:
            spec = replace(service.spec, replicas=service.spec.replicas + by)
            return replace(service, spec=spec)

        await self.store.merge(Service, service_id, edit)
        return await self.settled() - started

    async def node_down(self, node_id: str) -> tuple[float, int]:
        """Mark ``node_id`` DOWN and close its session, as the dispatcher does when its
        heartbeats stop; the seconds until its tasks run elsewhere and are told, and how
        many tasks it held."""
        held = sum(1 for t in self.memory.tasks_on_node(node_id) if _should_run(t))
        started = time.perf_counter()
        self.down.add(node_id)
        self.dispatcher.sessions.pop(node_id, None)

        def edit(node: Node) -> Node:
            return replace(node, status=replace(node.status, state=NodeState.DOWN))

        await self.store.merge(Node, node_id, edit)
        return await self.settled() - started, held

    def busiest_node(self) -> str:
        up = [n for n in self.node_ids if n not in self.down]
        return max(up, key=lambda n: sum(1 for t in self.memory.tasks_on_node(n) if _should_run(t)))

    # ------------------------------------------------------------------ waiting

    def progress(self) -> Placed:
        """Tasks that should run, those on an up node, and nodes not told of all theirs."""
        memory = self.memory
        want = 0
        for service_id in self.services:
            service = memory.get(Service, service_id)
            if service is not None and service.spec.mode is ServiceMode.REPLICATED:
                want += service.spec.replicas
        placed = 0
        behind = 0
        sessions = self.dispatcher.sessions
        for node_id in self.node_ids:
            if node_id in self.down:
                continue
            here = [t.id for t in memory.tasks_on_node(node_id) if _should_run(t)]
            placed += len(here)
            session = sessions.get(node_id)
            told = session.assigned if isinstance(session, _Session) else set()
            if not told.issuperset(here):
                behind += 1
        return Placed(tasks=want, placed=placed, nodes_behind=behind)

    async def settled(self, *, timeout: float = 600.0, quiet: float = 0.02) -> float:
        """Wait until every task that should run is on an up node and every node holds
        its assignments; the `perf_counter` time of the leader's last act before that.

        Checks (a scan of every task) only once the leader did nothing for ``quiet``
        seconds, so that the checks take no time from the loops while they work.
        """
        deadline = time.perf_counter() + timeout
        seen = -1
        wait = quiet
        while True:
            await asyncio.sleep(wait)
            if self.activity.count != seen:
                seen = self.activity.count
                continue  # still busy
            state = self.progress()
            if state.placed == state.tasks and state.nodes_behind == 0:
                return self.activity.last
            wait = min(wait * 2, 0.5)  # quiet but not done: a long pass; check less often
            if time.perf_counter() > deadline:
                raise TimeoutError(f"not settled after {timeout} s: {state}")

    def tasks(self) -> Iterable[Task]:
        return self.memory.list(Task)


def _should_run(task: Task) -> bool:
    """Placed and meant to run: what a node must be told to run."""
    return (
        task.desired_state is TaskState.RUNNING
        and task.status.state >= TaskState.ASSIGNED
        and not task.status.state.terminal
    )
