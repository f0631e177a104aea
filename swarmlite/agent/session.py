"""A node's session with the cluster: one stream to the leader's dispatcher, heartbeats,
and failover to another manager when the current one goes away.

Owns the connection only: which manager to try next (the leader it was told of, then the
managers it knows, in order), the heartbeat pace the manager asks for, and handing each
SessionInfo to the node. Never touches the store.

When a leader goes away, every node loses its session at the same moment. So a node whose
session was up waits a random part of one heartbeat period before it tries again: the new
leader gets the nodes' TLS handshakes spread over a period, not all at once, and their
heartbeats keep spread phases. A new leader gives every node 3 periods before calling it
DOWN, so the pause costs no node its READY state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Awaitable, Callable

import msgspec

from swarmlite.api.control import (
    SESSION,
    AgentMessage,
    Heartbeat,
    ManagerMessage,
    SessionHello,
    SessionInfo,
)
from swarmlite.api.routes import Rep, Req, Route
from swarmlite.clock import Clock
from swarmlite.errors import (
    InvalidArgument,
    NotLeader,
    PermissionDenied,
    SwarmliteError,
    Unavailable,
)
from swarmlite.log import kv
from swarmlite.rpc import ClientStream, RpcClient

log = logging.getLogger(__name__)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ManagerMessage)

BACKOFF_MIN, BACKOFF_MAX = 0.1, 2.0


class Session:
    def __init__(
        self,
        hello: SessionHello,
        managers: list[str],
        client_ssl: Callable[[], ssl.SSLContext],
        clock: Clock,
        on_info: Callable[[SessionInfo], Awaitable[None]],
        *,
        on_refused: Callable[[PermissionDenied], Awaitable[None]] | None = None,
        on_message: Callable[[ManagerMessage], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.hello = hello
        self.managers = list(managers)
        self._ssl = client_ssl
        self._clock = clock
        self._on_info = on_info
        self._on_refused = on_refused
        self._on_message = on_message
        self._stream: ClientStream | None = None
        self.connected_to: str | None = None
        self.informed = False  # a manager has told this node about the cluster at least once
        self._period = 1.0
        self._rng = rng or random.Random()

    @property
    def heartbeat_period(self) -> float:
        """The pace of this node's heartbeats: the period the manager asked for last."""
        return self._period

    def _candidates(self, hint: str | None) -> list[str]:
        ordered = [hint] if hint else []
        ordered += [m for m in self.managers if m != hint]
        return ordered

    async def run(self) -> None:
        backoff = BACKOFF_MIN
        hint: str | None = None
        while True:
            tried_any = False
            for address in self._candidates(hint):
                tried_any = True
                hint = None
                was_up = False
                try:
                    await self._session(address)
                except NotLeader as exc:
                    hint = exc.leader
                    log.debug("manager is not the leader %s", kv(manager=address, leader=hint))
                    if hint:
                        break
                except PermissionDenied as exc:
                    log.error("the cluster refused this node %s", kv(error=exc.message))
                    if self._on_refused is not None:
                        await self._on_refused(exc)
                    await self._clock.sleep(BACKOFF_MAX)
                except SwarmliteError as exc:
                    log.info("session lost %s", kv(manager=address, error=exc.message))
                finally:
                    if self.connected_to is not None:
                        was_up = True
                        backoff = BACKOFF_MIN  # it was up: the next failure starts afresh
                    self.connected_to = None
                if was_up:  # every node may have lost it just now: see the module's docstring
                    pause = self._rng.uniform(0.0, self._period)
                    if pause > 0:
                        await self._clock.sleep(pause)
            if not tried_any or hint is None:
                await self._clock.sleep(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)

    async def _session(self, address: str) -> None:
        client = RpcClient(f"https://{address}", self._ssl(), timeout=5.0)
        try:
            stream = await client.open_stream(SESSION)
            try:
                await self._send(stream, self.hello)
                first = await self._recv(stream)
                if first is None:
                    return
                self.connected_to = address
                self._stream = stream
                log.info("session established %s", kv(manager=address))
                await self._handle(first)
                # Heartbeats go out beside the receiving loop; if sending fails the
                # connection is gone and recv() fails too, which ends the session.
                beating = asyncio.get_running_loop().create_task(self._beat(stream))
                try:
                    while (info := await self._recv(stream)) is not None:
                        await self._handle(info)
                finally:
                    beating.cancel()
                    with contextlib.suppress(asyncio.CancelledError, SwarmliteError):
                        await beating
            finally:
                self._stream = None
                with contextlib.suppress(SwarmliteError):
                    await stream.close()
        finally:
            await client.close()

    async def _handle(self, message: ManagerMessage) -> None:
        if not isinstance(message, SessionInfo):
            if self._on_message is not None:
                await self._on_message(message)
            return
        self._period = message.heartbeat_period
        if message.managers:
            self.managers = list(message.managers)
        self.informed = True
        await self._on_info(message)

    async def rehello(self, hello: SessionHello) -> None:
        """Say who this node is again (e.g. new mesh keys), on the open session; the next
        session starts with it anyway, so a send that fails loses nothing."""
        self.hello = hello
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(SwarmliteError):
                await self._send(stream, hello)

    async def request(self, route: Route[Req, Rep], request: Req) -> Rep:
        """One control call to a manager as this node (its certificate): the manager of
        the session first, then the others; a manager's answer, refusal included, is final,
        and only an unreachable one (Unavailable) makes it try the next."""
        last: SwarmliteError | None = None
        for address in self._candidates(self.connected_to):
            client = RpcClient(f"https://{address}", self._ssl(), timeout=10.0)
            try:
                return await client.request(route, request)
            except Unavailable as exc:
                last = exc
            finally:
                await client.close()
        raise last or Unavailable("no manager known to this node", hint="it reconnects")

    async def send(self, message: AgentMessage) -> None:
        """Send on the current session; Unavailable when there is none right now."""
        stream = self._stream
        if stream is None:
            raise Unavailable("no session with a manager right now", hint="it reconnects")
        await self._send(stream, message)

    async def _beat(self, stream: ClientStream) -> None:
        while True:
            await self._clock.sleep(self._period)
            await self._send(stream, Heartbeat())

    @staticmethod
    async def _send(stream: ClientStream, message: AgentMessage) -> None:
        await stream.send(_encoder.encode(message))

    @staticmethod
    async def _recv(stream: ClientStream) -> ManagerMessage | None:
        frame = await stream.recv()
        if frame is None:
            return None
        try:
            message: ManagerMessage = _decoder.decode(frame)
            return message
        except msgspec.DecodeError as exc:
            raise InvalidArgument(f"malformed message from the manager: {exc}") from exc
