"""Choose a node for each pending task from a ClusterView.

Owns filter order, the order among the nodes that pass, and the reasons a task cannot be
placed, and which generic resources a placed task gets (the node's ``claim``); never
writes to the store. ``Planner.plan`` takes tasks in a fixed order (service,
slot, node, id) and grows the view with each placement, so the same state always gives
the same placements and a batch accounts for the tasks it placed itself.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import msgspec

from swarmlite.api import GenericResource, Task
from swarmlite.manager.constraints import invalid_constraint
from swarmlite.manager.scheduler.filters import Filter, default_filters, nodes
from swarmlite.manager.scheduler.view import ClusterView, NodeInfo

MAX_DETAILS = 3  # distinct details listed per filter in a reason

_LABEL_PREFIX = "node.labels."

# spread group counts, recent failures (0 unless backed off), tasks of the service, tasks, id
Rank = tuple[tuple[int, ...], int, int, int, str]


@dataclass(frozen=True, slots=True)
class Decision:
    """For one task: the node chosen and the generic resources it gets there, or why no
    node could be."""

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

    def plan(self, view: ClusterView, tasks: Iterable[Task]) -> list[Decision]:
        """A decision for every task, placements recorded in ``view`` as they are made."""
        decisions = []
        for task in sorted(tasks, key=_task_order):
            decision = self.place(view, task)
            if decision.placed:
                placed = msgspec.structs.replace(
                    task, assigned_generic_resources=list(decision.assigned)
                )
                view.place(placed, decision.node_id)
            decisions.append(decision)
        return decisions

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

    def first_rejection(self, info: NodeInfo, task: Task, view: ClusterView) -> Filter | None:
        for check in self.filters:
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
