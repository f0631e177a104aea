"""The control API for nodes and join tokens: what `swarmlite node ...` and `join-token` call.

Owns the rules of node management as a Swarm user knows them: a manager is demoted
before it is removed, a node that is up is removed only with --force, a demotion that
would lose quorum is refused (unless forced), a removed node's certificate is refused by
every manager from then on. Calls reach the leader (a follower forwards them); writes go
through the store. Never talks to an agent: the dispatcher tells nodes what changed.
"""

from __future__ import annotations

import logging

import msgspec

from swarmlite.api import Cluster, JoinSecrets, Node, NodeRole, NodeState, Service, Task
from swarmlite.api.control import (
    Empty,
    JoinTokenReply,
    JoinTokenRequest,
    ListRequest,
    NodeList,
    NodeRef,
    NodeRemove,
    NodeTasks,
    NodeUpdate,
    NodeView,
    TaskList,
)
from swarmlite.api.filters import match_nodes, match_tasks
from swarmlite.api.routes import JOIN_TOKEN, NODE_INSPECT, NODE_LS, NODE_PS, NODE_RM, NODE_UPDATE
from swarmlite.ca import RootCA, format_token, new_secret
from swarmlite.errors import FailedPrecondition, InvalidArgument, NotFound
from swarmlite.log import kv
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.router import Router
from swarmlite.manager.heartbeats import Heartbeats
from swarmlite.rpc import Peer
from swarmlite.store import ReadTx, Tx

log = logging.getLogger(__name__)


