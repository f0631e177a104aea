"""Hijacked connections passed through to the node's runtime: ``docker attach``,
``docker exec``, ``docker run -i``, and any ``Connection: Upgrade`` request.

Owns the one exchange the client's request gets with the runtime, spoken by hand on a
fresh unix connection (``Connection: Upgrade`` and its ``Upgrade`` are kept: the runtime
must answer the client's upgrade itself), and what follows. When the runtime answers
``101`` (dockerd, to a client that asked for an upgrade) or ``200`` with a raw or
multiplexed stream and no length (dockerd, to one that did not), its head goes to the
client with swarmlite's headers, and the client's connection is taken from aiohttp
(``transport.set_protocol``): from then on it is a raw byte pipe both ways. A half-close
(stdin's EOF: the client's ``CloseWrite``) is passed on as one and does not end the
output, on the TLS listener too (``_TlsClientSide``); the pipe ends when the runtime
closes its side, when the client's connection is lost (then the runtime's is closed, which
ends its attach), or when the server stops (``Runtime.close`` closes the runtime's). Any
other answer (an error, ``Detach: true``) is relayed as an ordinary response, read by its
length or chunks.

Invariant: nothing of the client's reaches the runtime but its request and, after the
head of a hijack, its bytes; the client sends nothing before it has read that head (the
Go client's ``hijack.go``, docker-py), so no byte is lost to aiohttp's parser.
Errors: the runtime's socket failing before its head is Docker's 503 (``unreachable``),
a head that does not parse is a 502; after the head, a failure ends the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Protocol

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict

from swarmlite.dockerapi.http import DockerError
from swarmlite.log import kv

log = logging.getLogger(__name__)

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"
_HIJACKING = re.compile(r"(/v[0-9]+\.[0-9]+)?/(containers/[^/]+/attach|exec/[^/]+/start)")
_CHUNK = 64 * 1024
HEAD_LIMIT = 64 * 1024  # the runtime's answer head, at most

# RFC 9110 7.6.1, plus those that describe the framing of one hop's message.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class Upstream(Protocol):
    """The runtime, as a hijack needs it (``passthrough.Runtime``)."""

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A fresh connection; Docker's 503 when there is none."""
        ...

    def unreachable(self, exc: BaseException) -> DockerError:
        """Docker's 503 for the runtime's socket failing with ``exc``."""
        ...


def wanted(request: web.Request) -> bool:
    """Whether the runtime may hijack this request's connection: an attach or an exec
    start (dockerd hijacks them with or without an upgrade), or any upgrade."""
    if _asks_upgrade(request):
        return True
    return request.method == "POST" and _HIJACKING.fullmatch(request.path) is not None


def _asks_upgrade(request: web.Request) -> bool:
    tokens = request.headers.get("Connection", "").lower().split(",")
    return "upgrade" in (token.strip() for token in tokens) and "Upgrade" in request.headers


