"""The rpc server: unary msgpack calls and WebSocket streams over HTTPS with mutual TLS.

Owns listening (TCP with TLS, or a 0600 unix socket without), who the caller is (``Peer``,
with the ``Identity`` read from its client certificate, or the local admin), refusing
callers (no certificate off the public paths, wrong cluster, ``authorize`` says no, a role
the route (``api.routes``) or a handler's ``require_role`` does not accept), decoding
requests into their typed Struct (a stream route's request is its first frame),
and turning every error into the envelope with its HTTP status. Does not own what a
handler does, nor certificates (``ca`` issues them; the subject layout read here is the
one ``ca.certs`` writes).

Invariants: nothing a client sends can crash the server or leak a traceback: bad input is
answered with InvalidArgument, refusals with PermissionDenied, a handler's bug with an
InternalError naming an incident id logged with its traceback. Every refusal is logged at
warning with key=value context. On a TLS listener no handler runs before the caller's
certificate has been verified, its cluster checked and ``authorize`` has passed, except on
the ``public_paths`` given to the server, which a caller without a certificate may reach
(as ``Peer(identity=None)``); a caller that presents one is checked there all the same.

The TLS handshake is run here (``loop.start_tls``) rather than inside asyncio's server, so
that a failed handshake (no client certificate, another CA) is logged with the address of
the client.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import functools
import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import hdrs, web
from cryptography import x509
from cryptography.x509.oid import NameOID

from swarmlite.api.actor import HEADER as ACTOR_HEADER
from swarmlite.api.actor import MAX_LENGTH as ACTOR_MAX_LENGTH
from swarmlite.api.routes import Rep, Req, Route
from swarmlite.clock import Clock
from swarmlite.errors import (
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SwarmliteError,
    Unavailable,
)
from swarmlite.log import clip, kv
from swarmlite.rpc.envelope import (
    CLOSE_GOING_AWAY,
    DEFAULT_MAX_MESSAGE_BYTES,
    MSGPACK,
    encode_error,
    error_headers,
    internal_error,
    read_body,
    status_for,
)
from swarmlite.rpc.limits import (
    ConnectionTable,
    Limits,
    LogThrottle,
    RateLimiter,
    reclaim_memory,
)
from swarmlite.rpc.stream import HEARTBEAT_SECONDS, ServerStream

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 5.0
# asyncio gives each TLS connection a receive buffer of sslproto.SSLProtocol.max_size
# (256 KiB), held for the connection's whole life: 4,000 idle peers would pin 1 GiB. A TLS
# record carries at most 16 KiB, so reading 64 KiB at a time costs only a few more system
# calls on bulk transfers. Set (process-wide, it is a class attribute) by ``start``.
TLS_READ_BUFFER_BYTES = 64 * 1024
# Connections the kernel may queue before we accept them (asyncio's default is 100): a burst
# of new peers (every worker reconnecting after a failover) is accepted, not dropped.
LISTEN_BACKLOG = 1024
# How long the body of a refused request is read (and dropped) so that its sender, still
# writing, gets to read the refusal.
LINGER_SECONDS = 5.0
# After a wave of connections ended, memory is reclaimed at once and again this much later,
# when every TLS close of the wave has ended (asyncio gives one 30 s).
RECLAIM_AGAIN_SECONDS = 35.0


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """Who a certificate names: CN is the node id, OU its role, O its cluster id."""

    node_id: str
    role: str
    cluster_id: str


class Peer(msgspec.Struct, frozen=True, kw_only=True):
    """The caller of a request or stream.

    ``identity`` is None on the unix socket (``local``: the local admin, guarded by the
    socket's mode) and for a TLS caller without a certificate, who reaches public paths only.
    """

    identity: Identity | None
    address: str
    local: bool = False
    on_behalf_of: str = ""  # who the caller says asked (api/actor.py); trust it by role


def require_role(peer: Peer, *roles: str) -> None:
    """PermissionDenied unless the caller's certificate holds one of ``roles``.

    The local admin (unix socket) passes: it runs the daemon's own commands.
    """
    if peer.local:
        return
    wanted = " or ".join(roles)
    if peer.identity is None:
        raise PermissionDenied(
            f"this call needs a {wanted} certificate; the caller presented none",
            details={"peer": peer.address},
        )
    if peer.identity.role not in roles:
        raise PermissionDenied(
            f"this call needs a {wanted} certificate; {peer.identity.node_id} is a "
            f"{peer.identity.role}",
            details={"node": peer.identity.node_id},
        )


def check_route_role(route: Route[Any, Any], peer: Peer) -> None:
    """PermissionDenied unless ``peer`` may call ``route`` (see ``api.routes``)."""
    if route.role == "local":
        if not peer.local:
            raise PermissionDenied(
                f"{route.path} acts on the node itself: call it on the node's unix socket",
                details={"peer": peer.address},
            )
    elif route.role == "manager":
        require_role(peer, "manager")
    elif route.role == "node":
        require_role(peer, "manager", "worker")


def _stream_route(
    route: Route[Req, Rep], handler: Callable[[Req, Peer], AsyncIterator[Rep]]
) -> StreamHandler:
    decoder = msgspec.msgpack.Decoder(route.request)

    async def serve(stream: ServerStream, peer: Peer) -> None:
        check_route_role(route, peer)
        first = await stream.recv()
        if first is None:
            return
        try:
            request = decoder.decode(first)
        except Exception as exc:  # DecodeError, ValidationError, RecursionError (deep nesting)
            raise InvalidArgument(
                f"malformed {route.request.__name__} for {route.path}: {_decode_failure(exc)}"
            ) from exc
        async for item in handler(request, peer):
            await stream.send(_encoder.encode(item))

    return serve


UnaryHandler = Callable[[Any, Peer], Awaitable[msgspec.Struct | None]]
StreamHandler = Callable[[ServerStream, Peer], Awaitable[None]]
Authorize = Callable[[Identity], None]


@functools.lru_cache(maxsize=1024)
def identity_from_der(der: bytes) -> Identity:
    """Read the Identity from a DER certificate; PermissionDenied if it names none."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise PermissionDenied(f"peer certificate cannot be parsed: {exc}") from exc
    subject = cert.subject

    def field(oid: x509.ObjectIdentifier, what: str) -> str:
        values = subject.get_attributes_for_oid(oid)
        value = values[0].value if values else ""
        if not isinstance(value, str) or not value:
            raise PermissionDenied(
                f"peer certificate has no {what} in its subject ({subject.rfc4514_string()})",
                hint="node certificates are issued by the cluster CA with CN, OU and O set",
            )
        return value

    return Identity(
        node_id=field(NameOID.COMMON_NAME, "node id (CN)"),
        role=field(NameOID.ORGANIZATIONAL_UNIT_NAME, "role (OU)"),
        cluster_id=field(NameOID.ORGANIZATION_NAME, "cluster id (O)"),
    )


def ssl_object_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> Identity:
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        raise PermissionDenied("peer presented no certificate")
    return identity_from_der(der)


@dataclass(frozen=True, slots=True)
class _Unary:
    decoder: msgspec.msgpack.Decoder[Any]
    type_name: str
    handler: UnaryHandler


@dataclass(frozen=True, slots=True)
class _Stream:
    handler: StreamHandler


_encoder = msgspec.msgpack.Encoder()


class RpcServer:
    """Serves the unary calls and streams added to it, on TCP (TLS) and/or a unix socket.

    Handlers may be added before or after ``start``.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        authorize: Authorize | None = None,
        cluster_id: str | None = None,
        public_paths: frozenset[str] = frozenset(),
        limits: Limits | None = None,
        clock: Clock | None = None,
    ) -> None:
        if (
            public_paths
            and ssl_context is not None
            and ssl_context.verify_mode is ssl.CERT_REQUIRED
        ):
            raise InvalidArgument(
                "public rpc paths need a TLS context that lets clients come without a certificate",
                hint="build it with ca.server_context(creds, require_client_cert=False)",
            )
        self._public_paths = public_paths
        self._ssl_context = ssl_context
        self._max_message_bytes = max_message_bytes
        self._authorize = authorize
        self._cluster_id = cluster_id
        self._routes: dict[str, _Unary | _Stream] = {}
        self._web_server: web.Server | None = None
        self._runner: web.ServerRunner | None = None
        self._listeners: list[asyncio.Server] = []
        self._handshakes: set[asyncio.Task[None]] = set()
        self._streams: set[ServerStream] = set()
        self._unix_paths: list[str] = []
        self.limits = limits or Limits()
        self.connections = ConnectionTable(
            total=self.limits.connection_cap(),
            per_address=self.limits.max_connections_per_address,
        )
        self._public_calls = RateLimiter(
            self.limits.public_rate,
            self.limits.public_burst,
            clock=clock,
            max_entries=self.limits.max_entries,
        )
        self._warnings = LogThrottle(clock=clock, max_entries=self.limits.max_entries)
        # A TLS connection between its handshake and its first request: its peer's host
        # (its connection slot) and the timer that closes it if no request comes.
        self._tls_connections: dict[web.RequestHandler, _Connection] = {}
        self._reclaim: asyncio.TimerHandle | None = None

    # -- routes ---------------------------------------------------------------------------

    def add_unary(
        self, path: str, request_type: type[msgspec.Struct], handler: UnaryHandler
    ) -> None:
        """POST ``path`` with a msgpack ``request_type``; the handler's result is the answer."""
        self._check_new_path(path)
        decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(request_type)
        self._routes[path] = _Unary(decoder, request_type.__name__, handler)

    def add_stream(self, path: str, handler: StreamHandler) -> None:
        """A WebSocket at ``path``; the stream closes normally when the handler returns."""
        self._check_new_path(path)
        self._routes[path] = _Stream(handler)

    def add_route(
        self,
        route: Route[Req, Rep],
        handler: Callable[[Req, Peer], Awaitable[Rep]] | Callable[[Req, Peer], AsyncIterator[Rep]],
    ) -> None:
        """Serve a control route: the caller's role is checked against ``route.role`` before
        ``handler`` runs. A unary handler returns the reply; a stream route's handler is an
        async iterator of items, each sent as one frame, after the request arrived as the
        stream's first frame."""
        if route.stream:
            self.add_stream(route.path, _stream_route(route, handler))  # type: ignore[arg-type]
            return

        async def unary(request: Req, peer: Peer) -> Rep:
            check_route_role(route, peer)
            return await handler(request, peer)  # type: ignore[misc, no-any-return]

        self.add_unary(route.path, route.request, unary)

    def _check_new_path(self, path: str) -> None:
        if not path.startswith("/"):
            raise InvalidArgument(f"rpc path {path!r} must start with '/'")
        if path in self._routes:
            raise InvalidArgument(f"rpc path {path} is already served")

    # -- lifecycle ------------------------------------------------------------------------

    async def _ensure_runner(self) -> web.Server:
        if self._web_server is None:
            self._web_server = _WebServer(
                self._handle,
                on_lost=self._connection_lost,
                access_log=None,
                keepalive_timeout=self.limits.idle_timeout,
                lingering_time=LINGER_SECONDS,
            )
            self._runner = web.ServerRunner(
                self._web_server, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS
            )
            await self._runner.setup()
        return self._web_server

    async def start(self, host: str, port: int) -> int:
        """Listen with TLS on ``host:port`` (0 picks a free port); returns the port."""
        if self._ssl_context is None:
            raise FailedPrecondition(
                "a TCP listener needs a TLS context",
                hint="serve local clients with start_unix, or pass ca.tls.server_context(...)",
            )
        await self._ensure_runner()
        protocol = asyncio.sslproto.SSLProtocol
        protocol.max_size = min(protocol.max_size, TLS_READ_BUFFER_BYTES)
        loop = asyncio.get_running_loop()
        try:
            listener = await loop.create_server(self._accept, host, port, backlog=LISTEN_BACKLOG)
        except OSError as exc:
            raise FailedPrecondition(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="is another daemon using this port? pick another with --listen-addr",
            ) from exc
        self._listeners.append(listener)
        actual: int = listener.sockets[0].getsockname()[1]
        log.info("rpc listening %s", kv(address=f"{host}:{actual}", tls=True))
        return actual

    async def start_unix(self, path: str) -> None:
        """Listen without TLS on a unix socket at ``path``, mode 0600 from its first moment."""
        web_server = await self._ensure_runner()
        sock = _bind_unix(path)
        loop = asyncio.get_running_loop()
        try:
            listener = await loop.create_unix_server(web_server, sock=sock)
        except OSError as exc:
            sock.close()
            raise FailedPrecondition(f"cannot listen on {path}: {exc}") from exc
        self._listeners.append(listener)
        self._unix_paths.append(path)
        log.info("rpc listening %s", kv(address=f"unix:{path}", tls=False))

    async def stop(self) -> None:
        """Stop listening, close every stream (going away) and connection; idempotent."""
        for listener in self._listeners:
            listener.close()
        for task in list(self._handshakes):
            task.cancel()
        for connection in self._tls_connections.values():
            connection.cancel_timer()
        if self._reclaim is not None:
            self._reclaim.cancel()
            self._reclaim = None
        for stream in list(self._streams):
            await stream.close_with_code(CLOSE_GOING_AWAY, b"server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
        for listener in self._listeners:
            await listener.wait_closed()
        for path in self._unix_paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._listeners.clear()
        self._unix_paths.clear()
        self._runner = None
        self._web_server = None

    # -- TLS accept -----------------------------------------------------------------------

    def _accept(self) -> asyncio.Protocol:
        return _TlsAcceptor(self)

    def _admit(self, transport: asyncio.Transport) -> str | None:
        """Count a new TCP connection; its peer's host if admitted, else None (it is cut).

        A refusal costs no TLS and no task: the connection is reset at once.
        """
        peername = transport.get_extra_info("peername")
        host = _host(peername)
        refusal = self.connections.admit(host)
        if refusal is None:
            return host
        self._warn(host, "connection refused", refusal, peer=_address(peername))
        transport.abort()
        return None

    def _warn(
        self, host: str, what: str, reason: str, *, peer: str = "", **context: object
    ) -> None:
        """A warning about a peer, at most once a minute per peer host and kind (so an
        abuser cannot fill the disk with them); says how many it held back meanwhile."""
        held = self._warnings.admit(f"{host} {what}")
        if held is None:
            return
        more = {"suppressed": held} if held else {}
        log.warning("rpc %s %s", what, kv(**context, peer=peer or host, reason=reason, **more))

    async def _handshake(self, transport: asyncio.Transport, host: str) -> None:
        assert self._web_server is not None and self._ssl_context is not None
        handler = self._web_server()
        loop = asyncio.get_running_loop()
        handed_over = False
        try:
            tls_transport = await loop.start_tls(
                transport,
                handler,
                self._ssl_context,
                server_side=True,
                ssl_handshake_timeout=self.limits.handshake_timeout,
            )
            if tls_transport is None:  # the connection went away during the handshake
                transport.close()
                return
            connection = _Connection(host)
            self._tls_connections[handler] = connection
            handed_over = True
            handler.connection_made(tls_transport)
            if handler in self._tls_connections:  # not already lost
                connection.timer = loop.call_later(
                    self.limits.header_timeout, self._header_timeout, handler
                )
        except (OSError, TimeoutError, EOFError) as exc:
            # ssl.SSLError is an OSError: no client certificate, one from another CA, ...
            address = _address(transport.get_extra_info("peername"))
            self._warn(host, "TLS handshake failed", _handshake_failure(exc), peer=address)
            transport.close()
        except Exception as exc:
            internal_error(exc, context=f"rpc TLS handshake with {host}")
            transport.close()
        finally:
            if not handed_over:
                self.connections.release(host)
                self._after_release()

    def _header_timeout(self, handler: web.RequestHandler) -> None:
        connection = self._tls_connections.get(handler)
        if connection is None:
            return
        connection.timer = None
        self._warn(
            connection.host,
            "connection closed",
            f"no request within {self.limits.header_timeout:g}s of its TLS handshake",
        )
        handler.force_close()
        if handler.transport is not None:
            handler.transport.close()

    def _connection_lost(self, handler: web.RequestHandler) -> None:
        connection = self._tls_connections.pop(handler, None)
        if connection is not None:
            connection.cancel_timer()
            self.connections.release(connection.host)
            self._after_release()

    def _after_release(self) -> None:
        """Once a wave of connections has left, give their memory back (in a moment, once
        for the whole wave)."""
        if self._reclaim is None and self.connections.reclaim_due():
            self._reclaim = asyncio.get_running_loop().call_later(1.0, self._reclaim_now)

    def _reclaim_now(self, again: bool = True) -> None:
        self._reclaim = None
        reclaim_memory()
        log.info("rpc connections gone, memory reclaimed %s", kv(open=self.connections.total))
        if again:  # once more when TLS closes still in progress (30 s at most) have ended
            loop = asyncio.get_running_loop()
            self._reclaim = loop.call_later(RECLAIM_AGAIN_SECONDS, self._reclaim_now, False)

    # -- requests -------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        connection = self._tls_connections.get(request.protocol)
        if connection is not None:
            connection.cancel_timer()  # from now on aiohttp's keep-alive timer watches it
        path = request.path
        try:
            peer = self._peer(request, path)
        except SwarmliteError as exc:
            peername = request.transport.get_extra_info("peername") if request.transport else None
            self._warn(_host(peername), "refused", exc.message, path=path, peer=_address(peername))
            return await self._unread(request, _error_response(exc))
        except Exception as exc:  # a bug in authorize
            return _error_response(internal_error(exc, context=f"rpc authorize {path}"))
        public = peer.identity is None and not peer.local
        if public and not self._public_calls.allow(_host_of(peer.address)):
            wait = self._public_calls.retry_after(_host_of(peer.address))
            limited = Unavailable(
                f"too many calls without a certificate from {_host_of(peer.address)}; "
                f"try again in {wait:.1f}s",
                details={"retry_after": round(wait, 1)},
            )
            self._warn(_host_of(peer.address), "rate limited", "calls without a certificate")
            response = _error_response(limited, status=429)
            response.headers[hdrs.RETRY_AFTER] = str(max(1, round(wait + 0.5)))
            return await self._unread(request, response, linger=False)
        route = self._routes.get(path)
        if route is None:
            return await self._unread(
                request,
                self._refuse(
                    path, peer, NotFound(f"no rpc endpoint at {path}", details={"path": path})
                ),
            )
        if isinstance(route, _Stream):
            return await self._serve_stream(request, route, peer)
        if request.method != hdrs.METH_POST:
            method = clip(request.method, 20)
            return await self._unread(
                request,
                self._refuse(
                    path, peer, InvalidArgument(f"{path} takes POST, got {method}"), status=405
                ),
            )
        content_type = request.headers.get(hdrs.CONTENT_TYPE, "")
        if content_type.split(";")[0].strip().lower() != MSGPACK:
            got = clip(content_type, 80) if content_type else "no content type"
            return await self._unread(
                request,
                self._refuse(
                    path, peer, InvalidArgument(f"{path} takes {MSGPACK}, got {got}"), status=415
                ),
            )
        limit = self.limits.public_max_message_bytes if public else self._max_message_bytes
        try:
            body = await read_body(
                request.content,
                request.content_length,
                limit,
                idle_timeout=self.limits.header_timeout,
            )
        except InvalidArgument as exc:
            return await self._unread(request, self._refuse(path, peer, exc, status=413))
        except Exception as exc:  # the client went away, stalled, or broke HTTP framing
            reason = "stalled" if isinstance(exc, TimeoutError) else clip(repr(exc), 120)
            error = InvalidArgument(f"request body for {path} could not be read: {reason}")
            return await self._unread(request, self._refuse(path, peer, error))
        try:
            message = route.decoder.decode(body)
        except Exception as exc:  # DecodeError, ValidationError, RecursionError (deep nesting)
            return self._refuse(
                path,
                peer,
                InvalidArgument(f"malformed {route.type_name} for {path}: {_decode_failure(exc)}"),
            )
        try:
            result = await route.handler(message, peer)
            payload = _encoder.encode(result)
        except SwarmliteError as exc:
            log.debug("rpc call failed %s", kv(path=path, peer=peer.address, error=exc.code))
            return _error_response(exc)
        except Exception as exc:
            return _error_response(internal_error(exc, context=f"rpc {path} from {peer.address}"))
        return web.Response(body=payload, content_type=MSGPACK)

    def _peer(self, request: web.BaseRequest, path: str) -> Peer:
        transport = request.transport
        if transport is None:
            raise PermissionDenied("connection closed before the request was read")
        address = _address(transport.get_extra_info("peername"))
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            # Only the unix socket serves without TLS (start() refuses to), and its mode
            # (0600) is what guards it.
            return Peer(identity=None, address=address, local=True, on_behalf_of=_claimed(request))
        # With CERT_OPTIONAL the handshake has verified any certificate presented; a
        # caller without one may reach the public paths, and nothing else.
        der = ssl_object.getpeercert(binary_form=True)
        if not der:
            if path in self._public_paths:
                return Peer(identity=None, address=address)
            raise PermissionDenied(
                "a client certificate of this cluster is required",
                hint="only joining is open to a node without a certificate",
                details={"path": path},
            )
        identity = identity_from_der(der)
        if self._cluster_id is not None and identity.cluster_id != self._cluster_id:
            raise PermissionDenied(
                f"node {identity.node_id} belongs to cluster {identity.cluster_id}, "
                f"not {self._cluster_id}",
                details={"node": identity.node_id},
            )
        if self._authorize is not None:
            self._authorize(identity)
        return Peer(identity=identity, address=address, on_behalf_of=_claimed(request))

    async def _unread(
        self, request: web.BaseRequest, response: web.Response, *, linger: bool = True
    ) -> web.Response:
        """``response`` to a request whose body was not read.

        A body of a size a peer may send is read and dropped after the answer (aiohttp's
        lingering, at most ``LINGER_SECONDS``), so the peer reads the envelope; one declared
        larger than that, of unknown size, or from a peer refused for calling too often
        (``linger=False``) is not read at all: the connection is cut as soon as the answer is
        written, since reading it is what a refusal must not cost.
        """
        if request.content.is_eof():
            return response
        declared = request.content_length
        if linger and declared is not None and declared <= self._max_message_bytes:
            return response
        response.force_close()
        await response.prepare(request)
        await response.write_eof()
        if request.transport is not None:
            request.transport.abort()
        return response

    def _refuse(
        self, path: str, peer: Peer, error: SwarmliteError, *, status: int | None = None
    ) -> web.Response:
        node = peer.identity.node_id if peer.identity else "-"
        host = _host_of(peer.address)
        self._warn(host, "refused", error.message, path=path, peer=peer.address, node=node)
        return _error_response(error, status=status)

    async def _serve_stream(
        self, request: web.BaseRequest, route: _Stream, peer: Peer
    ) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            max_msg_size=self._max_message_bytes,
            compress=False,
            heartbeat=HEARTBEAT_SECONDS,
            autoping=True,
        )
        if not ws.can_prepare(request).ok:
            return self._refuse(
                request.path,
                peer,
                InvalidArgument(f"{request.path} is a stream: open it with a WebSocket upgrade"),
            )
        await ws.prepare(request)
        where = f"{request.path} from {peer.address}"
        stream = ServerStream(
            ws,
            path=request.path,
            headers=request.headers,
            where=where,
            max_message_bytes=self._max_message_bytes,
        )
        self._streams.add(stream)
        try:
            await route.handler(stream, peer)
        except SwarmliteError as exc:
            if exc is not stream.error:  # recv already logged the errors it raised
                # Retryable ends (not the leader, shutting down) are part of normal life.
                level = logging.INFO if exc.retryable else logging.WARNING
                log.log(
                    level, "rpc stream ended with error %s", kv(stream=where, error=exc.message)
                )
            await stream.close_with_error(exc)
        except Exception as exc:
            await stream.close_with_error(internal_error(exc, context=f"rpc stream {where}"))
        else:
            await stream.close()
        finally:
            self._streams.discard(stream)
        return ws


class _TlsAcceptor(asyncio.Protocol):
    """Holds a fresh TCP connection until ``RpcServer._handshake`` has taken it over."""

    def __init__(self, server: RpcServer) -> None:
        self._server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        host = self._server._admit(transport)
        if host is None:
            return
        # Nothing may be read before start_tls installs the TLS protocol.
        transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self._server._handshake(transport, host))
        handshakes = self._server._handshakes
        handshakes.add(task)

        def done(task: asyncio.Task[None]) -> None:
            handshakes.discard(task)
            if task.cancelled():  # stopped, perhaps before the handshake even began
                transport.close()

        task.add_done_callback(done)


