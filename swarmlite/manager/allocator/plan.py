"""What the allocator writes next, computed from one store snapshot.

Owns the allocation rules. ``plan_step(read, pools)`` looks at the whole state and returns
the next batch of writes, in this order (each phase runs only once every earlier one has
nothing left to write, so a later phase always sees the earlier ones committed):

1. the ingress network, created when the cluster has none (named "ingress", no stack);
2. networks without a status get a VNI (4096 and up) and a subnet: the user's
   ``spec.subnet`` when it overlaps nothing, else the first free block of the default
   pool; never overlapping another network, the mesh pool, a node's own address, or the
   subnet of a network that was removed while live tasks still hold addresses in it;
3. nodes without a mesh address get the lowest free one of the mesh pool, stored with
   the pool's prefix ("100.96.0.3/16");
   (then each node its own address on the ingress network; the ingress network is a /24
   by default, as Docker's is: up to 253 nodes get one (fewer when tasks that publish
   ports hold some; nodes come first), the others wait, say so in the leader's
   log, with one warning for the full network, and do not answer on ingress ports; they
   get an address when one is freed. `node ls`/`node inspect` show nothing of it, as
   Docker's do not; ``--default-addr-pool-mask-length`` at init makes networks larger);
   standalone containers on attachable networks (``status.attachments``) get an address,
   and those of a removed node are dropped;
4. services get their endpoint: a VIP on each network they use (endpoint mode vip), and
   their published ports, a free one of 30000-32767 for an ingress port published as 0;
   an ingress port another service already publishes blocks the service (its tasks say so);
5. live tasks without attachments get one address on each network their spec names, plus
   the ingress network when their service publishes ingress ports, all in one write (so a
   task with any attachment has all of them: the scheduler relies on it); a task that cannot
   get them gets ``status.pending_reason`` saying why.

Nothing is ever freed by a write: what is taken is read from the store (through
``holdings``, kept by the loop from its watch, or built from the snapshot). A full network
is known from its free count and never searched, so a round that frees nothing costs no
search however many wait.
A task's addresses are free once its status is terminal (Docker does the same; it keeps
long-lived clusters from running out), or once it is deleted; a VIP or port once its
service no longer has it; a standalone container's once its attachment is removed; a subnet
and VNI once the network is deleted; a mesh address once
the node is removed. The record of a finished task still shows the address it had.

Invariants: a pure function of the snapshot (plus the ids of a created ingress network),
so a new leader continues where the last one stopped and nothing is assigned twice (each
batch is committed compare-and-set against the snapshot it was computed from); a step that
has nothing to do returns no writes.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

import msgspec

from swarmlite.api import (
    Attachment,
    Cluster,
    ContainerAttachment,
    EndpointStatus,
    Network,
    NetworkSpec,
    Node,
    PortConfig,
    Service,
    Task,
    VirtualIP,
    new_id,
)
from swarmlite.errors import InvalidArgument
from swarmlite.manager.allocator.holdings import Holdings
from swarmlite.manager.allocator.ipam import (
    PORT_FIRST,
    PORT_LAST,
    VNI_FIRST,
    VNI_LAST,
    Pools,
    first_host,
    free_number,
    free_subnet,
    host_range,
    interface,
    parse_address,
    parse_network,
)
from swarmlite.manager.allocator.taskindex import TaskIndex
from swarmlite.store import ReadTx, Tx

replace = msgspec.structs.replace

INGRESS_NAME = "ingress"
MAX_TX_OBJECTS = 200  # objects per transaction: keeps one raft entry small

PortKey = tuple[str, int]  # (protocol, published)


@dataclass
class Step:
    """One batch of writes and what it is about (for logs)."""

    phase: str = ""
    tx: Tx = field(default_factory=Tx)
    # Problems found on the way, by object id: logged by the loop when they change.
    problems: dict[str, str] = field(default_factory=dict)


def cluster_pools(read: ReadTx, base: Pools) -> Pools:
    """``base`` overridden by the cluster object's labels, when it has any."""
    clusters = read.list(Cluster)
    if not clusters:
        return base
    return base.with_labels(clusters[0].spec.labels)


