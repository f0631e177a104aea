"""A leader loop that falls behind its watch resyncs from a fresh snapshot and carries on.

The first test holds one loop's round while the store changes more than its watch may
queue: the loop must resync once, count it, and go on serving. The second runs the real
orchestrator loops, allocator and scheduler twice over the same writes, once with watches
so small that nearly every commit overflows them, and checks both runs end with the same
tasks (none lost, none doubled) and the same task indexes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import msgspec
from prometheus_client.core import CollectorRegistry
from prometheus_client.exposition import generate_latest

from swarmlite.api import Network, Node, NodeState, Service, Task, TaskState
from swarmlite.manager.allocator import Allocator
from swarmlite.manager.allocator.taskindex import TaskIndex
from swarmlite.manager.loop import LoopStats, ReconcileLoop
from swarmlite.metrics.cluster import LoopCollector
from swarmlite.store import Event, LocalProposer, MemoryStore, ReadTx, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import (
    make_network,
    make_node,
    make_service,
    with_networks,
)
from swarmlite.testing.leaderloops import LoopLeader, Row
from swarmlite.testing.store import settle

replace = msgspec.structs.replace


class Held(ReconcileLoop):
    """Counts its starts and the services it was told of; a round waits for ``hold``."""

    name = "held"
    kinds = ("service",)
    max_pending = 3

    def __init__(self, store: Store, clock: FakeClock) -> None:
        super().__init__(store, clock)
        self.starts = 0
        self.seen: set[str] = set()
        self.hold = asyncio.Event()
        self.hold.set()
        self.rounds = 0

    def start(self) -> None:
        self.starts += 1
        self.seen = {s.id for s in self.memory.list(Service)}  # rebuilt, as a resync needs

    def changed(self, events: list[Event]) -> None:
        self.seen.update(e.object.id for e in events if e.new is not None)

    async def reconcile(self) -> None:
        self.rounds += 1
        await self.hold.wait()


async def test_a_loop_that_overflows_its_watch_resyncs_and_keeps_serving() -> None:
    clock = FakeClock()
    memory = MemoryStore()
    store = Store(memory, LocalProposer(memory), clock=clock)
    stats = LoopStats()
    loop = Held(store, clock)
    loop.stats = stats
    running = asyncio.create_task(loop.run())
    try:
        await settle(memory)
        loop.hold.clear()
        await store.propose(Tx().create(make_service("first")))
        await settle(memory)  # the loop is now stuck in the round this write started
        behind = [make_service(f"s{i}") for i in range(5)]
        for service in behind:
            await store.propose(Tx().create(service))
        loop.hold.set()
        await settle(memory)
        assert not running.done()
        assert (loop.resyncs, stats.resyncs, loop.starts) == (1, {"held": 1}, 2)
        assert {s.id for s in behind} <= loop.seen

        later = make_service("later")
        await store.propose(Tx().create(later))
        await settle(memory)
        assert later.id in loop.seen
        assert loop.resyncs == 1  # one write at a time stays within the watch

        registry = CollectorRegistry()
        registry.register(LoopCollector(stats))
        text = generate_latest(registry).decode()
        assert 'swarmlite_manager_loop_resyncs_total{loop="held"} 1.0' in text
    finally:
        loop.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


# -- the real loops, with and without overflowing watches -------------------------------

NODES = [f"node{i}" for i in range(5)]


async def drive(leader: LoopLeader) -> None:
    """The same writes, in the same order, for both runs."""

    def create(*objects: object) -> Callable[[ReadTx], Tx]:
        def fn(rt: ReadTx) -> Tx:
            tx = Tx()
            for obj in objects:
                tx.create(obj)  # type: ignore[arg-type]
            return tx

        return fn

    def edit_service(name: str, **changes: object) -> Callable[[ReadTx], Tx]:
        def fn(rt: ReadTx) -> Tx:
            service = rt.get_by_name(Service, name)
            assert service is not None
            spec = replace(service.spec, **changes)
            return Tx().update(replace(service, spec=spec, spec_version=service.spec_version + 1))

        return fn

    def node_state(node_id: str, state: NodeState) -> Callable[[ReadTx], Tx]:
        def fn(rt: ReadTx) -> Tx:
            node = rt.get(Node, node_id)
            assert node is not None
            return Tx().update(replace(node, status=replace(node.status, state=state)))

        return fn

    def delete_service(name: str) -> Callable[[ReadTx], Tx]:
        def fn(rt: ReadTx) -> Tx:
            service = rt.get_by_name(Service, name)
            assert service is not None
            return Tx().delete(service)

        return fn

    await leader.write(create(*(make_node(id=n, hostname=n) for n in NODES)))
    await leader.write(create(make_network("back", id="net-back")))
    web = with_networks(make_service("web", id="svc-web", replicas=12), "back")
    await leader.write(create(web, make_service("api", id="svc-api", replicas=7)))
    await leader.write(create(make_service("agent", id="svc-agent", mode="global")))
    await leader.write(edit_service("web", replicas=20))
    await leader.write(node_state("node2", NodeState.DOWN))
    await leader.write(edit_service("api", replicas=3))
    await leader.write(delete_service("agent"))
    await leader.write(create(make_service("batch", id="svc-batch", replicas=9)))
    await leader.advance(30.0)  # restart delays pass: every slot is refilled


def check_one_task_per_slot(rows: list[Row]) -> None:
    live = Counter(
        (service, slot)
        for service, slot, _, state, desired in rows
        if desired == TaskState.RUNNING.value and slot > 0
    )
    assert live, "no live task at all"
    assert max(live.values()) == 1, f"a slot holds two live tasks: {live.most_common(3)}"
    assert Counter(service for service, _ in live) == {"web": 20, "api": 3, "batch": 9}


async def test_loops_that_overflow_their_watches_end_as_loops_that_did_not() -> None:
    async with LoopLeader() as calm:
        await drive(calm)
        expected = calm.rows()
        assert calm.stats.resyncs == {}
    async with LoopLeader(max_pending=2) as flooded:
        await drive(flooded)
        got = flooded.rows()
        resynced = flooded.stats.resyncs
        # The allocator's kept index says what a fresh scan of the final store says.
        allocator = next(loop for loop in flooded.loops if isinstance(loop, Allocator))
        kept = allocator._tasks(flooded.memory)
        fresh = TaskIndex.build(flooded.memory)
        assert (kept.used, kept.subnets, kept.waiting) == (fresh.used, fresh.subnets, fresh.waiting)
        assert any(t.networks for t in flooded.memory.list(Task))
        assert flooded.memory.get(Network, "net-back") is not None

    assert sum(resynced.values()) > 0 and "allocator" in resynced and "scheduler" in resynced
    check_one_task_per_slot(expected)
    assert not any(service == "agent" and desired == "running" for service, *_, desired in got)
    assert got == expected
