"""The manager's metric families: names, labels and values, from a MemoryStore the test fills.

Each test registers the collectors it checks on a private registry, renders it with the
library's own exposition and parses the text back, so what is checked is what Prometheus
would read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from swarmlite.api import STACK_LABEL, NodeRole, NodeState, TaskState
from swarmlite.manager.loop import LoopStats, ReconcileLoop
from swarmlite.metrics import NodeMetrics, RaftReading
from swarmlite.metrics.cluster import (
    DispatcherCollector,
    LoopCollector,
    RaftCollector,
    StoreCollector,
    TaskCollector,
)
from swarmlite.store import LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_node, make_service, make_task

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(*collectors: object) -> Samples:
    """Every sample the collectors (or one registry) give, by (name, sorted labels), as
    Prometheus parses it."""
    if len(collectors) == 1 and isinstance(collectors[0], CollectorRegistry):
        registry = collectors[0]
    else:
        registry = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            registry.register(collector)  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def commit(memory: MemoryStore, tx: Tx) -> None:
    memory.apply(memory.applied_index + 1, tx.encode(now=0.0))


def test_raft_families_read_the_member_at_scrape_time() -> None:
    reading = RaftReading(
        term=3,
        is_leader=True,
        has_leader=True,
        commit_index=41,
        applied_index=40,
        last_index=42,
        voters=3,
        leader_changes=2,
    )
    readings = [reading]
    samples = scrape(RaftCollector(lambda: readings[-1]))
    assert samples[("swarmlite_raft_term", ())] == 3
    assert samples[("swarmlite_raft_is_leader", ())] == 1
    assert samples[("swarmlite_raft_has_leader", ())] == 1
    assert samples[("swarmlite_raft_commit_index", ())] == 41
    assert samples[("swarmlite_raft_applied_index", ())] == 40
    assert samples[("swarmlite_raft_last_index", ())] == 42
    assert samples[("swarmlite_raft_voters", ())] == 3
    assert samples[("swarmlite_raft_leader_changes_total", ())] == 2

    readings.append(RaftReading(4, False, False, 50, 50, 50, 3, 3))
    samples = scrape(RaftCollector(lambda: readings[-1]))
    assert samples[("swarmlite_raft_term", ())] == 4
    assert samples[("swarmlite_raft_is_leader", ())] == 0
    assert samples[("swarmlite_raft_leader_changes_total", ())] == 3


def test_store_objects_by_kind_with_zeros_and_transactions_by_result() -> None:
    memory = MemoryStore()
    web = make_service("web")
    commit(memory, Tx().create(web).create(make_task(web)).create(make_task(web, slot=2)))
    commit(memory, Tx().create(web))  # rejected: it exists already
    samples = scrape(StoreCollector(memory))
    assert samples[("swarmlite_store_objects", (("kind", "service"),))] == 1
    assert samples[("swarmlite_store_objects", (("kind", "task"),))] == 2
    assert samples[("swarmlite_store_objects", (("kind", "node"),))] == 0
    total = "swarmlite_store_transactions_total"
    assert samples[(total, (("result", "applied"),))] == 1
    assert samples[(total, (("result", "rejected"),))] == 1


def test_tasks_by_stack_service_and_state() -> None:
    memory = MemoryStore()
    web = make_service("shop_web", labels={STACK_LABEL: "shop"})
    idle = make_service("idle")  # no tasks yet: every state at 0
    node = make_node()
    commit(
        memory,
        Tx()
        .create(web)
        .create(idle)
        .create(make_task(web, slot=1, node_id=node.id, state=TaskState.RUNNING))
        .create(make_task(web, slot=2, node_id=node.id, state=TaskState.RUNNING))
        .create(make_task(web, slot=1, node_id=node.id, state=TaskState.FAILED)),
    )
    samples = scrape(TaskCollector(memory))

    def tasks(stack: str, service: str, state: str) -> float:
        key = (("service", service), ("stack", stack), ("state", state))
        return samples[("swarmlite_tasks", key)]

    assert tasks("shop", "shop_web", "running") == 2
    assert tasks("shop", "shop_web", "failed") == 1
    assert tasks("shop", "shop_web", "pending") == 0
    assert all(tasks("", "idle", state.value) == 0 for state in TaskState)
    assert len(samples) == 2 * len(TaskState)


def test_sessions_heartbeats_and_nodes_by_role_and_state() -> None:
    memory = MemoryStore()
    commit(
        memory,
        Tx()
        .create(make_node(role=NodeRole.MANAGER, state=NodeState.READY))
        .create(make_node(state=NodeState.READY))
        .create(make_node(state=NodeState.DOWN)),
    )
    samples = scrape(DispatcherCollector(memory, lambda: 2, lambda: 17))
    assert samples[("swarmlite_dispatcher_sessions", ())] == 2
    assert samples[("swarmlite_dispatcher_heartbeats_total", ())] == 17

    def nodes(role: str, state: str) -> float:
        return samples[("swarmlite_nodes", (("role", role), ("state", state)))]

    assert nodes("manager", "ready") == 1
    assert nodes("worker", "ready") == 1
    assert nodes("worker", "down") == 1
    assert nodes("manager", "down") == 0


class _Counting(ReconcileLoop):
    """A loop whose rounds block while `hold` is clear; `entered` is set as one begins."""

    name = "counting"
    kinds = ("service",)

    def __init__(self, store: Store, clock: FakeClock) -> None:
        super().__init__(store, clock)
        self.entered = asyncio.Event()
        self.hold = asyncio.Event()
        self.hold.set()

    async def reconcile(self) -> None:
        self.entered.set()
        await self.hold.wait()


async def test_a_loop_reports_its_pending_events_and_each_rounds_time() -> None:
    memory = MemoryStore()
    clock = FakeClock()
    store = Store(memory, LocalProposer(memory), clock=clock)
    stats = LoopStats()
    rounds: list[tuple[str, float]] = []
    round_done = asyncio.Event()

    def on_round(loop: str, seconds: float) -> None:
        rounds.append((loop, seconds))
        round_done.set()

    stats.on_round = on_round
    loop = _Counting(store, clock)
    loop.stats = stats
    running = asyncio.create_task(loop.run())
    try:
        await round_done.wait()  # the first round, on the state as of the watch's start
        assert stats.pending() == {"counting": 0}
        loop.hold.clear()  # the next round blocks: events pile up behind it
        loop.entered.clear()
        await store.propose(Tx().create(make_service("a")))
        await loop.entered.wait()
        await store.propose(Tx().create(make_service("b")))
        await store.propose(Tx().create(make_service("c")))
        samples = scrape(LoopCollector(stats))
        pending = ("swarmlite_manager_loop_pending_events", (("loop", "counting"),))
        assert samples[pending] == 2
        round_done.clear()
        clock.advance(0.25)
        loop.hold.set()
        await round_done.wait()
        assert rounds[1] == ("counting", 0.25)
    finally:
        loop.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert stats.pending() == {}  # a stopped loop's watch is closed: it is left out


def test_node_metrics_keep_a_registry_of_their_own() -> None:
    one = NodeMetrics(node_id="n1", hostname="h1", role="manager", version="0.1.0")
    two = NodeMetrics(node_id="n2", hostname="h2", role="worker", version="0.1.0")
    samples = {
        (s.name, s.labels.get("node"))
        for family in text_string_to_metric_families(generate_latest(one.registry).decode())
        for s in family.samples
    }
    assert ("swarmlite_node_info", "n1") in samples
    assert ("swarmlite_node_info", "n2") not in samples
    assert any(name == "process_resident_memory_bytes" for name, _ in samples)
    assert two.registry is not one.registry


class _Raft:
    """What `read_raft` and the proposal hook use of a RaftNode."""

    def __init__(self) -> None:
        self.is_leader = True
        self.applied = 7
        self.leader_changes = 1
        self.on_proposal: Callable[[float], None] | None = None

    def status(self) -> SimpleNamespace:
        return SimpleNamespace(term=2, leader="m1", commit=7, last_index=8)

    def voters(self) -> frozenset[str]:
        return frozenset({"m1"})


def test_a_manager_feeds_the_proposal_and_reconcile_histograms_through_its_hooks() -> None:
    metrics = NodeMetrics(node_id="m1", hostname="h1", role="manager", version="0.1.0")
    raft, loops = _Raft(), LoopStats()
    metrics.add_manager(
        raft=raft,  # type: ignore[arg-type]
        memory=MemoryStore(),
        loops=loops,
        sessions=lambda: 0,
        heartbeats=lambda: 0,
    )
    assert raft.on_proposal is not None and loops.on_round is not None
    raft.on_proposal(0.003)
    raft.on_proposal(0.2)
    loops.on_round("scheduler", 0.0001)
    samples = scrape(metrics.registry)
    proposals = "swarmlite_raft_proposal_duration_seconds"
    assert samples[(f"{proposals}_count", ())] == 2
    assert samples[(f"{proposals}_bucket", (("le", "0.005"),))] == 1
    rounds = "swarmlite_manager_loop_reconcile_duration_seconds"
    assert samples[(f"{rounds}_count", (("loop", "scheduler"),))] == 1
    assert samples[("swarmlite_raft_term", ())] == 2
    assert samples[("swarmlite_raft_applied_index", ())] == 7
