"""The placement rules: each a small filter that accepts or rejects one node for one task.

Owns the rules and their words. A filter answers ``accepts(node, task, view)`` from a
NodeInfo and the pass's ClusterView alone (no store, no clock), ``explain(count)`` says in
words why it rejected ``count`` nodes ("insufficient resources on 2 nodes"), and
``detail(node, task, view)`` names what was wrong on one rejected node ("drain",
"memory", "node.labels.zone==b"), which the reason of an unplaced task lists in
parentheses. Does not own the order of nodes nor the reasons' assembly (``place``).

Invariants: filters are pure: the same node, task and view always give the same answer.
A task placed on a node never turns a rejection there into an acceptance (placements only
take resources, ports and replica room), and a filter whose ``reads_occupancy`` is False
reads nothing a placement changes, only the node's own state, labels and platform and the
task's ``spec.placement``: ``place`` checks only the others again on a node that took a
task of a batch, and sweeps the static ones once per placement until a node changes. A
filter without the attribute is taken to read occupancy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from swarmlite.api import NodeAvailability, NodeState, Task
from swarmlite.manager.constraints import invalid_constraint, unmet_constraint
from swarmlite.manager.scheduler.view import ClusterView, NodeInfo


def nodes(count: int) -> str:
    """'1 node', '3 nodes'."""
    return f"{count} node" if count == 1 else f"{count} nodes"


class Filter(Protocol):
    name: str
    reads_occupancy: bool  # whether a placement on the node can change the answer

    def accepts(self, node: NodeInfo, task: Task, view: ClusterView) -> bool:
        """Whether ``task`` may run on ``node``."""
        ...

    def explain(self, count: int) -> str:
        """Why this filter rejected ``count`` nodes, in words."""
        ...

    def detail(self, node: NodeInfo, task: Task, view: ClusterView) -> str:
        """What was wrong on a node this filter rejected ("" when the count says it all)."""
        ...


class ReadyFilter:
    """Only nodes whose agent is connected and healthy (READY) take tasks."""

    name = "ready"
    reads_occupancy = False

    def accepts(self, node: NodeInfo, task: Task, view: ClusterView) -> bool:
        return node.node.status.state == NodeState.READY

    def explain(self, count: int) -> str:
        return f"{nodes(count)} not ready"

    def detail(self, node: NodeInfo, task: Task, view: ClusterView) -> str:
        return node.node.status.state.value


class AvailabilityFilter:
    """Only ACTIVE nodes take new tasks; PAUSE and DRAIN keep (or lose) what they have."""

    name = "availability"
    reads_occupancy = False

    def accepts(self, node: NodeInfo, task: Task, view: ClusterView) -> bool:
        return node.node.spec.availability == NodeAvailability.ACTIVE

    def explain(self, count: int) -> str:
        return f"{nodes(count)} not available"

    def detail(self, node: NodeInfo, task: Task, view: ClusterView) -> str:
        return node.node.spec.availability.value


# The same architecture under the names Go (and Docker) and the kernel give it.
_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def _arch(name: str) -> str:
    lowered = name.lower()
    return _ARCH_ALIASES.get(lowered, lowered)


def declared_platforms(task: Task) -> list[tuple[str, str]]:
    """The (os, arch) pairs the task can run on; [] (the usual case) means any.

    Read from ``placement.platforms`` (items with ``os`` and ``architecture``; the Docker
    API's ``Placement.Platforms`` fills it).
    """
    declared: Sequence[Any] = getattr(task.spec.placement, "platforms", None) or ()
    pairs = []
    for platform in declared:
        os_name = str(getattr(platform, "os", "") or "")
        arch = str(getattr(platform, "architecture", "") or getattr(platform, "arch", "") or "")
        pairs.append((os_name.lower(), _arch(arch)))
    return pairs


class PlatformFilter:
    """A task that declares platforms runs only on a node of one of them (empty part: any)."""

    name = "platform"
    reads_occupancy = False

    def accepts(self, node: NodeInfo, task: Task, view: ClusterView) -> bool:
        declared = declared_platforms(task)
        if not declared:
            return True
        node_os, node_arch = node.node.status.os.lower(), _arch(node.node.status.arch)
        return any(
            (not os_name or not node_os or os_name == node_os)
            and (not arch or not node_arch or arch == node_arch)
            for os_name, arch in declared
        )

    def explain(self, count: int) -> str:
        return f"unsupported platform on {nodes(count)}"

    def detail(self, node: NodeInfo, task: Task, view: ClusterView) -> str:
        status = node.node.status
        return f"{status.os or '?'}/{status.arch or '?'}"


class ConstraintsFilter:
    """Every ``placement.constraints`` expression must hold on the node."""

    name = "constraints"
    reads_occupancy = False

    def accepts(self, node: NodeInfo, task: Task, view: ClusterView) -> bool:
        return self._failing(node, task) is None

    def explain(self, count: int) -> str:
        return f"scheduling constraints not satisfied on {nodes(count)}"

    def detail(self, node: NodeInfo, task: Task, view: ClusterView) -> str:
        return self._failing(node, task) or ""

    def _failing(self, node: NodeInfo, task: Task) -> str | None:
        constraints = task.spec.placement.constraints
        if not constraints:
            return None
        invalid = invalid_constraint(constraints)
        if invalid is not None:
            return invalid
        return unmet_constraint(node.node, constraints)


class ResourcesFilter:
    """The node's free CPU and memory (what it reports minus what its tasks reserve) must
    cover the task's reservations. A node that reports 0 for a resource has no limit.
    Generic resources have no such exception: a kind the node does not advertise, or whose
    free count (named ones not assigned, or the count less what was assigned) is below the
    reservation, rejects the node, the detail naming the kind ("gpu")."""

    name = "resources"
    reads_occupancy = True

    def accepts(self, node: NodeInfo, task: Task, view: ClusterView) -> bool:
        return not self._short(node, task)

    def explain(self, count: int) -> str:
        return f"insufficient resources on {nodes(count)}"

    def detail(self, node: NodeInfo, task: Task, view: ClusterView) -> str:
        return " and ".join(self._short(node, task))

    def _short(self, node: NodeInfo, task: Task) -> list[str]:
        want = task.spec.resources.reservations
        have = node.node.status
        short = []
        if have.nano_cpus and want.nano_cpus + node.reserved_nano_cpus > have.nano_cpus:
            short.append("cpu")
        if have.memory_bytes and want.memory_bytes + node.reserved_memory_bytes > have.memory_bytes:
            short.append("memory")
        if want.generic_resources:
            short += [
                wanted.kind
                for wanted in want.generic_resources
                if node.free(wanted.kind) < wanted.value
            ]
        return short


class MaxReplicasFilter:
    """At most ``placement.max_replicas_per_node`` live tasks of a service on one node."""

    name = "max_replicas_per_node"
    reads_occupancy = True

    def accepts(self, node: NodeInfo, task: Task, view: ClusterView) -> bool:
        limit = task.spec.placement.max_replicas_per_node
        return limit <= 0 or node.by_service[task.service_id] < limit

    def explain(self, count: int) -> str:
        return f"max replicas per node reached on {nodes(count)}"

    def detail(self, node: NodeInfo, task: Task, view: ClusterView) -> str:
        return f"limit {task.spec.placement.max_replicas_per_node}"


class HostPortFilter:
    """A port published in host mode can be held by one live task per node and protocol."""

    name = "host_ports"
    reads_occupancy = True

    def accepts(self, node: NodeInfo, task: Task, view: ClusterView) -> bool:
        return not self._taken(node, task, view)

    def explain(self, count: int) -> str:
        return f"host-mode port already in use on {nodes(count)}"

    def detail(self, node: NodeInfo, task: Task, view: ClusterView) -> str:
        return ", ".join(f"{port}/{protocol}" for protocol, port in self._taken(node, task, view))

    def _taken(self, node: NodeInfo, task: Task, view: ClusterView) -> list[tuple[str, int]]:
        ports = view.ports_of(task)
        if not ports or not node.ports:
            return []
        return sorted(
            port
            for port in ports
            if node.ports.get(port, task.id) != task.id  # held by another task
        )


def default_filters() -> list[Filter]:
    """The filters in the order they run; a node's rejection counts for the first that fails."""
    return [
        ReadyFilter(),
        AvailabilityFilter(),
        PlatformFilter(),
        ConstraintsFilter(),
        ResourcesFilter(),
        MaxReplicasFilter(),
        HostPortFilter(),
    ]
