"""The one control client: a daemon reached by address, called one route at a time.

Owns parsing a daemon's address (``unix:///path`` or ``https://host[:port]``), running each
call or stream to completion in its own event loop (for the CLI, the lab and the tests,
none of which runs one of its own), and translating the ways a local daemon can be missing
(no socket file, a socket nobody listens on, a socket this user may not open) into
Unavailable or PermissionDenied naming the address and what to do. Every other error
comes from ``rpc.client`` as the server's class. Does not own certificates: an https
address needs ``ssl_context``, a function that loads them (``ca`` knows how).
"""

from __future__ import annotations

import asyncio
import errno
import os
import ssl
from collections.abc import Awaitable, Callable
from typing import TypeVar

from swarmlite.api.routes import Rep, Req, Route
from swarmlite.errors import PermissionDenied, Unavailable, UsageError
from swarmlite.rpc.client import RpcClient

DEFAULT_PORT = 2377
CALL_TIMEOUT_SECONDS = 30.0

_UNREACHABLE_HINT = "is this node part of a cluster? run `swarmlite init` or `swarmlite join`"
_HOST_HINT = "use -H unix:///path/to/swarmlite.sock or -H https://manager:2377"

T = TypeVar("T")
SslContext = Callable[[], ssl.SSLContext]


class ControlClient:
    """Calls one daemon, given as ``unix:///path`` or ``https://host[:port]``."""

    def __init__(
        self,
        host: str,
        *,
        ssl_context: SslContext | None = None,
        timeout: float = CALL_TIMEOUT_SECONDS,
    ) -> None:
        self._timeout = timeout
        self._ssl_context = ssl_context
        self.unix_socket: str | None = None
        if host.startswith("unix://"):
            path = host.removeprefix("unix://")
            if not path:
                raise UsageError(f"-H {host} names no socket path", hint=_HOST_HINT)
            self.unix_socket = path
            self.address = f"unix://{path}"
            self._base_url = "http://localhost"
        elif host.startswith("https://"):
            netloc = host.removeprefix("https://").rstrip("/")
            if not netloc or "/" in netloc:
                raise UsageError(f"-H {host} is not https://host[:port]", hint=_HOST_HINT)
            if not _has_port(netloc):
                netloc = f"{netloc}:{DEFAULT_PORT}"
            self.address = self._base_url = f"https://{netloc}"
        else:
            raise UsageError(f"-H {host}: unknown scheme", hint=_HOST_HINT)

    @classmethod
    def unix(
        cls, path: str | os.PathLike[str], *, timeout: float = CALL_TIMEOUT_SECONDS
    ) -> ControlClient:
        return cls(f"unix://{os.fspath(path)}", timeout=timeout)

    def call(self, route: Route[Req, Rep], request: Req) -> Rep:
        """Send ``request`` on ``route`` and return the reply."""
        rpc = self._rpc()

        async def call() -> Rep:
            try:
                return await rpc.request(route, request)
            finally:
                await rpc.close()

        return asyncio.run(self._reachable(call()))

    def each(self, route: Route[Req, Rep], request: Req, on_item: Callable[[Rep], None]) -> None:
        """Open the streaming ``route`` with ``request`` and hand every item to ``on_item``
        until the daemon ends the stream (or the user interrupts)."""
        rpc = self._rpc()

        async def stream() -> None:
            try:
                async for item in rpc.items(route, request):
                    on_item(item)
            finally:
                await rpc.close()

        asyncio.run(self._reachable(stream()))

    def _rpc(self) -> RpcClient:
        self._check_socket()
        context: ssl.SSLContext | None = None
        if self.unix_socket is None:
            if self._ssl_context is None:
                raise UsageError(
                    f"calling {self.address} needs this node's certificate",
                    hint="pass --cert-dir (or set SWARMLITE_CERT_DIR) to the directory "
                    "holding node.crt, node.key and ca.crt",
                )
            context = self._ssl_context()
        return RpcClient(
            self._base_url, context, unix_socket=self.unix_socket, timeout=self._timeout
        )

    async def _reachable(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except Unavailable as exc:
            if self.unix_socket is not None and _refused(exc):
                raise self._unreachable() from exc
            raise

    def _check_socket(self) -> None:
        if self.unix_socket is None:
            return
        if not os.path.exists(self.unix_socket):
            raise self._unreachable()
        if not os.access(self.unix_socket, os.R_OK | os.W_OK):
            raise PermissionDenied(
                f"permission denied on {self.address}",
                hint="only the socket's owner may use it: run the command as that user "
                "(often root: sudo swarmlite ...)",
                details={"address": self.address},
            )

    def _unreachable(self) -> Unavailable:
        return Unavailable(
            f"cannot reach the swarmlite daemon at {self.address}",
            hint=_UNREACHABLE_HINT,
            details={"address": self.address},
        )


def _has_port(netloc: str) -> bool:
    if netloc.startswith("["):  # [v6]:port
        return "]:" in netloc
    return netloc.count(":") == 1


def _refused(exc: Unavailable) -> bool:
    """Whether nobody listens on the socket (stale file, daemon gone), not a slow daemon."""
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno in (errno.ECONNREFUSED, errno.ENOENT)
