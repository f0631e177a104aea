"""Helpers for the scheduler's tests: ``make`` builds nodes, services and tasks in a few
words (on top of ``swarmlite.testing.factories``, with readable ids and the placement
knobs the scheduler reads); ``cluster`` is a harness (MemoryStore + LocalProposer +
FakeClock) that runs the Scheduler loop.

The harness lets the loop run until it has nothing left to do (``settle``): it yields to
the event loop until the store's index stops moving and the loop is waiting again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from swarmlite.api import (
    EndpointSpec,
    Node,
    NodeAvailability,
    NodeRole,
    NodeState,
    Placement,
    PortConfig,
    ResourceRequirements,
    Resources,
    Service,
    ServiceMode,
    Task,
    TaskState,
)
from swarmlite.errors import SwarmliteError
from swarmlite.manager.scheduler import ClusterView, Scheduler
from swarmlite.store import ApplyResult, LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.clock import DEFAULT_WALL_START, FakeClock
from swarmlite.testing.factories import make_node, make_service, make_task

GIB = 1 << 30
CPU = 1_000_000_000

replace = msgspec.structs.replace


def node(
    id: str,
    *,
    state: NodeState = NodeState.READY,
    availability: NodeAvailability = NodeAvailability.ACTIVE,
    role: NodeRole = NodeRole.WORKER,
    labels: dict[str, str] | None = None,
    cpus: float = 0,
    memory: int = 0,
    os: str = "linux",
    arch: str = "x86_64",
) -> Node:
    """A node named ``host-<id>``; it reports no CPUs or memory (no limit) unless told."""
    return make_node(
        id,
        hostname=f"host-{id}",
        state=state,
        availability=availability,
        role=role,
        labels=labels,
        cpus=cpus,
        memory=memory,
        os=os,
        arch=arch,
    )


def service(
    id: str,
    *,
    replicas: int = 1,
    mode: ServiceMode = ServiceMode.REPLICATED,
    constraints: list[str] | None = None,
    preferences: list[str] | None = None,
    max_per_node: int = 0,
    cpus: float = 0,
    memory: int = 0,
    host_ports: list[int] | None = None,
    protocol: str = "tcp",
) -> Service:
    """A service whose id is its name, with the placement knobs the scheduler reads."""
    svc = make_service(id, id=id, mode=mode, replicas=replicas, constraints=constraints)
    template = replace(
        svc.spec.task,
        resources=ResourceRequirements(
            reservations=Resources(nano_cpus=int(cpus * CPU), memory_bytes=memory)
        ),
        placement=Placement(
            constraints=constraints or [],
            preferences=preferences or [],
            max_replicas_per_node=max_per_node,
        ),
    )
    ports = [
        PortConfig(target=80, published=published, protocol=protocol, mode="host")
        for published in host_ports or []
    ]
    spec = replace(svc.spec, task=template, endpoint=EndpointSpec(ports=ports))
    return replace(svc, spec=spec)


def task(
    svc: Service,
    slot: int,
    *,
    node_id: str = "",
    state: TaskState = TaskState.PENDING,
    desired: TaskState = TaskState.RUNNING,
    timestamp: float = 0.0,
    id: str | None = None,
) -> Task:
    """A task of ``svc`` with id ``<service>.<slot or node>`` unless given."""
    return make_task(
        svc,
        id=id or f"{svc.id}.{slot or node_id}",
        slot=slot,
        node_id=node_id,
        state=state,
        desired=desired,
        timestamp=timestamp,
    )


def tasks(svc: Service, count: int | None = None, **kwargs: Any) -> list[Task]:
    """One PENDING task per slot 1..count (default: the service's replicas)."""
    return [task(svc, slot, **kwargs) for slot in range(1, (count or svc.spec.replicas) + 1)]


class FlakyProposer:
    """A LocalProposer that first raises each error put in ``failures``, one per proposal,
    and lets each write in ``rivals`` commit just before a proposal (a lost race)."""

    def __init__(self, memory: MemoryStore) -> None:
        self.local = LocalProposer(memory)
        self.failures: list[SwarmliteError] = []
        self.rivals: list[Tx] = []  # each committed just before the next proposal

    async def propose(self, data: bytes) -> ApplyResult:
        if self.failures:
            raise self.failures.pop(0)
        if self.rivals:
            (await self.local.propose(self.rivals.pop(0).encode())).unwrap()
        return await self.local.propose(data)

    async def read_barrier(self) -> None:
        return None


class Cluster:
    """A store on a (flaky) LocalProposer with a FakeClock, and the scheduler running on it."""

    def __init__(self) -> None:
        self.memory = MemoryStore()
        self.clock = FakeClock()
        self.proposer = FlakyProposer(self.memory)
        self.store = Store(self.memory, self.proposer, clock=self.clock)
        self.scheduler: Scheduler | None = None
        self._runner: asyncio.Task[None] | None = None

    async def create(self, *objects: Any) -> None:
        tx = Tx()
        for obj in objects:
            tx.create(obj)
        await self.store.propose(tx)

    async def update(self, *objects: Any) -> None:
        """Write ``objects`` over the stored ones (taking their current versions)."""
        tx = Tx()
        for obj in objects:
            current = self.memory.get(obj.KIND, obj.id)
            assert current is not None, obj.id
            tx.update(type(obj)(**{**_fields(obj), "version": current.version}))
        await self.store.propose(tx)

    def task(self, task_id: str) -> Task:
        found = self.memory.get(Task, task_id)
        assert found is not None, task_id
        return found

    def placement(self) -> dict[str, str]:
        """task id -> node id ("" while unassigned), for every task."""
        return {t.id: t.node_id for t in self.memory.list(Task)}

    def per_node(self, service_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.memory.list(Task):
            if t.service_id == service_id and t.status.state == TaskState.ASSIGNED:
                counts[t.node_id] = counts.get(t.node_id, 0) + 1
        return counts

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Scheduler]:
        """Run a fresh Scheduler until the block ends, settled on entry."""
        scheduler = Scheduler(self.store, self.clock)
        runner = asyncio.create_task(scheduler.run())
        try:
            await self.settle()
            yield scheduler
        finally:
            scheduler.stop()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    async def settle(self) -> None:
        """Yield until the store has stopped changing for a while (the loop is idle)."""
        quiet, last = 0, -1
        for _ in range(10_000):
            await asyncio.sleep(0)
            index = self.memory.applied_index
            quiet = quiet + 1 if index == last else 0
            last = index
            if quiet >= 20:
                return
        raise AssertionError("the scheduler never settled")


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__struct_fields__}


def view(*objects: Any, now: float = DEFAULT_WALL_START) -> ClusterView:
    """The ClusterView of a store holding ``objects``, at wall time ``now``."""
    memory = MemoryStore()
    tx = Tx()
    for obj in objects:
        tx.create(obj)
    memory.apply(1, tx.encode()).unwrap()
    return ClusterView.build(memory, now)


class Make:
    """The builders above, handed to tests as the ``make`` fixture."""

    view = staticmethod(view)
    node = staticmethod(node)
    service = staticmethod(service)
    task = staticmethod(task)
    tasks = staticmethod(tasks)


@pytest.fixture
def make() -> type[Make]:
    return Make


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


@pytest.fixture
def new_cluster() -> type[Cluster]:
    """For tests that compare several clusters: call it for each."""
    return Cluster
