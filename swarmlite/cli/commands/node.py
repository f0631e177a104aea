"""`swarmlite node`: ls, inspect, ps, update, promote, demote, rm, as `docker node` has them.

Owns the node commands' flags and what each prints. A node is named by id, unique id
prefix or hostname; the server resolves the reference, the CLI passes it on unchanged,
except ``self``, which (as in docker's CLI) is the local node's id, asked of the local daemon.
"""

from __future__ import annotations

import time

import click
import msgspec

from swarmlite.api import NodeAvailability, NodeRole
from swarmlite.api.control import (
    INFO,
    NODE_INSPECT,
    NODE_LS,
    NODE_PS,
    NODE_RM,
    NODE_UPDATE,
    Empty,
    Info,
    NodeList,
    NodeRef,
    NodeRemove,
    NodeUpdate,
    NodeView,
    TaskList,
)
from swarmlite.cli import render
from swarmlite.cli.client import Client
from swarmlite.cli.commands import client, each, format_option, parse_labels
from swarmlite.errors import UsageError

SELF = "self"


def resolve(rpc: Client, ref: str) -> str:
    """``self`` becomes the local node's id; any other reference goes to the server as is."""
    if ref != SELF:
        return ref
    if rpc.unix_socket is None:
        raise UsageError(
            f"`{SELF}` names the local node, and {rpc.address} is not a local socket",
            hint="name the node by id or hostname (`swarmlite node ls` lists them)",
        )
    return rpc.call(INFO, Empty(), Info).node_id


@click.group("node")
def node() -> None:
    """Manage the nodes of the cluster."""


@node.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@format_option()
def ls(quiet: bool, output: str) -> None:
    """List the nodes of the cluster."""
    views = client().call(NODE_LS, Empty(), NodeList).nodes
    if quiet:
        for view in render.sort_nodes(views):
            click.echo(view.node.id)
    elif output == "json":
        click.echo(render.to_json(render.sort_nodes(views)))
    else:
        click.echo(render.node_table(views))


@node.command("inspect")
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format.")
@format_option(default=None)
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
def inspect(pretty: bool, output: str | None, nodes: tuple[str, ...]) -> None:
    """Display detailed information on one or more nodes."""
    pretty = pretty or output == "table"
    rpc = client()
    found: list[NodeView] = []

    def one(ref: str) -> None:
        found.append(rpc.call(NODE_INSPECT, NodeRef(ref=resolve(rpc, ref)), NodeView))

    try:
        each(nodes, one)
    finally:  # the nodes that were found are shown even when another one was not
        if pretty and found:
            click.echo("\n\n".join(render.node_pretty(view) for view in found))
        elif found or not pretty:
            click.echo(render.to_json(found))


@node.command("ps")
@format_option()
@click.argument("node_ref", required=False, default="", metavar="[NODE]")
def ps(output: str, node_ref: str) -> None:
    """List the tasks running on a node (this node by default)."""
    # No NODE: the empty reference, which the server reads as the node answering.
    rpc = client()
    ref = resolve(rpc, node_ref) if node_ref else ""
    tasks = rpc.call(NODE_PS, NodeRef(ref=ref), TaskList).tasks
    if output == "json":
        click.echo(render.to_json(tasks))
    else:
        click.echo(render.task_table(tasks, time.time()))


@node.command("update")
@click.option(
    "--availability",
    type=click.Choice([a.value for a in NodeAvailability]),
    help="Availability of the node.",
)
@click.option("--label-add", multiple=True, metavar="KEY=VALUE", help="Add or update a node label.")
@click.option("--label-rm", multiple=True, metavar="KEY", help="Remove a node label.")
@click.option("--role", type=click.Choice([r.value for r in NodeRole]), help="Role of the node.")
@click.argument("node_ref", metavar="NODE")
def update(
    availability: str | None,
    label_add: tuple[str, ...],
    label_rm: tuple[str, ...],
    role: str | None,
    node_ref: str,
) -> None:
    """Update a node's availability, labels or role."""
    if availability is None and role is None and not label_add and not label_rm:
        raise UsageError(
            "nothing to update",
            hint="pass --availability, --label-add, --label-rm or --role",
        )
    rpc = client()
    request = NodeUpdate(
        ref=resolve(rpc, node_ref),
        availability=NodeAvailability(availability) if availability else None,
        role=NodeRole(role) if role else None,
        label_add=parse_labels(label_add),
        label_rm=list(label_rm),
    )
    rpc.call(NODE_UPDATE, request, msgspec.Raw)
    click.echo(node_ref)


@node.command("promote")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
def promote(nodes: tuple[str, ...]) -> None:
    """Promote one or more nodes to manager."""
    rpc = client()

    def one(ref: str) -> None:
        request = NodeUpdate(ref=resolve(rpc, ref), role=NodeRole.MANAGER)
        rpc.call(NODE_UPDATE, request, msgspec.Raw)
        click.echo(f"Node {ref} promoted to a manager in the cluster.")

    each(nodes, one)


@node.command("demote")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
def demote(nodes: tuple[str, ...]) -> None:
    """Demote one or more managers to worker."""
    rpc = client()

    def one(ref: str) -> None:
        request = NodeUpdate(ref=resolve(rpc, ref), role=NodeRole.WORKER)
        rpc.call(NODE_UPDATE, request, msgspec.Raw)
        click.echo(f"Manager {ref} demoted in the cluster.")

    each(nodes, one)


@node.command("rm")
@click.option("-f", "--force", is_flag=True, help="Force-remove a node from the cluster.")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
def rm(force: bool, nodes: tuple[str, ...]) -> None:
    """Remove one or more nodes from the cluster."""
    rpc = client()

    def one(ref: str) -> None:
        rpc.call(NODE_RM, NodeRemove(ref=resolve(rpc, ref), force=force), msgspec.Raw)
        click.echo(ref)

    each(nodes, one)
