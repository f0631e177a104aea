"""Containers, images, volumes, exec and the rest of a node's own Engine API: passed
through to the node's container runtime, so that a client of ``docker.sock`` sees that
node's containers beside the cluster's services, as on a swarm node's dockerd.

Owns which paths go to the runtime (``PASSED``: ``/containers``, ``/images``,
``/volumes``, ``/exec``, ``/build`` with BuildKit's ``/session`` and ``/grpc``,
``/plugins``, ``/system/df``, ``/auth``, ``/commit``; ``/events`` is ``events.py``'s, which
merges the runtime's stream with the cluster's), the API version they are forwarded with (the
client's, capped at the newest the runtime speaks: its ``/version`` is asked once), the
headers (hop-by-hop ones are dropped both ways; ``Api-Version``, ``Server`` and ``Ostype``
of the answer are swarmlite's, set for every response by ``server.py``), and the relay of
bodies both ways chunk by chunk as they come, never buffered: ``docker logs -f``
and pulls' JSON progress reach the client line by line. A streamed answer
whose client has gone is cut within ``_CLIENT_CHECK`` even when the runtime says nothing.
Attach, exec start and any ``Connection: Upgrade`` request are hijacked: ``hijack.py``.

Does not own the container calls that concern the cluster's attachable networks
(``containers.py``: create, start and remove, which use ``relay`` and ``forward`` here).
Does not own the swarm endpoints: ``server.py`` registers these routes after every other
module's, and no prefix here is one of theirs (``/distribution`` is ``services.py``'s), so
a swarm path is never forwarded. Does not use ``swarmlite.runtime`` (the layer rule of
``dockerapi``): it speaks HTTP to the socket itself, with aiohttp.

Errors: no runtime on this node is a 501; a runtime that cannot be reached is a 503 naming
its socket (aiohttp's and the socket's errors are translated here, in ``Runtime``); once
the answer has started, a runtime that breaks off closes the client's connection, so the
client sees a cut stream rather than a complete one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from collections.abc import AsyncIterator, Mapping

import aiohttp
import msgspec
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from swarmlite.dockerapi import hijack
from swarmlite.dockerapi.hijack import drop_hop_by_hop
from swarmlite.dockerapi.http import VERSIONED, DockerError, parse_version
from swarmlite.errors import InvalidArgument
from swarmlite.log import kv

log = logging.getLogger(__name__)

# The runtime's own endpoints. Every one is served as the prefix itself and everything
# below it, unversioned and behind /vX.Y.
PASSED = (
    "/containers",
    "/images",
    "/volumes",
    "/exec",
    "/build",
    "/session",  # BuildKit's session of `docker build` (an h2c upgrade)
    "/grpc",  # buildx talking to the runtime's BuildKit (an h2c upgrade)
    "/plugins",
    "/system/df",
    "/auth",
    "/commit",
)

NO_RUNTIME_MESSAGE = "swarmlite has no container runtime on this node"
_CLIENT_CHECK = 1.0  # seconds between looks at a streaming client's connection while idle
_CONNECT_TIMEOUT = 10.0
_VERSION_TIMEOUT = 10.0
_UPSTREAM = "http://docker"  # the host part is ignored on a unix socket
_VERSION_PREFIX = re.compile(r"/v([0-9]+)\.([0-9]+)(?=/|$)")


class _Version(msgspec.Struct):
    ApiVersion: str


def runtime_socket(docker_host: str) -> str:
    """The socket path of ``unix:///path`` (or of a bare absolute path)."""
    path = docker_host.removeprefix("unix://")
    if not path.startswith("/"):
        raise InvalidArgument(
            f"the container runtime must be a unix socket (unix:///path), not {docker_host!r}"
        )
    return path


class Runtime:
    """The node's container runtime, reached over its unix socket. Create inside the event
    loop that uses it; ``close`` when done (the application's cleanup does it)."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._session: aiohttp.ClientSession | None = None
        self._max_version: tuple[int, int] | None = None
        self._version_lock = asyncio.Lock()
        self._hijacked: weakref.WeakSet[asyncio.StreamWriter] = weakref.WeakSet()
        self._stopping = False

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def stopping(self) -> bool:
        return self._stopping

    def unreachable(self, exc: BaseException) -> DockerError:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        log.warning("container runtime unreachable %s", kv(socket=self.socket_path, error=reason))
        return DockerError(
            503, f"cannot reach this node's container runtime at {self.url}: {reason}"
        )

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection of its own to the runtime, for a hijack (``hijack.Upstream``)."""
        if self._stopping:
            raise DockerError(503, "swarmlite's Docker API is stopping")
        try:
            reader, writer = await asyncio.open_unix_connection(
                self.socket_path, limit=hijack.HEAD_LIMIT
            )
        except OSError as exc:
            raise self.unreachable(exc) from exc
        self._hijacked.add(writer)
        return reader, writer

    def session(self) -> aiohttp.ClientSession:
        if self._stopping:
            raise DockerError(503, "swarmlite's Docker API is stopping")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self.socket_path, limit=0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_TIMEOUT),
                auto_decompress=False,  # bytes are relayed as they are, with their headers
                # only the client's: dockerd refuses a POST whose Content-Type is not JSON
                # even without a body (`docker commit`), and aiohttp would add one
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def max_version(self) -> tuple[int, int]:
        """The newest API version the runtime speaks: its ``/version``, asked once."""
        async with self._version_lock:
            if self._max_version is None:
                try:
                    async with self.session().get(
                        _UPSTREAM + "/version",
                        timeout=aiohttp.ClientTimeout(total=_VERSION_TIMEOUT),
                    ) as answer:
                        body = await answer.read()
                    version = msgspec.json.decode(body, type=_Version).ApiVersion
                    self._max_version = parse_version(version)
                    major, minor = self._max_version
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    raise self.unreachable(exc) from exc
                except (msgspec.DecodeError, ValueError) as exc:
                    raise DockerError(
                        502, f"the container runtime at {self.url} gave no API version: {exc}"
                    ) from exc
                log.info(
                    "container runtime api %s",
                    kv(socket=self.socket_path, version=f"{major}.{minor}"),
                )
            return self._max_version

    def stop(self) -> None:
        """End every exchange with the runtime still going, so that the server's
        shutdown need not wait for their clients (`docker events`, `docker exec -it`):
        hijacked connections are closed now, streams are cut within ``_CLIENT_CHECK``."""
        self._stopping = True
        for writer in list(self._hijacked):
            writer.close()

    async def close(self) -> None:
        self.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None


