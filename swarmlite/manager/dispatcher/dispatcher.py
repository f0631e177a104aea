"""Worker sessions: every node keeps one stream to the leader's dispatcher.

Owns sessions and heartbeats: a node that opens a session is READY; one whose heartbeats
stop for 3 periods is DOWN; the dispatcher tells each node the managers to fall back on,
the heartbeat period and the role the store gives it (so a promotion or demotion reaches
the node). Only the leader serves sessions (a follower answers NotLeader with the
leader's address); a new leader gives every node a full grace period before calling it
DOWN. Writes node state to the store only when it changes.
"""

from __future__ import annotations

import contextlib
import logging

import msgspec

from swarmlite.api import Node, NodeState
from swarmlite.api.control import (
    SESSION,
    AgentMessage,
    Heartbeat,
    ManagerMessage,
    SessionHello,
    SessionInfo,
)
from swarmlite.errors import (
    InvalidArgument,
    NotLeader,
    PermissionDenied,
    SwarmliteError,
    Unavailable,
)
from swarmlite.log import kv
from swarmlite.manager.context import ManagerContext
from swarmlite.rpc import Peer, RpcServer, ServerStream
from swarmlite.store import ReadTx, Tx

log = logging.getLogger(__name__)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AgentMessage)


class _Session:
    def __init__(self, node_id: str, stream: ServerStream) -> None:
        self.node_id = node_id
        self.stream = stream
        self.last_info: SessionInfo | None = None


class Dispatcher:
    def __init__(self, ctx: ManagerContext) -> None:
        self.ctx = ctx
        self._sessions: dict[str, _Session] = {}
        self._last_seen: dict[str, float] = {}
        self._leading = False

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
        old = self._sessions.pop(node_id, None)
        if old is not None:
            await old.stream.close()
        session = _Session(node_id, stream)
        self._sessions[node_id] = session
        self._last_seen[node_id] = self.ctx.clock.monotonic()
        log.info("session opened %s", kv(node=node_id, peer=peer.address))
        try:
            await self._mark(node_id, NodeState.READY, hello)
            await self._push_info(session)
            while True:
                message = await self._recv(stream)
                if message is None:
                    return
                if isinstance(message, Heartbeat):
                    self._last_seen[node_id] = self.ctx.clock.monotonic()
        finally:
            if self._sessions.get(node_id) is session:
                del self._sessions[node_id]
            log.info("session closed %s", kv(node=node_id))

    async def _recv(self, stream: ServerStream) -> AgentMessage | None:
        frame = await stream.recv()
        if frame is None:
            return None
        try:
            return _decoder.decode(frame)  # type: ignore[no-any-return]
        except msgspec.DecodeError as exc:
            raise InvalidArgument(f"malformed session message: {exc}") from exc

    def _info_for(self, node_id: str) -> SessionInfo | None:
        node = self.ctx.store.memory.get(Node, node_id)
        if node is None:
            return None
        return SessionInfo(
            managers=self.ctx.manager_addrs(),
            heartbeat_period=self.ctx.heartbeat_period(),
            role=node.spec.role,
            leader_addr=self.ctx.addr,
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
            message: ManagerMessage = info
            await session.stream.send(_encoder.encode(message))

    async def _mark(self, node_id: str, state: NodeState, hello: SessionHello | None) -> None:
        wall = self.ctx.clock.wall()

        def write(read: ReadTx) -> Tx | None:
            node = read.get(Node, node_id)
            if node is None:
                return None
            status = node.status
            changed = status.state is not state
            if hello is not None:
                changed = changed or (status.addr, status.version, status.hostname) != (
                    hello.addr,
                    hello.version,
                    hello.hostname,
                )
                status = msgspec.structs.replace(
                    status,
                    addr=hello.addr,
                    version=hello.version,
                    runtime=hello.runtime,
                    hostname=hello.hostname,
                )
            if not changed:
                return None
            message = "" if state is NodeState.READY else "heartbeat failure"
            status = msgspec.structs.replace(status, state=state, message=message, last_seen=wall)
            return Tx().update(msgspec.structs.replace(node, status=status))

        await self.ctx.store.update(write)

    # ------------------------------------------------------------------ leader loop

    async def run(self) -> None:
        """Leader only: watch heartbeats, mark missing nodes DOWN, push changes to nodes."""
        self._leading = True
        now = self.ctx.clock.monotonic()
        for node in self.ctx.store.memory.list(Node):
            self._last_seen.setdefault(node.id, now)  # a new leader gives everyone a grace period
        try:
            while True:
                period = self.ctx.heartbeat_period()
                await self.ctx.clock.sleep(period / 4)
                await self._check(period)
        finally:
            self._leading = False
            self._last_seen.clear()
            for session in list(self._sessions.values()):
                await session.stream.close_with_error(
                    Unavailable("this manager is no longer the leader", hint="reconnect")
                )
            self._sessions.clear()

    async def _check(self, period: float) -> None:
        now = self.ctx.clock.monotonic()
        for node in self.ctx.store.memory.list(Node):
            seen = self._last_seen.setdefault(node.id, now)
            missing = now - seen > 3 * period
            if missing and node.status.state is NodeState.READY:
                log.warning(
                    "node down: no heartbeat %s", kv(node=node.id, seconds=round(now - seen, 1))
                )
                try:
                    await self._mark(node.id, NodeState.DOWN, None)
                except SwarmliteError as exc:
                    log.warning("could not mark node down %s", kv(node=node.id, error=exc.message))
        for session in list(self._sessions.values()):
            # A broken stream is seen and ended by the session's own task.
            with contextlib.suppress(SwarmliteError):
                await self._push_info(session)
