"""The rpc client: unary msgpack calls and WebSocket streams to one server.

Owns one aiohttp session per server address (TCP with mutual TLS, or a unix socket), the
size limit on what it sends and accepts, and the translation of everything that can go
wrong into our errors: the server's envelope becomes the same class again; a server that
cannot be reached or does not answer in time is Unavailable (with its address); a TLS
refusal on either side (untrusted server certificate, our certificate refused) is
PermissionDenied; a response that does not decode is InvalidArgument. aiohttp's and ssl's
exceptions never leave this module. Does not own retries: callers decide, from
``error.retryable``.
"""

from __future__ import annotations

import asyncio
import errno
import io
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

import aiohttp
import msgspec

from swarmlite.api.actor import HEADER as ACTOR_HEADER
from swarmlite.api.actor import current as current_actor
from swarmlite.api.routes import Rep, Req, Route
from swarmlite.errors import InvalidArgument, PermissionDenied, SwarmliteError, Unavailable
from swarmlite.rpc.envelope import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MSGPACK,
    error_from_response,
    read_body,
)
from swarmlite.rpc.stream import HEARTBEAT_SECONDS, ClientStream

T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()
_LARGE_BODY_BYTES = 1 << 20

# OpenSSL reasons meaning "a certificate was refused", on our side or in the server's alert.
_CERTIFICATE_REFUSALS = ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED", "HANDSHAKE_FAILURE")


class RpcClient:
    """Calls one rpc server. Create inside the event loop that uses it; ``close`` when done."""

    def __init__(
        self,
        base_url: str,
        ssl_context: ssl.SSLContext | None,
        *,
        unix_socket: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        timeout: float = 10.0,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._ssl_context = ssl_context
        self._unix_socket = unix_socket
        self._max_message_bytes = max_message_bytes
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}
        self.address = f"unix:{unix_socket}" if unix_socket else self._base_url

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector: aiohttp.BaseConnector
            if self._unix_socket is not None:
                connector = aiohttp.UnixConnector(path=self._unix_socket)
            else:
                connector = aiohttp.TCPConnector(ssl=self._ssl_context or False)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, connect=self._timeout),
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, path: str, request: msgspec.Struct, response_type: type[T]) -> T:
        """POST ``request`` to ``path`` and decode the answer as ``response_type``."""
        body = _encoder.encode(request)
        if len(body) > self._max_message_bytes:
            raise InvalidArgument(
                f"request to {path} is {len(body)} bytes, over the "
                f"{self._max_message_bytes}-byte limit (max_message_bytes)",
                details={"limit": self._max_message_bytes},
            )
        session = self._get_session()
        where = f"{self.address}{path}"
        # aiohttp warns (an error under our test settings) about raw bytes over 1 MiB; a
        # BytesIO body is sent the same way, in chunks.
        data: bytes | io.BytesIO = body if len(body) <= _LARGE_BODY_BYTES else io.BytesIO(body)
        try:
            async with (
                asyncio.timeout(self._timeout),
                session.post(self._base_url + path, data=data, headers=_headers()) as response,
            ):
                try:
                    payload = await read_body(
                        response.content, response.content_length, self._max_message_bytes
                    )
                except InvalidArgument as exc:
                    raise InvalidArgument(f"answer from {where}: {exc.message}") from exc
                status, headers = response.status, response.headers
        except TimeoutError as exc:
            raise Unavailable(
                f"{where} did not answer within {self._timeout:g}s",
                details={"address": self.address},
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise self._connection_error(exc, where) from exc
        if status != 200:
            raise error_from_response(status, payload, headers, where=where)
        try:
            return self._decoder(response_type).decode(payload)  # type: ignore[no-any-return]
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise InvalidArgument(f"malformed answer from {where}: {exc}") from exc

    async def request(self, route: Route[Req, Rep], request: Req) -> Rep:
        """Call a control route: its path, with its reply type."""
        return await self.call(route.path, request, route.reply)

    async def items(self, route: Route[Req, Rep], request: Req) -> AsyncIterator[Rep]:
        """Open a streaming control route, send ``request``, and yield each item until the
        server ends the stream."""
        actor = current_actor()
        stream = await self.open_stream(route.path, {ACTOR_HEADER: actor} if actor else None)
        decoder = self._decoder(route.reply)
        try:
            await stream.send(_encoder.encode(request))
            while (frame := await stream.recv()) is not None:
                try:
                    yield decoder.decode(frame)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise InvalidArgument(
                        f"malformed item from {self.address}{route.path}: {exc}"
                    ) from exc
        finally:
            await stream.close()

    def _decoder(self, response_type: Any) -> msgspec.msgpack.Decoder[Any]:
        decoder = self._decoders.get(response_type)
        if decoder is None:
            decoder = self._decoders[response_type] = msgspec.msgpack.Decoder(response_type)
        return decoder

    async def open_stream(
        self, path: str, headers: Mapping[str, str] | None = None
    ) -> ClientStream:
        """Open the stream at ``path``; a refusal raises the server's error class."""
        session = self._get_session()
        where = f"{self.address}{path}"
        try:
            async with asyncio.timeout(self._timeout):
                ws = await session.ws_connect(
                    self._base_url + path,
                    headers=dict(headers or {}),
                    heartbeat=HEARTBEAT_SECONDS,
                    autoping=True,
                    compress=0,
                    max_msg_size=self._max_message_bytes,
                )
        except aiohttp.WSServerHandshakeError as exc:
            raise error_from_response(exc.status, b"", exc.headers, where=where) from exc
        except TimeoutError as exc:
            raise Unavailable(
                f"{where} did not open the stream within {self._timeout:g}s",
                details={"address": self.address},
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise self._connection_error(exc, where) from exc
        return ClientStream(ws, where=where, max_message_bytes=self._max_message_bytes)

    def _connection_error(self, exc: BaseException, where: str) -> SwarmliteError:
        details = {"address": self.address}
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return PermissionDenied(
                f"{where}: the server's certificate is not trusted by this node's CA "
                f"({exc.certificate_error})",
                hint="is this address a manager of this node's cluster?",
                details=details,
            )
        refusal = _certificate_refusal(exc)
        if refusal is not None:
            return PermissionDenied(
                f"{where} refused this node's certificate ({refusal})",
                hint="the node may have been removed, or belong to another cluster",
                details=details,
            )
        reason = str(exc) or type(exc).__name__
        hint = None
        reset = isinstance(exc, OSError) and exc.errno == errno.ECONNRESET
        if reset or isinstance(exc, aiohttp.ServerDisconnectedError):
            # With TLS 1.3 a server that refuses our certificate just hangs up.
            hint = (
                "if this keeps happening, the server may be refusing this node's certificate "
                "(its log says why)"
            )
        return Unavailable(f"cannot reach {where}: {reason}", hint=hint, details=details)


def _certificate_refusal(exc: BaseException) -> str | None:
    """The OpenSSL reason if ``exc`` (or what caused it) is a certificate refusal."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            reason = current.reason or ""
            if any(word in reason for word in _CERTIFICATE_REFUSALS):
                return reason
        pending.extend([current.__cause__, current.__context__])
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, BaseException):
            pending.append(os_error)
    return None


def _headers() -> dict[str, str]:
    """A call's headers: msgpack, and who asked when someone was named (api/actor.py)."""
    actor = current_actor()
    if actor:
        return {"Content-Type": MSGPACK, ACTOR_HEADER: actor}
    return {"Content-Type": MSGPACK}
