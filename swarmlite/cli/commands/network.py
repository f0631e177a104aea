"""`swarmlite network`: create, ls, inspect, rm, as `docker network` has them for overlays.

Owns the network commands' flags and what each prints. A network made here is what a
compose file names with ``external: true``, so that several stacks share it. A network is
named by id, unique id prefix or name; the server resolves the reference. ``--internal``
makes a network whose tasks reach nothing outside it (network/isolation.py); ``--attachable``
one that standalone containers may join too (`docker run --network` against a node's Docker
API socket: dockerapi/containers.py).
"""

from __future__ import annotations

import ipaddress

import click

from swarmlite.api import NetworkSpec, dockerjson
from swarmlite.api.control import ListRequest, NameRef, NetworkCreate, NetworkView
from swarmlite.api.routes import NETWORK_CREATE, NETWORK_INSPECT, NETWORK_LS, NETWORK_RM
from swarmlite.cli import format, listing
from swarmlite.cli.commands import client, each, filter_option, format_option, parse_labels


def _subnet(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as exc:
        message = f"{value!r} is not an IPv4 subnet like 10.20.0.0/24 ({exc})"
        raise click.BadParameter(message) from None


def _gateway(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IPv4 address") from None


@click.group("network")
def network() -> None:
    """Manage the overlay networks of the cluster."""


@network.command("create")
@click.option(
    "-d",
    "--driver",
    default="overlay",
    show_default=True,
    help="Driver (overlay is the only one: every network spans the cluster).",
)
@click.option("--subnet", callback=_subnet, help="Subnet in CIDR form (default: from the pool).")
@click.option("--gateway", callback=_gateway, help="Gateway address (default: the first).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Set a label.")
@click.option(
    "--internal",
    is_flag=True,
    help="Restrict external access: tasks reach only the network's own tasks and its DNS.",
)
@click.option(
    "--attachable",
    is_flag=True,
    help="Let standalone containers join it (docker run --network on a node's Docker API).",
)
@click.argument("name")
def create(
    driver: str,
    subnet: str | None,
    gateway: str | None,
    labels: tuple[str, ...],
    internal: bool,
    attachable: bool,
    name: str,
) -> None:
    """Create an overlay network; prints its ID."""
    spec = NetworkSpec(
        name=name,
        driver=driver,
        subnet=subnet or "",
        gateway=gateway or "",
        labels=parse_labels(labels),
        internal=internal,
        attachable=attachable,
    )
    view = client().call(NETWORK_CREATE, NetworkCreate(spec=spec))
    click.echo(view.network.id)


@network.command("ls")
@filter_option()
@format_option()
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
def ls(filters: dict[str, list[str]], output: str, no_trunc: bool, quiet: bool) -> None:
    """List the networks of the cluster."""
    views = client().call(NETWORK_LS, ListRequest(filters=filters)).networks
    rows = listing.network_rows(views, trunc=not no_trunc)
    text = format.render_rows(
        output, rows, listing.NETWORK_TABLE, headers=listing.NETWORK_HEADERS, quiet=quiet
    )
    click.echo(text, nl=False)


@network.command("inspect")
@format_option(default=None)
@click.argument("networks", nargs=-1, required=True, metavar="NETWORK...")
def inspect(output: str | None, networks: tuple[str, ...]) -> None:
    """Display detailed information on one or more networks."""
    rpc = client()
    found: list[NetworkView] = []

    def one(ref: str) -> None:
        found.append(rpc.call(NETWORK_INSPECT, NameRef(ref=ref)))

    try:
        each(networks, one)
    finally:  # the networks that were found are shown even when another one was not
        objects = [dockerjson.network_json(view.network) for view in found]
        click.echo(format.render_inspect(output, objects), nl=False)


@network.command("rm")
@click.argument("networks", nargs=-1, required=True, metavar="NETWORK...")
def rm(networks: tuple[str, ...]) -> None:
    """Remove one or more networks (none that a service still uses)."""
    rpc = client()

    def one(ref: str) -> None:
        rpc.call(NETWORK_RM, NameRef(ref=ref))
        click.echo(ref)

    each(networks, one)