async def relay(
    request: web.Request, runtime: Upstream, target: str, headers: CIMultiDict[str]
) -> web.StreamResponse:
    """The exchange with the runtime, then the pipe or the ordinary answer. ``headers``:
    the client's, without hop-by-hop ones (its upgrade is put back here)."""
    body = await request.read()  # an exec start's options: small, and needed whole
    reader, writer = await runtime.connect()
    try:
        writer.write(_request_head(request, target, headers, body) + body)
        await writer.drain()
        status, reason, headers = await _read_head(reader)
    except (OSError, asyncio.IncompleteReadError) as exc:
        writer.close()
        raise runtime.unreachable(exc) from exc
    except (ValueError, asyncio.LimitOverrunError) as exc:
        writer.close()
        raise DockerError(502, f"the container runtime's answer does not parse: {exc}") from exc
    try:
        if _is_hijack(status, headers):
            return await _pipe(request, status, reason, headers, reader, writer)
        return await _answer(request, status, reason, headers, reader)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _request_head(
    request: web.Request, target: str, headers: CIMultiDict[str], body: bytes
) -> bytes:
    lines = [f"{request.method} {target} HTTP/1.1", "Host: docker"]
    lines += [
        f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length"
    ]
    if _asks_upgrade(request):
        lines += ["Connection: Upgrade", f"Upgrade: {request.headers['Upgrade']}"]
    else:
        lines.append("Connection: close")
    if body or request.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, CIMultiDict[str]]:
    """Status, reason and headers of the runtime's answer (ValueError when malformed)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *header_lines = head.split("\r\n")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ValueError(f"bad status line {status_line!r}")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        if line:
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise ValueError(f"bad header line {line!r}")
            headers.add(name.strip(), value.strip())
    return int(code), reason, headers


def _is_hijack(status: int, headers: CIMultiDict[str]) -> bool:
    if status == 101:
        return True
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    return (
        status == 200
        and content_type in (RAW_STREAM, MULTIPLEXED_STREAM)
        and "Content-Length" not in headers
        and "chunked" not in headers.get("Transfer-Encoding", "").lower()
    )


def drop_hop_by_hop(headers: Iterable[tuple[str, str]]) -> CIMultiDict[str]:
    """``headers`` without those that concern one hop only, including any the
    ``Connection`` header names."""
    pairs = list(headers)
    named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    kept: CIMultiDict[str] = CIMultiDict()
    for name, value in pairs:
        lowered = name.lower()
        if lowered not in HOP_BY_HOP and lowered not in named:
            kept.add(name, value)
    return kept


# --------------------------------------------------------------------------- the pipe


class _ClientSide(asyncio.Protocol):
    """The client's connection once taken from aiohttp: its bytes into ``reader``, its
    half-close as the reader's EOF (the connection stays open for the output), and its
    loss handed on to the protocol it was taken from, so that aiohttp forgets it."""

    def __init__(
        self,
        transport: asyncio.Transport,
        previous: asyncio.BaseProtocol,
        on_lost: Callable[[], None],
    ) -> None:
        self.transport = transport
        self.reader = asyncio.StreamReader(limit=_CHUNK)
        self.reader.set_transport(transport)  # pauses reading while the runtime lags
        self.lost = False
        self._previous = previous
        self._on_lost = on_lost
        self._writable: asyncio.Future[None] | None = None

    @classmethod
    def take(cls, transport: asyncio.Transport, on_lost: Callable[[], None]) -> _ClientSide:
        side = cls(transport, transport.get_protocol(), on_lost)
        transport.set_protocol(side)
        transport.resume_reading()  # in case aiohttp had paused it
        return side

    def data_received(self, data: bytes) -> None:
        self.reader.feed_data(data)

    def eof_received(self) -> bool:
        self.reader.feed_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.reader.feed_eof()
        self._wake()
        self._on_lost()
        self._previous.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake()

    def _wake(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    async def write(self, data: bytes) -> None:
        """``data`` to the client, waiting while its buffer is full."""
        if self.lost or self.transport.is_closing():
            raise ConnectionResetError("the client's connection is closed")
        self._send(data)
        if self._writable is not None:
            await self._writable

    def _send(self, data: bytes) -> None:
        self.transport.write(data)

    def finish(self) -> None:
        """The pipe is done; aiohttp closes the connection once the handler returns."""


class _TlsClientSide(_ClientSide):
    """The client's TLS connection taken from asyncio's TLS protocol as well.

    asyncio's TLS ends a connection as soon as the peer's side ends, by a TCP half-close or
    by a ``close_notify`` alert (what Go's ``tls.Conn.CloseWrite`` sends: the docker CLI's
    end of stdin, after which dockerd goes on writing the output). So for the pipe this
    class speaks TLS itself, with the connection's own ``SSLObject`` and memory BIOs on the
    TCP transport, and takes either end as the client's input EOF only. ``finish`` gives the
    TCP transport back to asyncio's TLS, which then closes as usual (with the peer's end
    passed on, so that it does not wait for one that came already). This reaches into
    asyncio's TLS transport (``_ssl_protocol`` and its ``_transport``, ``_sslobj``,
    ``_incoming``, ``_outgoing``); ``take`` returns None where they are not (another event
    loop), and the plain ``_ClientSide`` serves, without half-close.
    """

    def __init__(
        self,
        raw: asyncio.Transport,
        tls: asyncio.BaseProtocol,
        tls_object: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        on_lost: Callable[[], None],
    ) -> None:
        super().__init__(raw, tls, on_lost)
        self._tls_object = tls_object
        self._incoming = incoming
        self._outgoing = outgoing
        self._tcp_eof = False

    @classmethod
    def take_tls(
        cls, transport: asyncio.Transport, on_lost: Callable[[], None]
    ) -> _TlsClientSide | None:
        tls = getattr(transport, "_ssl_protocol", None)
        raw = getattr(tls, "_transport", None)
        tls_object = getattr(tls, "_sslobj", None)
        incoming = getattr(tls, "_incoming", None)
        outgoing = getattr(tls, "_outgoing", None)
        if not (
            isinstance(tls, asyncio.BaseProtocol)
            and isinstance(raw, asyncio.Transport)
            and isinstance(tls_object, ssl.SSLObject)
            and isinstance(incoming, ssl.MemoryBIO)
            and isinstance(outgoing, ssl.MemoryBIO)
            and raw.get_protocol() is tls
            and incoming.pending == 0
        ):
            return None
        side = cls(raw, tls, tls_object, incoming, outgoing, on_lost)
        raw.set_protocol(side)
        raw.resume_reading()
        return side

    def data_received(self, data: bytes) -> None:
        self._incoming.write(data)
        try:
            while chunk := self._tls_object.read(_CHUNK):
                self.reader.feed_data(chunk)
            self.reader.feed_eof()  # an empty read: the client's close_notify
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self.reader.feed_eof()
        except ssl.SSLError as exc:
            log.warning("docker api hijack: TLS error from the client %s", kv(error=exc))
            self.transport.abort()
        self._flush()  # reading may have something to answer (a key update)

    def eof_received(self) -> bool:
        self._tcp_eof = True
        return super().eof_received()

    def _send(self, data: bytes) -> None:
        self._tls_object.write(data)
        self._flush()

    def _flush(self) -> None:
        if records := self._outgoing.read():
            self.transport.write(records)

    def finish(self) -> None:
        tls = self._previous
        if self.lost or self.transport.is_closing():
            return
        if not isinstance(tls, asyncio.Protocol | asyncio.BufferedProtocol):
            return
        self.transport.set_protocol(tls)
        if self._tcp_eof and not tls.eof_received():
            self.transport.close()


async def _pipe(
    request: web.Request,
    status: int,
    reason: str,
    headers: CIMultiDict[str],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> web.StreamResponse:
    transport = request.transport
    taken = _TakenOver(status)
    if not isinstance(transport, asyncio.Transport) or transport.is_closing():
        return taken  # the client left while the runtime answered
    head = await _client_head(request, status, reason, headers)
    client: _ClientSide | None = None
    if transport.get_extra_info("ssl_object") is not None:
        client = _TlsClientSide.take_tls(transport, writer.close)
    if client is None:
        client = _ClientSide.take(transport, writer.close)
    log.debug("docker api hijacked %s", kv(method=request.method, path=request.path))

    async def upload() -> None:  # the client's bytes, then its half-close
        with contextlib.suppress(OSError):
            while data := await client.reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()

    async def download() -> None:  # the runtime's bytes, until it closes
        with contextlib.suppress(OSError):
            await client.write(head)
            while data := await reader.read(_CHUNK):
                await client.write(data)

    # Nothing may escape from here: an error response would land in the raw stream.
    try:
        async with asyncio.TaskGroup() as tasks:
            sending = tasks.create_task(upload())
            await download()
            sending.cancel()
    except Exception:
        log.exception("docker api hijack broke %s", kv(method=request.method, path=request.path))
    client.finish()
    return taken


async def _client_head(
    request: web.Request, status: int, reason: str, headers: CIMultiDict[str]
) -> bytes:
    """The runtime's head as the client gets it: hop-by-hop headers dropped (an
    upgrade's own kept), swarmlite's added by the application's response hook."""
    kept = web.StreamResponse(status=status, reason=reason or None)
    kept.headers.extend(drop_hop_by_hop(headers.items()))
    if status == 101:
        kept.headers["Connection"] = "Upgrade"
        kept.headers["Upgrade"] = headers.get("Upgrade", request.headers.get("Upgrade", "tcp"))
    await request.app.on_response_prepare.send(request, kept)
    lines = [f"HTTP/1.1 {kept.status} {kept.reason}"]
    lines += [f"{name}: {value}" for name, value in kept.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _TakenOver(web.StreamResponse):
    """What aiohttp gets back from a hijack: the head and the stream went out on the
    transport itself, so there is nothing to prepare or end, and the connection is not
    kept for another request."""

    def __init__(self, status: int) -> None:
        super().__init__(status=status)
        self.force_close()

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


# --------------------------------------------------------------------------- not hijacked


async def _answer(
    request: web.Request,
    status: int,
    reason: str,
    headers: CIMultiDict[str],
    reader: asyncio.StreamReader,
) -> web.StreamResponse:
    """An answer that did not hijack, relayed as an ordinary response."""
    kept = drop_hop_by_hop(headers.items())
    response = web.StreamResponse(status=status, reason=reason or None, headers=kept)
    response.force_close()  # the client asked for an upgrade it did not get
    await response.prepare(request)
    try:
        async for chunk in _body(reader, headers, status, request.method):
            await response.write(chunk)
    except ConnectionError:
        return response
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        if request.transport is not None:
            request.transport.close()  # cut, not ended: the client must not take it as whole
        return response
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


async def _body(
    reader: asyncio.StreamReader, headers: CIMultiDict[str], status: int, method: str
) -> AsyncIterator[bytes]:
    """The body of an HTTP/1.1 answer: by its length, its chunks, or up to the close."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                await _skip_trailers(reader)
                return
            yield await reader.readexactly(size)
            await reader.readexactly(2)
    elif "Content-Length" in headers:
        left = int(headers["Content-Length"])
        while left > 0:
            chunk = await reader.read(min(left, _CHUNK))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(chunk)
            yield chunk
    else:
        while chunk := await reader.read(_CHUNK):
            yield chunk


async def _skip_trailers(reader: asyncio.StreamReader) -> None:
    while (await reader.readuntil(b"\r\n")) != b"\r\n":
        pass
