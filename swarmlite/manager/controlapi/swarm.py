"""The control API for the swarm itself: what `swarmlite swarm inspect|update` call.

Owns the cluster-wide settings a user may change, as `docker swarm update` has them: the
dispatcher's heartbeat period (how fast a dead node is noticed), how many finished tasks
each slot keeps, and how long the node certificates issued from now on last. A view of the
cluster never carries its secrets: no CA key, no join secrets (`join-token` shows those).
Calls reach the leader (a follower forwards them).
"""

from __future__ import annotations

import logging
from typing import TypeVar

import msgspec

from swarmlite.api import Cluster, Node, NodeRole
from swarmlite.api.control import Empty, SwarmUpdate, SwarmView
from swarmlite.api.routes import SWARM_INSPECT, SWARM_UPDATE
from swarmlite.errors import InvalidArgument
from swarmlite.log import kv
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.router import Router
from swarmlite.rpc import Peer
from swarmlite.store import ReadTx, Tx

log = logging.getLogger(__name__)

T = TypeVar("T")

MIN_HEARTBEAT = 0.1  # seconds
MIN_CERT_EXPIRY = 3600.0  # Docker's minimum: one hour


class SwarmAPI:
    def __init__(self, ctx: ManagerContext) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.unary(SWARM_INSPECT, self.inspect)
        router.unary(SWARM_UPDATE, self.update)

    async def inspect(self, req: Empty, peer: Peer) -> SwarmView:
        nodes = self.ctx.store.memory.list(Node)
        return view(self.ctx.cluster(), nodes)

    async def update(self, req: SwarmUpdate, peer: Peer) -> SwarmView:
        check_update(req)

        def write(state: ReadTx) -> Tx | None:
            cluster = state.list(Cluster)[0]
            settings = cluster.spec.settings
            changed = msgspec.structs.replace(
                settings,
                heartbeat_period=_or(req.heartbeat_period, settings.heartbeat_period),
                task_history_limit=_or(req.task_history_limit, settings.task_history_limit),
                cert_expiry=_or(req.cert_expiry, settings.cert_expiry),
            )
            if changed == settings:
                return None
            spec = msgspec.structs.replace(cluster.spec, settings=changed)
            return Tx().update(msgspec.structs.replace(cluster, spec=spec))

        await self.ctx.store.update(write)
        log.info(
            "swarm updated %s",
            kv(
                heartbeat=req.heartbeat_period,
                history=req.task_history_limit,
                cert_expiry=req.cert_expiry,
            ),
        )
        return await self.inspect(Empty(), peer)


def check_update(req: SwarmUpdate) -> None:
    if req.heartbeat_period is not None and req.heartbeat_period < MIN_HEARTBEAT:
        raise InvalidArgument(
            f"dispatcher heartbeat period {req.heartbeat_period:g}s is too short: "
            f"it must be at least {MIN_HEARTBEAT:g}s"
        )
    if req.task_history_limit is not None and req.task_history_limit < 0:
        raise InvalidArgument("task history limit must not be negative")
    if req.cert_expiry is not None and req.cert_expiry < MIN_CERT_EXPIRY:
        raise InvalidArgument(
            f"certificate expiry {req.cert_expiry:g}s is too short: it must be at least 1h"
        )


def view(cluster: Cluster, nodes: list[Node]) -> SwarmView:
    return SwarmView(
        id=cluster.id,
        version=cluster.version,
        created_at=cluster.created_at,
        updated_at=cluster.updated_at,
        spec=cluster.spec,
        ca_cert_pem=cluster.root_ca.cert_pem,
        nodes=len(nodes),
        managers=sum(1 for n in nodes if n.spec.role is NodeRole.MANAGER),
    )


def _or(value: T | None, current: T) -> T:
    return current if value is None else value
