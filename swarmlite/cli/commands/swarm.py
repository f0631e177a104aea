"""`swarmlite swarm init|join|join-token|leave|update`: the cluster's lifecycle, as
`docker swarm` has it; init, join, join-token and leave are also top-level commands.

Owns these commands' flags and words. ``init`` and ``join`` prepare the data directory with
``daemon.init_cluster``/``join_cluster`` and then start the daemon (detached unless
``--foreground``); everything after that is asked of the daemon over its socket. Does not
own what the daemon does (``swarmlite.daemon``), which is imported only by the commands that
start one, so that listing nodes does not load every layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from swarmlite.api import NodeRole
from swarmlite.api.control import (
    JoinTokenRequest,
    LeaveRequest,
    SwarmUpdate,
    UnlockKeyRequest,
    UnlockRequest,
)
from swarmlite.api.resources import parse_node_resources
from swarmlite.api.routes import JOIN_TOKEN, LEAVE, SWARM_UPDATE, UNLOCK, UNLOCK_KEY
from swarmlite.cli import render
from swarmlite.cli.client import Client
from swarmlite.cli.commands import Duration, client, settings
from swarmlite.cli.commands.backup import backup, load_backup, passphrase_file_option, summary
from swarmlite.cli.commands.ca import ca
from swarmlite.cli.commands.nodeflags import (
    dashboard_addr_option,
    data_dir_option,
    metrics_addr_option,
    socket_for,
    socket_option,
)
from swarmlite.errors import InvalidArgument, UsageError
from swarmlite.rpc.control import DEFAULT_PORT

if TYPE_CHECKING:
    from swarmlite.daemon import NodeOptions

F = TypeVar("F", bound=Callable[..., Any])


def _node_flags(func: F) -> F:
    """The flags `init` and `join` share, as `docker swarm init|join` spell them."""
    for option in reversed(
        [
            click.option(
                "--advertise-addr",
                metavar="ADDR[:PORT]",
                help="Address other nodes use to reach this one.",
            ),
            click.option(
                "--listen-addr",
                metavar="ADDR:PORT",
                help=f"Where the cluster port listens [default: 0.0.0.0:{DEFAULT_PORT}].",
            ),
            data_dir_option(),
            socket_option(),
            click.option(
                "--foreground", is_flag=True, help="Run the daemon in this process; do not detach."
            ),
            click.option(
                "--cert-expiry",
                type=Duration(),
                help="Validity of node certificates (2160h0m0s, 90d, ...) [default: 90d].",
            ),
            click.option(
                "--docker-host",
                envvar="SWARMLITE_DOCKER_HOST",
                metavar="unix:///PATH",
                help="The container runtime's API socket (Docker, or Podman's compatible one) "
                "[default: unix:///var/run/docker.sock].",
            ),
            metrics_addr_option(),
            dashboard_addr_option(),
            click.option(
                "--node-generic-resource",
                "node_generic_resources",
                multiple=True,
                metavar="KIND=VALUE",
                help="A resource this node advertises to services' --generic-resource, as "
                "dockerd's flag: a count (gpu=2) or one named resource (gpu=GPU-1f3a; "
                "repeat for each). Repeatable.",
            ),
        ]
    ):
        func = option(func)
    return func


def _options(
    data_dir: Path,
    socket: Path | None,
    listen_addr: str | None,
    advertise_addr: str | None,
    cert_expiry: float | None,
    docker_host: str | None = None,
    metrics_addr: str | None = None,
    dashboard_addr: str | None = None,
    generic_resources: tuple[str, ...] = (),
) -> NodeOptions:
    from swarmlite import daemon

    fields: dict[str, Any] = {"data_dir": data_dir, "socket": socket_for(data_dir, socket)}
    if generic_resources:
        try:
            parsed = parse_node_resources(generic_resources, flag="--node-generic-resource")
        except InvalidArgument as exc:
            raise UsageError(exc.message, hint=exc.hint) from None
        fields["generic_resources"] = tuple(parsed)
    if metrics_addr:
        fields["metrics_addr"] = metrics_addr  # checked by init_cluster/join_cluster
    if dashboard_addr:
        fields["dashboard_addr"] = dashboard_addr  # checked by init_cluster/join_cluster
    if docker_host is not None:
        if not docker_host.startswith("unix://"):
            raise UsageError(f"--docker-host {docker_host!r} must be unix:///path/to/socket")
        fields["docker_host"] = docker_host
    if listen_addr is not None:
        if not listen_addr or listen_addr.endswith(":"):
            raise UsageError(f"--listen-addr {listen_addr!r} is not ADDR:PORT")
        if ":" not in listen_addr:
            listen_addr = f"{listen_addr}:{DEFAULT_PORT}"
        fields["listen_addr"] = listen_addr
    if advertise_addr is not None:
        fields["advertise_addr"] = advertise_addr
    if cert_expiry is not None:
        fields["cert_expiry"] = cert_expiry
    return daemon.NodeOptions(**fields)


def _local(opts: NodeOptions) -> Client:
    assert opts.socket is not None  # _options always sets it
    return Client.unix(opts.socket)


@click.command("init")
@_node_flags
@click.option(
    "--default-addr-pool",
    metavar="CIDR",
    help="Address pool of overlay networks' subnets [default: 10.0.0.0/8].",
)
@click.option(
    "--default-addr-pool-mask-length",
    type=int,
    metavar="N",
    help="Prefix length of each overlay subnet taken from the pool [default: 24].",
)
@click.option(
    "--mesh-pool",
    metavar="CIDR",
    help="Addresses of the nodes inside the encrypted mesh [default: 100.96.0.0/16].",
)
@click.option(
    "--force-new-cluster",
    is_flag=True,
    help="Start a new cluster from this node's current state, forgetting the other managers "
    "(stops this node's daemon first if it runs).",
)
@click.option(
    "--restore",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="FILE",
    help="Start a new cluster with the services, networks, secrets, configs and settings of "
    "a backup (`swarmlite swarm backup FILE`).",
)
@passphrase_file_option()
@click.option(
    "--autolock",
    is_flag=True,
    help="Enable manager autolocking (requiring an unlock key to start a stopped manager).",
)
@click.pass_context
def init(
    ctx: click.Context,
    advertise_addr: str | None,
    listen_addr: str | None,
    data_dir: Path,
    socket: Path | None,
    foreground: bool,
    cert_expiry: float | None,
    docker_host: str | None,
    metrics_addr: str | None,
    dashboard_addr: str | None,
    node_generic_resources: tuple[str, ...],
    default_addr_pool: str | None,
    default_addr_pool_mask_length: int | None,
    mesh_pool: str | None,
    force_new_cluster: bool,
    restore: Path | None,
    passphrase_file: Path | None,
    autolock: bool,
) -> None:
    """Initialize a cluster, with this node as its first manager."""
    from swarmlite import daemon

    if restore is not None:
        given = [
            flag
            for flag, value in (
                ("--force-new-cluster", force_new_cluster),
                ("--default-addr-pool", default_addr_pool),
                ("--default-addr-pool-mask-length", default_addr_pool_mask_length),
                ("--mesh-pool", mesh_pool),
                ("--cert-expiry", cert_expiry),
            )
            if value
        ]
        if given:
            raise UsageError(
                f"--restore cannot be combined with {', '.join(given)}",
                hint="a restored cluster takes its settings from the backup; change them "
                "afterwards with `swarmlite swarm update`",
            )
    opts = dataclasses.replace(
        _options(
            data_dir,
            socket,
            listen_addr,
            advertise_addr,
            cert_expiry,
            docker_host,
            metrics_addr,
            dashboard_addr,
            node_generic_resources,
        ),
        default_addr_pool=default_addr_pool,
        default_addr_pool_mask_length=default_addr_pool_mask_length,
        mesh_pool=mesh_pool,
        autolock=autolock,
    )
    restored = load_backup(restore, passphrase_file) if restore is not None else None
    if force_new_cluster:
        daemon.stop_running(opts.data_dir)  # its raft state is rewritten below
    result = daemon.init_cluster(opts, force_new_cluster=force_new_cluster, restore=restored)
    if restored is not None:
        click.echo(f"Restored from {restore} (raft index {restored.index}): {summary(restored)}.")
    if foreground:
        click.echo(render.init_message(result.node_id, None))
        ctx.exit(daemon.start_daemon(opts, foreground=True))
    daemon.start_daemon(opts, foreground=False)
    local = _local(opts)
    worker = local.call(JOIN_TOKEN, JoinTokenRequest(role=NodeRole.WORKER))
    click.echo(render.init_message(result.node_id, worker))
    if autolock:
        click.echo(render.unlock_instructions(local.call(UNLOCK_KEY, UnlockKeyRequest()).key))


@click.command("join")
@_node_flags
@click.option("--token", required=True, help="Token for entry into the cluster.")
@click.argument("manager", metavar="MANAGER[:PORT]")
@click.pass_context
def join(
    ctx: click.Context,
    advertise_addr: str | None,
    listen_addr: str | None,
    data_dir: Path,
    socket: Path | None,
    foreground: bool,
    cert_expiry: float | None,
    docker_host: str | None,
    metrics_addr: str | None,
    dashboard_addr: str | None,
    node_generic_resources: tuple[str, ...],
    token: str,
    manager: str,
) -> None:
    """Join a cluster as a worker or a manager (the token says which)."""
    from swarmlite import daemon

    opts = _options(
        data_dir,
        socket,
        listen_addr,
        advertise_addr,
        cert_expiry,
        docker_host,
        metrics_addr,
        dashboard_addr,
        node_generic_resources,
    )
    result = daemon.join_cluster(opts, token, manager)
    message = f"This node joined a swarmlite cluster as a {result.role.value}."
    if foreground:
        click.echo(message)
        ctx.exit(daemon.start_daemon(opts, foreground=True))
    daemon.start_daemon(opts, foreground=False)
    click.echo(message)


@click.command("join-token")
@click.option("--rotate", is_flag=True, help="Rotate the join token.")
@click.option("-q", "--quiet", is_flag=True, help="Only display the token.")
@click.argument("role", type=click.Choice([r.value for r in NodeRole]), metavar="worker|manager")
def join_token(rotate: bool, quiet: bool, role: str) -> None:
    """Manage the join tokens: print the command a new worker or manager runs."""
    node_role = NodeRole(role)
    reply = client().call(JOIN_TOKEN, JoinTokenRequest(role=node_role, rotate=rotate))
    if quiet:
        click.echo(reply.token)
        return
    if rotate:
        click.echo(f"Successfully rotated {role} join token.\n")
    click.echo(render.join_instructions(node_role, reply))


@click.command("leave")
@click.option(
    "-f", "--force", is_flag=True, help="Leave even if this node is a manager (may lose quorum)."
)
def leave(force: bool) -> None:
    """Leave the cluster: stop this node's daemon and forget its state."""
    rpc = client()
    if rpc.unix_socket is None:
        raise UsageError(
            f"leave is asked of the local daemon, not of {settings().host}",
            hint="run it on the node that leaves, with -H unix:///path/to/swarmlite.sock",
        )
    rpc.call(LEAVE, LeaveRequest(force=force))
    click.echo("Node left the cluster.")


