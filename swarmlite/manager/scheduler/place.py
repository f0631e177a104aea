"""Choose a node for each pending task from a ClusterView.

Owns filter order, the order among the nodes that pass, and the reasons a task cannot be
placed, and which generic resources a placed task gets (the node's ``claim``); never
writes to the store. ``Planner.plan`` takes tasks in a fixed order (service,
slot, node, id) and grows the view with each placement, so the same state always gives
the same placements and a batch accounts for the tasks it placed itself.

A run of tasks next to each other in that order with the same service and spec and no node
of their own is placed in one go, with the same decisions as placing them one at a time
(``Planner.place``, the reference): the nodes wait in a heap by rank; each task takes the
best that passes the filters, which goes back with its new rank and is checked again
(its resources, ports and replica room changed). A placement only ever makes a node less
acceptable and ranks higher, so a popped node whose rank has grown goes back and the next
is tried (a lazy heap). The filters that read nothing a placement changes (``filters``)
run once for each distinct placement, over every node; their answers are kept across plans
until a node joins, leaves or changes (``ClusterView.nodes_epoch``). Without spread a node's
rank does not depend on the others, so the other filters run on a node only when it comes
up; with spread the counts are over the nodes that pass, so every node is checked up front,
and a node dropped from the run lowers the counts of its label groups, whose nodes go back
with their new ranks. Cost: about log(nodes) per task, plus a rank per node per run. A
global task (its node set) is one check of that node.

Among the nodes that pass every filter, the first by:
1. placement preferences (``spread`` over node.labels.<x>, like swarm): the label's value
   holding the fewest live tasks of the service, counted over the nodes that passed;
   nodes without the label form one more group; several preferences nest in order;
2. back-off: a node where the service failed at least FAILURE_THRESHOLD times in the
   failure window comes after every other node (more failures, later);
3. fewest live tasks of the same service; 4. fewest live tasks; 5. node id.

A node rejected by several filters counts for the first of them; a reason lists the
causes that rejected most nodes first. Reasons read like
"no suitable node (insufficient resources on 2 nodes (memory); 1 node not available
(drain))", or "no node satisfies constraint node.labels.zone==b: 3 nodes rejected" when
one constraint alone rejected every node.
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from swarmlite.api import GenericResource, Task
from swarmlite.manager.constraints import invalid_constraint
from swarmlite.manager.scheduler.filters import Filter, default_filters, nodes
from swarmlite.manager.scheduler.view import FAILURE_THRESHOLD, ClusterView, NodeInfo

MAX_DETAILS = 3  # distinct details listed per filter in a reason

_LABEL_PREFIX = "node.labels."

# spread group counts, recent failures (0 unless backed off), tasks of the service, tasks, id
Rank = tuple[tuple[int, ...], int, int, int, str]


class Decision(msgspec.Struct, frozen=True, gc=False):
    """For one task: the node chosen and the generic resources it gets there, or why no
    node could be. (A struct: one per task of a pass, made 20 times faster than a frozen
    dataclass.)"""

    task: Task
    node_id: str = ""
    reason: str = ""
    assigned: tuple[GenericResource, ...] = ()

    @property
    def placed(self) -> bool:
        return bool(self.node_id)


def _task_order(task: Task) -> tuple[str, int, str, str]:
    return (task.service_id, task.slot, task.node_id, task.id)


def spread_label(preference: str) -> str | None:
    """The node label a spread preference names ("node.labels.zone" -> "zone"), else None.

    Accepts the forms a compose file or the CLI give: "node.labels.zone",
    "spread=node.labels.zone", "spread: node.labels.zone".
    """
    text = preference.strip()
    for prefix in ("spread=", "spread:"):
        if text.startswith(prefix):
            text = text.removeprefix(prefix).strip()
    if text.startswith(_LABEL_PREFIX) and len(text) > len(_LABEL_PREFIX):
        return text.removeprefix(_LABEL_PREFIX)
    return None


class Planner:
    def __init__(self, filters: Sequence[Filter] | None = None) -> None:
        self.filters: list[Filter] = list(filters) if filters is not None else default_filters()
        # What a placement on a node can change, in filter order (see ``filters``).
        self.rechecks = [check for check in self.filters if getattr(check, "reads_occupancy", True)]
        self.statics = [check for check in self.filters if check not in self.rechecks]
        # Whether a node's first rejection can be looked for among the static filters first
        # (they all come before the others), so that one sweep serves every run in a plan
        # whose tasks have the same placement.
        self.statics_first = self.filters == self.statics + self.rechecks
        # The static sweeps by placement, kept across plans while the view and its nodes
        # stay the same (a node's change bumps ``ClusterView.nodes_epoch``).
        self._sweeps: dict[bytes, _Sweep] = {}
        self._swept: tuple[ClusterView, int] | None = None

    def sweeps_for(self, view: ClusterView) -> dict[bytes, _Sweep]:
        """The static sweeps kept for ``view`` as it is now (emptied when it changed)."""
        if self._swept is None or self._swept[0] is not view or self._swept[1] != view.nodes_epoch:
            self._sweeps = {}
            self._swept = (view, view.nodes_epoch)
        return self._sweeps

    def plan(self, view: ClusterView, tasks: Iterable[Task]) -> list[Decision]:
        """A decision for every task, placements recorded in ``view`` as they are made."""
        decisions: list[Decision] = []
        ordered = sorted(tasks, key=_task_order)
        sweeps = self.sweeps_for(view)
        start = 0
        while start < len(ordered):
            first, end = ordered[start], start + 1
            if first.node_id:
                decision = self.place(view, first)
                record(view, decision)
                decisions.append(decision)
            else:
                while end < len(ordered) and _same_run(first, ordered[end]):
                    end += 1
                decisions += self.place_run(view, ordered[start:end], sweeps)
            start = end
        return decisions

    def place_run(
        self, view: ClusterView, run: Sequence[Task], sweeps: dict[bytes, _Sweep] | None = None
    ) -> list[Decision]:
        """Decisions for tasks of one service and spec with no node of their own, in order,
        each recorded in ``view``: the same as ``place`` then ``record`` for each in turn.
        ``sweeps`` keeps the static filters' answers for the other runs of the same plan."""
        first = run[0]
        invalid = invalid_constraint(first.spec.placement.constraints)
        if invalid is not None:
            return [Decision(task, reason=invalid) for task in run]
        rejections: dict[str, tuple[Filter, str]] = {}  # node id -> first filter, detail
        eligible: dict[str, NodeInfo] = {}
        candidates: Iterable[NodeInfo] = view.nodes.values()
        checks = self.filters
        if self.statics_first and sweeps is not None:
            key = _placement_key(first)
            sweep = sweeps.get(key)
            if sweep is None:
                sweep = sweeps[key] = self._sweep(view, first)
            candidates, checks = sweep.passed, self.rechecks
            rejections.update(sweep.rejected)
        # Nodes in the heap whose filters are still to be checked, when they come up.
        unchecked: set[str] | None = None
        if any(spread_label(pref) for pref in first.spec.placement.preferences):
            # Spread counts over the nodes that pass: every node is checked up front.
            for info in candidates:
                failed = self.first_rejection(info, first, view, checks)
                if failed is None:
                    eligible[info.id] = info
                else:
                    rejections[info.id] = (failed, failed.detail(info, first, view))
        else:
            # A node's rank does not depend on the others: check the best when it comes up.
            eligible = {info.id: info for info in candidates}
            unchecked = set(eligible)
        heap = _RunHeap(eligible, first)
        wanted = first.spec.resources.reservations.generic_resources
        decisions: list[Decision] = []
        reason = ""
        for index, task in enumerate(run):
            best = None
            while not reason:
                best = heap.pop_best()
                if best is None or unchecked is None or best.id not in unchecked:
                    break
                unchecked.discard(best.id)
                failed = self.first_rejection(best, task, view, checks)
                if failed is None:
                    break
                rejections[best.id] = (failed, failed.detail(best, task, view))
                heap.drop(best)
                best = None
            if best is None:
                # Nothing changes any more in this run: every later task gets this reason.
                reason = reason or self.explain(_in_node_order(view, rejections))
                decisions.append(Decision(task, reason=reason))
                continue
            assigned = tuple(best.claim(wanted)) if wanted else ()
            decision = Decision(task, node_id=best.id, assigned=assigned)
            record(view, decision)
            decisions.append(decision)
            if index + 1 < len(run) and unchecked is not None:
                unchecked.add(best.id)  # checked again when it comes up
                heap.placed(best, stays=True)
            elif index + 1 < len(run):
                after = run[index + 1]  # not placed yet: it holds no port here
                failed = self.first_rejection(best, after, view, self.rechecks)
                heap.placed(best, stays=failed is None)
                if failed is not None:
                    rejections[best.id] = (failed, failed.detail(best, after, view))
        return decisions

    def _sweep(self, view: ClusterView, task: Task) -> _Sweep:
        """The static filters over every node for ``task`` (see ``filters``)."""
        sweep = _Sweep()
        for info in view.nodes.values():
            failed = self.first_rejection(info, task, view, self.statics)
            if failed is None:
                sweep.passed.append(info)
            else:
                sweep.rejected[info.id] = (failed, failed.detail(info, task, view))
        return sweep

    def place(self, view: ClusterView, task: Task) -> Decision:
        """The decision for one task (the view is not changed)."""
        invalid = invalid_constraint(task.spec.placement.constraints)
        if invalid is not None:
            return Decision(task, reason=invalid)
        if task.node_id:  # global: that node or none
            info = view.nodes.get(task.node_id)
            if info is None:
                return Decision(task, reason=f"node {task.node_id} is not in the cluster")
            candidates = [info]
        else:
            candidates = list(view.nodes.values())
        eligible: list[NodeInfo] = []
        rejected: dict[str, list[str]] = {}
        for info in candidates:
            failed = self.first_rejection(info, task, view)
            if failed is None:
                eligible.append(info)
            else:
                rejected.setdefault(failed.name, []).append(failed.detail(info, task, view))
        if not eligible:
            return Decision(task, reason=self.explain(rejected))
        best = (
            eligible[0] if len(eligible) == 1 else min(eligible, key=self.ranking(eligible, task))
        )
        wanted = task.spec.resources.reservations.generic_resources
        assigned = tuple(best.claim(wanted)) if wanted else ()
        return Decision(task, node_id=best.id, assigned=assigned)

    def first_rejection(
        self,
        info: NodeInfo,
        task: Task,
        view: ClusterView,
        filters: Sequence[Filter] | None = None,
    ) -> Filter | None:
        """The first of ``filters`` (default: all) that rejects ``info`` for ``task``."""
        for check in self.filters if filters is None else filters:
            if not check.accepts(info, task, view):
                return check
        return None

    def order(self, eligible: Sequence[NodeInfo], task: Task) -> list[NodeInfo]:
        """``eligible`` best first (see the module docstring)."""
        return sorted(eligible, key=self.ranking(eligible, task))

    def ranking(self, eligible: Sequence[NodeInfo], task: Task) -> Callable[[NodeInfo], Rank]:
        """The sort key that puts the best of ``eligible`` for ``task`` first."""
        service = task.service_id
        labels = [spread_label(pref) for pref in task.spec.placement.preferences]
        labels_used = [label for label in labels if label is not None]

        def path(info: NodeInfo, depth: int) -> tuple[str | None, ...]:
            node_labels = info.node.spec.labels
            return tuple(node_labels.get(label) for label in labels_used[: depth + 1])

        group_counts: list[collections.Counter[tuple[str | None, ...]]] = []
        for depth in range(len(labels_used)):
            counts: collections.Counter[tuple[str | None, ...]] = collections.Counter()
            for info in eligible:
                counts[path(info, depth)] += info.by_service[service]
            group_counts.append(counts)

        def rank(info: NodeInfo) -> Rank:
            spread = tuple(counts[path(info, depth)] for depth, counts in enumerate(group_counts))
            failures = info.recent_failures(service) if info.backed_off(service) else 0
            return (spread, failures, info.by_service[service], len(info.tasks), info.id)

        return rank

    def explain(self, rejected: dict[str, list[str]]) -> str:
        """The reason for a task no node took, from each filter's rejected nodes' details."""
        if not rejected:
            return "no suitable node (the cluster has no nodes)"
        if list(rejected) == ["constraints"]:
            details = rejected["constraints"]
            if len(set(details)) == 1:
                return f"no node satisfies constraint {details[0]}: {nodes(len(details))} rejected"
        parts: list[tuple[int, str]] = []
        for check in self.filters:
            found = rejected.get(check.name)
            if not found:
                continue
            part = check.explain(len(found))
            distinct = list(dict.fromkeys(detail for detail in found if detail))
            if distinct:
                shown = ", ".join(distinct[:MAX_DETAILS])
                more = ", ..." if len(distinct) > MAX_DETAILS else ""
                part = f"{part} ({shown}{more})"
            parts.append((len(found), part))
        # The cause that rejected most nodes first; filter order among equals (stable sort).
        parts.sort(key=lambda counted: -counted[0])
        return f"no suitable node ({'; '.join(part for _, part in parts)})"


