"""Worker sessions: every node keeps one stream to the leader's dispatcher.

Owns sessions, heartbeats, assignments and status reports: a node that opens a session
is READY (what its hello says goes into the node's status, and so does a later hello on the
same session, e.g. a new mesh key); one whose heartbeats stop for 3 periods is DOWN; the
dispatcher tells each node the managers to fall back on, the heartbeat period and the role
the store gives it (so a promotion or demotion reaches the node) and the root CA to trust
and renew from (so a root CA rotation reaches it, ``ca.rotation``), pushes it the tasks it
should run or stop (with the secrets and configs they use, and the registry credentials of
the services of those it should run), and writes the statuses it
reports into the store, ignoring stale or backward ones; it hands the agents' usage
reports (what tasks of autoscaled services use) to the leader's ``Usage`` table. Only the
leader serves sessions (a follower answers NotLeader with the leader's address); a new
leader gives every node a full grace period before calling it DOWN. Writes node state to
the store only when it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec

from swarmlite.api import (
    Config,
    Node,
    NodeState,
    Secret,
    Service,
    Task,
    TaskState,
    TaskStatus,
)
from swarmlite.api.actor import acting_as
from swarmlite.api.control import (
    SESSION,
    AgentMessage,
    Assignments,
    LogChunk,
    ManagerMessage,
    MeshState,
    NetworkState,
    SessionHello,
    SessionInfo,
    StatusReport,
    UsageReport,
)
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.ca.rotation import signing_cert, signing_chain, trust_bundle
from swarmlite.errors import (
    InvalidArgument,
    NotLeader,
    PermissionDenied,
    SwarmliteError,
    Unavailable,
)
from swarmlite.log import kv
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.heartbeats import Heartbeats
from swarmlite.manager.logbroker import LogBroker
from swarmlite.manager.loop import LoopStats, ReconcileLoop
from swarmlite.manager.netstate import NetworkDirt, NetworkIndex, mesh_states, network_states
from swarmlite.manager.usage import Usage
from swarmlite.rpc import Peer, RpcServer, ServerStream
from swarmlite.store import Event, ReadTx, Tx

log = logging.getLogger(__name__)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AgentMessage)


class _Session:
    def __init__(self, node_id: str, stream: ServerStream) -> None:
        self.node_id = node_id
        self.stream = stream
        self.last_info: SessionInfo | None = None
        self.last_assigned: frozenset[tuple[str, object]] | None = None
        self.last_mesh: MeshState | None = None
        self.last_networks: NetworkState | None = None
        self.lock = asyncio.Lock()  # one writer at a time on the stream

    async def send(self, message: ManagerMessage) -> None:
        async with self.lock:
            await self.stream.send(_encoder.encode(message))


def assigned(task: Task) -> bool:
    """A node is told of a task once the scheduler assigned it there (its networks are
    allocated by then), while it should run or while it still has to stop it."""
    if task.status.state < TaskState.ASSIGNED:
        return False  # a global task is created with its node, before it is placed
    return not (task.desired_state.terminal and task.status.state.terminal)


def advances(old: TaskStatus, new: TaskStatus) -> bool:
    """A report changes a task if it moves it forward, or brings news within a state."""
    if new.state < old.state:
        return False
    if new.state != old.state:
        return True
    news = (new.health, new.message, new.err, new.container_id, new.exit_code)
    return news != (old.health, old.message, old.err, old.container_id, old.exit_code)


class Dispatcher:
    def __init__(
        self,
        ctx: ManagerContext,
        logs: LogBroker,
        heartbeats: Heartbeats,
        usage: Usage | None = None,
    ) -> None:
        self.ctx = ctx
        self.logs = logs
        self.heartbeats = heartbeats
        self.usage = usage  # where the agents' usage reports go (the autoscaler reads it)
        self.sessions: dict[str, _Session] = {}
        self._last_seen: dict[str, float] = {}
        self._leading = False
        self.loop_stats: LoopStats | None = None  # given to its leader loop (metrics)

    def register(self, server: RpcServer) -> None:
        server.add_stream(SESSION, self.serve)

    # ------------------------------------------------------------------ sessions

    async def serve(self, stream: ServerStream, peer: Peer) -> None:
        identity = peer.identity
        if identity is None:
            raise PermissionDenied("a session needs the node's certificate")
        if not self._leading:
            raise NotLeader(
                "sessions are served by the leader",
                details={"leader": self.ctx.raft.leader_address()},
            )
        hello = await self._recv(stream)
        if not isinstance(hello, SessionHello) or hello.node_id != identity.node_id:
            raise PermissionDenied(f"session of {identity.node_id} must start with its own hello")
        node_id = hello.node_id
        if self.ctx.store.memory.get(Node, node_id) is None:
            raise PermissionDenied(f"node {node_id} is not part of this cluster")
        old = self.sessions.pop(node_id, None)
        if old is not None:
            await old.stream.close()
        session = _Session(node_id, stream)
        self.sessions[node_id] = session
        self._last_seen[node_id] = self.ctx.clock.monotonic()
        self.heartbeats.beat(node_id)
        log.info("session opened %s", kv(node=node_id, peer=peer.address))
        self.logs.attach(node_id, session.send)
        try:
            await self._mark(node_id, NodeState.READY, hello)
            await self._push_info(session)
            await self.push_assignments(session)
            while True:
                message = await self._recv(stream)
                if message is None:
                    return
                self._last_seen[node_id] = self.ctx.clock.monotonic()
                self.heartbeats.beat(node_id)
                if isinstance(message, StatusReport):
                    await self._take_report(node_id, message)
                elif isinstance(message, LogChunk):
                    self.logs.deliver(message)
                elif isinstance(message, UsageReport):
                    if self.usage is not None:
                        self.usage.take(node_id, message)
                elif isinstance(message, SessionHello):  # news, e.g. its next mesh key
                    if message.node_id != node_id:
                        raise PermissionDenied(
                            f"session of {node_id} sent a hello for another node"
                        )
                    await self._mark(node_id, NodeState.READY, message)
        finally:
            self.logs.detach(node_id, session.send)
            if self.sessions.get(node_id) is session:
                del self.sessions[node_id]
            log.info("session closed %s", kv(node=node_id))

    async def _recv(self, stream: ServerStream) -> AgentMessage | None:
        frame = await stream.recv()
        if frame is None:
            return None
        try:
            message: AgentMessage = _decoder.decode(frame)
            return message
        except msgspec.DecodeError as exc:
            raise InvalidArgument(f"malformed session message: {exc}") from exc

    def _info_for(self, node_id: str) -> SessionInfo | None:
        node = self.ctx.store.memory.get(Node, node_id)
        if node is None:
            return None
        root_ca = self.ctx.cluster().root_ca
        return SessionInfo(
            managers=self.ctx.manager_addrs(),
            heartbeat_period=self.ctx.heartbeat_period(),
            role=node.spec.role,
            leader_addr=self.ctx.addr,
            ca_cert_pem=signing_cert(root_ca),
            ca_trust_pem=trust_bundle(root_ca),
            ca_chain_pem=signing_chain(root_ca),
        )

    async def _push_info(self, session: _Session) -> None:
        info = self._info_for(session.node_id)
        if info is None:
            await session.stream.close_with_error(
                PermissionDenied(f"node {session.node_id} was removed from the cluster")
            )
            return
        if info != session.last_info:
            session.last_info = info
            await session.send(info)

    async def push_assignments(
        self, session: _Session, auth_of: dict[str, RegistryAuth | None] | None = None
    ) -> None:
        """Tell the node its tasks when the set (or what they should do) changed.
        ``auth_of``: services' credentials already looked up in this state of the store
        (filled in here), so that a round over many nodes looks each service up once."""
        memory = self.ctx.store.memory
        tasks = [t for t in memory.tasks_on_node(session.node_id) if assigned(t)]
        # Registry credentials go, like secrets, only where a task of theirs is to run.
        pulling = {t.service_id for t in tasks if not t.desired_state.terminal}
        if auth_of is None:
            auth_of = {}
        auths = {}
        for service_id in pulling:
            if service_id not in auth_of:
                service = memory.get(Service, service_id)
                auth_of[service_id] = service.registry_auth if service is not None else None
            auth = auth_of[service_id]
            if auth is not None:
                auths[service_id] = auth
        key: frozenset[tuple[str, object]] = frozenset(
            [*((t.id, t.desired_state) for t in tasks), *auths.items()]
        )
        if key == session.last_assigned:
            return
        secrets = {ref.name for t in tasks for ref in t.spec.container.secrets}
        configs = {ref.name for t in tasks for ref in t.spec.container.configs}
        message = Assignments(
            tasks=tasks,
            secrets=[s for s in memory.list(Secret) if s.spec.name in secrets],
            configs=[c for c in memory.list(Config) if c.spec.name in configs],
            registry_auth=auths,
        )
        await session.send(message)
        session.last_assigned = key

    async def push_network(
        self, mesh_of: set[str], networks_of: set[str], index: NetworkIndex | None = None
    ) -> None:
        """Tell the nodes ``mesh_of`` their mesh peers, and the nodes ``networks_of`` their
        networks' state, each when it changed; ``index``: see ``network_states``."""
        memory = self.ctx.store.memory
        # All computed before the first send (a send may let the store move on).
        meshes = mesh_states(memory, sorted(mesh_of))
        states = network_states(memory, sorted(networks_of), index)
        for node_id in sorted(mesh_of | networks_of):
            session = self.sessions.get(node_id)
            if session is None:
                continue
            with contextlib.suppress(SwarmliteError):  # its own task sees a broken stream
                mesh = meshes.get(node_id)
                if mesh is not None and mesh != session.last_mesh:
                    await session.send(mesh)
                    session.last_mesh = mesh
                networks = states.get(node_id)
                if networks is not None and networks != session.last_networks:
                    await session.send(networks)
                    session.last_networks = networks

    async def _take_report(self, node_id: str, report: StatusReport) -> None:
        updates = {u.task_id: u.status for u in report.updates}

        def write(read: ReadTx) -> Tx | None:
            tx = Tx()
            for task_id, status in updates.items():
                task = read.get(Task, task_id)
                if task is None or task.node_id != node_id or not advances(task.status, status):
                    continue
                tx.update(msgspec.structs.replace(task, status=status))
            return tx if tx.ops else None

        with acting_as(f"agent@{node_id}"):  # the node reports its own tasks
            await self.ctx.store.update(write)

    async def _mark(self, node_id: str, state: NodeState, hello: SessionHello | None) -> None:
        wall = self.ctx.clock.wall()

        def write(read: ReadTx) -> Tx | None:
            node = read.get(Node, node_id)
            if node is None:
                return None
            status = node.status
            changed = status.state is not state
            if hello is not None:
                reported = msgspec.structs.replace(
                    status,
                    addr=hello.addr,
                    version=hello.version,
                    runtime=hello.runtime,
                    hostname=hello.hostname,
                    os=hello.os,
                    arch=hello.arch,
                    nano_cpus=hello.nano_cpus,
                    memory_bytes=hello.memory_bytes,
                    generic_resources=hello.generic_resources,
                    mesh_public_key=hello.mesh_public_key,
                    mesh_next_key=hello.mesh_next_key,
                    mesh_endpoint=hello.mesh_endpoint,
                )
                changed = changed or reported != status
                status = reported
            if not changed:
                return None
            message = "" if state is NodeState.READY else "heartbeat failure"
            status = msgspec.structs.replace(status, state=state, message=message, last_seen=wall)
            return Tx().update(msgspec.structs.replace(node, status=status))

        with acting_as("dispatcher"):  # it saw the session come or go
            await self.ctx.store.update(write)

    # ------------------------------------------------------------------ leader loop

    async def run(self) -> None:
        """Leader only: mark silent nodes DOWN, push assignments and info to nodes."""
        self._leading = True
        now = self.ctx.clock.monotonic()
        for node in self.ctx.store.memory.list(Node):
            self._last_seen.setdefault(node.id, now)  # a new leader gives everyone a grace period
        try:
            await _Pusher(self).run()
        finally:
            self._leading = False
            self._last_seen.clear()
            self.heartbeats.clear()
            for session in list(self.sessions.values()):
                await session.stream.close_with_error(
                    Unavailable("this manager is no longer the leader", hint="reconnect")
                )
            self.sessions.clear()

    async def check(self, period: float) -> None:
        now = self.ctx.clock.monotonic()
        for node in self.ctx.store.memory.list(Node):
            seen = self._last_seen.setdefault(node.id, now)
            if now - seen > 3 * period and node.status.state is NodeState.READY:
                silent = round(now - seen, 1)
                log.warning("node down: no heartbeat %s", kv(node=node.id, seconds=silent))
                try:
                    await self._mark(node.id, NodeState.DOWN, None)
                except SwarmliteError as exc:
                    log.warning("could not mark node down %s", kv(node=node.id, error=exc.message))
        for session in list(self.sessions.values()):
            # A broken stream is seen and ended by the session's own task.
            with contextlib.suppress(SwarmliteError):
                await self._push_info(session)


