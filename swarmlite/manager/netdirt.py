"""Which nodes a store event can give another mesh or network state (see ``netstate``).

``NetworkDirt``, fed the store's events, says which nodes a change can give another mesh
or network state, from what `netstate` builds those states of:

- a task: only if its *footprint* changed (present or not, node, service, its networks'
  ids and addresses, in rotation, RUNNING); then, for its old and new footprint while
  present, every node that needs one of its networks (the nodes with tasks or standalone
  containers on it; every node for ingress) and its own node if it has networks or its
  service publishes a port in host mode. So a task without networks of a service without
  host ports (an ingress port puts the task on ingress) concerns no node;
- a node: every node's mesh state if it enters, leaves or changes as a peer (key, next
  key, endpoint, mesh address), its own if its mesh address changed; every node's network
  state if its VTEP (mesh address) or its ingress address changed and one was set, its
  own if it joined or left. Heartbeats, status messages and resources concern no node;
- a service: if its names, VIPs, networks (with aliases), endpoint mode or published
  ports changed: the nodes that need its networks; every node if it publishes a port in
  ingress mode; the nodes with its tasks if it publishes one in host mode;
- a network: if its name, flags or status (VNI, subnet, gateway, standalone containers)
  changed: the nodes that need it (and those its containers were or are on); every node
  for an ingress network.

Pure bookkeeping from events: never reads the store except in ``reset``, never writes.
"""

from __future__ import annotations

from swarmlite.api import Network, Node, Service, Task, TaskState
from swarmlite.manager.netstate import (
    NetworkIndex,
    as_peer,
    in_rotation,
    is_present,
    mesh_ip,
    network_ids,
    short_name,
)
from swarmlite.store import Event, ReadTx


def _task_footprint(task: Task | None) -> tuple[object, ...] | None:
    """All of a task that the network states read; None while it is not present."""
    if task is None or not is_present(task):
        return None
    return (
        task.node_id,
        task.service_id,
        tuple((a.network_id, a.address) for a in task.networks),
        in_rotation(task),
        task.status.state is TaskState.RUNNING,
    )


def _service_footprint(service: Service | None) -> tuple[object, ...] | None:
    if service is None:
        return None
    return (
        service.spec.name,
        short_name(service),
        service.endpoint.vips,
        service.spec.task.networks,
        service.spec.endpoint.mode,
        service.endpoint.ports,
    )


def _network_footprint(network: Network | None) -> tuple[object, ...] | None:
    if network is None:
        return None
    spec = network.spec
    return (spec.name, spec.ingress, spec.internal, network.status, network.created_at)


def _node_footprint(node: Node | None) -> tuple[str, str] | None:
    """A node as the others' network states see it: its VTEP and its ingress address."""
    return None if node is None else (mesh_ip(node), node.ingress_address)


def _host_ported(service: Service) -> bool:
    return any(p.published and p.mode != "ingress" for p in service.endpoint.ports)


def _ingress_ported(service: Service) -> bool:
    return any(p.published and p.mode == "ingress" for p in service.endpoint.ports)