def record(view: ClusterView, decision: Decision) -> None:
    """Grow ``view`` with a placed decision's task (with what it was assigned)."""
    if decision.placed:
        placed = msgspec.structs.replace(
            decision.task, assigned_generic_resources=list(decision.assigned)
        )
        view.place(placed, decision.node_id)


@dataclass
class _Sweep:
    """The static filters' answers for one placement: the nodes that passed them all (in
    view order) and, for the others, the first that rejected each, with its detail."""

    passed: list[NodeInfo] = field(default_factory=list)
    rejected: dict[str, tuple[Filter, str]] = field(default_factory=dict)


_placement_encoder = msgspec.msgpack.Encoder()


def _placement_key(task: Task) -> bytes:
    """What the static filters read of a task (``filters``: its placement), as a key."""
    return _placement_encoder.encode(task.spec.placement)


def _same_run(first: Task, task: Task) -> bool:
    """Whether ``task`` is placed like ``first``: same service and spec, no node of its own."""
    return (
        not task.node_id
        and task.service_id == first.service_id
        and (task.spec is first.spec or task.spec == first.spec)
    )


def _in_node_order(
    view: ClusterView, rejections: dict[str, tuple[Filter, str]]
) -> dict[str, list[str]]:
    """Each filter's rejected nodes' details, nodes in view order (as ``place`` lists them)."""
    rejected: dict[str, list[str]] = {}
    for node_id in view.nodes:
        check, detail = rejections[node_id]
        rejected.setdefault(check.name, []).append(detail)
    return rejected