class _Pusher(ReconcileLoop):
    """The dispatcher's leader loop: nodes whose tasks changed get their assignments, and
    nodes whose mesh or network state an event can change (``netstate.NetworkDirt``) get
    those, computed together for all of them once per round."""

    name = "dispatcher"
    kinds = ("task", "secret", "config", "node", "cluster", "service", "network")

    def __init__(self, dispatcher: Dispatcher) -> None:
        super().__init__(dispatcher.ctx.store, dispatcher.ctx.clock)
        self.dispatcher = dispatcher
        self.stats = dispatcher.loop_stats
        self.dirty: set[str] = set()
        self.networks = NetworkDirt()
        self.next_check = 0.0

    def start(self) -> None:
        # Also a resync after a watch overflowed: what was missed may concern any node.
        self.networks.reset(self.memory)
        self.dirty.update(self.dispatcher.sessions)

    def changed(self, events: list[Event]) -> None:
        for event in events:
            for obj in (event.old, event.new):
                if isinstance(obj, Task) and obj.node_id:
                    self.dirty.add(obj.node_id)
                elif isinstance(obj, Secret | Config):
                    self.dirty.update(self.dispatcher.sessions)  # rare: recompute for all
            if (
                isinstance(event.old, Service)
                and isinstance(event.new, Service)
                and event.old.registry_auth != event.new.registry_auth
            ):
                self.dirty.update(self.dispatcher.sessions)  # new credentials: rare too
            self.networks.changed(event)

    async def reconcile(self) -> None:
        sessions = self.dispatcher.sessions
        # Sessions opened since the last round get their first assignments here too.
        dirty = self.dirty | {n for n, s in sessions.items() if s.last_assigned is None}
        self.dirty = set()
        auth_of: dict[str, RegistryAuth | None] = {}  # as of the store at `index`
        index = self.memory.applied_index
        for node_id in dirty:
            session = sessions.get(node_id)
            if session is not None:
                if self.memory.applied_index != index:  # the store moved on while sending
                    auth_of, index = {}, self.memory.applied_index
                with contextlib.suppress(SwarmliteError):
                    await self.dispatcher.push_assignments(session, auth_of)
        mesh, networks = self.networks.take(self.memory)
        fresh = {n for n, s in sessions.items() if s.last_networks is None}
        mesh_of = set(sessions) if mesh is None else (mesh & sessions.keys()) | fresh
        networks_of = set(sessions) if networks is None else (networks & sessions.keys()) | fresh
        if mesh_of or networks_of:
            await self.dispatcher.push_network(mesh_of, networks_of, self.networks.index)
        now = self.clock.monotonic()
        if now >= self.next_check:
            period = self.dispatcher.ctx.heartbeat_period()
            self.next_check = now + period / 4
            await self.dispatcher.check(period)
        self.wake_at(self.next_check)
