"""What a manager shows Prometheus: Raft, the store, the leader's loops, sessions and tasks.

Owns the names, help texts and labels of the manager's metric families, and reads every
value when scraped, from the objects that already hold it (`raft.RaftNode` through
`RaftReading`, `store.MemoryStore`, `manager.loop.LoopStats`, the dispatcher's sessions
and heartbeats); nothing here runs between scrapes. Does not own the two histograms fed
as things happen (proposal latency, reconcile time: `metrics.node` makes them) nor the
HTTP listener (`metrics.server`).

Every manager answers for its own copy of the store, so a cluster's managers report the
same tasks and nodes (a follower a moment late); sessions, heartbeats and the loops exist
on the leader only. Families with a fixed set of values (task and node states, object
kinds) report every value, zeros included, so that a series drops to 0 instead of
vanishing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from swarmlite.api import KINDS, STACK_LABEL, Node, NodeRole, NodeState, Service, Task, TaskState
from swarmlite.manager.loop import LoopStats
from swarmlite.raft import RaftNode
from swarmlite.store import MemoryStore, ReadTx

PREFIX = "swarmlite"


@dataclass(frozen=True)
class RaftReading:
    """One look at a raft member, as metrics show it."""

    term: int
    is_leader: bool
    has_leader: bool
    commit_index: int
    applied_index: int
    last_index: int
    voters: int
    leader_changes: int


def read_raft(node: RaftNode) -> RaftReading:
    status = node.status()
    return RaftReading(
        term=status.term,
        is_leader=node.is_leader,
        has_leader=status.leader is not None,
        commit_index=status.commit,
        applied_index=node.applied,
        last_index=status.last_index,
        voters=len(node.voters()),
        leader_changes=node.leader_changes,
    )


class RaftCollector:
    def __init__(self, read: Callable[[], RaftReading]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        r = self._read()
        gauges = (
            ("raft_term", "The current Raft term.", r.term),
            ("raft_is_leader", "1 if this manager is the Raft leader, else 0.", r.is_leader),
            ("raft_has_leader", "1 if this manager knows a leader, else 0.", r.has_leader),
            ("raft_commit_index", "The highest log index known to be committed.", r.commit_index),
            ("raft_applied_index", "The highest log index applied to the store.", r.applied_index),
            ("raft_last_index", "The index of the last entry in this member's log.", r.last_index),
            ("raft_voters", "Voting members of the Raft cluster.", r.voters),
        )
        for name, help_text, value in gauges:
            yield GaugeMetricFamily(f"{PREFIX}_{name}", help_text, value=float(value))
        yield CounterMetricFamily(
            f"{PREFIX}_raft_leader_changes",
            "Times this manager saw a new Raft leader.",
            value=r.leader_changes,
        )


class StoreCollector:
    def __init__(self, memory: MemoryStore) -> None:
        self._memory = memory

    def collect(self) -> Iterable[Metric]:
        objects = GaugeMetricFamily(
            f"{PREFIX}_store_objects", "Objects in the store, by kind.", labels=["kind"]
        )
        for kind in sorted(KINDS):
            objects.add_metric([kind], self._memory.count(kind))
        yield objects
        transactions = CounterMetricFamily(
            f"{PREFIX}_store_transactions",
            "Committed store transactions applied here, by result (a rejected one lost a "
            "compare-and-set or broke a rule, and changed nothing).",
            labels=["result"],
        )
        transactions.add_metric(["applied"], self._memory.transactions_applied)
        transactions.add_metric(["rejected"], self._memory.transactions_rejected)
        yield transactions


class LoopCollector:
    def __init__(self, stats: LoopStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        pending = GaugeMetricFamily(
            f"{PREFIX}_manager_loop_pending_events",
            "Store events queued for a running leader loop and not yet taken by it.",
            labels=["loop"],
        )
        queued = self._stats.pending()
        for loop, count in sorted(queued.items()):
            pending.add_metric([loop], count)
        yield pending
        resyncs = CounterMetricFamily(
            f"{PREFIX}_manager_loop_resyncs",
            "Times a leader loop fell too far behind its watch (or saw the store restored) "
            "and started again from a fresh snapshot.",
            labels=["loop"],
        )
        for loop in sorted(set(queued) | set(self._stats.resyncs)):
            resyncs.add_metric([loop], self._stats.resyncs.get(loop, 0))
        yield resyncs


class DispatcherCollector:
    """Agent sessions and heartbeats (on the leader) and the nodes by state (the store)."""

    def __init__(
        self, read: ReadTx, sessions: Callable[[], int], heartbeats: Callable[[], int]
    ) -> None:
        self._read = read
        self._sessions = sessions
        self._heartbeats = heartbeats

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            f"{PREFIX}_dispatcher_sessions",
            "Agent sessions open on this manager (only the leader serves them).",
            value=self._sessions(),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_dispatcher_heartbeats",
            "Messages from agents counted as heartbeats by this manager.",
            value=self._heartbeats(),
        )
        counts = {(role, state): 0 for role in NodeRole for state in NodeState}
        for node in self._read.list(Node):
            counts[(node.spec.role, node.status.state)] += 1
        nodes = GaugeMetricFamily(
            f"{PREFIX}_nodes", "Nodes of the cluster, by role and state.", labels=["role", "state"]
        )
        for (role, state), count in counts.items():
            nodes.add_metric([role.value, state.value], count)
        yield nodes


class TaskCollector:
    """Tasks by stack, service and state (every state of every service, zeros included)."""

    def __init__(self, read: ReadTx) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        counts: dict[tuple[str, str], dict[TaskState, int]] = {}
        for service in self._read.list(Service):
            key = (service.spec.labels.get(STACK_LABEL, ""), service.spec.name)
            counts.setdefault(key, dict.fromkeys(TaskState, 0))
        for task in self._read.list(Task):
            key = (task.service_labels.get(STACK_LABEL, ""), task.service_name)
            counts.setdefault(key, dict.fromkeys(TaskState, 0))[task.status.state] += 1
        tasks = GaugeMetricFamily(
            f"{PREFIX}_tasks",
            "Tasks in the store by stack, service and observed state (history included).",
            labels=["stack", "service", "state"],
        )
        for (stack, name), states in sorted(counts.items()):
            for state, count in states.items():
                tasks.add_metric([stack, name, state.value], count)
        yield tasks