Path = tuple[str | None, ...]


class _RunHeap:
    """The nodes still eligible for a run, by rank (``Planner.ranking``'s), lazily.

    Each eligible node has one live entry, whose rank is at most the node's rank now: a
    placement raises ranks (of the node, and by spread of its label groups) without a new
    entry; a popped entry whose rank grew goes back. Whatever lowers a rank (a dropped node
    no longer counts in its groups) pushes a new entry.
    """

    def __init__(self, eligible: dict[str, NodeInfo], task: Task) -> None:
        service = self.service = task.service_id
        labels = [spread_label(pref) for pref in task.spec.placement.preferences]
        used = [label for label in labels if label is not None]
        self.alive = eligible
        self.paths: dict[str, list[Path]] = {}
        self.counts: list[collections.Counter[Path]] = [collections.Counter() for _ in used]
        self.groups: list[dict[Path, list[NodeInfo]]] = [{} for _ in used]
        # Nodes where the service is backed off (fixed for the pass: its wall time is).
        self.failures: dict[str, int] = {}
        for info in eligible.values():
            if used:
                node_labels = info.node.spec.labels
                values = tuple(node_labels.get(label) for label in used)
                paths = [values[: depth + 1] for depth in range(len(used))]
                self.paths[info.id] = paths
                for depth, path in enumerate(paths):
                    self.counts[depth][path] += info.by_service[service]
                    self.groups[depth].setdefault(path, []).append(info)
            if service in info.failed:
                recent = info.recent_failures(service)
                if recent >= FAILURE_THRESHOLD:
                    self.failures[info.id] = recent
        self.version = dict.fromkeys(eligible, 0)
        if used:
            self.heap = [(self.rank(info), 0, info.id) for info in eligible.values()]
        else:  # ``rank`` inlined: one entry per node of the cluster
            failures = self.failures
            self.heap = [
                (
                    (
                        (),
                        failures.get(info.id, 0),
                        info.by_service.get(service, 0),
                        len(info.tasks),
                        info.id,
                    ),
                    0,
                    info.id,
                )
                for info in eligible.values()
            ]
        heapq.heapify(self.heap)

    def rank(self, info: NodeInfo) -> Rank:
        counts = self.counts
        spread: tuple[int, ...] = ()
        if counts:
            spread = tuple(counts[depth][path] for depth, path in enumerate(self.paths[info.id]))
        tasks = info.by_service.get(self.service, 0)
        return (spread, self.failures.get(info.id, 0), tasks, len(info.tasks), info.id)

    def pop_best(self) -> NodeInfo | None:
        """Take the best eligible node out (tell ``placed`` what became of it), or None."""
        heap = self.heap
        while heap:
            rank, version, node_id = heapq.heappop(heap)
            if self.version.get(node_id) != version:
                continue  # superseded, or the node was dropped
            info = self.alive[node_id]
            # Without spread only a placement on the node itself moves its rank, and that
            # pushes a fresh entry: a live entry is exact.
            now = self.rank(info) if self.counts else rank
            if now == rank:
                self.version[node_id] = version + 1
                return info
            self.version[node_id] = version + 1
            heapq.heappush(heap, (now, version + 1, node_id))
        return None

    def placed(self, info: NodeInfo, *, stays: bool) -> None:
        """``info`` (popped) got one more task of the service: back in if it ``stays``
        eligible for the next, else out of the run."""
        for depth, path in enumerate(self.paths.get(info.id, ())):
            self.counts[depth][path] += 1
        if stays:
            self._push(info)
        else:
            self.drop(info)

    def drop(self, info: NodeInfo) -> None:
        """``info`` takes no more of this run: it leaves, and its groups count less."""
        del self.alive[info.id]
        del self.version[info.id]
        amount = info.by_service[self.service]
        if not amount or not self.counts:
            return
        lowered: dict[str, NodeInfo] = {}
        for depth, path in enumerate(self.paths[info.id]):
            self.counts[depth][path] -= amount
            for other in self.groups[depth][path]:
                if other.id in self.alive:
                    lowered[other.id] = other
        for other in lowered.values():
            self._push(other)

    def _push(self, info: NodeInfo) -> None:
        version = self.version[info.id] + 1
        self.version[info.id] = version
        heapq.heappush(self.heap, (self.rank(info), version, info.id))
