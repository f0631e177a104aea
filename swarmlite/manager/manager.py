"""A manager: the raft member, the store on top of it, and the loops that run on the leader.

Owns wiring only: it builds the raft member (storage, transport), the store, the control
and join APIs and the dispatcher, registers their routes, and starts the leader-only loops
whenever this node becomes leader (and stops them when it no longer is). None of those
loops knows the others; they meet in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from swarmlite.api import Cluster, Config, Secret
from swarmlite.clock import Clock
from swarmlite.log import kv
from swarmlite.manager.allocator import Allocator, Pools, network_refusal
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.blobs import BlobAPI
from swarmlite.manager.controlapi.join import JoinAPI, is_removed
from swarmlite.manager.controlapi.networks import NetworkAPI
from swarmlite.manager.controlapi.nodes import NodeAPI
from swarmlite.manager.controlapi.services import ServiceAPI
from swarmlite.manager.dispatcher.dispatcher import Dispatcher
from swarmlite.manager.logbroker import LogBroker
from swarmlite.manager.loop import ReconcileLoop
from swarmlite.manager.orchestrator import orchestrator_loops
from swarmlite.manager.scheduler import Scheduler
from swarmlite.raft import NodeConfig, RaftNode, RaftStorage, RaftTransport
from swarmlite.rpc import RpcServer
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
        cert_expiry_days: float,
        version: str,
    ) -> None:
        self.node_id = node_id
        storage = RaftStorage.open(raft_dir)
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
        self.nodes = NodeAPI(self.ctx)
        self.services = ServiceAPI(self.ctx, self.logs)
        self.networks = NetworkAPI(
            self.ctx, lambda read, network: network_refusal(read, Pools(), network)
        )
        self.secrets = BlobAPI(self.ctx, Secret)
        self.configs = BlobAPI(self.ctx, Config)
        self.join = JoinAPI(self.ctx, cert_expiry_days)
        self.dispatcher = Dispatcher(self.ctx, self.logs)
        self._leader_loops: list[LeaderLoop] = [self.dispatcher.run, self._run_control_loops]
        self._leading: asyncio.Task[None] | None = None
        self._became_leader = asyncio.Event()

    def register(self, server: RpcServer) -> None:
        """Everything on the cluster port."""
        self.transport.register(server)
        self.register_control(server)
        self.join.register(server)
        self.dispatcher.register(server)

    def register_control(self, server: RpcServer) -> None:
        """The control API (also served to the local CLI on the unix socket)."""
        self.nodes.register(server)
        self.services.register(server)
        self.networks.register(server)
        self.secrets.register(server)
        self.configs.register(server)

    @property
    def has_raft_state(self) -> bool:
        return self.raft.core.last_index > 0

    def removed(self, node_id: str) -> bool:
        clusters = self.memory.list(Cluster)
        return is_removed(clusters[0] if clusters else None, node_id)

    async def run(self) -> None:
        self.raft.on_leader_change = self._on_leader_change
        self.raft.attach(self.transport)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._supervise())
                await self.raft.run()
                self._became_leader.set()  # wake the supervisor so that it ends
        finally:
            await self.transport.close()
            await self.ctx.close()

    async def shutdown(self) -> None:
        await self.raft.shutdown()

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
        """The orchestrator's loops, the allocator and the scheduler, fresh for every term."""
        loops: list[ReconcileLoop] = [
            *orchestrator_loops(self.store, self.ctx.clock),
            Allocator(self.store, self.ctx.clock),
            Scheduler(self.store, self.ctx.clock),
        ]
        async with asyncio.TaskGroup() as tasks:
            for loop in loops:
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
