"""The control API for networks: what `swarmlite network create|ls|inspect|rm` call.

Owns the rules of networks made outside a stack, as a Swarm user knows them from `docker
network create -d overlay`: a name is unique and made of letters, digits and ``_.-``; the
only driver is overlay; a subnet the user names must fit beside every other network, the
mesh pool and the nodes' own addresses (the allocator's rules, asked before storing through
the ``refusal`` that manager.py hands in, so a refusal is an error now and not a network
that never gets a subnet); a network some service
uses cannot be removed, and the ingress network cannot be removed at all. Calls reach the
leader (a follower forwards them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from swarmlite.api import Network, NetworkSpec, Service, new_id
from swarmlite.api.control import ListRequest, NameRef, NetworkCreate, NetworkList, NetworkView
from swarmlite.api.filters import match_networks
from swarmlite.api.routes import NETWORK_CREATE, NETWORK_INSPECT, NETWORK_LS, NETWORK_RM
from swarmlite.errors import AlreadyExists, FailedPrecondition, InvalidArgument
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
            removed.append(network)
            tx = Tx()
            tx.delete(network)
            return tx

        await self.ctx.store.update(write)
        [network] = removed
        log.info("network removed %s", kv(network=network.spec.name, id=network.id))
        return NetworkView(network=network)
