"""One daemon's metrics: a private registry and what each part of the node adds to it.

Owns the registry of one daemon (a `CollectorRegistry` of its own, never the library's
global one, so that several daemons in one process do not mix), the node's identity
(``swarmlite_node_info``), the process's own metrics (the library's process, platform
and GC collectors), and the two histograms fed as things happen, through hooks that are
None unless metrics are on: each committed Raft proposal's latency
(`RaftNode.on_proposal`) and each leader loop's reconcile time (`LoopStats.on_round`).
`daemon.py` calls `add_manager` on a manager and `add_tasks` on every node. Does not own
the values read at scrape time (`metrics.cluster`, `metrics.containers`) nor the
listener (`metrics.server`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from swarmlite.agent.driver import RuntimeDriver
from swarmlite.api import Task
from swarmlite.clock import Clock
from swarmlite.manager.loop import LoopStats
from swarmlite.metrics.cluster import (
    PREFIX,
    DispatcherCollector,
    LoopCollector,
    RaftCollector,
    StoreCollector,
    TaskCollector,
    read_raft,
)
from swarmlite.metrics.containers import DEFAULT_INTERVAL, TaskStatsCollector, TaskStatsSampler
from swarmlite.raft import RaftNode
from swarmlite.store import MemoryStore

# Raft proposals wait for an fsync (a millisecond or so), loops for the store and the
# network; a lost election can hold either for seconds.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class _NodeInfo:
    def __init__(self, labels: dict[str, str]) -> None:
        self._labels = labels

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            f"{PREFIX}_node_info",
            "This node: its id, hostname, role and swarmlite version (always 1).",
            labels=list(self._labels),
        )
        info.add_metric(list(self._labels.values()), 1)
        yield info


class NodeMetrics:
    def __init__(self, *, node_id: str, hostname: str, role: str, version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        labels = {"node": node_id, "hostname": hostname, "role": role, "version": version}
        self.registry.register(_NodeInfo(labels))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        if GC_COLLECTOR is not None:  # None where the interpreter has no gc stats
            GCCollector(registry=self.registry)

    def add_manager(
        self,
        *,
        raft: RaftNode,
        memory: MemoryStore,
        loops: LoopStats,
        sessions: Callable[[], int],
        heartbeats: Callable[[], int],
    ) -> None:
        """A manager's families (see `metrics.cluster`), and its hooks set."""
        for collector in (
            RaftCollector(lambda: read_raft(raft)),
            StoreCollector(memory),
            LoopCollector(loops),
            DispatcherCollector(memory, sessions, heartbeats),
            TaskCollector(memory),
        ):
            self.registry.register(collector)
        proposals = Histogram(
            f"{PREFIX}_raft_proposal_duration_seconds",
            "From a proposal on the leader to its entry applied here.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        raft.on_proposal = proposals.observe
        rounds = Histogram(
            f"{PREFIX}_manager_loop_reconcile_duration_seconds",
            "Time a leader loop spent in one reconcile round.",
            ["loop"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        def on_round(loop: str, seconds: float) -> None:
            rounds.labels(loop).observe(seconds)

        loops.on_round = on_round

    def add_tasks(
        self,
        tasks: Callable[[], Iterable[Task]],
        driver: RuntimeDriver,
        clock: Clock,
        *,
        interval: float = DEFAULT_INTERVAL,
    ) -> TaskStatsSampler:
        """The per-task container families; the caller runs the sampler returned."""
        sampler = TaskStatsSampler(tasks, driver, clock, interval=interval)
        self.registry.register(TaskStatsCollector(sampler))
        return sampler