def ingress_ports(service: Service) -> list[PortConfig]:
    return [p for p in service.spec.endpoint.ports if p.mode == "ingress"]


def find_ingress(read: ReadTx) -> Network | None:
    """The cluster's ingress network: the oldest network with ``spec.ingress``."""
    found = read.find(Network, lambda n: n.spec.ingress)
    return min(found, key=lambda n: (n.created_at, n.id)) if found else None


def is_allocated(network: Network) -> bool:
    return network.status.vni > 0 and bool(network.status.subnet)


def _by_age(obj: Network | Service | Task | Node) -> tuple[float, str]:
    return (obj.created_at, obj.id)


class Planner:
    """The taken resources of one snapshot, and the phases that allocate from them."""

    def __init__(
        self,
        read: ReadTx,
        pools: Pools,
        rng: random.Random | None = None,
        tasks: TaskIndex | None = None,
        holdings: Holdings | None = None,
    ) -> None:
        self.read = read
        self.pools = pools
        self.rng = rng
        self.networks = {n.id: n for n in read.list(Network)}
        self.by_name = {n.spec.name.lower(): n for n in self.networks.values()}
        self.ingress = find_ingress(read)
        self.services = {s.id: s for s in read.list(Service)}
        # What the tasks hold and which wait: given (kept by the loop) or scanned now.
        self.tasks = tasks if tasks is not None else TaskIndex.build(read)
        # Who holds which address, and the nodes that need one: given (kept) or built when
        # first needed (``network_refusal`` never needs it).
        self._holdings = holdings
        # Networks whose spec cannot be honoured: id -> why.
        self.refused: dict[str, str] = {}
        self.step = Step()

    @property
    def holdings(self) -> Holdings:
        if self._holdings is None:
            self._holdings = Holdings.build(self.read, self.ingress)
        return self._holdings

    # ------------------------------------------------------------------ phases

    def plan(self) -> Step:
        for phase in (
            self.plan_ingress,
            self.plan_networks,
            self.plan_nodes,
            self.plan_node_ingress,
            self.plan_attachments,
        ):
            phase()
            if self.step.tx:
                return self.step
        # Services, then tasks: both need the refusals of the network phase.
        blocked = self.plan_services()
        if self.step.tx:
            return self.step
        self.plan_tasks(blocked)
        return self.step

    def _begin(self, phase: str) -> None:
        self.step.phase = phase

    def plan_ingress(self) -> None:
        self._begin("ingress")
        if self.ingress is not None:
            return
        if INGRESS_NAME in self.by_name:
            self.step.problems[INGRESS_NAME] = (
                f"a network named {INGRESS_NAME!r} exists but is not the ingress network; "
                "ingress ports cannot be published"
            )
            return
        spec = NetworkSpec(name=INGRESS_NAME, driver="overlay", ingress=True)
        self.step.tx.create(Network(id=new_id(self.rng), spec=spec))

    def plan_networks(self) -> None:
        self._begin("networks")
        if all(is_allocated(n) for n in self.networks.values()):
            return
        taken = self.taken_subnets()
        vnis = {n.status.vni for n in self.networks.values() if is_allocated(n)}
        # Networks that name their subnet first: a chosen one must not take it from them.
        order = sorted(self.networks.values(), key=lambda n: (not n.spec.subnet, *_by_age(n)))
        for network in order:
            if is_allocated(network):
                continue
            subnet, why = self.subnet_for(network, taken)
            vni = free_number(VNI_FIRST, VNI_LAST, vnis)
            if subnet is None or vni is None:
                reason = why or "no VXLAN id left"
                self.refused[network.id] = f"network {network.spec.name}: {reason}"
                continue
            gateway = self.gateway_for(network, subnet)
            if gateway is None:
                self.refused[network.id] = (
                    f"network {network.spec.name}: {_bad_gateway(network, subnet)}"
                )
                continue
            taken.append((subnet, f"network {network.spec.name}"))
            vnis.add(vni)
            status = replace(network.status, vni=vni, subnet=str(subnet), gateway=str(gateway))
            self.step.tx.update(replace(network, status=status))
            if len(self.step.tx) >= MAX_TX_OBJECTS:
                return
        for network_id, why in self.refused.items():
            self.step.problems[network_id] = why

    def taken_subnets(self) -> list[tuple[IPv4Network, str]]:
        """Every subnet a new network must not overlap, with what holds it."""
        taken: list[tuple[IPv4Network, str]] = [(self.pools.mesh_pool, "the mesh pool")]
        for network in self.networks.values():
            if is_allocated(network):
                taken.append((parse_network(network.status.subnet), f"network {network.spec.name}"))
        for network_id, subnets in self.tasks.subnets.items():
            if network_id not in self.networks:
                taken.extend((subnet, "a removed network still in use") for subnet in subnets)
        for node in self.read.list(Node):
            for text in (node.status.addr, *node.status.addresses):
                address = parse_address(text)
                if address is not None:
                    taken.append((IPv4Network(address), f"node {node.status.hostname}'s address"))
        return taken

    def subnet_for(
        self, network: Network, taken: list[tuple[IPv4Network, str]]
    ) -> tuple[IPv4Network | None, str]:
        nets = [net for net, _ in taken]
        if not network.spec.subnet:
            chosen = free_subnet(self.pools.default_pool, self.pools.subnet_size, nets)
            if chosen is None:
                return None, f"no free /{self.pools.subnet_size} left in {self.pools.default_pool}"
            return chosen, ""
        try:
            wanted = parse_network(network.spec.subnet)
        except InvalidArgument as exc:
            return None, exc.message
        if wanted.prefixlen > 30:
            return None, f"subnet {wanted} is too small for tasks"
        for net, holder in taken:
            if wanted.overlaps(net):
                return None, f"subnet {wanted} overlaps {holder} ({net})"
        return wanted, ""

    def gateway_for(self, network: Network, subnet: IPv4Network) -> IPv4Address | None:
        if not network.spec.gateway:
            return first_host(subnet)
        gateway = parse_address(network.spec.gateway.split("/")[0])
        hosts_ok = gateway is not None and gateway in subnet
        if not hosts_ok or gateway in (subnet.network_address, subnet.broadcast_address):
            return None
        return gateway

    def plan_nodes(self) -> None:
        self._begin("nodes")
        waiting = self.holdings.no_mesh
        if not waiting:
            return
        pool = self.pools.mesh_pool
        held = self.holdings.mesh
        taken: set[int] = set()
        value, last = host_range(pool)
        for node in sorted(waiting.values(), key=_by_age):
            while value <= last and (value in held or value in taken):
                value += 1
            if value > last:
                self.step.problems[node.id] = f"no mesh address left in {pool}"
                continue
            taken.add(value)
            address = IPv4Address(value)
            self.step.tx.update(replace(node, mesh_address=interface(address, pool)))
            if len(self.step.tx) >= MAX_TX_OBJECTS:
                return

    def plan_node_ingress(self) -> None:
        """Every node gets its own address on the ingress network (for the routing mesh)."""
        self._begin("node ingress")
        ingress = self.ingress
        waiting = self.holdings.no_ingress
        if ingress is None or not is_allocated(ingress) or not waiting:
            return
        used = self._used_addresses()
        if not self._free(ingress, used):
            # Full: no search, and no write. Each waiting node says why (as it always did),
            # and the pool once, with what it means and what to do.
            why = self._full(ingress)
            self.step.problems.update(dict.fromkeys(waiting, why))
            self.step.problems[ingress.id] = (
                f"{why}: a node without an ingress address does not answer on ingress ports "
                "(the routing mesh) until one is freed; `swarmlite init "
                "--default-addr-pool-mask-length` under 24 makes a cluster's networks larger"
            )
            return
        for node in sorted(waiting.values(), key=_by_age):
            address, why = self._allocate(ingress, used)
            if address is None:
                self.step.problems[node.id] = why
                continue
            self.step.tx.update(replace(node, ingress_address=address))
            if len(self.step.tx) >= MAX_TX_OBJECTS:
                return

    def plan_attachments(self) -> None:
        """Standalone containers on attachable networks get an address; those of a node
        that is gone are dropped (their addresses with them)."""
        self._begin("attachments")
        used: dict[str, set[int]] | None = None
        for network in sorted(self.networks.values(), key=_by_age):
            attachments = network.status.attachments
            if not is_allocated(network) or not attachments:
                continue
            kept = [a for a in attachments if self.read.get(Node, a.node_id) is not None]
            if all(a.address for a in kept) and len(kept) == len(attachments):
                continue
            if used is None:
                used = self._used_addresses()
            given: list[ContainerAttachment] = []
            for att in kept:
                if not att.address:
                    address, why = self._allocate(network, used)
                    if address is None:
                        self.step.problems[f"{network.id}/{att.container_id}"] = why
                    else:
                        att = replace(att, address=address)
                given.append(att)
            if given == attachments:
                continue  # none could get an address: said in problems, nothing to write
            status = replace(network.status, attachments=given)
            self.step.tx.update(replace(network, status=status))
            if len(self.step.tx) >= MAX_TX_OBJECTS:
                return

    # ------------------------------------------------------------------ addresses

    def _used_addresses(self) -> dict[str, set[int]]:
        """network id -> addresses taken in it by this phase (not committed yet). What is
        committed (gateways, tasks, VIPs, containers, nodes) is in ``holdings``' pools."""
        return {}

    def _free(self, network: Network, used: dict[str, set[int]]) -> int:
        """How many addresses of ``network`` are free in this phase: O(1)."""
        pool = self.holdings.pool(network.id)
        pool.set_subnet(parse_network(network.status.subnet))
        return pool.free - len(used.get(network.id, ()))

    @staticmethod
    def _full(network: Network) -> str:
        subnet = parse_network(network.status.subnet)
        return f"no free address left in network {network.spec.name} ({subnet})"

    def _resolve(self, target: str) -> tuple[Network | None, str]:
        """The allocated network named ``target``; else None with why ("" = not yet)."""
        network = self.by_name.get(target.lower())
        if network is None:
            return None, f"network {target} not found"
        if network.id in self.refused:
            return None, self.refused[network.id]
        if not is_allocated(network):
            return None, ""
        return network, ""

    def _allocate(self, network: Network, used: dict[str, set[int]]) -> tuple[str | None, str]:
        """The lowest free address of ``network``, taken for this phase; a full network is
        not searched."""
        if self._free(network, used) <= 0:
            return None, self._full(network)
        subnet = parse_network(network.status.subnet)
        taken = used.setdefault(network.id, set())
        value = self.holdings.pool(network.id).lowest_free(taken)
        if value is None:  # not reached: the free count said there is one
            return None, self._full(network)
        taken.add(value)
        return interface(IPv4Address(value), subnet), ""

    # ------------------------------------------------------------------ services

    def plan_services(self) -> dict[str, str]:
        """Write endpoints that changed; return the services that cannot have theirs (why)."""
        self._begin("services")
        used = self._used_addresses()
        owners = self._port_owners()
        blocked: dict[str, str] = {}
        for service in sorted(self.services.values(), key=_by_age):
            endpoint, why = self._endpoint_for(service, used, owners)
            if endpoint is None:
                if why:
                    blocked[service.id] = why
                    self.step.problems[service.id] = f"service {service.spec.name}: {why}"
                else:
                    blocked[service.id] = ""  # waiting for a network's allocation
                continue
            if endpoint != service.endpoint:
                self.step.tx.update(replace(service, endpoint=endpoint))
                if len(self.step.tx) >= MAX_TX_OBJECTS:
                    break
        return blocked

    def _port_owners(self) -> dict[PortKey, str]:
        """Ingress ports held now, by the services whose spec still asks for them."""
        owners: dict[PortKey, str] = {}
        for service in sorted(self.services.values(), key=_by_age):
            wanted = ingress_ports(service)
            for port in service.endpoint.ports:
                still = any(
                    (p.protocol, p.target) == (port.protocol, port.target)
                    and p.published in (0, port.published)
                    for p in wanted
                )
                if port.mode == "ingress" and port.published and still:
                    owners.setdefault((port.protocol, port.published), service.id)
        return owners

    def _endpoint_for(
        self,
        service: Service,
        used: dict[str, set[int]],
        owners: dict[PortKey, str],
    ) -> tuple[EndpointStatus | None, str]:
        ports, why = self._ports_for(service, owners)
        if ports is None:
            return None, why
        vips: list[VirtualIP] = []
        if service.spec.endpoint.mode == "vip":
            current = {v.network_id: v for v in service.endpoint.vips}
            targets = sorted({n.target for n in service.spec.task.networks}, key=str.lower)
            fresh: list[Network] = []
            for target in targets:
                network, why = self._resolve(target)
                if network is None:
                    return None, why
                if network.id in current:
                    vips.append(current[network.id])
                else:
                    fresh.append(network)
            for network in fresh:
                address, why = self._allocate(network, used)
                if address is None:
                    return None, why
                vips.append(VirtualIP(network_id=network.id, address=address))
            vips.sort(key=lambda v: v.network_id)
        for port in ports:
            if port.mode == "ingress":
                owners[(port.protocol, port.published)] = service.id
        return EndpointStatus(vips=vips, ports=ports), ""

    def _ports_for(
        self, service: Service, owners: dict[PortKey, str]
    ) -> tuple[list[PortConfig] | None, str]:
        ports: list[PortConfig] = []
        claimed: set[PortKey] = set()
        for port in service.spec.endpoint.ports:
            if port.mode != "ingress":
                ports.append(port)
                continue
            published = port.published or self._kept_port(service, port, owners, claimed)
            if not published:
                taken = {n for (proto, n) in (*owners, *claimed) if proto == port.protocol}
                found = free_number(PORT_FIRST, PORT_LAST, taken)
                if found is None:
                    return None, f"no free port left in {PORT_FIRST}-{PORT_LAST}"
                published = found
            key = (port.protocol, published)
            holder = owners.get(key)
            if key in claimed or (holder is not None and holder != service.id):
                other = self.services.get(holder or "")
                by = f"service {other.spec.name}" if other is not None else "this service"
                return None, f"port {published}/{port.protocol} is already published by {by}"
            claimed.add(key)
            ports.append(replace(port, published=published))
        return ports, ""

    @staticmethod
    def _kept_port(
        service: Service, port: PortConfig, owners: dict[PortKey, str], claimed: set[PortKey]
    ) -> int:
        """The port this service was given before for ``port`` (published 0), or 0."""
        for had in service.endpoint.ports:
            key = (had.protocol, had.published)
            if (
                had.mode == "ingress"
                and had.protocol == port.protocol
                and had.target == port.target
                and had.published
                and owners.get(key) == service.id
                and key not in claimed
            ):
                return had.published
        return 0

    # ------------------------------------------------------------------ tasks

    def plan_tasks(self, blocked: dict[str, str]) -> None:
        self._begin("tasks")
        used = self._used_addresses()
        for task in sorted(self._waiting(blocked), key=_by_age):
            service = self.services.get(task.service_id)
            if service is None:
                continue  # its service is gone: the reaper stops it
            if service.id in blocked:
                if blocked[service.id]:
                    self._pending(task, blocked[service.id])
                continue
            attachments, why = self._attachments_for(task, service, used)
            if attachments is None:
                if why:
                    self._pending(task, why)
                continue
            if not attachments:
                continue  # on no network at all: nothing to allocate
            status = task.status
            if status.pending_reason:
                message = "pending" if status.message == status.pending_reason else status.message
                status = replace(status, pending_reason="", message=message)
            self.step.tx.patch(task, replace(task, networks=attachments, status=status))
            if len(self.step.tx) >= MAX_TX_OBJECTS:
                return

    def _waiting(self, blocked: dict[str, str]) -> list[Task]:
        """Live tasks without attachments that this step may write: those of a service
        blocked for a reason (they say why), or that are on a network or publish on the
        ingress network. The others would get no attachment at all: nothing to write, and
        not looked at (they are most tasks of most clusters: a pass costs what waits)."""
        found: list[Task] = []
        for service_id, tasks in self.tasks.waiting.items():
            service = self.services.get(service_id)
            if service is None:
                continue  # its service is gone: the reaper stops it
            if service_id in blocked or ingress_ports(service):
                if blocked.get(service_id, "x"):
                    found.extend(tasks.values())
            else:
                found.extend(self.tasks.networked.get(service_id, {}).values())
        return found

    def _attachments_for(
        self, task: Task, service: Service, used: dict[str, set[int]]
    ) -> tuple[list[Attachment] | None, str]:
        wanted: dict[str, list[str]] = {}
        for net in task.spec.networks:
            wanted.setdefault(net.target, [])
            wanted[net.target].extend(a for a in net.aliases if a not in wanted[net.target])
        networks: list[tuple[Network, list[str]]] = []
        for target, aliases in wanted.items():
            network, why = self._resolve(target)
            if network is None:
                return None, why
            networks.append((network, aliases))
        if ingress_ports(service):
            ingress = self.ingress
            if ingress is None or not is_allocated(ingress):
                return None, self.refused.get(ingress.id, "") if ingress is not None else ""
            if all(n.id != ingress.id for n, _ in networks):
                networks.append((ingress, []))
        attachments: list[Attachment] = []
        for network, aliases in networks:
            address, why = self._allocate(network, used)
            if address is None:
                return None, why
            attachments.append(
                Attachment(network_id=network.id, address=address, aliases=list(aliases))
            )
        return attachments, ""

    def _pending(self, task: Task, reason: str) -> None:
        if task.status.pending_reason == reason:
            return
        status = replace(task.status, pending_reason=reason, message=reason)
        self.step.tx.patch(task, replace(task, status=status))


