"""What every manager component may use: the store, the raft member, this node's identity.

Owns `ManagerContext` and the helpers that several loops need in the same words: finding
the Cluster object, resolving a node or named-object reference, telling whether a control
call is answered here or forwarded to the leader, and forwarding it. Holds no
state of its own beyond what it is given.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from swarmlite.api import Cluster, Node, ObjectT
from swarmlite.api.control import ManagerStatus
from swarmlite.api.routes import Rep, Req, Route
from swarmlite.clock import Clock
from swarmlite.errors import InvalidArgument, NotFound, NotLeader, Unavailable
from swarmlite.manager.heartbeats import heartbeat_period
from swarmlite.raft import RaftNode
from swarmlite.rpc import RpcClient
from swarmlite.store import ReadTx, Store

T = TypeVar("T")


@dataclass
class ManagerContext:
    node_id: str
    cluster_id: str
    addr: str  # this manager's advertise address
    store: Store
    raft: RaftNode
    clock: Clock
    client_ssl: Callable[[], ssl.SSLContext]  # this node's current client context
    version: str = ""
    _leader_clients: dict[str, RpcClient] = field(default_factory=dict)

    def cluster(self) -> Cluster:
        found = self.store.memory.list(Cluster)
        if not found:
            raise Unavailable("the cluster object is not in the store yet")
        return found[0]

    def heartbeat_period(self) -> float:
        """The period nodes are told to beat at and are judged DOWN by (after 3 missed):
        the configured one, longer in a large cluster (`heartbeats.heartbeat_period`)."""
        configured = self.cluster().spec.settings.heartbeat_period
        return heartbeat_period(configured, self.store.memory.count(Node))

    def manager_addrs(self) -> list[str]:
        """Advertise addresses of the managers, the leader first."""
        leader = self.raft.leader_id
        addrs = sorted((m.id != leader, m.address) for m in self.raft.members() if m.voter)
        return [address for _, address in addrs]

    def manager_status(self, node: Node) -> ManagerStatus | None:
        member = self.raft.member(node.id)
        if member is None:
            return None
        leader = self.raft.leader_id
        if node.id == self.node_id:
            reachability = "reachable"
        elif self.raft.is_leader:
            active = self.raft.recently_active(node.id)
            reachability = "reachable" if active else "unreachable"
        else:
            reachability = "reachable" if node.id == leader else "unknown"
        return ManagerStatus(
            addr=member.address, leader=node.id == leader, reachability=reachability
        )

    def resolve_node(self, ref: str) -> Node:
        """A node by id, unique id prefix, or hostname."""
        nodes = self.store.memory.list(Node)
        exact = [n for n in nodes if n.id == ref]
        if exact:
            return exact[0]
        by_name = [n for n in nodes if n.status.hostname == ref]
        by_prefix = [n for n in nodes if n.id.startswith(ref)] if ref else []
        matches = by_name or by_prefix
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NotFound(
                f"node {ref!r} not found",
                hint="`swarmlite node ls` lists the nodes of this cluster",
            )
        raise InvalidArgument(
            f"node reference {ref!r} is ambiguous: it matches {len(matches)} nodes",
            hint="use more characters of the node id",
        )

    def resolve_named(self, state: ReadTx, kind: type[ObjectT], ref: str) -> ObjectT:
        """An object of a named kind (service, network) by id, name or unique id prefix."""
        found = state.get(kind, ref) or state.get_by_name(kind, ref)
        if found is not None:
            return found
        prefix = [o for o in state.list(kind) if ref and o.id.startswith(ref)]
        if len(prefix) == 1:
            return prefix[0]
        raise NotFound(
            f"{kind.KIND} {ref!r} not found",
            hint=f"`swarmlite {kind.KIND} ls` lists the {kind.KIND}s of this cluster",
        )

    async def answers_here(self) -> bool:
        """True when this manager answers a control call (it leads, and has applied what
        it committed); False when the call must be forwarded to the leader."""
        if not self.raft.is_leader:
            return False
        await self.raft.read_barrier()
        return True

    async def forward(self, route: Route[Req, Rep], request: Req) -> Rep:
        """Send a call this manager cannot answer to the leader, as this node."""
        return await (await self._leader()).request(route, request)

    async def relay(self, route: Route[Req, Rep], request: Req) -> AsyncIterator[Rep]:
        """The items of a stream this manager cannot serve, from the leader."""
        async for item in (await self._leader()).items(route, request):
            yield item

    async def _leader(self) -> RpcClient:
        address = self.raft.leader_address()
        if address is None or self.raft.is_leader:
            raise NotLeader("no leader is known right now", hint="retry in a moment")
        client = self._leader_clients.get(address)
        if client is None:
            for old in self._leader_clients.values():
                await old.close()
            self._leader_clients.clear()
            client = RpcClient(f"https://{address}", self.client_ssl(), timeout=30.0)
            self._leader_clients[address] = client
        return client

    async def close(self) -> None:
        for client in self._leader_clients.values():
            await client.close()
        self._leader_clients.clear()
