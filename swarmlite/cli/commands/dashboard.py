"""`swarmlite dashboard`: print the URL, with its token, of this node's dashboard.

Owns only the command. The dashboard itself (``swarmlite.dashboard``) runs in a manager's
daemon started with ``--dashboard-addr``; its token lives in the node's data dir, so this
command runs on that node, with the data dir's rights (root, by default), and asks the
daemon nothing.
"""

from __future__ import annotations

from pathlib import Path

import click

from swarmlite.cli.commands.nodeflags import data_dir_option


@click.command("dashboard")
@data_dir_option()
def dashboard(data_dir: Path) -> None:
    """Print the URL of this manager's web dashboard (it holds the access token)."""
    from swarmlite import daemon

    click.echo(daemon.dashboard_url(data_dir))