@click.command("update")
@click.option(
    "--cert-expiry",
    type=Duration(),
    help="Validity period for node certificates (ns|us|ms|s|m|h) [default: 2160h0m0s].",
)
@click.option(
    "--dispatcher-heartbeat",
    type=Duration(),
    help="Dispatcher heartbeat period (ns|us|ms|s|m|h) [default: 1s].",
)
@click.option(
    "--task-history-limit",
    type=click.IntRange(min=0),
    metavar="INT",
    help="Task history retention limit [default: 5].",
)
@click.option(
    "--autolock",
    type=click.BOOL,
    metavar="BOOL",
    help="Change manager autolocking setting (true|false).",
)
def update(
    cert_expiry: float | None,
    dispatcher_heartbeat: float | None,
    task_history_limit: int | None,
    autolock: bool | None,
) -> None:
    """Update the cluster's settings."""
    request = SwarmUpdate(
        heartbeat_period=dispatcher_heartbeat,
        task_history_limit=task_history_limit,
        cert_expiry=cert_expiry,
        autolock=autolock,
    )
    rpc = client()
    rpc.call(SWARM_UPDATE, request)
    click.echo("Swarm updated.")
    if autolock:
        key = rpc.call(UNLOCK_KEY, UnlockKeyRequest()).key
        click.echo(render.unlock_instructions(key))