RUNTIME_KEY = web.AppKey("swarmlite.dockerapi.runtime", Runtime)


def use_runtime(app: web.Application, docker_host: str) -> None:
    """Pass ``PASSED`` paths of ``app`` to the runtime at ``docker_host`` (``unix://...``).
    Without it they are answered 501."""
    runtime = Runtime(runtime_socket(docker_host))
    app[RUNTIME_KEY] = runtime

    async def stop(_app: web.Application) -> None:
        runtime.stop()

    async def close(_app: web.Application) -> None:
        await runtime.close()

    app.on_shutdown.append(stop)  # before aiohttp waits for the handlers still running
    app.on_cleanup.append(close)


def add_routes(router: web.UrlDispatcher) -> None:
    for prefix in PASSED:
        for path in (prefix, prefix + "/{tail:.*}"):
            router.add_route("*", path, forward)
            router.add_route("*", VERSIONED + path, forward)


async def forward(request: web.Request) -> web.StreamResponse:
    runtime = request.app.get(RUNTIME_KEY)
    if runtime is None:
        raise DockerError(501, NO_RUNTIME_MESSAGE)
    target = await upstream_target(request, runtime)
    if hijack.wanted(request):
        headers = _request_headers(request.headers)
        return await hijack.relay(request, runtime, target, headers)
    return await relay(request, runtime, target)


async def upstream_target(request: web.Request, runtime: Runtime) -> str:
    """The path and query for the runtime: the client's, as it sent them, with its
    version capped at the runtime's newest (an unversioned path stays unversioned)."""
    raw = request.raw_path
    found = _VERSION_PREFIX.match(raw)
    if found is None:
        return raw
    asked = (int(found[1]), int(found[2]))
    major, minor = min(asked, await runtime.max_version())
    return f"/v{major}.{minor}{raw[found.end() :]}"


def _request_headers(headers: Mapping[str, str]) -> CIMultiDict[str]:
    kept = drop_hop_by_hop(headers.items())
    kept.popall("Host", None)  # the runtime's is set by the client library
    kept.popall("Expect", None)
    return kept


async def _request_body(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_any():
        yield chunk


async def relay(
    request: web.Request, runtime: Runtime, target: str, body: bytes | None = None
) -> web.StreamResponse:
    """One ordinary exchange: the request streamed to the runtime (or ``body`` instead of
    the client's, when the caller read and changed it), its answer streamed back."""
    data = body if body is not None else _request_body(request) if request.body_exists else None
    headers = _request_headers(request.headers)
    if body is not None:
        headers.popall("Content-Length", None)
        headers.popall("Transfer-Encoding", None)
    try:
        upstream = await runtime.session().request(
            request.method,
            URL(_UPSTREAM + target, encoded=True),
            headers=headers,
            data=data,
            allow_redirects=False,
        )
    except (aiohttp.ClientConnectionError, OSError) as exc:
        raise runtime.unreachable(exc) from exc
    async with upstream:
        response = web.StreamResponse(
            status=upstream.status,
            reason=upstream.reason,
            headers=drop_hop_by_hop(upstream.headers.items()),
        )
        await response.prepare(request)
        try:
            complete = await _copy(request, runtime, upstream.content, response)
        except ConnectionError:
            return response  # the client went away
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if not runtime.stopping:
                log.warning(
                    "container runtime broke off an answer %s",
                    kv(method=request.method, path=target, error=str(exc) or type(exc).__name__),
                )
            complete = False
        if not complete:
            _cut(request)
            return response
        with contextlib.suppress(ConnectionError):  # the client went away at the end
            await response.write_eof()
    return response


async def _copy(
    request: web.Request,
    runtime: Runtime,
    content: aiohttp.StreamReader,
    response: web.StreamResponse,
) -> bool:
    """The runtime's body to the client as it arrives. False when it was not all sent:
    the client has gone, or the server is stopping."""
    while not runtime.stopping:
        try:
            chunk = await asyncio.wait_for(content.readany(), _CLIENT_CHECK)
        except TimeoutError:
            if _client_gone(request):
                return False
            continue
        if not chunk:
            return True
        await response.write(chunk)
    return False


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def _cut(request: web.Request) -> None:
    """Close the client's connection so that an unfinished answer is not taken for a
    whole one (aiohttp would otherwise end a chunked body cleanly)."""
    if request.transport is not None:
        request.transport.close()
