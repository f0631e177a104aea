"""The control API for the swarm itself: what `swarmlite swarm inspect|update` call.

Owns the cluster-wide settings a user may change, as `docker swarm update` has them: the
dispatcher's heartbeat period (how fast a dead node is noticed), how many finished tasks
each slot keeps, how long the node certificates issued from now on last, and autolock
(with its unlock key: `swarm unlock-key [--rotate]`; the managers follow it, see
``manager.Manager``). A view of the
cluster never carries its secrets: no CA key, no join secrets (`join-token` shows those);
only a backup does (`swarm backup`: the whole store as of one raft index, for `init
--restore`; the CLI seals it under a passphrase).
Calls reach the leader (a follower forwards them).
"""

from __future__ import annotations

import logging
from typing import TypeVar

import msgspec

from swarmlite import __version__
from swarmlite.api import KINDS, Cluster, Node, NodeRole, Object
from swarmlite.api.control import (
    Backup,
    Empty,
    SwarmUpdate,
    SwarmView,
    UnlockKey,
    UnlockKeyRequest,
)
from swarmlite.api.routes import SWARM_BACKUP, SWARM_INSPECT, SWARM_UPDATE, UNLOCK_KEY
from swarmlite.errors import FailedPrecondition, InvalidArgument
from swarmlite.log import kv
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.router import Router
from swarmlite.raft.sealing import new_unlock_key
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
        router.unary(UNLOCK_KEY, self.unlock_key)
        router.unary(SWARM_BACKUP, self.backup)

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
                autolock=_or(req.autolock, settings.autolock),
            )
            if changed == settings:
                return None
            spec = msgspec.structs.replace(cluster.spec, settings=changed)
            # Autolock on: a new unlock key; off: none. Every manager re-seals its raft keys.
            key = (cluster.unlock_key or new_unlock_key()) if changed.autolock else ""
            return Tx().update(msgspec.structs.replace(cluster, spec=spec, unlock_key=key))

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

    async def unlock_key(self, req: UnlockKeyRequest, peer: Peer) -> UnlockKey:
        """`swarm unlock-key`: the key a restarted manager needs; ``rotate`` makes a new
        one first (every manager re-seals its raft keys with it)."""
        if not self.ctx.cluster().spec.settings.autolock:
            raise FailedPrecondition(
                "no unlock key is set: autolock is off",
                hint="`swarmlite swarm update --autolock=true` turns it on",
            )
        if req.rotate:

            def write(state: ReadTx) -> Tx:
                cluster = state.list(Cluster)[0]
                return Tx().update(msgspec.structs.replace(cluster, unlock_key=new_unlock_key()))

            await self.ctx.store.update(write)
            log.info("unlock key rotated")
        return UnlockKey(key=self.ctx.cluster().unlock_key)

    async def backup(self, req: Empty, peer: Peer) -> Backup:
        """Every object of the store as of one raft index: read in one step, with no await
        between the first kind and the last, so no commit lands in between (the router's
        read barrier has applied everything committed before the call)."""
        memory = self.ctx.store.memory
        objects: list[Object] = []
        for kind in KINDS:
            objects.extend(memory.list(kind))
        index = memory.applied_index
        log.info(
            "backup taken %s", kv(index=index, objects=len(objects), peer=peer.address or "local")
        )
        return Backup(
            cluster_id=self.ctx.cluster_id,
            index=index,
            taken_at=self.ctx.clock.wall(),
            version=__version__,
            objects=objects,
        )


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
        ca_rotation=cluster.root_ca.rotation is not None,
    )


def _or(value: T | None, current: T) -> T:
    return current if value is None else value