def _bad_gateway(network: Network, subnet: IPv4Network) -> str:
    return f"gateway {network.spec.gateway} is not a host address of {subnet}"


def plan_step(
    read: ReadTx,
    pools: Pools,
    rng: random.Random | None = None,
    tasks: TaskIndex | None = None,
    holdings: Holdings | None = None,
) -> Step:
    """The next batch of allocation writes for ``read`` (an empty Tx when all is done).

    ``tasks`` and ``holdings``, when given, must be the indexes of exactly ``read`` (else
    they are built); ``holdings`` must be built for ``read``'s ingress network.
    """
    return Planner(read, cluster_pools(read, pools), rng, tasks, holdings).plan()


def network_refusal(read: ReadTx, pools: Pools, network: Network) -> str:
    """Why the allocator could not give ``network`` (not yet stored) its subnet and gateway
    in this snapshot ("" when it could): for the control API to refuse it at once."""
    planner = Planner(read, cluster_pools(read, pools))
    taken = planner.taken_subnets()
    for other in planner.networks.values():  # named, not allocated yet: theirs come first
        if not is_allocated(other) and other.spec.subnet:
            with contextlib.suppress(InvalidArgument):
                taken.append((parse_network(other.spec.subnet), f"network {other.spec.name}"))
    subnet, why = planner.subnet_for(network, taken)
    if subnet is None:
        return why
    if planner.gateway_for(network, subnet) is None:
        return _bad_gateway(network, subnet)
    return ""
