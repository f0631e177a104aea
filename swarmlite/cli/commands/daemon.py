"""`swarmlite daemon`: run this node's daemon in the foreground, with the options saved at
init or join.

Owns only the command; ``swarmlite.daemon`` owns the daemon. This is what ``init`` and
``join`` spawn (detached) and what a service manager such as systemd runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from swarmlite.cli.commands.swarm import data_dir_option, socket_option


@click.command("daemon")
@data_dir_option()
@socket_option()
@click.pass_context
def daemon(ctx: click.Context, data_dir: Path, socket: Path | None) -> None:
    """Run this node's daemon in the foreground until SIGTERM or SIGINT."""
    from swarmlite import daemon as node_daemon

    opts = node_daemon.load_options(data_dir, socket)
    ctx.exit(node_daemon.start_daemon(opts, foreground=True))
