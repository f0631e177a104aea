"""The control API of the cluster's root CA: what `swarmlite swarm ca [--rotate]` calls.

Owns starting a root CA rotation (`--rotate`): the leader makes a new root and its
certificate cross-signed by the old root's key, and records the rotation in the Cluster
object (``ca.rotation`` says what follows from it). Does not own how a rotation goes on
(managers issue from the new root, ``controlapi.join``; nodes follow it from their session,
``dispatcher``) nor how it ends (``manager.carotation``). A view shows certificates only,
never a key. Calls reach the leader (a follower forwards them).
"""

from __future__ import annotations

import logging

import msgspec

from swarmlite.api import Cluster, Node
from swarmlite.api.control import CARequest, CAView
from swarmlite.api.routes import SWARM_CA
from swarmlite.ca.rotation import pending, start_rotation
from swarmlite.errors import FailedPrecondition
from swarmlite.log import kv
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.router import Router
from swarmlite.rpc import Peer
from swarmlite.store import ReadTx, Tx

log = logging.getLogger(__name__)


class CAAPI:
    def __init__(self, ctx: ManagerContext) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.unary(SWARM_CA, self.ca)

    async def ca(self, req: CARequest, peer: Peer) -> CAView:
        if req.rotate:
            await self.rotate()
        return ca_view(self.ctx.cluster(), self.ctx.store.memory.list(Node))

    async def rotate(self) -> None:
        """Start a rotation to a new root; FailedPrecondition if one is under way."""
        current = self.ctx.cluster().root_ca
        _refuse_second(current.rotation is not None)
        rotation = start_rotation(current, started_at=self.ctx.clock.wall())

        def write(state: ReadTx) -> Tx:
            cluster = state.list(Cluster)[0]
            _refuse_second(cluster.root_ca.cert_pem != current.cert_pem)
            _refuse_second(cluster.root_ca.rotation is not None)
            root_ca = msgspec.structs.replace(cluster.root_ca, rotation=rotation)
            return Tx().update(msgspec.structs.replace(cluster, root_ca=root_ca))

        await self.ctx.store.update(write)
        log.info("root CA rotation started %s", kv(nodes=len(self.ctx.store.memory.list(Node))))


def _refuse_second(under_way: bool) -> None:
    if under_way:
        raise FailedPrecondition(
            "a root CA rotation is already under way",
            hint="`swarmlite swarm ca` shows its progress; rotate again once it has ended",
        )


def ca_view(cluster: Cluster, nodes: list[Node]) -> CAView:
    rotation = cluster.root_ca.rotation
    if rotation is None:
        return CAView(cert_pem=cluster.root_ca.cert_pem)
    return CAView(
        cert_pem=cluster.root_ca.cert_pem,
        rotating=True,
        new_cert_pem=rotation.cert_pem,
        started_at=rotation.started_at,
        renewed=len(rotation.renewed),
        pending=sorted(n.status.hostname or n.id for n in pending(rotation, nodes)),
    )
