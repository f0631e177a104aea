"""Worker sessions: every node keeps one stream to the leader's dispatcher.

Owns sessions, heartbeats, assignments and status reports: a node that opens a session
is READY (what its hello says goes into the node's status, and so does a later hello on the
same session, e.g. a new mesh key); one whose heartbeats stop for 3 periods is DOWN; the
dispatcher tells each node the managers to fall back on, the heartbeat period and the role
the store gives it (so a promotion or demotion reaches the node) and the root CA to trust
and renew from (so a root CA rotation reaches it, ``ca.rotation``), pushes it the tasks it
should run or stop, with the secrets and configs they use and the registry credentials of
the services of those it should run (a session's first message is the whole set,
`Assignments`; later ones only what changed for that node since, `AssignmentChanges`), and
writes the statuses it reports into the store, ignoring stale or backward ones; it hands
the agents' usage reports (what tasks of autoscaled services use) to the leader's ``Usage``
table. Only the leader serves sessions (a follower answers NotLeader with the leader's
address, and so does a leader whose term ended before the session's hello came); a new
leader gives every node a full grace period before calling it DOWN. Writes node state to
the store only when it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterable

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
    AssignmentChanges,
    Assignments,
    LogChunk,
    ManagerMessage,
    MeshChanges,
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
from swarmlite.manager.netdirt import NetworkDirt
from swarmlite.manager.netstate import MeshBook, NetworkIndex, network_states
from swarmlite.manager.usage import Usage
from swarmlite.rpc import Peer, RpcServer, ServerStream
from swarmlite.store import Event, ReadTx, Tx

log = logging.getLogger(__name__)

# A push round that took at least MIN_PACED_ROUND_S is followed by a pause PACE_FACTOR times
# as long, at most MAX_PACE_S: see ``_Pusher.reconcile``.
MIN_PACED_ROUND_S = 0.002
MAX_PACE_S = 0.1
PACE_FACTOR = 4

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AgentMessage)


_Blob = tuple[type[Secret] | type[Config], str]  # a secret or config, by its name
_NO_REFS: tuple[_Blob, ...] = ()


class _Held:
    """What a node holds of its assignments: what it was sent, so that the next message
    can be only the difference. Per task the desired state it was told, its service (for
    credentials) and the secrets and configs it uses (a task's spec never changes)."""

    def __init__(self) -> None:
        self.tasks: dict[str, tuple[TaskState, str, tuple[_Blob, ...]]] = {}
        self.pulling: dict[str, int] = {}  # service id -> held tasks of it that are to run
        self.refs: dict[_Blob, int] = {}  # -> held tasks that use it
        self.blobs: dict[_Blob, str] = {}  # -> id of the one sent (none if none existed)
        self.auths: dict[str, RegistryAuth] = {}
        self.pull_changed: set[str] = set()  # services that gained their first or lost their last

    def put(self, task: Task) -> list[_Blob]:
        """Hold ``task`` (new, or with a new desired state); the blobs it makes used."""
        old = self.tasks.get(task.id)
        refs = old[2] if old is not None else _refs(task)
        self.tasks[task.id] = (task.desired_state, task.service_id, refs)
        if old is not None and not old[0].terminal:
            self._pull(task.service_id, -1)
        if not task.desired_state.terminal:
            self._pull(task.service_id, +1)
        fresh = []
        if old is None:
            for ref in refs:
                count = self.refs.get(ref, 0)
                self.refs[ref] = count + 1
                if count == 0:
                    fresh.append(ref)
        return fresh

    def drop(self, task_id: str) -> None:
        desired, service_id, refs = self.tasks.pop(task_id)
        if not desired.terminal:
            self._pull(service_id, -1)
        for ref in refs:
            count = self.refs[ref] - 1
            if count:
                self.refs[ref] = count
            else:
                del self.refs[ref]
                self.blobs.pop(ref, None)

    def _pull(self, service_id: str, delta: int) -> None:
        count = self.pulling.get(service_id, 0) + delta
        if count:
            self.pulling[service_id] = count
        else:
            del self.pulling[service_id]
        if count == 0 or (count == 1 and delta > 0):
            self.pull_changed.add(service_id)

    def same(self, other: _Held) -> bool:
        """Whether a node holding ``other`` holds what it would be sent as this."""
        if self.auths != other.auths or self.blobs != other.blobs:
            return False
        if self.tasks.keys() != other.tasks.keys():
            return False
        theirs = other.tasks
        return all(theirs[task_id][0] == held[0] for task_id, held in self.tasks.items())


def _refs(task: Task) -> tuple[_Blob, ...]:
    container = task.spec.container
    if not container.secrets and not container.configs:
        return _NO_REFS
    refs: list[_Blob] = [(Secret, ref.name) for ref in container.secrets]
    refs.extend((Config, ref.name) for ref in container.configs)
    return tuple(refs)


def _blob(memory: ReadTx, ref: _Blob) -> Secret | Config | None:
    kind, name = ref
    found = memory.get_by_name(kind, name)
    return found if found is not None and found.spec.name == name else None  # exact, as named


def _auths(
    memory: ReadTx, pulling: Iterable[str], auth_of: dict[str, RegistryAuth | None]
) -> dict[str, RegistryAuth]:
    """Registry credentials go, like secrets, only where a task of theirs is to run;
    ``auth_of``: services' credentials already looked up in this state of the store."""
    auths = {}
    for service_id in pulling:
        if service_id not in auth_of:
            service = memory.get(Service, service_id)
            auth_of[service_id] = service.registry_auth if service is not None else None
        auth = auth_of[service_id]
        if auth is not None:
            auths[service_id] = auth
    return auths


class _Session:
    def __init__(self, node_id: str, stream: ServerStream) -> None:
        self.node_id = node_id
        self.stream = stream
        self.last_info: SessionInfo | None = None
        self.held: _Held | None = None  # None: send it a whole Assignments first
        # The mesh it was told: the MeshBook generation and its own address (-1: none yet).
        self.mesh_generation = -1
        self.mesh_address = ""
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
        self.mesh_book = MeshBook()  # the mesh peers as last told (see ``push_network``)
        self._last_seen: dict[str, float] = {}
        self._leading = False
        self._term = 0  # counts the times this manager started leading
        self.loop_stats: LoopStats | None = None  # given to its leader loop (metrics)

    def register(self, server: RpcServer) -> None:
        server.add_stream(SESSION, self.serve)

    # ------------------------------------------------------------------ sessions

    async def serve(self, stream: ServerStream, peer: Peer) -> None:
        identity = peer.identity
        if identity is None:
            raise PermissionDenied("a session needs the node's certificate")
        self._check_leading(None)
        term = self._term
        hello = await self._recv(stream)
        if not isinstance(hello, SessionHello) or hello.node_id != identity.node_id:
            raise PermissionDenied(f"session of {identity.node_id} must start with its own hello")
        node_id = hello.node_id
        if self.ctx.store.memory.get(Node, node_id) is None:
            raise PermissionDenied(f"node {node_id} is not part of this cluster")
        old = self.sessions.pop(node_id, None)
        if old is not None:
            await old.stream.close()
        # Still leading in the same term: a session kept after its term ended (no one
        # closes it then) would hold its node away from the new leader.
        self._check_leading(term)
        session = _Session(node_id, stream)
        self.sessions[node_id] = session
        self.beat(node_id)
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
                self.beat(node_id)
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

    def beat(self, node_id: str) -> None:
        """``node_id`` was heard from now (any message of its session counts)."""
        self._last_seen[node_id] = self.ctx.clock.monotonic()
        self.heartbeats.beat(node_id)

    def _check_leading(self, term: int | None) -> None:
        """Raise NotLeader unless this manager leads (in ``term``, when given)."""
        if not self._leading or (term is not None and term != self._term):
            raise NotLeader(
                "sessions are served by the leader",
                details={"leader": self.ctx.raft.leader_address()},
            )

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
        """Tell the node its whole set of tasks, computed from scratch, unless it holds
        that already (what it was sent is what it holds: each session starts with a whole
        set and the stream keeps the order). ``auth_of``: see ``_auths``; filled in here, so
        that a round over many nodes looks each service up once."""
        memory = self.ctx.store.memory
        tasks = [t for t in memory.tasks_on_node(session.node_id) if assigned(t)]
        held = _Held()
        for task in tasks:
            held.put(task)
        held.auths = _auths(memory, held.pulling, {} if auth_of is None else auth_of)
        blobs = [b for b in map(functools.partial(_blob, memory), held.refs) if b is not None]
        held.blobs = {(type(b), b.spec.name): b.id for b in blobs}
        held.pull_changed = set()
        if session.held is not None and session.held.same(held):
            return
        message = Assignments(
            tasks=tasks,
            secrets=[b for b in blobs if isinstance(b, Secret)],
            configs=[b for b in blobs if isinstance(b, Config)],
            registry_auth=held.auths,
        )
        session.held = held  # before the send: a message sent later builds on this one
        await session.send(message)

    async def push_changes(
        self,
        session: _Session,
        task_ids: Iterable[str],
        *,
        auths_changed: bool = False,
        auth_of: dict[str, RegistryAuth | None] | None = None,
    ) -> None:
        """Tell the node what changed for it, if anything: of the tasks ``task_ids`` (those
        events touched), those now assigned to it that it does not hold with their desired
        state, and those it holds that are not assigned to it any more; its credentials if
        they changed (``auths_changed``: some of its services' did). A node that holds
        nothing yet gets its whole set instead."""
        held = session.held
        if held is None:
            await self.push_assignments(session, auth_of)
            return
        memory = self.ctx.store.memory
        node_id = session.node_id
        tasks: list[Task] = []
        removed: list[str] = []
        fresh: list[_Blob] = []
        for task_id in task_ids:
            task = memory.get(Task, task_id)
            if task is not None and (task.node_id != node_id or not assigned(task)):
                task = None
            told = held.tasks.get(task_id)
            if task is None:
                if told is not None:
                    held.drop(task_id)
                    removed.append(task_id)
            elif told is None or told[0] != task.desired_state:
                fresh.extend(held.put(task))
                tasks.append(task)
        secrets: list[Secret] = []
        configs: list[Config] = []
        for ref in fresh:
            if ref not in held.refs:
                continue  # used by a task made known and dropped again in this round
            blob = _blob(memory, ref)
            if blob is None:
                continue
            held.blobs[ref] = blob.id
            if isinstance(blob, Secret):
                secrets.append(blob)
            else:
                configs.append(blob)
        registry_auth = None
        if held.pull_changed or auths_changed:
            # Only the services that started or stopped pulling here, unless some service's
            # credentials changed (rare): then every one.
            looked = set(held.pulling) if auths_changed else held.pull_changed
            auths = {} if auths_changed else dict(held.auths)
            for service_id in looked:
                auths.pop(service_id, None)
            pulling = [service_id for service_id in looked if service_id in held.pulling]
            auths.update(_auths(memory, pulling, {} if auth_of is None else auth_of))
            held.pull_changed = set()
            if auths != held.auths:
                held.auths = registry_auth = auths
        if not tasks and not removed and registry_auth is None:
            return
        message = AssignmentChanges(
            tasks=tasks,
            removed=removed,
            secrets=secrets,
            configs=configs,
            registry_auth=registry_auth,
        )
        await session.send(message)

    async def push_network(
        self, mesh_of: set[str], networks_of: set[str], index: NetworkIndex | None = None
    ) -> None:
        """Tell the nodes ``mesh_of`` their mesh peers, and the nodes ``networks_of`` their
        networks' state, each when it changed; ``index``: see ``network_states``."""
        memory = self.ctx.store.memory
        # All computed before the first send (a send may let the store move on).
        book = self.mesh_book
        if mesh_of:
            book.read(memory)
        meshes = {node_id: self._mesh_message(memory, node_id) for node_id in sorted(mesh_of)}
        states = network_states(memory, sorted(networks_of), index)
        for node_id in sorted(mesh_of | networks_of):
            session = self.sessions.get(node_id)
            if session is None:
                continue
            with contextlib.suppress(SwarmliteError):  # its own task sees a broken stream
                mesh = meshes.get(node_id)
                if mesh is not None:
                    message, address = mesh
                    if message is not None:
                        await session.send(message)
                    session.mesh_generation, session.mesh_address = book.generation, address
                networks = states.get(node_id)
                if networks is not None and networks != session.last_networks:
                    await session.send(networks)
                    session.last_networks = networks

    def _mesh_message(
        self, memory: ReadTx, node_id: str
    ) -> tuple[MeshState | MeshChanges | None, str] | None:
        """What to tell ``node_id`` of its mesh (None: nothing new), with its address; None
        while it has no mesh address or no session. A node that holds the book's previous
        generation at the same address gets only the changes."""
        session = self.sessions.get(node_id)
        book = self.mesh_book
        address = book.address(memory, node_id) if session is not None else None
        if session is None or address is None:
            return None
        known = session.mesh_generation
        if session.mesh_address == address:
            if known == book.generation:
                return None, address
            if known == book.generation - 1 and known >= 0:
                changes = book.changes(node_id)
                return (changes if changes.peers or changes.removed else None), address
        return book.whole(node_id, address), address

    async def _take_report(self, node_id: str, report: StatusReport) -> None:
        updates = {u.task_id: u.status for u in report.updates}

        def write(read: ReadTx) -> Tx | None:
            tx = Tx()
            for task_id, status in updates.items():
                task = read.get(Task, task_id)
                if task is None or task.node_id != node_id or not advances(task.status, status):
                    continue
                tx.patch(task, msgspec.structs.replace(task, status=status))
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
        self._term += 1
        now = self.ctx.clock.monotonic()
        for node in self.ctx.store.memory.list(Node):
            # A new leader gives everyone a grace period: whatever an earlier term saw is
            # stale (sessions of that term may still have written here as they ended).
            self._last_seen[node.id] = now
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
                    continue
                # Its session, if one is still open (a leader too busy to read its beats),
                # ends: the node opens a new one, and its hello makes it READY again.
                session = self.sessions.get(node.id)
                if session is not None:
                    await session.stream.close_with_error(
                        Unavailable(
                            f"no heartbeat for {silent} s: this node was marked down",
                            hint="open a new session",
                        )
                    )
        for session in list(self.sessions.values()):
            # A broken stream is seen and ended by the session's own task.
            with contextlib.suppress(SwarmliteError):
                await self._push_info(session)


class _Pusher(ReconcileLoop):
    """The dispatcher's leader loop: nodes whose tasks changed get what changed of their
    assignments (the tasks events touched, per node: work per changed task, not per task
    of the node), and nodes whose mesh or network state an event can change
    (``netdirt.NetworkDirt``) get those, computed together for all of them once per round.
    A node that holds no assignments yet, holds a secret or config an event touched, or
    after a resync, has its whole set computed again and sent if it differs from what it
    holds."""

    name = "dispatcher"
    kinds = ("task", "secret", "config", "node", "cluster", "service", "network")

    def __init__(self, dispatcher: Dispatcher) -> None:
        super().__init__(dispatcher.ctx.store, dispatcher.ctx.clock)
        self.dispatcher = dispatcher
        self.stats = dispatcher.loop_stats
        self.dirty: dict[str, set[str]] = {}  # node id -> ids of tasks that changed there
        self.recheck: set[str] = set()  # nodes to compute whole again
        self.blobs: set[_Blob] = set()  # secrets and configs that changed (rare)
        self.auths: set[str] = set()  # services whose credentials changed (rare)
        self.networks = NetworkDirt()
        self.next_check = 0.0

    def start(self) -> None:
        # Also a resync after a watch overflowed: what was missed may concern any node.
        self.networks.reset(self.memory)
        self.recheck.update(self.dispatcher.sessions)

    def changed(self, events: list[Event]) -> None:
        for event in events:
            for obj in (event.old, event.new):
                if isinstance(obj, Task):
                    if obj.node_id:
                        self.dirty.setdefault(obj.node_id, set()).add(obj.id)
                elif isinstance(obj, Secret | Config):
                    self.blobs.add((type(obj), obj.spec.name))
            old, new = event.old, event.new
            if isinstance(old, Service) or isinstance(new, Service):
                before = old.registry_auth if isinstance(old, Service) else None
                after = new.registry_auth if isinstance(new, Service) else None
                if before != after:
                    self.auths.add(event.object.id)
            self.networks.changed(event)

    async def reconcile(self) -> None:
        started = time.perf_counter()
        await self._push()
        took = time.perf_counter() - started  # the pushes only: not the heartbeat check
        now = self.clock.monotonic()
        if now >= self.next_check:
            period = self.dispatcher.ctx.heartbeat_period()
            self.next_check = now + period / 4
            await self.dispatcher.check(period)
        self.wake_at(self.next_check)
        # Under a burst of changes (a deploy of 100,000 tasks), rounds came one per write of
        # the scheduler and each message carried about one task: a round that took a while
        # is now followed by a pause (4 times as long, at most 0.1 s), and the changes made
        # meanwhile go out together in the next round. A quiet cluster's round is short, so
        # a single change is still pushed at once.
        if took >= MIN_PACED_ROUND_S:
            await asyncio.sleep(min(PACE_FACTOR * took, MAX_PACE_S))

    async def _push(self) -> None:
        sessions = self.dispatcher.sessions
        # Sessions opened since the last round get their first assignments here too.
        recheck = self.recheck | {n for n, s in sessions.items() if s.held is None}
        dirty, blobs, auths = self.dirty, self.blobs, self.auths
        self.recheck, self.dirty, self.blobs, self.auths = set(), {}, set(), set()
        auth_nodes: set[str] = set()
        for node_id, session in sessions.items() if blobs or auths else ():
            held = session.held
            if held is None:
                continue
            if any(ref in held.refs for ref in blobs):
                recheck.add(node_id)  # rare (a secret removed, say): compute it whole
            if not auths.isdisjoint(held.pulling):
                auth_nodes.add(node_id)
        auth_of: dict[str, RegistryAuth | None] = {}  # as of the store at `index`
        index = self.memory.applied_index
        for node_id in [*recheck, *(dirty.keys() | auth_nodes)]:
            target = sessions.get(node_id)
            if target is None:
                continue
            if self.memory.applied_index != index:  # the store moved on while sending
                auth_of, index = {}, self.memory.applied_index
            with contextlib.suppress(SwarmliteError):
                if node_id in recheck:
                    recheck.discard(node_id)  # once; its changes below find nothing new
                    await self.dispatcher.push_assignments(target, auth_of)
                else:
                    await self.dispatcher.push_changes(
                        target,
                        dirty.get(node_id, ()),
                        auths_changed=node_id in auth_nodes,
                        auth_of=auth_of,
                    )
        mesh, networks = self.networks.take(self.memory)
        fresh = {n for n, s in sessions.items() if s.last_networks is None}
        mesh_of = set(sessions) if mesh is None else (mesh & sessions.keys()) | fresh
        networks_of = set(sessions) if networks is None else (networks & sessions.keys()) | fresh
        if mesh_of or networks_of:
            await self.dispatcher.push_network(mesh_of, networks_of, self.networks.index)
