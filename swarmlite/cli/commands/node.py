"""`swarmlite node`: ls, inspect, ps, update, promote, demote, rm, as `docker node` has them.

Owns the node commands' flags and what each prints. A node is named by id, unique id
prefix or hostname; the server resolves the reference, the CLI passes it on unchanged,
except ``self``, which (as in docker's CLI) is the local node's id, asked of the local daemon.
"""

from __future__ import annotations

import time

import click

from swarmlite.api import NodeAvailability, NodeRole, Task, dockerjson
from swarmlite.api.control import (
    Empty,
    ListRequest,
    NodeRef,
    NodeRemove,
    NodeTasks,
    NodeUpdate,
    NodeView,
    ServiceFilter,
    ServiceView,
)
from swarmlite.api.routes import (
    INFO,
    NODE_INSPECT,
    NODE_LS,
    NODE_PS,
    NODE_RM,
    NODE_UPDATE,
    SERVICE_LS,
)
from swarmlite.cli import format, listing, render
from swarmlite.cli.client import Client
from swarmlite.cli.commands import (
    client,
    each,
    filter_option,
    format_option,
    parse_labels,
    task_list_options,
)
from swarmlite.cli.commands.service import show_tasks
from swarmlite.errors import SwarmliteError, UsageError

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
    return rpc.call(INFO, Empty()).node_id


@click.group("node")
def node() -> None:
    """Manage the nodes of the cluster."""


@node.command("ls")
@filter_option()
@format_option()
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
def ls(filters: dict[str, list[str]], output: str, quiet: bool) -> None:
    """List the nodes of the cluster."""
    views = client().call(NODE_LS, ListRequest(filters=filters)).nodes
    rows = listing.node_rows(views)
    text = format.render_rows(
        output, rows, listing.NODE_TABLE, headers=listing.NODE_HEADERS, quiet=quiet
    )
    click.echo(text, nl=False)


@node.command("inspect")
@format_option(default=None)
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format.")
@click.argument("nodes", nargs=-1, required=True, metavar="self|NODE...")
def inspect(output: str | None, pretty: bool, nodes: tuple[str, ...]) -> None:
    """Display detailed information on one or more nodes."""
    pretty = pretty or output == "pretty"
    rpc = client()
    found: list[NodeView] = []

    def one(ref: str) -> None:
        found.append(rpc.call(NODE_INSPECT, NodeRef(ref=resolve(rpc, ref))))

    try:
        each(nodes, one)
    finally:  # the nodes that were found are shown even when another one was not
        if pretty and found:
            now = time.time()
            click.echo("\n\n".join(render.node_pretty(view, now) for view in found))
        elif not pretty:
            objects = [dockerjson.node_json(view.node, view.manager) for view in found]
            click.echo(format.render_inspect(output, objects), nl=False)


def show_node_tasks(
    rpc: Client, tasks: list[Task], *, output: str, quiet: bool, no_trunc: bool, no_resolve: bool
) -> None:
    """Docker's task table (or --format), as `service ps` prints it, with the host-mode
    ports of the tasks' services."""
    views: list[ServiceView] = []
    if tasks and not (quiet and format.is_table(output)):  # for the PORTS column
        services = sorted({task.service_id for task in tasks})
        views = rpc.call(SERVICE_LS, ServiceFilter(names=services)).services
    show_tasks(
        rpc, tasks, views, quiet=quiet, no_trunc=no_trunc, output=output, no_resolve=no_resolve
    )


@node.command("ps")
@task_list_options()
@click.argument("nodes", nargs=-1, metavar="[NODE...]")
def ps(
    filters: dict[str, list[str]],
    output: str,
    no_resolve: bool,
    no_trunc: bool,
    quiet: bool,
    nodes: tuple[str, ...],
) -> None:
    """List the tasks running on one or more nodes (this node by default)."""
    rpc = client()
    tasks: list[Task] = []

    def one(ref: str) -> None:
        request = NodeTasks(refs=[resolve(rpc, ref)] if ref else [], filters=filters)
        tasks.extend(rpc.call(NODE_PS, request).tasks)

    failure: SwarmliteError | None = None
    try:  # no NODE: no reference, which the server reads as the node answering
        each(nodes or ("",), one)
    except SwarmliteError as exc:  # as docker: the tasks found are shown all the same
        failure = exc
    if failure is None or tasks:
        show_node_tasks(
            rpc, tasks, output=output, quiet=quiet, no_trunc=no_trunc, no_resolve=no_resolve
        )
    if failure is not None:
        raise failure


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
    rpc.call(NODE_UPDATE, request)
    click.echo(node_ref)


@node.command("promote")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
def promote(nodes: tuple[str, ...]) -> None:
    """Promote one or more nodes to manager."""
    rpc = client()

    def one(ref: str) -> None:
        request = NodeUpdate(ref=resolve(rpc, ref), role=NodeRole.MANAGER)
        rpc.call(NODE_UPDATE, request)
        click.echo(f"Node {ref} promoted to a manager in the cluster.")

    each(nodes, one)


@node.command("demote")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
def demote(nodes: tuple[str, ...]) -> None:
    """Demote one or more managers to worker."""
    rpc = client()

    def one(ref: str) -> None:
        request = NodeUpdate(ref=resolve(rpc, ref), role=NodeRole.WORKER)
        rpc.call(NODE_UPDATE, request)
        click.echo(f"Manager {ref} demoted in the cluster.")

    each(nodes, one)


@node.command("rm")
@click.option("-f", "--force", is_flag=True, help="Force-remove a node from the cluster.")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE...")
def rm(force: bool, nodes: tuple[str, ...]) -> None:
    """Remove one or more nodes from the cluster."""
    rpc = client()

    def one(ref: str) -> None:
        rpc.call(NODE_RM, NodeRemove(ref=resolve(rpc, ref), force=force))
        click.echo(ref)

    each(nodes, one)
