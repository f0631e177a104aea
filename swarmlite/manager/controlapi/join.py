"""Joining and certificates: the join endpoint, raft membership for new managers, renewal.

Owns who may enter the cluster and with what role: a join token names the CA (the
joiner pins it) and carries a secret that picks the role; the leader signs the joiner's
key with a certificate naming a fresh node id and that role, and records the Node. A
renewal re-signs a node's key with the role the store holds now, so a promotion or
demotion reaches the certificate. Removed nodes are refused by the rpc `authorize` hook.
"""

from __future__ import annotations

import logging

from swarmlite.api import Cluster, Node, NodeRole, NodeSpec, NodeState, NodeStatus, new_id
from swarmlite.api.control import (
    CAReply,
    Empty,
    JoinReply,
    JoinRequest,
    RaftJoinRequest,
    RenewReply,
    RenewRequest,
)
from swarmlite.api.routes import CA_RENEW, JOIN, JOIN_CA, RAFT_JOIN
from swarmlite.ca import Identity, RootCA, parse_token, secrets_match, sign_csr
from swarmlite.errors import FailedPrecondition, PermissionDenied
from swarmlite.log import kv
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.router import Router
from swarmlite.rpc import Peer
from swarmlite.store import Tx

log = logging.getLogger(__name__)


class JoinAPI:
    def __init__(self, ctx: ManagerContext) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.unary(JOIN_CA, self.ca)
        router.unary(JOIN, self.join)
        router.unary(RAFT_JOIN, self.raft_join)
        router.unary(CA_RENEW, self.renew)

    @property
    def cert_expiry_days(self) -> float:
        """How long the certificates issued now last (`swarm update --cert-expiry`)."""
        return self.ctx.cluster().spec.settings.cert_expiry / 86400

    def _root(self) -> RootCA:
        cluster = self.ctx.cluster()
        return RootCA.load(cluster.root_ca.cert_pem, cluster.root_ca.key_pem)

    async def ca(self, req: Empty, peer: Peer) -> CAReply:
        return CAReply(cert_pem=self.ctx.cluster().root_ca.cert_pem)

    async def join(self, req: JoinRequest, peer: Peer) -> JoinReply:
        token = parse_token(req.token)
        cluster = self.ctx.cluster()
        root = self._root()
        if token.ca_digest_hex != root.digest():
            raise PermissionDenied("the join token was made for another cluster's CA")
        if secrets_match(token.secret, cluster.join.manager):
            role = NodeRole.MANAGER
        elif secrets_match(token.secret, cluster.join.worker):
            role = NodeRole.WORKER
        else:
            log.warning("join refused: invalid token %s", kv(peer=peer.address, host=req.hostname))
            raise PermissionDenied(
                "invalid join token",
                hint="the token may have been rotated: ask a manager for "
                "`swarmlite join-token worker` (or manager)",
            )
        node_id = new_id()
        host = req.addr.rpartition(":")[0] or req.addr
        cert_pem = sign_csr(
            root,
            req.csr_pem,
            node_id,
            role.value,
            self.ctx.cluster_id,
            expiry_days=self.cert_expiry_days,
            addresses=[host],
        )
        node = Node(
            id=node_id,
            spec=NodeSpec(role=role),
            status=NodeStatus(
                state=NodeState.UNKNOWN,
                hostname=req.hostname,
                addresses=(host,),
                addr=req.addr,
                version=req.version,
            ),
        )
        await self.ctx.store.propose(Tx().create(node))
        log.info("node joined %s", kv(node=node_id, role=role.value, addr=req.addr))
        return JoinReply(
            node_id=node_id,
            cluster_id=self.ctx.cluster_id,
            role=role,
            cert_pem=cert_pem,
            ca_cert_pem=cluster.root_ca.cert_pem,
            managers=self.ctx.manager_addrs(),
        )

    async def raft_join(self, req: RaftJoinRequest, peer: Peer) -> Empty:
        identity = peer.identity
        if identity is None or identity.role != "manager":
            raise PermissionDenied("only a manager's certificate may join the raft membership")
        node = self.ctx.store.memory.get(Node, identity.node_id)
        if node is None or node.spec.role is not NodeRole.MANAGER:
            raise FailedPrecondition(f"node {identity.node_id} is not a manager of this cluster")
        await self.ctx.raft.add_voter(identity.node_id, req.addr)
        log.info("manager joined the raft membership %s", kv(node=identity.node_id, addr=req.addr))
        return Empty()

    async def renew(self, req: RenewRequest, peer: Peer) -> RenewReply:
        identity = peer.identity
        if identity is None:
            raise PermissionDenied("renewal needs the node's current certificate")
        node = self.ctx.store.memory.get(Node, identity.node_id)
        if node is None:
            raise PermissionDenied(f"node {identity.node_id} is not part of this cluster")
        host = node.status.addr.rpartition(":")[0]
        cert_pem = sign_csr(
            self._root(),
            req.csr_pem,
            node.id,
            node.spec.role.value,
            self.ctx.cluster_id,
            expiry_days=self.cert_expiry_days,
            addresses=[host] if host else [],
        )
        log.info("certificate renewed %s", kv(node=node.id, role=node.spec.role.value))
        return RenewReply(cert_pem=cert_pem, role=node.spec.role)

    def authorize(self, identity: Identity) -> None:
        """The rpc `authorize` hook: a removed node's certificate is refused."""
        clusters = self.ctx.store.memory.list(Cluster)
        if is_removed(clusters[0] if clusters else None, identity.node_id):
            raise PermissionDenied(
                f"node {identity.node_id} was removed from the cluster; its certificate is revoked"
            )


def is_removed(cluster: Cluster | None, node_id: str) -> bool:
    return cluster is not None and node_id in cluster.removed_nodes
