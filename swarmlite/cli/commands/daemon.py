"""`swarmlite daemon`: run this node's daemon in the foreground, with the options saved at
init or join.

Owns only the command; ``swarmlite.daemon`` owns the daemon. This is what ``init`` and
``join`` spawn (detached, ``python -m swarmlite daemon``, which runs it through
``main_alone``, without the rest of the CLI) and what a service manager such as systemd
runs. The Docker
Engine API is always served on ``docker.sock`` beside the node's socket;
``--docker-api-addr`` serves it on TCP too, only with TLS and client certificates (as
``dockerd --tlsverify``), so all three ``--docker-api-tls-*`` files are required with it.
``--metrics-addr`` serves Prometheus metrics for this run, in place of the address saved
at init or join (``--metrics-addr ''`` turns them off for this run); ``--dashboard-addr``
does the same for the dashboard (a manager's; ``swarmlite dashboard`` prints its URL).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click

from swarmlite.cli.commands.nodeflags import (
    dashboard_addr_option,
    data_dir_option,
    metrics_addr_option,
    socket_option,
)
from swarmlite.errors import UsageError

_TLS_FILE = click.Path(exists=True, dir_okay=False, resolve_path=True)


@click.command("daemon")
@data_dir_option()
@socket_option()
@click.option(
    "--docker-api-addr",
    metavar="HOST:PORT",
    help="Serve the Docker Engine API on TCP too (TLS with client certificates; port 2376 "
    "when none is given).",
)
@click.option("--docker-api-tls-cert", type=_TLS_FILE, help="The Docker API's certificate (PEM).")
@click.option("--docker-api-tls-key", type=_TLS_FILE, help="Its private key (PEM).")
@click.option(
    "--docker-api-tls-ca", type=_TLS_FILE, help="The CA that signs the clients' certificates."
)
@metrics_addr_option(default="the address given to init or join, if any")
@dashboard_addr_option(default="the address given to init or join, if any")
@click.pass_context
def daemon(
    ctx: click.Context,
    data_dir: Path,
    socket: Path | None,
    docker_api_addr: str | None,
    docker_api_tls_cert: str | None,
    docker_api_tls_key: str | None,
    docker_api_tls_ca: str | None,
    metrics_addr: str | None,
    dashboard_addr: str | None,
) -> None:
    """Run this node's daemon in the foreground until SIGTERM or SIGINT."""
    from swarmlite import daemon as node_daemon

    tls = (docker_api_tls_cert, docker_api_tls_key, docker_api_tls_ca)
    if docker_api_addr is not None and not all(tls):
        raise UsageError(
            "--docker-api-addr needs --docker-api-tls-cert, --docker-api-tls-key and "
            "--docker-api-tls-ca: the Docker API on TCP requires client certificates"
        )
    if docker_api_addr is None and any(tls):
        raise UsageError("the --docker-api-tls-* options go with --docker-api-addr")
    opts = node_daemon.load_options(data_dir, socket)
    if docker_api_addr is not None:
        opts = dataclasses.replace(
            opts,
            docker_api_addr=docker_api_addr,
            docker_api_tls_cert=docker_api_tls_cert or "",
            docker_api_tls_key=docker_api_tls_key or "",
            docker_api_tls_ca=docker_api_tls_ca or "",
        )
    if metrics_addr is not None:
        if metrics_addr:
            node_daemon.check_metrics_addr(metrics_addr)
        opts = dataclasses.replace(opts, metrics_addr=metrics_addr)
    if dashboard_addr is not None:
        if dashboard_addr:
            node_daemon.check_dashboard_addr(dashboard_addr)
        opts = dataclasses.replace(opts, dashboard_addr=dashboard_addr)
    node_daemon.use_daemon_malloc()
    ctx.exit(node_daemon.start_daemon(opts, foreground=True))


def main_alone(argv: Sequence[str] | None = None) -> NoReturn:
    """`python -m swarmlite daemon ARGS`: this command without the rest of the CLI (the
    daemon of every node then holds about 5 MB less for its whole life); a failure is
    shown as the CLI shows it."""
    args = list(sys.argv[2:] if argv is None else argv)
    try:
        code = daemon.main(
            args,
            prog_name="swarmlite daemon",
            standalone_mode=False,
            help_option_names=["-h", "--help"],
            max_content_width=100,
        )
    except BaseException as exc:  # the CLI's one handler, loaded only now
        from swarmlite.cli.client import Settings
        from swarmlite.cli.main import handle

        code = handle(exc, Settings())
    raise SystemExit(code if isinstance(code, int) else 0)
