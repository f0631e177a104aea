"""Reaching a swarmlite daemon from the command line: one synchronous call at a time.

Owns the global options that say where the daemon is (``-H/--host``, ``--cert-dir`` and
their environment variables), turning them into an ``RpcClient`` (a unix socket, or HTTPS
with this node's certificate), and running each call to completion in its own
``asyncio.run``. Does not own rendering, nor how errors are shown (``cli.main``).

Translates the ways a local daemon can be missing (no socket file, a socket nobody
listens on, a socket this user may not open) into Unavailable or PermissionDenied naming
the address and what to do; every other error comes from ``rpc`` as the server's class.
"""

from __future__ import annotations

import asyncio
import errno
import os
import ssl
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from swarmlite.ca import client_context, read_credentials
from swarmlite.errors import PermissionDenied, Unavailable, UsageError
from swarmlite.rpc import RpcClient

T = TypeVar("T")

# The same path as daemon.DEFAULT_SOCKET (a test keeps them equal); written out here so
# that a plain `swarmlite node ls` does not import every layer of the daemon.
DEFAULT_SOCKET = "/run/swarmlite/swarmlite.sock"
DEFAULT_PORT = 2377
HOST_ENV = "SWARMLITE_HOST"
SOCKET_ENV = "SWARMLITE_SOCKET"
CERT_DIR_ENV = "SWARMLITE_CERT_DIR"
CALL_TIMEOUT_SECONDS = 30.0

_UNREACHABLE_HINT = "is this node part of a cluster? run `swarmlite init` or `swarmlite join`"
_HOST_HINT = "use -H unix:///path/to/swarmlite.sock or -H https://manager:2377"


@dataclass
class Settings:
    """The global options of one invocation; ``json_errors`` is set by ``--format json``."""

    host: str | None = None
    cert_dir: str | None = None
    debug: bool = False
    json_errors: bool = False

    def client(self) -> Client:
        return Client(self.host or default_host(), cert_dir=self.cert_dir)


def default_host() -> str:
    """The local daemon's socket: ``$SWARMLITE_SOCKET``, else the default path."""
    return "unix://" + (os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET)


class Client:
    """Calls one daemon, given as ``unix:///path`` or ``https://host[:port]``."""

    def __init__(
        self, host: str, *, cert_dir: str | None = None, timeout: float = CALL_TIMEOUT_SECONDS
    ) -> None:
        self._timeout = timeout
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
        self._cert_dir = cert_dir

    @classmethod
    def unix(cls, path: str | os.PathLike[str]) -> Client:
        return cls(f"unix://{os.fspath(path)}")

    def call(self, path: str, request: msgspec.Struct, reply_type: type[T]) -> T:
        """Send ``request`` to ``path`` and return the answer decoded as ``reply_type``."""
        self._check_socket()
        ssl_context: ssl.SSLContext | None = None
        if self.unix_socket is None:
            if not self._cert_dir:
                raise UsageError(
                    f"calling {self.address} needs this node's certificate",
                    hint=f"pass --cert-dir (or set {CERT_DIR_ENV}) to the directory holding "
                    "node.crt, node.key and ca.crt",
                )
            ssl_context = client_context(read_credentials(self._cert_dir))
        return asyncio.run(self._call(path, request, reply_type, ssl_context))

    async def _call(
        self,
        path: str,
        request: msgspec.Struct,
        reply_type: type[T],
        ssl_context: ssl.SSLContext | None,
    ) -> T:
        client = RpcClient(
            self._base_url,
            ssl_context,
            unix_socket=self.unix_socket,
            timeout=self._timeout,
        )
        try:
            return await client.call(path, request, reply_type)
        except Unavailable as exc:
            if self.unix_socket is not None and _refused(exc):
                raise self._unreachable() from exc
            raise
        finally:
            await client.close()

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
