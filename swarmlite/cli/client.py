"""Where the CLI's daemon is: the global options ``-H/--host`` and ``--cert-dir``.

Owns those options' environment variables and defaults, and turns them into the one
control client (``rpc.ControlClient``: a unix socket, or HTTPS with this node's
certificate, read by ``ca``). Does not own calling (``rpc.control``), rendering, nor how
errors are shown (``cli.main``).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

from swarmlite.ca import client_context, read_credentials
from swarmlite.rpc import ControlClient

# The same path as daemon.DEFAULT_SOCKET (a test keeps them equal); written out here so
# that a plain `swarmlite node ls` does not import every layer of the daemon.
DEFAULT_SOCKET = "/run/swarmlite/swarmlite.sock"
HOST_ENV = "SWARMLITE_HOST"
SOCKET_ENV = "SWARMLITE_SOCKET"
CERT_DIR_ENV = "SWARMLITE_CERT_DIR"

Client = ControlClient  # what the command modules call


@dataclass
class Settings:
    """The global options of one invocation; ``json_errors`` is set by ``--format json``."""

    host: str | None = None
    cert_dir: str | None = None
    debug: bool = False
    json_errors: bool = False

    def client(self) -> ControlClient:
        cert_dir = self.cert_dir

        def context() -> ssl.SSLContext:
            assert cert_dir is not None
            return client_context(read_credentials(cert_dir))

        return ControlClient(self.host or default_host(), ssl_context=context if cert_dir else None)


def default_host() -> str:
    """The local daemon's socket: ``$SWARMLITE_SOCKET``, else the default path."""
    return "unix://" + (os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET)
