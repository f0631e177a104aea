"""What one node's networking must look like, computed from a store snapshot.

Owns two pure functions the dispatcher calls for each node it serves, and pushes to the
node when the answer changed:

    >>> from swarmlite.manager.netstate import mesh_state, network_state
    >>> mesh = mesh_state(store.memory, node_id)          # None until it has a mesh address
    >>> nets = network_state(store.memory, node_id)
    >>> if nets != session.last_networks:                  # equal states compare equal
    ...     await session.send(nets)
    ...     session.last_networks = nets

``mesh_state``: the node's own mesh address (with the pool's prefix) and, as peers, every
other node that has a WireGuard public key, an endpoint and a mesh address.

``network_state``: the networks the node needs (those its present tasks are attached to,
those its standalone containers are on (a network's ``status.attachments``), plus the
ingress network always), each with the VXLAN endpoints of the other nodes that have
tasks or standalone containers on it (ingress: every other node) and a forwarding entry
(MAC, VTEP) per remote task or standalone container address (ingress: also per other
node's own ingress address, where the routing mesh's replies go); the endpoint of every
service on those networks (DNS names, VIP, backends in rotation, all running task
addresses) and of every standalone container on them (its name and short id, in ``dnsrr``
mode); and every published port (ingress ports on every node, reaching the tasks' ingress
addresses; host ports only where a task of the service is, reaching the local tasks), each
naming its service (the routing mesh counts its connections by service).

Words: a task is *present* on its node from ASSIGNED until its status is terminal (its
container exists or will: it needs its networks even while being stopped); it is *in
rotation* when it is RUNNING, not told to stop, and healthy or without a health check.

A ``MeshBook`` keeps the peers from one read to the next, numbered, with what changed in
the last: the dispatcher tells a node that holds the previous generation only the changes.

For many nodes at once, a ``MeshBook`` reads the peers once and ``network_states`` shares
one pass over the state (each network's endpoints and VTEP/FDB entries, the ingress
ports), so that a round costs what the nodes are sent, not nodes x cluster. They read the
tasks on each network from a ``NetworkIndex`` (built from the store when none is given)
and a node's own tasks from the store's ``tasks_on_node``.

Which nodes an event concerns is ``netdirt``'s business.

Does not own allocation (the allocator) nor sending (the dispatcher); never writes.
Invariant: deterministic: every list is sorted, so that two calls on equal states give
equal messages; the many-node functions give each node what the one-node ones give it.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address
from typing import NamedTuple

from swarmlite.api import Network, Node, PortConfig, Service, Task, TaskState
from swarmlite.api.control import (
    EndpointInfo,
    FdbEntry,
    MeshChanges,
    MeshPeer,
    MeshState,
    NetworkInfo,
    NetworkState,
    PublishedPort,
)
from swarmlite.store import ReadTx


def mac_of(address: str) -> str:
    """The MAC of a task address: 02:42 and the four IPv4 bytes ("10.0.1.5/24" ->
    "02:42:0a:00:01:05"), as every node derives it."""
    ip = IPv4Address(address.split("/")[0])
    return "02:42:" + ":".join(f"{byte:02x}" for byte in ip.packed)


def bare(address: str) -> str:
    """``"10.0.1.5/24"`` -> ``"10.0.1.5"``."""
    return address.split("/")[0]


def _ip_order(address: str) -> tuple[int, str]:
    try:
        return (int(IPv4Address(bare(address))), address)
    except ValueError:
        return (-1, address)


def _sorted_ips(addresses: Iterable[str]) -> list[str]:
    return sorted(set(addresses), key=_ip_order)


def is_present(task: Task) -> bool:
    """On its node from ASSIGNED until terminal (see the module's words)."""
    return bool(task.node_id) and TaskState.ASSIGNED <= task.status.state <= TaskState.RUNNING


def in_rotation(task: Task) -> bool:
    """RUNNING, not told to stop, and healthy or without a health check."""
    return (
        task.status.state is TaskState.RUNNING
        and task.desired_state is not TaskState.SHUTDOWN
        and task.status.health in ("", "healthy")
    )


def short_name(service: Service) -> str:
    """The name without its stack's prefix ("shop_web" in stack shop -> "web")."""
    stack = service.spec.stack
    name = service.spec.name
    if stack and name.startswith(f"{stack}_"):
        return name[len(stack) + 1 :]
    return name


def mesh_ip(node: Node) -> str:
    return bare(node.mesh_address) if node.mesh_address else ""


def as_peer(node: Node | None) -> MeshPeer | None:
    """What the other nodes are told of ``node``; None while it cannot be a peer."""
    if (
        node is None
        or not node.status.mesh_public_key
        or not node.status.mesh_endpoint
        or not node.mesh_address
    ):
        return None
    return MeshPeer(
        node_id=node.id,
        public_key=node.status.mesh_public_key,
        endpoint=node.status.mesh_endpoint,
        mesh_address=mesh_ip(node),
        next_key=node.status.mesh_next_key,
    )


class MeshBook:
    """The cluster's mesh peers as last read (``read``), numbered: each read that found
    them changed starts a new generation and keeps what changed since the one before, so
    that a node told the previous generation can be told only that (``MeshChanges``): a
    node joining costs each other node one peer, not the whole list again."""

    def __init__(self) -> None:
        self.generation = 0
        self.peers: dict[str, MeshPeer] = {}  # node id -> peer, in node id order
        self.changed: list[MeshPeer] = []  # new or changed in this generation
        self.removed: list[str] = []  # gone in this generation

    def read(self, read: ReadTx) -> None:
        """Take the peers of the nodes in ``read``; a new generation if they changed."""
        nodes = sorted(read.list(Node), key=lambda n: n.id)
        peers = {peer.node_id: peer for peer in map(as_peer, nodes) if peer is not None}
        if peers == self.peers:
            return
        old = self.peers
        self.changed = [peer for node_id, peer in peers.items() if old.get(node_id) != peer]
        self.removed = [node_id for node_id in old if node_id not in peers]
        self.peers = peers
        self.generation += 1

    @staticmethod
    def address(read: ReadTx, node_id: str) -> str | None:
        """The mesh address ``node_id`` is told (with its prefix); None while it has none."""
        node = read.get(Node, node_id)
        if node is None or not node.mesh_address:
            return None
        address = node.mesh_address
        return address if "/" in address else f"{address}/32"

    def whole(self, node_id: str, address: str) -> MeshState:
        """``mesh_state`` of ``node_id`` at ``address``, from the peers last read."""
        others = [peer for peer in self.peers.values() if peer.node_id != node_id]
        return MeshState(address=address, peers=others)

    def changes(self, node_id: str) -> MeshChanges:
        """What changed for ``node_id`` in this generation (nothing of its own entry)."""
        return MeshChanges(
            peers=[peer for peer in self.changed if peer.node_id != node_id],
            removed=[gone for gone in self.removed if gone != node_id],
        )


def mesh_state(read: ReadTx, node_id: str) -> MeshState | None:
    """This node's mesh address and its peers; None while it has no mesh address."""
    book = MeshBook()
    address = book.address(read, node_id)
    if address is None:
        return None
    book.read(read)
    return book.whole(node_id, address)


def network_ids(task: Task) -> set[str]:
    return {a.network_id for a in task.networks}


class NetworkIndex:
    """The present tasks attached to each network (with an address or not), and the nodes
    they are on. Its owner keeps it true with ``update`` for every write of a task."""

    def __init__(self) -> None:
        self._tasks: dict[str, dict[str, Task]] = {}  # network -> task id -> task
        self._nodes: dict[str, dict[str, int]] = {}  # network -> node -> tasks there

    @classmethod
    def of(cls, read: ReadTx) -> NetworkIndex:
        """The index of every task in ``read``."""
        index = cls()
        for task in read.list(Task):
            index.update(None, task)
        return index

    def update(self, old: Task | None, new: Task | None) -> None:
        """One write of a task: ``old`` -> ``new`` (None: created, or deleted)."""
        if old is not None and is_present(old):
            for network_id in network_ids(old):
                tasks = self._tasks.get(network_id, {})
                if tasks.pop(old.id, None) is None:
                    continue  # not indexed: nothing to take back
                if not tasks:
                    del self._tasks[network_id]
                nodes = self._nodes[network_id]
                nodes[old.node_id] -= 1
                if not nodes[old.node_id]:
                    del nodes[old.node_id]
                    if not nodes:
                        del self._nodes[network_id]
        if new is not None and is_present(new):
            for network_id in network_ids(new):
                tasks = self._tasks.setdefault(network_id, {})
                if new.id not in tasks:
                    nodes = self._nodes.setdefault(network_id, {})
                    nodes[new.node_id] = nodes.get(new.node_id, 0) + 1
                tasks[new.id] = new

    def tasks_on(self, network_id: str) -> Iterable[Task]:
        """The present tasks attached to ``network_id``."""
        return self._tasks.get(network_id, {}).values()

    def nodes_on(self, network_id: str) -> Iterable[str]:
        """The nodes holding a present task attached to ``network_id``."""
        return self._nodes.get(network_id, {}).keys()


class _Remote:
    """A network's VTEPs and FDB entries, each with the nodes it comes from: a node is
    told those that come from some other node."""

    def __init__(
        self,
        vteps: list[tuple[str, set[str]]],
        fdb: list[tuple[FdbEntry, set[str]]],
    ) -> None:
        self.vteps = vteps
        self.fdb = fdb

    def seen_from(self, node_id: str) -> tuple[list[str], list[FdbEntry]]:
        vteps = [v for v, owners in self.vteps if len(owners) > 1 or node_id not in owners]
        fdb = [e for e, owners in self.fdb if len(owners) > 1 or node_id not in owners]
        return vteps, fdb


class _Snapshot:
    """What ``network_states`` shares between the nodes of one call; per network, what
    every node is told alike is computed once, when first needed."""

    def __init__(self, read: ReadTx, index: NetworkIndex) -> None:
        self.read = read
        self.index = index
        self.nodes = {n.id: n for n in read.list(Node)}
        self.networks = {
            n.id: n for n in read.list(Network) if n.status.vni > 0 and n.status.subnet
        }
        self.by_name = {n.spec.name.lower(): n for n in self.networks.values()}
        self.services = sorted(read.list(Service), key=lambda s: (s.spec.name, s.id))
        ingress = [n for n in self.networks.values() if n.spec.ingress]
        self.ingress = min(ingress, key=lambda n: (n.created_at, n.id)) if ingress else None
        # Nodes with a standalone container (with its address) on each network.
        self.containers: dict[str, set[str]] = {}
        for network in self.networks.values():
            for att in network.status.attachments:
                if att.address:
                    self.containers.setdefault(network.id, set()).add(att.node_id)
        self._on: dict[str, dict[str, list[Task]]] = {}
        self._remote: dict[str, _Remote] = {}
        self._endpoints: dict[str, list[EndpointInfo]] = {}
        self._serving: dict[str, list[Service]] | None = None
        self._port_rows: list[_PortRow] | None = None

    def on_network(self, network_id: str) -> dict[str, list[Task]]:
        """The present tasks attached to a network, by service."""
        found = self._on.get(network_id)
        if found is None:
            found = self._on[network_id] = {}
            for task in self.index.tasks_on(network_id):
                found.setdefault(task.service_id, []).append(task)
        return found

    def remote(self, network: Network) -> _Remote:
        found = self._remote.get(network.id)
        if found is None:
            found = self._remote[network.id] = _remote_of(self, network)
        return found

    def serving(self, network_id: str) -> list[Service]:
        """The services on a network (``service_networks``), in service order."""
        if self._serving is None:
            self._serving = {}
            for service in self.services:
                for id in self.service_networks(service):
                    self._serving.setdefault(id, []).append(service)
        return self._serving.get(network_id, [])

    def endpoints(self, network: Network) -> list[EndpointInfo]:
        """The endpoints on a network, the same for every node that needs it."""
        found = self._endpoints.get(network.id)
        if found is None:
            found = [_endpoint(self, s, network) for s in self.serving(network.id)]
            found.extend(_container_endpoints(network))
            self._endpoints[network.id] = found
        return found

    def port_rows(self) -> list[_PortRow]:
        if self._port_rows is None:
            self._port_rows = _port_rows(self)
        return self._port_rows

    def ingress_address(self, node_id: str) -> str:
        node = self.nodes.get(node_id)
        return node.ingress_address if node is not None else ""

    def vtep(self, node_id: str) -> str:
        node = self.nodes.get(node_id)
        return mesh_ip(node) if node is not None else ""

    def service_networks(self, service: Service) -> list[str]:
        """Ids of the (allocated) networks a service is attached to, ingress aside."""
        ids = {v.network_id for v in service.endpoint.vips if v.network_id in self.networks}
        for net in service.spec.task.networks:
            network = self.by_name.get(net.target.lower())
            if network is not None:
                ids.add(network.id)
        if self.ingress is not None:
            ids.discard(self.ingress.id)
        return sorted(ids)

    def host_address(self, task: Task) -> str:
        """Where a host-mode port reaches a task: its first network that is not internal
        (nothing crosses into an internal one); "" when it has none."""
        for att in task.networks:
            network = self.networks.get(att.network_id)
            if network is None or not network.spec.internal:
                return att.address
        return ""


def _address_on(task: Task, network_id: str) -> str:
    for att in task.networks:
        if att.network_id == network_id:
            return att.address
    return ""


def _remote_of(snap: _Snapshot, network: Network) -> _Remote:
    vteps: dict[str, set[str]] = {}
    fdb: dict[tuple[str, str], set[str]] = {}
    if network.spec.ingress:
        for other in snap.nodes.values():
            vtep = snap.vtep(other.id)
            vteps.setdefault(vtep, set()).add(other.id)
            # The routing mesh's replies go to the node that masqueraded the request: its
            # own ingress address, which without an entry here would be flooded to every
            # node.
            if other.ingress_address and vtep:
                fdb.setdefault((mac_of(other.ingress_address), vtep), set()).add(other.id)
    located = [(t.node_id, _address_on(t, network.id)) for t in snap.index.tasks_on(network.id)]
    located += [(a.node_id, a.address) for a in network.status.attachments]
    for other_id, address in located:
        vtep = snap.vtep(other_id)
        if not address or not vtep:
            continue
        vteps.setdefault(vtep, set()).add(other_id)
        fdb.setdefault((mac_of(address), vtep), set()).add(other_id)
    vteps.pop("", None)
    return _Remote(
        vteps=[(v, vteps[v]) for v in _sorted_ips(vteps)],
        fdb=[(FdbEntry(mac=mac, vtep=vtep), fdb[mac, vtep]) for mac, vtep in sorted(fdb)],
    )


def _network_info(snap: _Snapshot, network: Network, node_id: str) -> NetworkInfo:
    vteps, fdb = snap.remote(network).seen_from(node_id)
    return NetworkInfo(
        network_id=network.id,
        name=network.spec.name,
        vni=network.status.vni,
        subnet=network.status.subnet,
        gateway=network.status.gateway,
        ingress=network.spec.ingress,
        address=snap.ingress_address(node_id) if network.spec.ingress else "",
        vteps=vteps,
        fdb=fdb,
        internal=network.spec.internal,
    )


def _names(service: Service, network: Network) -> list[str]:
    names = [short_name(service), service.spec.name]
    aliases: set[str] = set()
    for net in service.spec.task.networks:
        if net.target.lower() == network.spec.name.lower():
            aliases.update(net.aliases)
    names.extend(sorted(aliases))
    return list(dict.fromkeys(names))  # without repeats, first one kept


def _endpoint(snap: _Snapshot, service: Service, network: Network) -> EndpointInfo:
    vip = next((v.address for v in service.endpoint.vips if v.network_id == network.id), "")
    tasks = snap.on_network(network.id).get(service.id, [])
    backends = [_address_on(t, network.id) for t in tasks if in_rotation(t)]
    running = [_address_on(t, network.id) for t in tasks if t.status.state is TaskState.RUNNING]
    return EndpointInfo(
        network_id=network.id,
        service_id=service.id,
        names=_names(service, network),
        mode=service.spec.endpoint.mode,
        vip=bare(vip) if vip and service.spec.endpoint.mode == "vip" else "",
        backends=_sorted_ips(bare(a) for a in backends if a),
        tasks=_sorted_ips(bare(a) for a in running if a),
    )


def _container_endpoints(network: Network) -> list[EndpointInfo]:
    """Each standalone container on the network, named as Docker names it there: its name
    and its short id, answering its address (no VIP: ``dnsrr``)."""
    found = []
    for att in sorted(network.status.attachments, key=lambda a: a.container_id):
        if not att.address:
            continue
        names = [n for n in (att.name, att.container_id[:12]) if n]
        found.append(
            EndpointInfo(
                network_id=network.id,
                service_id="",
                names=list(dict.fromkeys(names)),
                mode="dnsrr",
                backends=[bare(att.address)],
                tasks=[bare(att.address)],
            )
        )
    return found


class _PortRow(NamedTuple):
    """A published port of a service, in service order; ``shared``: what every node is
    told of it (ingress mode), None for a host-mode port (told where a task runs)."""

    key: tuple[str, int]  # (protocol, published)
    service: Service
    port: PortConfig
    shared: PublishedPort | None


def _port_rows(snap: _Snapshot) -> list[_PortRow]:
    rows: list[_PortRow] = []
    for service in snap.services:
        for port in service.endpoint.ports:
            if not port.published:
                continue
            key = (port.protocol, port.published)
            if port.mode != "ingress":
                rows.append(_PortRow(key, service, port, None))
                continue
            if snap.ingress is None:
                continue
            ingress_id = snap.ingress.id
            tasks = snap.on_network(ingress_id).get(service.id, [])
            backends = [_address_on(t, ingress_id) for t in tasks if in_rotation(t)]
            rows.append(_PortRow(key, service, port, _published(service, port, backends)))
    return rows


def _published(service: Service, port: PortConfig, backends: list[str]) -> PublishedPort:
    return PublishedPort(
        published=port.published,
        protocol=port.protocol,
        target=port.target,
        mode=port.mode,
        backends=_sorted_ips(bare(a) for a in backends if a),
        service_id=service.id,
    )


def _ports(snap: _Snapshot, local: dict[str, list[Task]]) -> list[PublishedPort]:
    """``local``: the node's present tasks, by service."""
    ports: dict[tuple[str, int], PublishedPort] = {}
    for row in snap.port_rows():
        entry = row.shared
        if entry is None:
            here = local.get(row.service.id)
            if not here:
                continue
            backends = [snap.host_address(t) for t in here if in_rotation(t)]
            entry = _published(row.service, row.port, backends)
        if row.key in ports:
            continue  # the allocator and the scheduler keep these unique; first wins
        ports[row.key] = entry
    return [ports[key] for key in sorted(ports)]


def network_state(read: ReadTx, node_id: str, index: NetworkIndex | None = None) -> NetworkState:
    """Everything ``node_id`` needs to wire its networks now (see the module docstring)."""
    return network_states(read, [node_id], index)[node_id]


def network_states(
    read: ReadTx, node_ids: Iterable[str], index: NetworkIndex | None = None
) -> dict[str, NetworkState]:
    """``network_state`` of each of ``node_ids``, from one shared pass over the state;
    ``index`` must be true to ``read`` (built from it when not given)."""
    snap = _Snapshot(read, NetworkIndex.of(read) if index is None else index)
    return {node_id: _state_of(snap, node_id) for node_id in node_ids}


def _state_of(snap: _Snapshot, node_id: str) -> NetworkState:
    if node_id not in snap.nodes:
        return NetworkState(networks=[], endpoints=[], ports=[])
    needed: set[str] = set()
    local: dict[str, list[Task]] = {}
    for task in snap.read.tasks_on_node(node_id):
        if is_present(task):
            local.setdefault(task.service_id, []).append(task)
            needed.update(a.network_id for a in task.networks if a.network_id in snap.networks)
    needed.update(id for id, nodes in snap.containers.items() if node_id in nodes)
    if snap.ingress is not None:
        needed.add(snap.ingress.id)
    networks = [snap.networks[i] for i in sorted(needed)]
    endpoints: list[EndpointInfo] = []
    for network in networks:
        if not network.spec.ingress:  # no service discovery on the routing mesh's network
            endpoints.extend(snap.endpoints(network))
    return NetworkState(
        networks=[_network_info(snap, n, node_id) for n in networks],
        endpoints=endpoints,
        ports=_ports(snap, local),
    )