@click.command("unlock-key")
@click.option("--rotate", is_flag=True, help="Rotate unlock key.")
@click.option("-q", "--quiet", is_flag=True, help="Only display token.")
def unlock_key(rotate: bool, quiet: bool) -> None:
    """Manage the unlock key: show it, or make a new one."""
    key = client().call(UNLOCK_KEY, UnlockKeyRequest(rotate=rotate)).key
    if quiet:
        click.echo(key)
        return
    if rotate:
        click.echo("Successfully rotated manager unlock key.\n")
    click.echo(render.unlock_instructions(key))


@click.command("unlock")
def unlock() -> None:
    """Unlock a locked manager: give it the cluster's unlock key (from stdin, or a prompt)."""
    rpc = client()
    if rpc.unix_socket is None:
        raise UsageError(
            f"unlock is asked of the local daemon, not of {settings().host}",
            hint="run it on the locked manager, with -H unix:///path/to/swarmlite.sock",
        )
    stdin = click.get_text_stream("stdin")
    if stdin.isatty():
        key = click.prompt("Enter unlock key", hide_input=True, prompt_suffix=": ")
    else:
        key = stdin.readline()
    rpc.call(UNLOCK, UnlockRequest(key=key.strip()))


@click.group("swarm")
def swarm() -> None:
    """Manage the cluster (Swarm)."""


# The lifecycle commands are also top-level shortcuts (`swarmlite init`, ...): the same
# click commands, registered in both places by cli.main.
for _command in (init, join, join_token, leave, update):
    swarm.add_command(_command)
for _command in (unlock, unlock_key):  # `swarm unlock`, `swarm unlock-key`, as docker has them
    swarm.add_command(_command)
swarm.add_command(backup)  # `swarm backup` only, as `docker swarm` has its commands
swarm.add_command(ca)  # `swarm ca [--rotate]` only, as docker has it
