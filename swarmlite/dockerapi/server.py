"""The Docker Engine API server: the aiohttp application, its listeners, and the one place
where any failure becomes Docker's error response.

Owns the listeners (a unix socket, mode 0660, and optionally TCP with TLS that requires a
client certificate signed by a given CA, as ``dockerd --tlsverify``), the version check of
``/vX.Y`` paths, Docker's headers on every response, and the error middleware: swarmlite's
errors (also those the control API sends back), ``DockerError`` and aiohttp's own HTTP
errors (unknown path, wrong method) become ``{"message": ...}`` with dockerd's status; an
unexpected exception is logged with its traceback and answered 500. Endpoints live in one
module per noun (``ROUTE_MODULES``), each with ``add_routes(router)``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
from pathlib import Path
from typing import Protocol

from aiohttp import web

from swarmlite.dockerapi import (
    blobs,
    containers,
    events,
    networks,
    nodes,
    passthrough,
    services,
    system,
)
from swarmlite.dockerapi.http import (
    API_VERSION,
    CONTROL_KEY,
    Control,
    DockerError,
    Handler,
    docker_error,
    error_response,
    version_refusal,
)
from swarmlite.errors import FailedPrecondition, InvalidArgument, SwarmliteError
from swarmlite.log import kv

log = logging.getLogger(__name__)

SOCKET_NAME = "docker.sock"  # beside the node's swarmlite.sock
SOCKET_MODE = 0o660


class RouteModule(Protocol):
    def add_routes(self, router: web.UrlDispatcher) -> None: ...


# passthrough last: the node's runtime gets only what no swarm endpoint serves.
ROUTE_MODULES: tuple[RouteModule, ...] = (
    system,
    nodes,
    services,
    networks,
    blobs,
    events,
    containers,  # before passthrough: the few container calls that concern cluster networks
    passthrough,
)

SERVER_KEY = web.AppKey("swarmlite.dockerapi.server_header", str)


@web.middleware
async def _docker_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    refusal = version_refusal(request.path)
    if refusal is not None:
        return error_response(400, refusal)
    try:
        response = await handler(request)
    except SwarmliteError as exc:
        status, message = docker_error(exc)
        if status >= 500:
            log.warning(
                "docker api call failed %s",
                kv(method=request.method, path=request.path, error=exc.code, message=message),
            )
        response = error_response(status, message)
    except DockerError as exc:
        response = error_response(exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            response = error_response(404, "page not found")
        elif exc.status < 400:
            raise
        else:
            response = error_response(exc.status, exc.reason)
    except Exception:
        log.exception("docker api handler crashed %s", kv(method=request.method, path=request.path))
        response = error_response(500, "internal error in swarmlite's Docker API (see its log)")
    log.debug(
        "docker api %s",
        kv(method=request.method, path=request.path_qs, status=response.status),
    )
    return response


async def _docker_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Api-Version"] = API_VERSION
    response.headers["Ostype"] = "linux"
    response.headers["Server"] = request.app[SERVER_KEY]


def build_app(
    control: Control, *, version: str = "", docker_host: str | None = None
) -> web.Application:
    """The application with every endpoint, calling the control API through ``control``
    and passing containers, images, exec... to the runtime at ``docker_host`` (none: 501)."""
    app = web.Application(middlewares=[_docker_errors])
    app[CONTROL_KEY] = control
    app[SERVER_KEY] = f"swarmlite/{version or 'dev'} (linux)"
    app.on_response_prepare.append(_docker_headers)
    if docker_host is not None:
        passthrough.use_runtime(app, docker_host)
    app[containers.SLOT_KEY] = containers.Slot()
    for module in ROUTE_MODULES:
        module.add_routes(app.router)
    return app


def tls_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """A server context that, like ``dockerd --tlsverify``, accepts only clients whose
    certificate ``ca`` signed. Unreadable or mismatched files are InvalidArgument."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(cert, key)
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(
            f"cannot use the Docker API TLS files ({cert}, {key}, {ca}): {exc}"
        ) from exc
    return context


class DockerApiServer:
    """Serves the Docker Engine API of one node until ``stop``."""

    def __init__(
        self,
        control_socket: Path,
        *,
        socket_path: Path | None = None,
        tcp_addr: tuple[str, int] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        version: str = "",
        docker_host: str | None = None,
    ) -> None:
        self.control = Control(str(control_socket))
        self.socket_path = socket_path or control_socket.parent / SOCKET_NAME
        self._tcp_addr = tcp_addr
        self._ssl_context = ssl_context
        self._app = build_app(self.control, version=version, docker_host=docker_host)
        self._runner: web.AppRunner | None = None
        self.tcp_port: int | None = None

    def set_standalone(self, standalone: containers.StandaloneNetworks | None) -> None:
        """Let standalone containers join attachable cluster networks (see containers.py)."""
        containers.set_standalone(self._app, standalone)

    async def start(self) -> None:
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        try:
            await web.SockSite(runner, _bind_unix(str(self.socket_path))).start()
            if self._tcp_addr is not None:
                host, port = self._tcp_addr
                site = web.TCPSite(runner, host, port, ssl_context=self._ssl_context)
                try:
                    await site.start()
                except OSError as exc:
                    raise FailedPrecondition(
                        f"cannot listen on {host}:{port} for the Docker API: {exc.strerror or exc}",
                        hint="choose another --docker-api-addr",
                    ) from exc
                tcp = [a for a in runner.addresses if isinstance(a, tuple)]
                self.tcp_port = int(tcp[0][1]) if tcp else port
        except BaseException:
            await self.stop()
            raise
        log.info(
            "docker api listening %s",
            kv(
                socket=self.socket_path,
                tcp=self._tcp_addr and f"{self._tcp_addr[0]}:{self.tcp_port}",
            ),
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.control.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


def _bind_unix(path: str) -> socket.socket:
    """A listening unix socket at ``path`` with mode 0660 from the start (bound under a
    temporary name, restricted, renamed into place). A stale socket is replaced; one that
    answers belongs to a live daemon and is refused."""
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            pass
        else:
            raise FailedPrecondition(
                f"another daemon is already serving the Docker API on {path}",
                hint="stop it first",
            )
        finally:
            probe.close()
    temporary = f"{path}.{os.getpid()}.tmp"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        old_umask = os.umask(0o177)
        try:
            sock.bind(temporary)
        finally:
            os.umask(old_umask)
        os.chmod(temporary, SOCKET_MODE)
        os.replace(temporary, path)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise FailedPrecondition(
            f"cannot serve the Docker API on {path}: {exc.strerror or exc}"
        ) from exc
    sock.setblocking(False)
    return sock
