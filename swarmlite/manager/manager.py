"""A manager: the raft member, the store on top of it, and the loops that run on the leader.

Owns wiring only: it builds the raft member (storage, transport), the store, the control
and join APIs and the dispatcher, registers their routes, asks into the raft membership
when it is new (membership.py), and starts the leader-only loops whenever this node
becomes leader (and stops them when it no longer is). None of those loops knows the
others; they meet in the store. Every manager makes its raft election timeout follow the
cluster's size (`heartbeats.election_scale`). It also answers the daemon's questions about
this manager: is it ready, may a peer's certificate call it, may its node leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from swarmlite.api import Cluster, Config, Node, Secret
from swarmlite.api.routes import EVENTS
from swarmlite.ca import Identity
from swarmlite.clock import Clock
from swarmlite.errors import Unavailable
from swarmlite.log import kv
from swarmlite.manager.allocator import Allocator, Pools, network_refusal
from swarmlite.manager.carotation import RootRotationLoop
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.blobs import BlobAPI
from swarmlite.manager.controlapi.ca import CAAPI
from swarmlite.manager.controlapi.join import JoinAPI
from swarmlite.manager.controlapi.networks import NetworkAPI
from swarmlite.manager.controlapi.nodes import NodeAPI
from swarmlite.manager.controlapi.router import Router
from swarmlite.manager.controlapi.services import ServiceAPI
from swarmlite.manager.controlapi.swarm import SwarmAPI
from swarmlite.manager.dispatcher.dispatcher import Dispatcher
from swarmlite.manager.events import EventLog
from swarmlite.manager.heartbeats import Heartbeats, election_scale
from swarmlite.manager.logbroker import LogBroker
from swarmlite.manager.loop import LoopStats, ReconcileLoop
from swarmlite.manager.membership import join_raft, leave_raft
from swarmlite.manager.orchestrator import orchestrator_loops
from swarmlite.manager.orchestrator.autoscaler import Autoscaler
from swarmlite.manager.scheduler import Scheduler
from swarmlite.manager.usage import Usage
from swarmlite.raft import NodeConfig, RaftNode, RaftStorage, RaftTransport
from swarmlite.raft.sealing import DataKeys, load_keys, parse_unlock_key, save_keys
from swarmlite.rpc import Peer, RpcServer
from swarmlite.store import MemoryStore, Store
from swarmlite.store.raftproposer import RaftProposer

log = logging.getLogger(__name__)

LeaderLoop = Callable[[], Coroutine[Any, Any, None]]


class Manager:
    def __init__(
        self,
        *,
        node_id: str,
        cluster_id: str,
        addr: str,
        raft_dir: Path,
        client_ssl: Callable[[], ssl.SSLContext],
        clock: Clock,
        version: str,
        managers: Callable[[], Sequence[str]],
        keys: DataKeys | None = None,
        unlock_key: str = "",
    ) -> None:
        self.node_id = node_id
        self._managers = managers  # the addresses of the managers this node knows, now
        self._raft_dir = raft_dir
        self._keys = keys or load_keys(raft_dir)
        self._sealed_with = unlock_key  # the unlock key the raft keys are sealed with, or ""
        storage = RaftStorage.open(raft_dir, keys=self._keys)
        self._storage = storage
        self.memory = MemoryStore()
        self.raft = RaftNode(NodeConfig(node_id=node_id), storage, self.memory, clock=clock)
        self.store = Store(self.memory, RaftProposer(self.raft), clock=clock)
        self.ctx = ManagerContext(
            node_id=node_id,
            cluster_id=cluster_id,
            addr=addr,
            store=self.store,
            raft=self.raft,
            clock=clock,
            client_ssl=client_ssl,
            version=version,
        )
        self.transport = RaftTransport(
            node_id,
            cluster_id,
            client_ssl(),
            deliver=self.raft.receive,
            unreachable=self.raft.unreachable,
            address=addr,
        )
        self.logs = LogBroker()
        self.heartbeats = Heartbeats(clock)
        self.nodes = NodeAPI(self.ctx, self.heartbeats)
        self.services = ServiceAPI(self.ctx, self.logs)
        self.networks = NetworkAPI(
            self.ctx, lambda read, network: network_refusal(read, Pools(), network)
        )
        self.secrets = BlobAPI(self.ctx, Secret)
        self.configs = BlobAPI(self.ctx, Config)
        self.join = JoinAPI(self.ctx)
        self.swarm = SwarmAPI(self.ctx)
        self.ca = CAAPI(self.ctx)
        self.loop_stats = LoopStats()  # what metrics read of the leader's loops
        self.usage = Usage(clock)  # what tasks of autoscaled services use (leader only)
        self.dispatcher = Dispatcher(self.ctx, self.logs, self.heartbeats, self.usage)
        self.dispatcher.loop_stats = self.loop_stats
        self.events = EventLog(self.memory, clock)
        self._leader_loops: list[LeaderLoop] = [self.dispatcher.run, self._run_control_loops]
        self._leading: asyncio.Task[None] | None = None
        self._joining: asyncio.Task[None] | None = None
        self._became_leader = asyncio.Event()

    def register(self, server: RpcServer) -> None:
        """Everything on the cluster port."""
        self.transport.register(server)
        self.register_control(server)
        self.join.register(Router(self.ctx, server))
        self.dispatcher.register(server)

    def register_control(self, server: RpcServer) -> None:
        """The control API (also served to the local CLI on the unix socket)."""
        router = Router(self.ctx, server)
        for api in (self.swarm, self.nodes, self.services, self.networks, self.secrets):
            api.register(router)
        self.configs.register(router)
        self.ca.register(router)
        router.stream(EVENTS, lambda request, peer: self.events.stream(request))

    @property
    def has_raft_state(self) -> bool:
        return self.raft.last_index > 0

    @property
    def ready(self) -> bool:
        """A raft member that knows a leader and holds the cluster's state (so that its
        control API can answer)."""
        return (
            self.raft.is_voter()
            and self.raft.leader_id is not None
            and bool(self.memory.list(Cluster))
        )

    def authorize(self, identity: Identity) -> None:
        """The cluster port's check of every caller with a certificate."""
        self.join.authorize(identity)

    async def leave(self, *, force: bool, peer: Peer) -> None:
        """Before this node leaves the cluster (see membership.leave_raft)."""
        await leave_raft(self.ctx, self.nodes.update, force=force, peer=peer)

    async def run(self) -> None:
        self.raft.on_leader_change = self._on_leader_change
        self.raft.attach(self.transport)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._supervise())
                following = tasks.create_task(self.events.run())
                sealing = tasks.create_task(self._follow_autolock())
                sizing = tasks.create_task(self._follow_size())
                if not self.has_raft_state:
                    self._joining = tasks.create_task(join_raft(self.ctx, self._managers))
                await self.raft.run()
                following.cancel()  # the event log follows the store for ever
                sealing.cancel()
                sizing.cancel()
                if self._joining is not None:
                    self._joining.cancel()
                self._became_leader.set()  # wake the supervisor so that it ends
        finally:
            await self.transport.close()
            await self.ctx.close()

    async def shutdown(self) -> None:
        """Stop: stop asking into the membership, hand leadership over, then raft stops
        (and `run` returns)."""
        if self._joining is not None:
            self._joining.cancel()
        await self.raft.shutdown()

    async def _follow_autolock(self) -> None:
        """Every manager: keep its raft keys sealed as the cluster says. With autolock on,
        under the unlock key (a restart then needs `swarm unlock`); off, under a key file of
        its own. Each change also starts a new data key for what is written next."""

        def reseal() -> None:
            for cluster in self.memory.list(Cluster):
                self._reseal(cluster)

        await self._follow(["cluster"], reseal)

    async def _follow_size(self) -> None:
        """Every manager: wait longer before a raft election as the cluster grows
        (`heartbeats.election_scale`)."""
        scale = 1.0

        def rescale() -> None:
            nonlocal scale
            clusters = self.memory.list(Cluster)
            if not clusters:
                return
            nodes = self.memory.count(Node)
            wanted = election_scale(clusters[0].spec.settings.heartbeat_period, nodes)
            if wanted != scale:
                scale = wanted
                self.raft.scale_election_timeout(scale)
                log.info(
                    "raft election timeout follows the cluster's size %s",
                    kv(nodes=nodes, scale=scale),
                )

        await self._follow(["node", "cluster"], rescale)

    async def _follow(self, kinds: list[str], act: Callable[[], None]) -> None:
        """Run ``act`` now and after every batch of changes of ``kinds``, for ever."""
        while True:
            watch = self.memory.watch(kinds=kinds)
            try:
                while True:
                    act()
                    await watch.next_batch()
            except Unavailable:
                continue  # the store was replaced by a snapshot: look again
            finally:
                watch.close()

    def _reseal(self, cluster: Cluster) -> None:
        wanted = cluster.unlock_key if cluster.spec.settings.autolock else ""
        if wanted == self._sealed_with:
            return
        keys = self._keys.rotated()
        unlock = parse_unlock_key(wanted) if wanted else None
        save_keys(self._raft_dir, keys, unlock_key=unlock)
        self._storage.rekey(keys)
        self._keys, self._sealed_with = keys, wanted
        log.info("raft keys sealed again %s", kv(node=self.node_id, autolock=bool(wanted)))

    def _on_leader_change(self, leader: str | None) -> None:
        self._became_leader.set()

    async def _supervise(self) -> None:
        """Run the leader-only loops exactly while this node leads."""
        while True:
            await self._became_leader.wait()
            self._became_leader.clear()
            if self.raft.is_leader and self._leading is None:
                log.info("leading: starting leader loops %s", kv(node=self.node_id))
                self._leading = asyncio.get_running_loop().create_task(self._lead())
            elif not self.raft.is_leader and self._leading is not None:
                log.info("no longer leading: stopping leader loops %s", kv(node=self.node_id))
                self._leading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._leading
                self._leading = None
            if self.raft.stopping:
                if self._leading is not None:
                    self._leading.cancel()
                return

    async def _run_control_loops(self) -> None:
        """The orchestrator's loops, the allocator, the scheduler, the autoscaler and the
        end of a root CA rotation, fresh for every term."""
        loops: list[ReconcileLoop] = [
            *orchestrator_loops(self.store, self.ctx.clock),
            Allocator(self.store, self.ctx.clock),
            Scheduler(self.store, self.ctx.clock),
            Autoscaler(self.store, self.ctx.clock, self.usage),
            RootRotationLoop(self.store, self.ctx.clock),
        ]
        async with asyncio.TaskGroup() as tasks:
            for loop in loops:
                loop.stats = self.loop_stats
                tasks.create_task(loop.run())

    async def _lead(self) -> None:
        while True:
            try:
                # The store may lag the log a little: apply what earlier terms committed.
                await self.raft.read_barrier()
                async with asyncio.TaskGroup() as tasks:
                    for loop in self._leader_loops:
                        tasks.create_task(loop())
            except Exception:
                log.exception("a leader loop failed; restarting them %s", kv(node=self.node_id))
            await self.ctx.clock.sleep(1.0)
