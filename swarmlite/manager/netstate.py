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

Does not own allocation (the allocator) nor sending (the dispatcher); never writes.
Invariant: deterministic: every list is sorted, so that two calls on equal states give
equal messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address

from swarmlite.api import Network, Node, Service, Task, TaskState
from swarmlite.api.control import (
    EndpointInfo,
    FdbEntry,
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


def _mesh_ip(node: Node) -> str:
    return bare(node.mesh_address) if node.mesh_address else ""


def mesh_state(read: ReadTx, node_id: str) -> MeshState | None:
    """This node's mesh address and its peers; None while it has no mesh address."""
    node = read.get(Node, node_id)
    if node is None or not node.mesh_address:
        return None
    address = node.mesh_address
    if "/" not in address:
        address = f"{address}/32"
    peers = [
        MeshPeer(
            node_id=other.id,
            public_key=other.status.mesh_public_key,
            endpoint=other.status.mesh_endpoint,
            mesh_address=_mesh_ip(other),
            next_key=other.status.mesh_next_key,
        )
        for other in sorted(read.list(Node), key=lambda n: n.id)
        if other.id != node_id
        and other.status.mesh_public_key
        and other.status.mesh_endpoint
        and other.mesh_address
    ]
    return MeshState(address=address, peers=peers)


class _Snapshot:
    """The indexes one ``network_state`` call needs."""

    def __init__(self, read: ReadTx) -> None:
        self.nodes = {n.id: n for n in read.list(Node)}
        self.networks = {
            n.id: n for n in read.list(Network) if n.status.vni > 0 and n.status.subnet
        }
        self.by_name = {n.spec.name.lower(): n for n in self.networks.values()}
        self.services = sorted(read.list(Service), key=lambda s: (s.spec.name, s.id))
        self.present = [t for t in read.list(Task) if is_present(t)]
        ingress = [n for n in self.networks.values() if n.spec.ingress]
        self.ingress = min(ingress, key=lambda n: (n.created_at, n.id)) if ingress else None
        self.by_service: dict[str, list[Task]] = {}
        for task in self.present:
            self.by_service.setdefault(task.service_id, []).append(task)

    def ingress_address(self, node_id: str) -> str:
        node = self.nodes.get(node_id)
        return node.ingress_address if node is not None else ""

    def vtep(self, node_id: str) -> str:
        node = self.nodes.get(node_id)
        return _mesh_ip(node) if node is not None else ""

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


def _network_info(snap: _Snapshot, network: Network, node_id: str) -> NetworkInfo:
    vteps: set[str] = set()
    fdb: set[tuple[str, str]] = set()
    if network.spec.ingress:
        vteps = {snap.vtep(n) for n in snap.nodes if n != node_id}
        # The routing mesh's replies go to the node that masqueraded the request: its own
        # ingress address, which without an entry here would be flooded to every node.
        for other in snap.nodes.values():
            if other.id != node_id and other.ingress_address and snap.vtep(other.id):
                fdb.add((mac_of(other.ingress_address), snap.vtep(other.id)))
    located = [(t.node_id, _address_on(t, network.id)) for t in snap.present]
    located += [(a.node_id, a.address) for a in network.status.attachments]
    for other_id, address in located:
        if other_id == node_id:
            continue
        vtep = snap.vtep(other_id)
        if not address or not vtep:
            continue
        vteps.add(vtep)
        fdb.add((mac_of(address), vtep))
    vteps.discard("")
    return NetworkInfo(
        network_id=network.id,
        name=network.spec.name,
        vni=network.status.vni,
        subnet=network.status.subnet,
        gateway=network.status.gateway,
        ingress=network.spec.ingress,
        address=snap.ingress_address(node_id) if network.spec.ingress else "",
        vteps=_sorted_ips(vteps),
        fdb=[FdbEntry(mac=mac, vtep=vtep) for mac, vtep in sorted(fdb)],
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
    tasks = snap.by_service.get(service.id, [])
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


def _ports(snap: _Snapshot, node_id: str) -> list[PublishedPort]:
    ports: dict[tuple[str, int], PublishedPort] = {}
    for service in snap.services:
        tasks = snap.by_service.get(service.id, [])
        for port in service.endpoint.ports:
            if not port.published:
                continue
            key = (port.protocol, port.published)
            if port.mode == "ingress":
                if snap.ingress is None:
                    continue
                ingress_id = snap.ingress.id
                backends = [_address_on(t, ingress_id) for t in tasks if in_rotation(t)]
            else:
                local = [t for t in tasks if t.node_id == node_id]
                if not local:
                    continue
                backends = [snap.host_address(t) for t in local if in_rotation(t)]
            if key in ports:
                continue  # the allocator and the scheduler keep these unique; first wins
            ports[key] = PublishedPort(
                published=port.published,
                protocol=port.protocol,
                target=port.target,
                mode=port.mode,
                backends=_sorted_ips(bare(a) for a in backends if a),
                service_id=service.id,
            )
    return [ports[key] for key in sorted(ports)]


def network_state(read: ReadTx, node_id: str) -> NetworkState:
    """Everything ``node_id`` needs to wire its networks now (see the module docstring)."""
    snap = _Snapshot(read)
    if node_id not in snap.nodes:
        return NetworkState(networks=[], endpoints=[], ports=[])
    needed: set[str] = set()
    for task in snap.present:
        if task.node_id == node_id:
            needed.update(a.network_id for a in task.networks if a.network_id in snap.networks)
    for network in snap.networks.values():
        if any(a.node_id == node_id and a.address for a in network.status.attachments):
            needed.add(network.id)
    if snap.ingress is not None:
        needed.add(snap.ingress.id)
    networks = [snap.networks[i] for i in sorted(needed)]
    endpoints: list[EndpointInfo] = []
    for network in networks:
        if network.spec.ingress:
            continue  # no service discovery on the routing mesh's network
        for service in snap.services:
            if network.id in snap.service_networks(service):
                endpoints.append(_endpoint(snap, service, network))
        endpoints.extend(_container_endpoints(network))
    return NetworkState(
        networks=[_network_info(snap, n, node_id) for n in networks],
        endpoints=endpoints,
        ports=_ports(snap, node_id),
    )
