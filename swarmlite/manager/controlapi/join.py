"""Joining and certificates: the join endpoint, raft membership for new managers, renewal.

Owns who may enter the cluster and with what role: a join token names the CA (the
joiner pins it) and carries a secret that picks the role; the leader signs the joiner's
key with a certificate naming a fresh node id and that role, and records the Node. A
renewal re-signs a node's key with the role the store holds now, so a promotion or
demotion reaches the certificate; the leader signs it (a follower forwards the renewal,
naming the node it is for). During a root CA rotation (``ca.rotation``) certificates come
from the new root with the cross-signed one, the leader records each node it renews, and
joining waits for the rotation to end (the join token pins the old root). Removed nodes are
refused by the rpc `authorize` hook.
"""

from __future__ import annotations

import logging

import msgspec

from swarmlite.api import Cluster, Node, NodeRole, NodeSpec, NodeState, NodeStatus, new_id
from swarmlite.api.actor import acting_as
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
from swarmlite.ca.rotation import join_pems, renewed, signer
from swarmlite.errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unavailable
from swarmlite.log import kv
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.router import Router
from swarmlite.rpc import Peer
from swarmlite.store import ReadTx, Tx

log = logging.getLogger(__name__)


class JoinAPI:
    def __init__(self, ctx: ManagerContext) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.unary(JOIN_CA, self.ca)
        router.unary(JOIN, self.join)
        router.unary(RAFT_JOIN, self.raft_join)

        async def serve_renew(req: RenewRequest, peer: Peer) -> RenewReply:
            # Not router.unary: a follower must forward the renewal naming the caller, or
            # the leader would sign the caller's key for the follower.
            with acting_as(router.actor_of(peer)):
                if await self.ctx.answers_here():
                    return await self.renew(req, peer)
                if peer.identity is None:
                    raise PermissionDenied("renewal needs the node's current certificate")
                node_id = req.node_id or peer.identity.node_id
                forwarded = msgspec.structs.replace(req, node_id=node_id)
                return await self.ctx.forward(CA_RENEW, forwarded)

        router.server.add_route(CA_RENEW, serve_renew)

    @property
    def cert_expiry_days(self) -> float:
        """How long the certificates issued now last (`swarm update --cert-expiry`)."""
        return self.ctx.cluster().spec.settings.cert_expiry / 86400

    def _root(self) -> RootCA:
        cluster = self.ctx.cluster()
        return RootCA.load(cluster.root_ca.cert_pem, cluster.root_ca.key_pem)

    async def ca(self, req: Empty, peer: Peer) -> CAReply:
        cluster = self.ctx.cluster()
        _not_rotating(cluster)
        return CAReply(cert_pem=cluster.root_ca.cert_pem)

    async def join(self, req: JoinRequest, peer: Peer) -> JoinReply:
        _check_lengths(req)
        token = parse_token(req.token)
        cluster = self.ctx.cluster()
        _not_rotating(cluster)
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
        node_id = identity.node_id
        if req.node_id and req.node_id != node_id:
            if identity.role != "manager":
                raise PermissionDenied("only a manager forwards another node's renewal")
            node_id = req.node_id
        node = self.ctx.store.memory.get(Node, node_id)
        if node is None:
            raise PermissionDenied(f"node {node_id} is not part of this cluster")
        host = node.status.addr.rpartition(":")[0]
        material = self.ctx.cluster().root_ca
        root, chain = signer(material)
        cert_pem = sign_csr(
            root,
            req.csr_pem,
            node.id,
            node.spec.role.value,
            self.ctx.cluster_id,
            expiry_days=self.cert_expiry_days,
            addresses=[host] if host else [],
        )
        if material.rotation is not None:
            await self._record_renewed(node.id, material.rotation.cert_pem)
        log.info("certificate renewed %s", kv(node=node.id, role=node.spec.role.value))
        return RenewReply(cert_pem=join_pems([cert_pem, chain]), role=node.spec.role)

    async def _record_renewed(self, node_id: str, new_root_pem: bytes) -> None:
        """Record, before the node has it, that it holds a certificate from the new root
        of the rotation under way (if that rotation is still the one it was signed in)."""

        def write(state: ReadTx) -> Tx | None:
            cluster = state.list(Cluster)[0]
            rotation = cluster.root_ca.rotation
            if rotation is None or rotation.cert_pem != new_root_pem:
                return None
            if node_id in rotation.renewed:
                return None
            root_ca = msgspec.structs.replace(cluster.root_ca, rotation=renewed(rotation, node_id))
            return Tx().update(msgspec.structs.replace(cluster, root_ca=root_ca))

        await self.ctx.store.update(write)

    def authorize(self, identity: Identity) -> None:
        """The rpc `authorize` hook: a removed node's certificate is refused."""
        clusters = self.ctx.store.memory.list(Cluster)
        if is_removed(clusters[0] if clusters else None, identity.node_id):
            raise PermissionDenied(
                f"node {identity.node_id} was removed from the cluster; its certificate is revoked"
            )


# A DNS name is at most 253 characters; an address is a host, a colon and a port.
MAX_HOSTNAME = 253
MAX_ADDR = MAX_HOSTNAME + 8


def _check_lengths(req: JoinRequest) -> None:
    """Refuse names no real node has, before they reach the store or a log line."""
    if len(req.hostname) > MAX_HOSTNAME:
        raise InvalidArgument(
            f"a joining node's hostname must be at most {MAX_HOSTNAME} characters, "
            f"got {len(req.hostname)}"
        )
    if len(req.addr) > MAX_ADDR:
        raise InvalidArgument(
            f"a joining node's address must be at most {MAX_ADDR} characters, got {len(req.addr)}"
        )


def _not_rotating(cluster: Cluster) -> None:
    """Unavailable while the root CA rotates: a join token pins the old root, which the
    managers' certificates no longer come from."""
    if cluster.root_ca.rotation is not None:
        raise Unavailable(
            "the cluster's root CA is being rotated: nodes can join again when it ends",
            hint="`swarmlite swarm ca` on a manager shows its progress; the join token "
            "changes with the root (`swarmlite join-token worker`)",
        )


def is_removed(cluster: Cluster | None, node_id: str) -> bool:
    return cluster is not None and node_id in cluster.removed_nodes