class NetworkDirt:
    """Which nodes a stream of store events can give another mesh or network state (the
    rules are in the module docstring). Fed every event of the kinds task, node, service
    and network in commit order (``changed``) after ``reset`` on the state the events
    follow; ``take`` says which nodes to recompute and forgets them. Keeps, from the events
    alone, the ``NetworkIndex`` that ``network_states`` reads and what its rules need."""

    def __init__(self) -> None:
        self.index = NetworkIndex()
        self._ingress: set[str] = set()  # networks with spec.ingress: every node needs them
        self._host_ported: set[str] = set()  # services publishing a port in host mode
        self._placed: dict[str, dict[str, int]] = {}  # service -> node -> present tasks
        # What is dirty: every node's mesh state, every node's network state, or these.
        self._mesh_all = self._all = True
        self._mesh: set[str] = set()
        self._nodes: set[str] = set()
        self._networks: set[str] = set()  # ids: the nodes that need them are dirty
        self._names: set[str] = set()  # network names (services name theirs)

    def reset(self, read: ReadTx) -> None:
        """Start again from ``read`` (a watch's start, or a resync): everything is dirty."""
        self.index = NetworkIndex()
        self._placed = {}
        self._host_ported = {s.id for s in read.list(Service) if _host_ported(s)}
        self._ingress = {n.id for n in read.list(Network) if n.spec.ingress}
        for task in read.list(Task):
            self._task(None, task)
        self._mesh, self._nodes, self._networks, self._names = set(), set(), set(), set()
        self._mesh_all = self._all = True

    def changed(self, event: Event) -> None:
        old, new = event.old, event.new
        obj = new if new is not None else old
        if isinstance(obj, Task):
            self._task(old, new)  # type: ignore[arg-type]
        elif isinstance(obj, Node):
            self._node(old, new)  # type: ignore[arg-type]
        elif isinstance(obj, Service):
            self._service(old, new)  # type: ignore[arg-type]
        elif isinstance(obj, Network):
            self._network(old, new)  # type: ignore[arg-type]

    def take(self, read: ReadTx) -> tuple[set[str] | None, set[str] | None]:
        """The nodes whose mesh state and whose network state may have changed since the
        last call (None: every node); resolved against ``read``."""
        mesh = None if self._mesh_all else self._mesh
        nodes: set[str] | None = None
        if not self._all:
            networks = set(self._networks)
            for name in self._names:
                network = read.get_by_name(Network, name)
                if network is not None:
                    networks.add(network.id)
            nodes = self._nodes
            for network_id in networks:
                if network_id in self._ingress:
                    nodes = None
                    break
                nodes.update(self.index.nodes_on(network_id))
                network = read.get(Network, network_id)
                if network is not None:
                    nodes.update(a.node_id for a in network.status.attachments)
        self._mesh_all = self._all = False
        self._mesh, self._nodes, self._networks, self._names = set(), set(), set(), set()
        return mesh, nodes

    def _task(self, old: Task | None, new: Task | None) -> None:
        before, after = _task_footprint(old), _task_footprint(new)
        if before == after:
            if new is not None and after is not None:
                self.index.update(old, new)  # the same footprint: keep the newest object
            return
        self.index.update(old, new)
        for task, present in ((old, before), (new, after)):
            if task is None or present is None:
                continue
            placed = self._placed.setdefault(task.service_id, {})
            count = placed.get(task.node_id, 0) + (1 if task is new else -1)
            if count > 0:
                placed[task.node_id] = count
            else:
                placed.pop(task.node_id, None)
                if not placed:
                    del self._placed[task.service_id]
            networks = network_ids(task)
            self._networks.update(networks)
            if networks or task.service_id in self._host_ported:
                self._nodes.add(task.node_id)

    def _node(self, old: Node | None, new: Node | None) -> None:
        node_id = (new or old).id  # type: ignore[union-attr]
        if as_peer(old) != as_peer(new):
            self._mesh_all = True
        if (old and old.mesh_address) != (new and new.mesh_address):
            self._mesh.add(node_id)
        before, after = _node_footprint(old), _node_footprint(new)
        if before != after:
            self._nodes.add(node_id)
            if any(any(f) for f in (before, after) if f is not None):
                self._all = True

    def _service(self, old: Service | None, new: Service | None) -> None:
        if new is not None and _host_ported(new):
            self._host_ported.add(new.id)
        elif old is not None:
            self._host_ported.discard(old.id)
        if _service_footprint(old) == _service_footprint(new):
            return
        for service in (old, new):
            if service is None:
                continue
            self._networks.update(v.network_id for v in service.endpoint.vips)
            self._names.update(n.target.lower() for n in service.spec.task.networks)
            if _ingress_ported(service):
                self._all = True
            if _host_ported(service):
                self._nodes.update(self._placed.get(service.id, {}))

    def _network(self, old: Network | None, new: Network | None) -> None:
        if new is not None and new.spec.ingress:
            self._ingress.add(new.id)
        if _network_footprint(old) == _network_footprint(new):
            return
        for network in (old, new):
            if network is None:
                continue
            if network.spec.ingress:
                self._all = True
            self._networks.add(network.id)
            self._nodes.update(a.node_id for a in network.status.attachments)
        if new is None and old is not None:
            self._ingress.discard(old.id)
