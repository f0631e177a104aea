"""What the scheduler knows of the cluster: each node with the tasks on it.

Owns the words the filters and the ordering share: which tasks are *live*, which occupy a
node, which are waiting for the scheduler, and per node the sum of their reservations, the
generic resources assigned to them (and so which are free, and which a new task would get:
``NodeInfo.claim``), how many belong to each service, which host-mode ports they hold and
how many tasks of each service failed there recently. Built once from a store read
(``ClusterView.build``), then kept true by the store's events (``ClusterView.apply``), so
that the cost of keeping it follows what changed; grown in memory as a pass places tasks
(``ClusterView.place``), so that a batch accounts for its own placements, and shrunk again
for a placement whose write did not land (``ClusterView.unplace``). Never writes to the
store.

Invariants: a task occupies a node once it has a node and has reached ASSIGNED, for as long
as it is live (desired_state at most RUNNING, status not terminal). A PENDING task with a
node (a global task waiting for that node) occupies nothing yet. A node's generic resources
taken are exactly those assigned to the tasks occupying it: a task that ends gives its own
back. A view built from a store, then given every later event of that store in order,
equals the view built from the store afterwards (``build`` after the same writes), with the
failures counted back from the time given to ``at`` (only which of two tasks holding the
same host port is named may differ). Tasks on a node the store does not hold are kept
aside, and count again if it comes back.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
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
from swarmlite.store import Event, ReadTx

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
    if not task.spec.networks:
        return True
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

    node: Node  # replaced when the node changes; its id never does
    id: str = field(init=False)
    tasks: dict[str, Task] = field(default_factory=dict)  # occupying tasks by id
    reserved_nano_cpus: int = 0
    reserved_memory_bytes: int = 0
    by_service: collections.Counter[str] = field(default_factory=collections.Counter)
    ports: dict[HostPort, str] = field(default_factory=dict)  # host port -> task id
    # FAILED/REJECTED tasks here: service id -> task id -> wall time of that status
    failed: dict[str, dict[str, float]] = field(default_factory=dict)
    since: float = 0.0  # failures before this wall time no longer count (set by the view)
    counted_used: collections.Counter[str] = field(default_factory=collections.Counter)
    named_used: set[tuple[str, str]] = field(default_factory=set)  # (kind, name) assigned

    def __post_init__(self) -> None:
        self.id = self.node.id

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
        """Count ``task`` as occupying this node (idempotent per task id: a task already
        counted is only replaced by the newer copy, which must reserve the same)."""
        if task.id in self.tasks:
            self.tasks[task.id] = task
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

    def remove(self, task_id: str, ports_of: Callable[[Task], frozenset[HostPort]]) -> None:
        """Stop counting the task ``task_id`` here (nothing if it is not counted)."""
        task = self.tasks.pop(task_id, None)
        if task is None:
            return
        reservations = task.spec.resources.reservations
        self.reserved_nano_cpus -= reservations.nano_cpus
        self.reserved_memory_bytes -= reservations.memory_bytes
        named = False
        for resource in task.assigned_generic_resources:
            if isinstance(resource, NamedResource):
                named = True
            else:
                self.counted_used[resource.kind] -= resource.value
                if self.counted_used[resource.kind] <= 0:
                    del self.counted_used[resource.kind]
        if named:  # another task may hold the same name (a stale state): recount them
            self.named_used = {
                (resource.kind, resource.value)
                for other in self.tasks.values()
                for resource in other.assigned_generic_resources
                if isinstance(resource, NamedResource)
            }
        self.by_service[task.service_id] -= 1
        if self.by_service[task.service_id] <= 0:
            del self.by_service[task.service_id]
        freed = [port for port, holder in self.ports.items() if holder == task_id]
        for port in freed:
            del self.ports[port]
            # Another live task here that publishes the same port holds it now.
            for other in self.tasks.values():
                if port in ports_of(other):
                    self.ports[port] = other.id
                    break

    def reset_ports(self, ports_of: Callable[[Task], frozenset[HostPort]]) -> None:
        """Recount the host ports held here (a service's published ports changed)."""
        self.ports = {}
        for task in self.tasks.values():
            for port in ports_of(task):
                self.ports.setdefault(port, task.id)

    def recent_failures(self, service_id: str) -> int:
        """FAILED/REJECTED tasks of ``service_id`` here within the failure window."""
        failed = self.failed.get(service_id)
        if not failed:
            return 0
        since = self.since
        return sum(1 for when in failed.values() if when >= since)

    def backed_off(self, service_id: str) -> bool:
        return self.recent_failures(service_id) >= FAILURE_THRESHOLD


@dataclass
class _Away:
    """What occupies, or failed on, a node the store does not hold (it may come back)."""

    tasks: dict[str, Task] = field(default_factory=dict)
    failed: dict[str, dict[str, float]] = field(default_factory=dict)


class ClusterView:
    """Every node's NodeInfo (by id, sorted by ``at``), the services, and the pass's wall
    time."""

    def __init__(self, nodes: list[NodeInfo], services: dict[str, Service], now: float) -> None:
        self.nodes: dict[str, NodeInfo] = {info.id: info for info in sorted(nodes, key=_by_id)}
        self.services = services
        self.now = now
        self._sorted = True  # whether ``nodes`` is in id order (a node joined since: no)
        self._ports: dict[str, frozenset[HostPort]] = {}  # service id -> host_ports(service)
        self._occupants: dict[str, dict[str, str]] = {}  # service id -> task id -> node id
        self._away: dict[str, _Away] = {}  # node id (not in ``nodes``) -> its tasks
        # Counts every change of a node (joined, left, changed): what the static filters
        # answered for the view's nodes holds while it stays the same (``Planner``).
        self.nodes_epoch = 0
        self.at(now)

    @classmethod
    def build(cls, read: ReadTx, now: float) -> ClusterView:
        """The view of ``read`` at wall time ``now`` (failures counted back from ``now``)."""
        services = {service.id: service for service in read.list(Service)}
        view = cls([NodeInfo(node) for node in read.list(Node)], services, now)
        for task in read.list(Task):
            view._task(None, task)
        return view

    def at(self, now: float) -> ClusterView:
        """Make the view the one a pass at wall time ``now`` reads: failures counted back
        from ``now``, nodes in id order."""
        self.now = now
        since = now - FAILURE_WINDOW
        if not self._sorted:
            self.nodes = dict(sorted(self.nodes.items()))
            self._sorted = True
        for info in self.nodes.values():
            info.since = since
        return self

    def ports_of(self, task: Task) -> frozenset[HostPort]:
        return self._service_ports(task.service_id)

    def _service_ports(self, service_id: str) -> frozenset[HostPort]:
        ports = self._ports.get(service_id)
        if ports is None:
            ports = self._ports[service_id] = host_ports(self.services.get(service_id))
        return ports

    def place(self, task: Task, node_id: str) -> None:
        """Record that ``task`` now occupies ``node_id`` (for the rest of the pass)."""
        self._occupy(node_id, task)

    def unplace(self, task: Task, node_id: str) -> None:
        """Undo ``place``: ``task`` does not occupy ``node_id`` (its write did not land)."""
        self._vacate(node_id, task)

    # ------------------------------------------------------------------ events

    def apply(self, event: Event) -> None:
        """Follow one committed change of a node, service or task (others are ignored)."""
        old, new = event.old, event.new
        if isinstance(old, Task) or isinstance(new, Task):
            self._task(
                old if isinstance(old, Task) else None, new if isinstance(new, Task) else None
            )
        elif isinstance(old, Node) or isinstance(new, Node):
            self._node(
                old if isinstance(old, Node) else None, new if isinstance(new, Node) else None
            )
        elif isinstance(old, Service) or isinstance(new, Service):
            self._service(
                old if isinstance(old, Service) else None,
                new if isinstance(new, Service) else None,
            )

    def _task(self, old: Task | None, new: Task | None) -> None:
        if (
            old is not None
            and new is not None
            and occupies_node(old)
            and occupies_node(new)
            and old.node_id == new.node_id
            and old.service_id == new.service_id
            and old.spec.resources == new.spec.resources
            and old.assigned_generic_resources == new.assigned_generic_resources
        ):
            # Its state moved on (ASSIGNED -> RUNNING, a health change): it counts the same.
            self._occupy(new.node_id, new)
            return
        if old is not None:
            if occupies_node(old):
                self._vacate(old.node_id, old)
            elif old.node_id and old.status.state in _FAILED:
                self._unfail(old)
        if new is not None:
            if occupies_node(new):
                self._occupy(new.node_id, new)
            elif new.node_id and new.status.state in _FAILED:
                self._fail(new)

    def _node(self, old: Node | None, new: Node | None) -> None:
        self.nodes_epoch += 1
        if new is None:
            assert old is not None
            info = self.nodes.pop(old.id, None)
            if info is not None and (info.tasks or info.failed):
                self._away[old.id] = _Away(info.tasks, info.failed)
            return
        info = self.nodes.get(new.id)
        if info is not None:
            info.node = new
            return
        info = NodeInfo(new, since=self.now - FAILURE_WINDOW)
        away = self._away.pop(new.id, None)
        if away is not None:
            for task in away.tasks.values():
                info.add(task, self.ports_of(task))
            info.failed = away.failed
        self.nodes[new.id] = info
        self._sorted = False

    def _service(self, old: Service | None, new: Service | None) -> None:
        service_id = new.id if new is not None else old.id if old is not None else ""
        before = self._service_ports(service_id)
        if new is None:
            self.services.pop(service_id, None)
        else:
            self.services[service_id] = new
        self._ports.pop(service_id, None)
        if host_ports(new) == before:
            return
        for node_id in set(self._occupants.get(service_id, {}).values()):
            info = self.nodes.get(node_id)
            if info is not None:
                info.reset_ports(self.ports_of)

    # ------------------------------------------------------------------ bookkeeping

    def _occupy(self, node_id: str, task: Task) -> None:
        info = self.nodes.get(node_id)
        if info is not None:
            info.add(task, self.ports_of(task))
        else:
            self._away.setdefault(node_id, _Away()).tasks[task.id] = task
        self._occupants.setdefault(task.service_id, {})[task.id] = node_id

    def _vacate(self, node_id: str, task: Task) -> None:
        info = self.nodes.get(node_id)
        if info is not None:
            info.remove(task.id, self.ports_of)
        else:
            away = self._away.get(node_id)
            if away is not None:
                away.tasks.pop(task.id, None)
                self._forget_away(node_id, away)
        occupants = self._occupants.get(task.service_id)
        if occupants is not None and occupants.get(task.id) == node_id:
            del occupants[task.id]
            if not occupants:
                del self._occupants[task.service_id]

    def _fail(self, task: Task) -> None:
        info = self.nodes.get(task.node_id)
        failed = info.failed if info is not None else self._away_of(task.node_id).failed
        failed.setdefault(task.service_id, {})[task.id] = task.status.timestamp

    def _unfail(self, task: Task) -> None:
        info = self.nodes.get(task.node_id)
        away = self._away.get(task.node_id) if info is None else None
        if info is not None:
            failed = info.failed
        elif away is not None:
            failed = away.failed
        else:
            return
        of_service = failed.get(task.service_id)
        if of_service is not None:
            of_service.pop(task.id, None)
            if not of_service:
                del failed[task.service_id]
        if away is not None:
            self._forget_away(task.node_id, away)

    def _away_of(self, node_id: str) -> _Away:
        return self._away.setdefault(node_id, _Away())

    def _forget_away(self, node_id: str, away: _Away) -> None:
        if not away.tasks and not away.failed:
            self._away.pop(node_id, None)


def _by_id(info: NodeInfo) -> str:
    return info.id
