"""A small cluster on a LocalProposer store for the orchestrator's tests.

``Sim`` runs the orchestrator loops as asyncio tasks on a ``FakeClock`` and stands in for
everything else: the control API (services in, scaled, updated, removed), the scheduler
(PENDING tasks get a node) and the agents (tasks start, fail, complete, stop when told).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import msgspec
import pytest

from swarmlite.api import (
    Cluster,
    ClusterSettings,
    ClusterSpec,
    Node,
    NodeState,
    Service,
    ServiceSpec,
    Task,
    TaskState,
)
from swarmlite.manager.loop import ReconcileLoop
from swarmlite.manager.orchestrator import orchestrator_loops
from swarmlite.store import LocalProposer, MemoryStore, ReadTx, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_node, make_service
from swarmlite.testing.leaderloops import stop_loops

replace = msgspec.structs.replace

ACTIVE = (TaskState.RUNNING, TaskState.COMPLETE)
STARTED = (TaskState.ASSIGNED, TaskState.ACCEPTED, TaskState.PREPARING, TaskState.STARTING)


class Sim:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.memory = MemoryStore()
        self.store = Store(self.memory, LocalProposer(self.memory), clock=self.clock)
        self.loops: list[ReconcileLoop] = []
        self._runs: list[asyncio.Task[None]] = []
        self._next_node = itertools.count()

    # -- loops

    async def start_loops(self) -> None:
        self.loops = orchestrator_loops(self.store, self.clock)
        self._runs = [asyncio.create_task(loop.run()) for loop in self.loops]
        await self.settle()

    async def stop_loops(self) -> None:
        await stop_loops(self.loops, self._runs)
        for run in self._runs:
            if not run.cancelled() and run.exception() is not None:
                raise AssertionError(f"a loop crashed: {run.exception()!r}")
        self._runs = []

    async def restart_loops(self) -> None:
        """A new leader: fresh loop instances over the same store."""
        await self.stop_loops()
        await self.start_loops()

    async def settle(self) -> None:
        """Yield until nothing has been written for a good while."""
        last, quiet = -1, 0
        for _ in range(5000):
            await asyncio.sleep(0)
            index = self.memory.applied_index
            if index == last:
                quiet += 1
                if quiet >= 40:
                    return
            else:
                last, quiet = index, 0
        raise AssertionError("the store kept changing")

    async def advance(self, seconds: float) -> None:
        await self.clock.run_for(seconds)
        await self.settle()

    # -- control API

    async def write(self, fn: Callable[[ReadTx], Tx | None]) -> None:
        await self.store.update(fn)
        await self.settle()

    async def put(self, *objs: Any) -> None:
        tx = Tx()
        for obj in objs:
            tx.create(obj)
        await self.write(lambda rt: tx)

    async def add_node(self, **kw: Any) -> Node:
        kw.setdefault("hostname", f"node-{next(self._next_node)}")
        node = make_node(**kw)
        await self.put(node)
        return self.node(node.id)

    async def add_nodes(self, count: int, **kw: Any) -> list[Node]:
        return [await self.add_node(**kw) for _ in range(count)]

    async def add_service(self, **kw: Any) -> Service:
        service = make_service(**kw)
        await self.put(service)
        return self.service(service.id)

    async def set_history_limit(self, limit: int) -> None:
        cluster = Cluster(
            id="cluster",
            spec=ClusterSpec(settings=ClusterSettings(task_history_limit=limit)),
        )
        await self.put(cluster)

    async def update_spec(self, service_id: str, fn: Callable[[ServiceSpec], ServiceSpec]) -> None:
        """What `service update` does: new spec, spec_version + 1, the old spec kept."""

        def change(rt: ReadTx) -> Tx:
            svc = rt.get(Service, service_id)
            assert svc is not None
            return Tx().update(
                replace(
                    svc,
                    spec=fn(svc.spec),
                    spec_version=svc.spec_version + 1,
                    previous_spec=svc.spec,
                    update_status=None,
                )
            )

        await self.write(change)

    async def set_image(self, service_id: str, image: str) -> None:
        def change(spec: ServiceSpec) -> ServiceSpec:
            container = replace(spec.task.container, image=image)
            return replace(spec, task=replace(spec.task, container=container))

        await self.update_spec(service_id, change)

    async def scale(self, service_id: str, replicas: int) -> None:
        await self.update_spec(service_id, lambda spec: replace(spec, replicas=replicas))

    async def remove_service(self, service_id: str) -> None:
        await self.write(lambda rt: Tx().delete(rt.get(Service, service_id)))  # type: ignore[arg-type]

    async def set_node(self, node_id: str, **changes: Any) -> None:
        def change(rt: ReadTx) -> Tx:
            node = rt.get(Node, node_id)
            assert node is not None
            spec_changes = {k: v for k, v in changes.items() if k in ("availability", "labels")}
            status_changes = {k: v for k, v in changes.items() if k == "state"}
            return Tx().update(
                replace(
                    node,
                    spec=replace(node.spec, **spec_changes),
                    status=replace(node.status, **status_changes),
                )
            )

        await self.write(change)

    async def remove_node(self, node_id: str) -> None:
        await self.write(lambda rt: Tx().delete(rt.get(Node, node_id)))  # type: ignore[arg-type]

    # -- reading

    def node(self, node_id: str) -> Node:
        node = self.memory.get(Node, node_id)
        assert node is not None
        return node

    def service(self, service_id: str) -> Service:
        svc = self.memory.get(Service, service_id)
        assert svc is not None
        return svc

    def tasks(self, service_id: str | None = None) -> list[Task]:
        found = self.memory.find(Task, lambda t: service_id is None or t.service_id == service_id)
        return sorted(found, key=lambda t: (t.slot, t.node_id, t.created_at, t.id))

    def live(self, service_id: str) -> list[Task]:
        """Tasks wanted and not ended (what `service ps` shows as current)."""
        return [
            t
            for t in self.tasks(service_id)
            if t.desired_state in ACTIVE and not t.status.state.terminal
        ]

    def slots(self, service_id: str) -> list[int]:
        return sorted(t.slot for t in self.live(service_id))

    def running(self, service_id: str) -> list[Task]:
        return [t for t in self.live(service_id) if t.status.state is TaskState.RUNNING]

    # -- scheduler and agents

    async def report(self, task_ids: Iterable[str], state: TaskState, **status: Any) -> None:
        ids = list(task_ids)
        now = self.clock.wall()

        def change(rt: ReadTx) -> Tx:
            tx = Tx()
            for task_id in ids:
                task = rt.get(Task, task_id)
                assert task is not None
                new_status = replace(task.status, state=state, timestamp=now, **status)
                tx.update(replace(task, status=new_status))
            return tx

        await self.write(change)

    async def fail(self, *tasks: Task, exit_code: int = 1) -> None:
        await self.report([t.id for t in tasks], TaskState.FAILED, exit_code=exit_code, err="boom")

    async def complete(self, *tasks: Task) -> None:
        await self.report([t.id for t in tasks], TaskState.COMPLETE, exit_code=0)

    async def set_health(self, tasks: Iterable[Task], health: str) -> None:
        ids = [t.id for t in tasks]

        def change(rt: ReadTx) -> Tx:
            tx = Tx()
            for task_id in ids:
                task = rt.get(Task, task_id)
                assert task is not None
                tx.update(replace(task, status=replace(task.status, health=health)))
            return tx

        await self.write(change)

    def _ready_nodes(self, rt: ReadTx) -> list[Node]:
        return [
            n
            for n in rt.list(Node)
            if n.status.state is NodeState.READY and n.spec.availability.value == "active"
        ]

    async def schedule(self) -> int:
        """PENDING tasks get a node (the least busy READY ACTIVE one) and go ASSIGNED."""

        def change(rt: ReadTx) -> Tx | None:
            nodes = sorted(self._ready_nodes(rt), key=lambda n: n.status.hostname)
            load = {n.id: 0 for n in nodes}
            for t in rt.list(Task):
                if t.node_id in load and t.desired_state in ACTIVE:
                    load[t.node_id] += 1
            tx = Tx()
            for task in sorted(rt.list(Task), key=lambda t: (t.service_name, t.slot)):
                if task.status.state is not TaskState.PENDING or task.desired_state not in ACTIVE:
                    continue
                node_id = task.node_id
                if not node_id:
                    if not load:
                        continue
                    node_id = min(load, key=lambda n: load[n])
                    load[node_id] += 1
                status = replace(task.status, state=TaskState.ASSIGNED)
                tx.update(replace(task, node_id=node_id, status=status))
            return tx or None

        before = self.memory.applied_index
        await self.write(change)
        return self.memory.applied_index - before

    def _on_ready_node(self, task: Task) -> bool:
        node = self.memory.get(Node, task.node_id)
        return node is not None and node.status.state is NodeState.READY

    async def start(self, health: str = "") -> int:
        """Agents run what they were given: ASSIGNED..STARTING tasks go RUNNING."""
        ids = [
            t.id
            for t in self.tasks()
            if t.status.state in STARTED and t.desired_state in ACTIVE and self._on_ready_node(t)
        ]
        if ids:
            await self.report(ids, TaskState.RUNNING, health=health)
        return len(ids)

    async def stop_requested(self) -> int:
        """Agents stop what they were told to stop: desired SHUTDOWN tasks go SHUTDOWN."""
        ids = [
            t.id
            for t in self.tasks()
            if t.desired_state is TaskState.SHUTDOWN
            and TaskState.ASSIGNED <= t.status.state <= TaskState.RUNNING
            and self._on_ready_node(t)
        ]
        if ids:
            await self.report(ids, TaskState.SHUTDOWN)
        return len(ids)

    async def converge(self, health: str = "", rounds: int = 50) -> None:
        """Scheduler and agents do everything asked until nothing is left to do."""
        for _ in range(rounds):
            moved = await self.schedule() + await self.start(health) + await self.stop_requested()
            if not moved:
                return
        raise AssertionError("the cluster never converged")


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    s = Sim()
    await s.start_loops()
    try:
        yield s
    finally:
        await s.stop_loops()
