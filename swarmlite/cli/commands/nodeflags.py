"""The flags that say which node a command is about and what its daemon serves (its data
dir, its socket, its metrics and dashboard addresses), shared by `init`, `join`,
`daemon` and `dashboard`. Light on purpose: `python -m swarmlite daemon`, what every node
runs, loads the daemon command with these and not the rest of the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from swarmlite.cli.client import DEFAULT_SOCKET, SOCKET_ENV

F = TypeVar("F", bound=Callable[..., Any])

DATA_DIR_ENV = "SWARMLITE_DATA_DIR"
DEFAULT_DATA_DIR = "/var/lib/swarmlite"  # daemon.DEFAULT_DATA_DIR (a test keeps them equal)
SOCKET_NAME = "swarmlite.sock"


def data_dir_option() -> Callable[[F], F]:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, resolve_path=True, path_type=Path),
        default=DEFAULT_DATA_DIR,
        envvar=DATA_DIR_ENV,
        show_default=True,
        help=f"Where the node keeps its state (env {DATA_DIR_ENV}).",
    )


def socket_option() -> Callable[[F], F]:
    return click.option(
        "--socket",
        type=click.Path(dir_okay=False, resolve_path=True, path_type=Path),
        envvar=SOCKET_ENV,
        help=f"The local API socket [default: {DEFAULT_SOCKET}, or DATA_DIR/{SOCKET_NAME} "
        f"with another --data-dir] (env {SOCKET_ENV}).",
    )


def socket_for(data_dir: Path, socket: Path | None) -> Path:
    """The daemon's socket: the one given, else the default one for ``data_dir``."""
    if socket is not None:
        return socket
    if data_dir == Path(DEFAULT_DATA_DIR):
        return Path(DEFAULT_SOCKET)
    return data_dir / SOCKET_NAME


def metrics_addr_option(default: str = "off") -> Callable[[F], F]:
    return _addr_option(
        "--metrics-addr",
        "Serve Prometheus metrics on http://ADDR:PORT/metrics (as dockerd's flag)",
        default,
    )


def dashboard_addr_option(default: str = "off") -> Callable[[F], F]:
    return _addr_option(
        "--dashboard-addr",
        "Serve the read-only web dashboard on http://ADDR:PORT (managers only; "
        "`swarmlite dashboard` prints its URL with the token)",
        default,
    )


def _addr_option(flag: str, what: str, default: str) -> Callable[[F], F]:
    return click.option(flag, metavar="ADDR:PORT", help=f"{what} [default: {default}].")
