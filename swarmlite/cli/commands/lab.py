"""`swarmlite lab up|down|status|exec`: a whole cluster on one machine, for trying it out.

Owns these commands' flags and what they print. ``swarmlite.lab`` does the work (it is
imported by each command, so that other commands never load pyroute2); a lab host's
daemon is reached through its unix socket in the lab dir, and ``exec`` replaces this
process with the command run inside the host's network namespace.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from swarmlite.api.control import Empty, ListRequest
from swarmlite.api.routes import INFO, NODE_LS
from swarmlite.cli import format, listing, render
from swarmlite.cli.client import Client
from swarmlite.errors import FailedPrecondition, SwarmliteError

if TYPE_CHECKING:
    from swarmlite.lab import HostStatus, LabStatus

DIR_ENV = "SWARMLITE_LAB_DIR"  # lab.DIR_ENV (imported lazily, so written out here)
DEFAULT_DIR = "/var/lib/swarmlite-lab"


def _lab() -> Any:
    try:
        import swarmlite.lab as lab
    except ModuleNotFoundError as exc:
        raise FailedPrecondition(
            f"swarmlite lab needs the Python package {exc.name}",
            hint="install it: pip install 'pyroute2>=0.7'",
        ) from exc
    return lab


def _dir_option(func: Any) -> Any:
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_DIR,
        envvar=DIR_ENV,
        show_default=True,
        help=f"Where the lab keeps its state, sockets and logs (env {DIR_ENV}).",
    )(func)


@click.group("lab")
def lab() -> None:
    """A cluster on this machine: one network namespace per host (needs root)."""


@lab.command("up")
@click.option("--nodes", type=click.IntRange(1, 200), default=3, show_default=True)
@click.option("--managers", type=click.IntRange(1, 200), default=1, show_default=True)
@click.option(
    "--metrics",
    is_flag=True,
    help="Each daemon serves Prometheus metrics on its host's address, port 9323.",
)
@click.option(
    "--podman",
    type=click.IntRange(0, 199),
    default=0,
    show_default=True,
    help="How many hosts (the last ones) run Podman's API service instead of dockerd.",
)
@_dir_option
def up(nodes: int, managers: int, metrics: bool, podman: int, directory: Path) -> None:
    """Start N hosts, each with its own dockerd and swarmlite daemon, as one cluster."""
    labs = _lab()
    where = labs.resolve_dir(directory)
    state = labs.up(
        where,
        nodes=nodes,
        managers=managers,
        metrics=metrics,
        podman=podman,
        progress=click.echo,
    )
    first = state.hosts[0]
    other = state.hosts[-1]
    image = f"{state.registry}/swl/web:1"
    click.echo(
        "\n".join(
            [
                "",
                f"The lab is up: {nodes} hosts ({managers} manager"
                f"{'s' if managers > 1 else ''}), recorded in {where}/lab.json.",
                "",
                "Use it:",
                f"  swarmlite lab status --dir {where}",
                f"  swarmlite lab exec --dir {where} {first.name} -- swarmlite node ls",
                f"  swarmlite lab exec --dir {where} {other.name} -- docker pull {image}",
                f"  swarmlite -H {first.swarmlite_host} node ls",
                *(
                    [
                        f"  swarmlite lab exec --dir {where} {first.name} -- "
                        f"busybox wget -qO- http://{first.metrics_addr}/metrics"
                    ]
                    if first.metrics_addr
                    else []
                ),
                "",
                "Tear it down:",
                f"  swarmlite lab down --dir {where}",
            ]
        )
    )


@lab.command("down")
@_dir_option
def down(directory: Path) -> None:
    """Stop and remove everything the lab made (safe to run again, and after a crash)."""
    labs = _lab()
    labs.require_root()
    where = labs.resolve_dir(directory)
    report = labs.down(where)
    if report.left:
        raise FailedPrecondition(
            f"the lab in {where} was not removed completely: {', '.join(report.left)}",
            hint="run `swarmlite lab down` again; `--debug` shows what failed",
        )
    if not report.anything:
        click.echo(f"No lab to remove in {where}.")
        return
    click.echo(
        f"Lab in {where} removed: {report.processes} processes, {report.containers} "
        f"containers, {len(report.namespaces)} namespaces, {len(report.cgroups)} cgroups, "
        f"{len(report.mounts)} mounts, {len(report.files)} files and directories."
    )


@lab.command("kill")
@_dir_option
@click.argument("node", metavar="NODE")
def kill(directory: Path, node: str) -> None:
    """Make one host die at once: SIGKILL its daemon, dockerd and containers."""
    labs = _lab()
    labs.require_root()
    killed = labs.kill_host(labs.resolve_dir(directory), node)
    click.echo(f"{node}: {killed} processes killed (its namespace stays until `lab down`).")


@lab.command("status")
@_dir_option
def status(directory: Path) -> None:
    """Show each host's address and daemons, and the cluster's nodes as h1 sees them."""
    labs = _lab()
    found: LabStatus = labs.status(labs.resolve_dir(directory))
    state = found.state
    click.echo(
        f"lab {state.dir} (id {state.lab_id}): {state.nodes} hosts on {state.subnet}, {state.phase}"
    )
    registry = _pid_state(found.registry_pid, found.registry_up, "running")
    click.echo(f"registry {state.registry} ({registry})\n")
    rows = [_host_row(host) for host in found.hosts]
    click.echo(render.table(["HOST", "ROLE", "ADDRESS", "NETNS", "DOCKERD", "SWARMLITE"], rows))
    click.echo()
    try:
        views = Client.unix(state.hosts[0].swarmlite_socket).call(NODE_LS, ListRequest())
    except SwarmliteError as exc:
        click.echo(f"node ls on {state.hosts[0].name}: {exc.message}")
    else:
        nodes = listing.node_rows(views.nodes)
        table = format.render_rows(None, nodes, listing.NODE_TABLE, headers=listing.NODE_HEADERS)
        click.echo(table, nl=False)


def _pid_state(pid: int | None, up: bool, word: str) -> str:
    if pid is None:
        return "not started"
    return f"pid {pid}, {word if up else 'stopped'}"


def _host_row(found: HostStatus) -> list[str]:
    host = found.host
    swarmlite = _pid_state(found.swarmlite_pid, found.swarmlite_up, "running")
    if found.swarmlite_up:
        try:
            info = Client.unix(host.swarmlite_socket).call(INFO, Empty())
            swarmlite = f"pid {found.swarmlite_pid}, {info.state}"
        except SwarmliteError:
            swarmlite = f"pid {found.swarmlite_pid}, not answering"
    return [
        host.name,
        host.role,
        host.addr,
        host.netns if found.netns_exists else f"{host.netns} (gone)",
        _pid_state(found.dockerd_pid, found.dockerd_up, "running"),
        swarmlite,
    ]


@lab.command(
    "exec",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@_dir_option
@click.argument("node", metavar="NODE")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD...")
def exec_(directory: Path, node: str, command: tuple[str, ...]) -> None:
    """Run CMD inside host NODE's network namespace, with SWARMLITE_HOST and DOCKER_HOST
    set to that host's daemons (`swarmlite lab exec h2 -- swarmlite node ls`)."""
    labs = _lab()
    words = list(command)
    if words and words[0] == "--":  # click keeps the separator after the first argument
        words = words[1:]
    if not words:
        raise click.UsageError("no command given after --")
    argv, env = labs.exec_command(labs.resolve_dir(directory), node, words)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        raise FailedPrecondition(f"cannot run {' '.join(words)}: {exc.strerror}") from exc
