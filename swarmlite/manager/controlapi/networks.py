"""The control API for networks: what `swarmlite network create|ls|inspect|rm` call.

Owns the rules of networks made outside a stack, as a Swarm user knows them from `docker
network create -d overlay`: a name is unique and made of letters, digits and ``_.-``; the
only driver is overlay; a subnet the user names must fit beside every other network, the
mesh pool and the nodes' own addresses (the allocator's rules, asked before storing through
the ``refusal`` that manager.py hands in, so a refusal is an error now and not a network
that never gets a subnet); a network some service or standalone container
uses cannot be removed, and the ingress network cannot be removed at all. A node's
standalone containers join only attachable networks (``attach``/``detach``, called by the
node for its own containers: the node is the caller's certificate). Calls reach the
leader (a follower forwards them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec

from swarmlite.api import ContainerAttachment, Network, NetworkSpec, Service, new_id
from swarmlite.api.control import (
    Empty,
    ListRequest,
    NameRef,
    NetworkAttach,
    NetworkAttachReply,
    NetworkCreate,
    NetworkDetach,
    NetworkList,
    NetworkView,
)
from swarmlite.api.filters import match_networks
from swarmlite.api.routes import (
    NETWORK_ATTACH,
    NETWORK_CREATE,
    NETWORK_DETACH,
    NETWORK_INSPECT,
    NETWORK_LS,
    NETWORK_RM,
)
from swarmlite.errors import AlreadyExists, FailedPrecondition, InvalidArgument, Unavailable
from swarmlite.log import kv
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.names import check_name
from swarmlite.manager.controlapi.router import Router
from swarmlite.rpc import Peer
from swarmlite.store import ReadTx, Tx

log = logging.getLogger(__name__)


def users(state: ReadTx, network: Network) -> list[str]:
    """The names of the services attached to ``network``, sorted (ingress: the services
    that publish a port in ingress mode)."""
    name = network.spec.name.lower()
    found = set()
    for service in state.list(Service):
        spec = service.spec
        if network.spec.ingress:
            if any(p.mode == "ingress" for p in spec.endpoint.ports):
                found.add(spec.name)
            continue
        named = any(net.target.lower() == name for net in spec.task.networks)
        if named or any(v.network_id == network.id for v in service.endpoint.vips):
            found.add(spec.name)
    return sorted(found)


def check_spec(spec: NetworkSpec) -> None:
    """What a network needs before anything is looked up: a good name, the overlay driver."""
    check_name("network", spec.name)
    if spec.driver != "overlay":
        raise InvalidArgument(
            f"network driver {spec.driver!r} is not supported: networks are overlay networks",
            hint="leave --driver out, or give --driver overlay",
        )
    if spec.ingress:
        raise InvalidArgument("the cluster makes its ingress network itself; there is one")
    if spec.gateway and not spec.subnet:
        raise InvalidArgument("a gateway needs a subnet (--subnet) to belong to")


Refusal = Callable[[ReadTx, Network], str]


class NetworkAPI:
    """``refusal(state, network)`` says why the allocator could not give ``network`` a
    subnet in ``state`` ("" when it could); manager.py wires the allocator's rule in."""

    def __init__(self, ctx: ManagerContext, refusal: Refusal) -> None:
        self.ctx = ctx
        self.refusal = refusal

    def register(self, router: Router) -> None:
        router.unary(NETWORK_CREATE, self.create)
        router.unary(NETWORK_LS, self.ls)
        router.unary(NETWORK_INSPECT, self.inspect)
        router.unary(NETWORK_RM, self.rm)
        router.unary(NETWORK_ATTACH, self.attach)
        router.unary(NETWORK_DETACH, self.detach)

    def resolve(self, state: ReadTx, ref: str) -> Network:
        return self.ctx.resolve_named(state, Network, ref)

    async def create(self, req: NetworkCreate, peer: Peer) -> NetworkView:
        check_spec(req.spec)
        network = Network(id=new_id(), spec=req.spec)

        def write(state: ReadTx) -> Tx:
            taken = [n for n in state.list(Network) if n.spec.name.lower() == req.spec.name.lower()]
            if taken:
                raise AlreadyExists(f"network {taken[0].spec.name} already exists")
            why = self.refusal(state, network)
            if why:
                raise InvalidArgument(f"network {req.spec.name}: {why}")
            tx = Tx()
            tx.create(network)
            return tx

        await self.ctx.store.update(write)
        log.info("network created %s", kv(network=req.spec.name, id=network.id))
        stored = self.ctx.store.memory.get(Network, network.id)
        return NetworkView(network=stored or network)

    async def ls(self, req: ListRequest, peer: Peer) -> NetworkList:
        memory = self.ctx.store.memory
        networks = sorted(memory.list(Network), key=lambda n: (n.spec.name, n.id))
        networks = match_networks(req.filters, networks, services=memory.list(Service))
        return NetworkList(
            networks=[NetworkView(network=n, services=users(memory, n)) for n in networks]
        )

    async def inspect(self, req: NameRef, peer: Peer) -> NetworkView:
        memory = self.ctx.store.memory
        network = self.resolve(memory, req.ref)
        return NetworkView(network=network, services=users(memory, network))

    async def rm(self, req: NameRef, peer: Peer) -> NetworkView:
        removed: list[Network] = []

        def write(state: ReadTx) -> Tx:
            removed.clear()
            network = self.resolve(state, req.ref)
            if network.spec.ingress:
                raise FailedPrecondition(
                    f"network {network.spec.name} is the routing mesh's; it cannot be removed"
                )
            using = users(state, network)
            if using:
                raise FailedPrecondition(
                    f"network {network.spec.name} is in use by service {', '.join(using)}",
                    hint="remove those services (or their stacks) first",
                    details={"services": using},
                )
            if network.status.attachments:
                names = sorted(a.name or a.container_id[:12] for a in network.status.attachments)
                raise FailedPrecondition(
                    f"network {network.spec.name} has active endpoints: "
                    f"containers {', '.join(names)}",
                    hint="remove those containers (docker rm -f) first",
                )
            removed.append(network)
            tx = Tx()
            tx.delete(network)
            return tx

        await self.ctx.store.update(write)
        [network] = removed
        log.info("network removed %s", kv(network=network.spec.name, id=network.id))
        return NetworkView(network=network)

    async def attach(self, req: NetworkAttach, peer: Peer) -> NetworkAttachReply:
        """Record a standalone container of the calling node on an attachable network (the
        allocator gives it its address; the node asks again until it has one)."""
        node_id = peer.identity.node_id if peer.identity is not None else self.ctx.node_id
        if not req.container_id:
            raise InvalidArgument("a container to attach needs its id")
        found: list[NetworkAttachReply] = []

        def write(state: ReadTx) -> Tx:
            found.clear()
            network = self.resolve(state, req.network)
            check_attachable(network)
            reply = NetworkAttachReply(
                network_id=network.id, name=network.spec.name, gateway=network.status.gateway
            )
            tx = Tx()
            if req.check:
                found.append(reply)
                return tx
            current = attachment_of(network, req.container_id)
            if current is None:
                current = ContainerAttachment(
                    node_id=node_id, container_id=req.container_id, name=req.name
                )
                attachments = [*network.status.attachments, current]
                status = msgspec.structs.replace(network.status, attachments=attachments)
                tx.update(msgspec.structs.replace(network, status=status))
            elif current.node_id != node_id:
                raise AlreadyExists(
                    f"container {req.container_id[:12]} is attached to network "
                    f"{network.spec.name} from another node"
                )
            found.append(msgspec.structs.replace(reply, attachment=current))
            return tx

        await self.ctx.store.update(write)
        [reply] = found
        return reply

    async def detach(self, req: NetworkDetach, peer: Peer) -> Empty:
        """Forget the calling node's container on every network (its addresses are free)."""
        node_id = peer.identity.node_id if peer.identity is not None else self.ctx.node_id

        def write(state: ReadTx) -> Tx:
            tx = Tx()
            for network in state.list(Network):
                kept = [
                    a
                    for a in network.status.attachments
                    if not (a.container_id == req.container_id and a.node_id == node_id)
                ]
                if len(kept) != len(network.status.attachments):
                    status = msgspec.structs.replace(network.status, attachments=kept)
                    tx.update(msgspec.structs.replace(network, status=status))
            return tx

        await self.ctx.store.update(write)
        return Empty()


def check_attachable(network: Network) -> None:
    """FailedPrecondition unless standalone containers may join ``network``."""
    if network.spec.ingress:
        raise FailedPrecondition(
            f"network {network.spec.name} is the routing mesh's; containers cannot join it"
        )
    if not network.spec.attachable:
        raise FailedPrecondition(
            f"network {network.spec.name} is not attachable: only services can use it",
            hint="create the network with --attachable to run standalone containers on it",
        )
    if not (network.status.vni and network.status.subnet):
        raise Unavailable(f"network {network.spec.name} has no subnet yet; try again")


def attachment_of(network: Network, container_id: str) -> ContainerAttachment | None:
    return next((a for a in network.status.attachments if a.container_id == container_id), None)
