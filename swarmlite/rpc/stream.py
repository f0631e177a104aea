"""Long-lived message streams: binary msgpack frames both ways over one WebSocket.

Owns the ``Stream`` protocol that raft's transport and worker sessions program against, and
its two implementations over aiohttp's server and client WebSockets. Does not own framing
of what is inside a frame (callers encode their own msgspec messages), routing or TLS.

Invariants: ``recv`` returns frames in the order they were sent and ``None`` only when the
peer closed the stream normally (close code 1000 or 1001); every other end (a frame over
the size limit, a text frame, an error the peer closed with, a lost connection) raises the
matching SwarmliteError, and keeps raising it. ``send`` on a stream that has ended raises
Unavailable. aiohttp's exceptions are translated here, with the cause kept.

One task receives at a time (aiohttp forbids concurrent ``receive``); any task may send.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp
from aiohttp import WSMsgType, web

from swarmlite.errors import InvalidArgument, SwarmliteError, Unavailable
from swarmlite.log import kv
from swarmlite.rpc.envelope import (
    CLEAN_CLOSE_CODES,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_UNSUPPORTED_DATA,
    close_code_for,
    close_reason,
    error_from_close,
)

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0

_CLOSING_TYPES = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED})


class Stream(Protocol):
    """Frames both ways; what raft's transport and the dispatcher program against."""

    async def recv(self) -> bytes | None:
        """The next frame; None once the peer closed the stream normally."""
        ...

    async def send(self, frame: bytes) -> None: ...

    async def close(self) -> None: ...


class _WebSocketStream:
    """One implementation for both ends: aiohttp's two WebSocket classes share this API."""

    def __init__(
        self,
        ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        *,
        where: str,
        max_message_bytes: int,
    ) -> None:
        self._ws: Any = ws  # the two classes agree on every call made here
        self._where = where
        self._max_message_bytes = max_message_bytes
        self._ended = False
        self.error: SwarmliteError | None = None  # why the stream ended, if not cleanly

    @property
    def closed(self) -> bool:
        return self._ended or bool(self._ws.closed)

    async def recv(self) -> bytes | None:
        if self._ended:
            return self._ended_result()
        msg = await self._ws.receive()
        kind = msg.type
        if kind is WSMsgType.BINARY:
            data: bytes = msg.data
            return data
        if kind in _CLOSING_TYPES:
            code = msg.data if kind is WSMsgType.CLOSE else self._ws.close_code
            reason = msg.extra if kind is WSMsgType.CLOSE and msg.extra else ""
            self._finish(code, str(reason))
            return self._ended_result()
        if kind is WSMsgType.TEXT:
            await self._protocol_error(
                InvalidArgument(
                    f"stream {self._where} received a text frame; it carries binary "
                    "msgpack frames only"
                ),
                CLOSE_UNSUPPORTED_DATA,
            )
            return self._ended_result()
        # WSMsgType.ERROR: aiohttp already closed the socket, with 1009 for a frame over
        # max_msg_size.
        cause = msg.data
        if getattr(cause, "code", None) == CLOSE_MESSAGE_TOO_BIG:
            error: SwarmliteError = InvalidArgument(
                f"stream {self._where} received a frame over the "
                f"{self._max_message_bytes}-byte limit (max_message_bytes); stream closed",
                details={"limit": self._max_message_bytes},
            )
        else:
            error = Unavailable(f"stream {self._where} failed: {cause}")
        self._ended = True
        self.error = error
        log.warning("rpc stream closed %s", kv(stream=self._where, reason=error.message))
        return self._ended_result()

    async def send(self, frame: bytes) -> None:
        if self._ended or self._ws.closed:
            raise self.error or Unavailable(f"stream {self._where} is closed")
        try:
            await self._ws.send_bytes(frame)
        except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
            raise Unavailable(f"stream {self._where} is closed: {exc}") from exc

    async def close(self) -> None:
        """Close normally; a no-op if the stream already ended."""
        self._ended = True
        await self._close_ws(CLOSE_NORMAL, b"")

    async def close_with_error(self, error: SwarmliteError) -> None:
        """Close telling the peer why, so that its ``recv`` raises the same class."""
        self._ended = True
        if self.error is None:
            self.error = error
        await self._close_ws(close_code_for(error), close_reason(error))

    async def close_with_code(self, code: int, reason: bytes) -> None:
        self._ended = True
        await self._close_ws(code, reason)

    async def _close_ws(self, code: int, reason: bytes) -> None:
        try:
            await self._ws.close(code=code, message=reason)
        except (ConnectionError, aiohttp.ClientError) as exc:
            log.debug("rpc stream close failed %s", kv(stream=self._where, error=exc))

    async def _protocol_error(self, error: SwarmliteError, code: int) -> None:
        log.warning("rpc stream closed %s", kv(stream=self._where, reason=error.message))
        self._ended = True
        self.error = error
        await self._close_ws(code, close_reason(error))

    def _finish(self, code: int | None, reason: str) -> None:
        self._ended = True
        if code not in CLEAN_CLOSE_CODES and self.error is None:
            self.error = error_from_close(code, reason, where=self._where)

    def _ended_result(self) -> bytes | None:
        if self.error is not None:
            raise self.error
        return None


class ServerStream(_WebSocketStream):
    """The server's end of a stream, handed to a stream handler with its Peer."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        path: str,
        headers: Mapping[str, str],
        where: str,
        max_message_bytes: int,
    ) -> None:
        super().__init__(ws, where=where, max_message_bytes=max_message_bytes)
        self.path = path
        self.headers = headers


class ClientStream(_WebSocketStream):
    """The client's end of a stream, from ``RpcClient.open_stream``."""
