"""What the scheduler knows of the cluster during one pass: each node with the tasks on it.

Owns the words the filters and the ordering share: which tasks are *live*, which occupy a
node, which are waiting for the scheduler, and per node the sum of their reservations, the
generic resources assigned to them (and so which are free, and which a new task would get:
``NodeInfo.claim``), how many belong to each service, which host-mode ports they hold and
how many tasks of each service failed there recently. Built from a store read, then grown
in memory as the pass places tasks (``ClusterView.place``), so that a batch accounts for
its own placements. Never writes to the store.

Invariant: a task occupies a node once it has a node and has reached ASSIGNED, for as long
as it is live (desired_state at most RUNNING, status not terminal). A PENDING task with a
node (a global task waiting for that node) occupies nothing yet. A node's generic resources
taken are exactly those assigned to the tasks occupying it: a task that ends gives its own
back.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from swarmlite.api import (
    DiscreteResource,
    GenericResource,
    NamedResource,
    Node,
    Service,
    Task,
    TaskState,
)
from swarmlite.store import ReadTx

FAILURE_WINDOW = 300.0  # seconds: failures older than this no longer count
FAILURE_THRESHOLD = 5  # this many recent failures of a service put a node last

HostPort = tuple[str, int]  # (protocol, published port)

_FAILED = (TaskState.FAILED, TaskState.REJECTED)


def meant_to_run(task: Task) -> bool:
    """Desired RUNNING (a service) or COMPLETE (a job: run it to completion)."""
    return task.desired_state <= TaskState.RUNNING or task.desired_state is TaskState.COMPLETE


def is_live(task: Task) -> bool:
    """Meant to run and not finished: see `meant_to_run`, and the status is not terminal."""
    return meant_to_run(task) and not task.status.state.terminal


def occupies_node(task: Task) -> bool:
    """Whether the task counts against its node's resources, ports and replica limits."""
    return bool(task.node_id) and task.status.state >= TaskState.ASSIGNED and is_live(task)


def is_schedulable(task: Task) -> bool:
    """Whether the task waits for the scheduler: PENDING, still meant to run, and allocated.

    Allocated: the allocator has given it an attachment for every network its spec names.
    It writes all of a task's attachments at once (the ingress one included), so a task
    with one attachment per named network has them all; a task on no network needs none.
    """
    if task.status.state != TaskState.PENDING or not meant_to_run(task):
        return False
    wanted = {net.target.lower() for net in task.spec.networks}
    return len({att.network_id for att in task.networks}) >= len(wanted)


def host_ports(service: Service | None) -> frozenset[HostPort]:
    """The ports a task of ``service`` publishes in host mode (0: chosen by the runtime)."""
    if service is None:
        return frozenset()
    return frozenset(
        (port.protocol, port.published)
        for port in service.spec.endpoint.ports
        if port.mode == "host" and port.published
    )


@dataclass
class NodeInfo:
    """One node and what occupies it, as of the pass's start plus the pass's placements."""

    node: Node
    tasks: dict[str, Task] = field(default_factory=dict)  # occupying tasks by id
    reserved_nano_cpus: int = 0
    reserved_memory_bytes: int = 0
    by_service: collections.Counter[str] = field(default_factory=collections.Counter)
    ports: dict[HostPort, str] = field(default_factory=dict)  # host port -> task id
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    counted_used: collections.Counter[str] = field(default_factory=collections.Counter)
    named_used: set[tuple[str, str]] = field(default_factory=set)  # (kind, name) assigned

    @property
    def id(self) -> str:
        return self.node.id

    def free(self, kind: str) -> int:
        """How many of ``kind`` this node has that no task occupying it was assigned."""
        free = 0
        for resource in self.node.status.generic_resources:
            if resource.kind != kind:
                continue
            if isinstance(resource, DiscreteResource):
                free += resource.value
            elif (kind, resource.value) not in self.named_used:
                free += 1
        return free - self.counted_used[kind]

    def claim(self, reservations: list[DiscreteResource]) -> list[GenericResource]:
        """What a task reserving ``reservations`` would be assigned here (the view is not
        changed): named resources, the first free ones in the order the node advertises
        them, where the node names that kind, else the count. Assumes enough is free."""
        assigned: list[GenericResource] = []
        for wanted in reservations:
            names = [
                resource.value
                for resource in self.node.status.generic_resources
                if isinstance(resource, NamedResource)
                and resource.kind == wanted.kind
                and (wanted.kind, resource.value) not in self.named_used
            ]
            if names:
                assigned += [
                    NamedResource(kind=wanted.kind, value=n) for n in names[: wanted.value]
                ]
            else:
                assigned.append(DiscreteResource(kind=wanted.kind, value=wanted.value))
        return assigned

    def add(self, task: Task, ports: frozenset[HostPort]) -> None:
        """Count ``task`` as occupying this node (idempotent per task id)."""
        if task.id in self.tasks:
            return
        self.tasks[task.id] = task
        reservations = task.spec.resources.reservations
        self.reserved_nano_cpus += reservations.nano_cpus
        self.reserved_memory_bytes += reservations.memory_bytes
        for resource in task.assigned_generic_resources:
            if isinstance(resource, NamedResource):
                self.named_used.add((resource.kind, resource.value))
            else:
                self.counted_used[resource.kind] += resource.value
        self.by_service[task.service_id] += 1
        for port in ports:
            self.ports.setdefault(port, task.id)

    def recent_failures(self, service_id: str) -> int:
        """FAILED/REJECTED tasks of ``service_id`` here within the failure window."""
        return self.failures[service_id]

    def backed_off(self, service_id: str) -> bool:
        return self.failures[service_id] >= FAILURE_THRESHOLD


class ClusterView:
    """Every node's NodeInfo (by id, sorted), the services, and the wall time of the pass."""

    def __init__(self, nodes: list[NodeInfo], services: dict[str, Service], now: float) -> None:
        self.nodes: dict[str, NodeInfo] = {info.id: info for info in sorted(nodes, key=_by_id)}
        self.services = services
        self.now = now

    @classmethod
    def build(cls, read: ReadTx, now: float) -> ClusterView:
        """The view of ``read`` at wall time ``now`` (failures counted back from ``now``)."""
        services = {service.id: service for service in read.list(Service)}
        infos = {node.id: NodeInfo(node) for node in read.list(Node)}
        since = now - FAILURE_WINDOW
        for task in read.list(Task):
            info = infos.get(task.node_id) if task.node_id else None
            if info is None:
                continue
            if occupies_node(task):
                info.add(task, host_ports(services.get(task.service_id)))
            elif task.status.state in _FAILED and task.status.timestamp >= since:
                info.failures[task.service_id] += 1
        return cls(list(infos.values()), services, now)

    def ports_of(self, task: Task) -> frozenset[HostPort]:
        return host_ports(self.services.get(task.service_id))

    def place(self, task: Task, node_id: str) -> None:
        """Record that ``task`` now occupies ``node_id`` (for the rest of the pass)."""
        self.nodes[node_id].add(task, self.ports_of(task))


def _by_id(info: NodeInfo) -> str:
    return info.id