class NodeAPI:
    def __init__(self, ctx: ManagerContext, heartbeats: Heartbeats) -> None:
        self.ctx = ctx
        self.heartbeats = heartbeats

    def register(self, router: Router) -> None:
        router.unary(NODE_LS, self.ls, incoming=self._list_seen_here)
        router.unary(NODE_INSPECT, self.inspect, incoming=self._as_seen_here)
        router.unary(NODE_UPDATE, self.update)
        router.unary(NODE_RM, self.rm)
        router.unary(NODE_PS, self.ps, outgoing=self._here_named)
        router.unary(JOIN_TOKEN, self.join_token)

    # ------------------------------------------------------------------ reads

    def _view(self, node: Node) -> NodeView:
        return NodeView(
            node=node,
            manager=self.ctx.manager_status(node),
            self=node.id == self.ctx.node_id,
            last_heartbeat=self.heartbeats.last(node.id),
        )

    def _as_seen_here(self, view: NodeView) -> NodeView:
        """A view the leader made, with `self` meaning the node that answers the CLI."""
        return msgspec.structs.replace(view, self=view.node.id == self.ctx.node_id)

    def _list_seen_here(self, listed: NodeList) -> NodeList:
        return NodeList(nodes=[self._as_seen_here(v) for v in listed.nodes])

    def _here_named(self, req: NodeTasks) -> NodeTasks:
        """`node ps` without a node means the node the CLI asked, not the leader."""
        return req if req.refs else msgspec.structs.replace(req, refs=[self.ctx.node_id])

    async def ls(self, req: ListRequest, peer: Peer) -> NodeList:
        nodes = sorted(self.ctx.store.memory.list(Node), key=lambda n: (n.status.hostname, n.id))
        views = [self._view(n) for n in nodes]
        return NodeList(nodes=match_nodes(req.filters, views))

    async def inspect(self, req: NodeRef, peer: Peer) -> NodeView:
        return self._view(self.ctx.resolve_node(req.ref))

    async def ps(self, req: NodeTasks, peer: Peer) -> TaskList:
        """The tasks on the named nodes (this node when none is named), newest first in each
        slot, as `docker node ps` lists them."""
        memory = self.ctx.store.memory
        ids = {self.ctx.resolve_node(ref).id for ref in (req.refs or [self.ctx.node_id])}
        tasks = [t for t in memory.list(Task) if t.node_id in ids]
        tasks = match_tasks(
            req.filters, tasks, services=memory.list(Service), nodes=memory.list(Node)
        )
        tasks.sort(key=lambda t: (t.service_name, t.slot, t.node_id, -t.status.timestamp))
        return TaskList(tasks=tasks)

    # ------------------------------------------------------------------ writes

    async def update(self, req: NodeUpdate, peer: Peer) -> NodeView:
        node = self.ctx.resolve_node(req.ref)
        _check_label_rm(node, req)
        demoting = req.role is NodeRole.WORKER and node.spec.role is NodeRole.MANAGER
        if demoting and await self._demote(node, force=req.force) == "handed over":
            # It demoted this very node: leadership moved, the new leader finishes.
            return await self.ctx.forward(NODE_UPDATE, req)

        def edit(current: Node) -> Node | None:
            # A merge: applied to the node as it is when its batch commits (store.merge),
            # so concurrent --label-add writers all land and none needs a version.
            _check_label_rm(current, req)
            labels = {k: v for k, v in current.spec.labels.items() if k not in req.label_rm}
            labels.update(req.label_add)
            spec = msgspec.structs.replace(
                current.spec,
                labels=labels,
                availability=req.availability or current.spec.availability,
                role=req.role or current.spec.role,
            )
            if spec == current.spec:
                return None
            return msgspec.structs.replace(current, spec=spec)

        try:
            await self.ctx.store.merge(Node, node.id, edit)
        except NotFound as exc:
            raise FailedPrecondition(f"node {node.id} was removed meanwhile") from exc
        log.info("node updated %s", kv(node=node.id, role=req.role, availability=req.availability))
        return self._view(self.ctx.resolve_node(node.id))

    async def _demote(self, node: Node, *, force: bool) -> str:
        raft = self.ctx.raft
        voters = raft.voters()
        if node.id in voters:
            remaining = voters - {node.id}
            if not remaining:
                raise FailedPrecondition(
                    "cannot demote the last manager of the cluster",
                    hint="promote another node first",
                )
            reachable = {v for v in remaining if v == self.ctx.node_id or raft.recently_active(v)}
            quorum = len(remaining) // 2 + 1
            if len(reachable) < quorum and not force:
                raise FailedPrecondition(
                    f"demoting {node.id} would leave {len(reachable)} reachable managers of "
                    f"{len(remaining)}, fewer than the {quorum} needed for quorum",
                    hint="bring the other managers back first, or use --force",
                )
            if node.id == self.ctx.node_id:
                await raft.transfer_leadership()
                return "handed over"
            await raft.remove_member(node.id)
            log.info("manager left the raft membership %s", kv(node=node.id))
        return "removed"

    async def rm(self, req: NodeRemove, peer: Peer) -> Empty:
        node = self.ctx.resolve_node(req.ref)
        name = node.status.hostname or node.id
        if node.spec.role is NodeRole.MANAGER or self.ctx.raft.member(node.id):
            raise FailedPrecondition(
                f"node {name} is a manager: it must be demoted to worker before removal",
                hint=f"run `swarmlite node demote {name}` first",
            )
        if node.status.state is NodeState.READY and not req.force:
            raise FailedPrecondition(
                f"node {name} is not down and can't be removed",
                hint="stop it first (`swarmlite leave` on it), or use --force",
            )

        def write(state: ReadTx) -> Tx:
            current = state.get(Node, node.id)
            cluster = state.list(Cluster)[0]
            tx = Tx()
            if current is not None:
                tx.delete(current)
            removed = (*cluster.removed_nodes, node.id)
            return tx.update(msgspec.structs.replace(cluster, removed_nodes=removed))

        await self.ctx.store.update(write)
        log.info("node removed; its certificate is refused from now on %s", kv(node=node.id))
        return Empty()

    async def join_token(self, req: JoinTokenRequest, peer: Peer) -> JoinTokenReply:
        if req.rotate:

            def write(state: ReadTx) -> Tx:
                cluster = state.list(Cluster)[0]
                secrets = (
                    msgspec.structs.replace(cluster.join, manager=new_secret())
                    if req.role is NodeRole.MANAGER
                    else msgspec.structs.replace(cluster.join, worker=new_secret())
                )
                return Tx().update(msgspec.structs.replace(cluster, join=secrets))

            await self.ctx.store.update(write)
            log.info("join token rotated %s", kv(role=req.role.value))
        cluster = self.ctx.cluster()
        return JoinTokenReply(token=token_for(cluster, req.role), managers=self.ctx.manager_addrs())


def _check_label_rm(node: Node, req: NodeUpdate) -> None:
    for key in req.label_rm:
        if key not in node.spec.labels and key not in req.label_add:
            raise InvalidArgument(f"node {node.status.hostname or node.id} has no label {key!r}")


def token_for(cluster: Cluster, role: NodeRole) -> str:
    digest = RootCA.load(cluster.root_ca.cert_pem, cluster.root_ca.key_pem).digest()
    secrets: JoinSecrets = cluster.join
    return format_token(digest, secrets.manager if role is NodeRole.MANAGER else secrets.worker)