class _Connection:
    """A TLS connection the server still watches: whose it is, and its header timer."""

    __slots__ = ("host", "timer")

    def __init__(self, host: str) -> None:
        self.host = host
        self.timer: asyncio.TimerHandle | None = None

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _EnvelopeRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, answering what it refuses itself (a malformed request
    line or header, a handler that raised) with our error envelope instead of text."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the answer has begun: no error envelope can follow it")
        error: SwarmliteError
        if status >= 500:
            transport = request.transport
            peername = transport.get_extra_info("peername") if transport else None
            context = f"rpc request from {_host(peername)}"
            error = internal_error(exc or InternalError("no exception"), context=context)
        else:
            reason = clip(message or (str(exc) if exc else "") or f"HTTP {status}", 200)
            error = InvalidArgument(f"malformed HTTP request: {reason}")
            log.debug("rpc malformed request %s", kv(status=status, reason=reason))
        response = _error_response(error, status=status)
        response.force_close()
        return response


class _WebServer(web.Server):
    """aiohttp's low-level server with our connection handler, telling the rpc server when
    a connection ends (to free its slot)."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        *,
        on_lost: Callable[[web.RequestHandler], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._on_lost = on_lost

    def __call__(self) -> web.RequestHandler:
        # aiohttp keeps the handler's settings in _kwargs; a subclass is its one hook.
        return _EnvelopeRequestHandler(self, loop=self._loop, **self._kwargs)

    def connection_lost(
        self, handler: web.RequestHandler, exc: BaseException | None = None
    ) -> None:
        super().connection_lost(handler, exc)
        self._on_lost(handler)


def _decode_failure(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return clip(str(exc) or type(exc).__name__, 200)


def _error_response(error: SwarmliteError, *, status: int | None = None) -> web.Response:
    return web.Response(
        status=status or status_for(error),
        body=encode_error(error),
        content_type=MSGPACK,
        headers=error_headers(error),
    )


def _handshake_failure(exc: BaseException) -> str:
    """Why a TLS handshake failed, in OpenSSL's words where it has some."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"{exc.reason}: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _host(peername: Any) -> str:
    """The peer's host without its port: what limits are kept per."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        return str(peername[0])
    return "local"


def _host_of(address: str) -> str:
    """The host of an address ``_address`` wrote (``h:p``, ``[v6]:p``, ``local``)."""
    host, sep, _ = address.rpartition(":")
    if not sep:
        return address
    return host[1:-1] if host.startswith("[") else host


def _address(peername: Any) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = peername[0], peername[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "local"


def _bind_unix(path: str) -> socket.socket:
    """A unix socket bound at ``path`` with mode 0600, never reachable with a wider mode.

    It is bound under a temporary name, restricted, then renamed into place; a stale socket
    left by a dead daemon is replaced, a live one is refused.
    """
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            pass  # stale: nobody answers
        else:
            raise FailedPrecondition(
                f"another daemon is already listening on {path}",
                hint="stop it first, or choose another socket with --socket",
            )
        finally:
            probe.close()
    temporary = f"{path}.{os.getpid()}.tmp"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        sock.bind(temporary)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise FailedPrecondition(f"cannot listen on {path}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


def _claimed(request: web.BaseRequest) -> str:
    """The actor a request names, cut to the length the store keeps."""
    return request.headers.get(ACTOR_HEADER, "")[:ACTOR_MAX_LENGTH]
