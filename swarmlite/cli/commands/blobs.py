"""`swarmlite secret` and `swarmlite config`: create, ls, inspect, rm, as `docker secret` and
`docker config` have them.

Owns both groups' flags and what each prints; the two differ only in their routes, words
and a secret's ``Driver`` column (one factory makes both). What is made here is what a
compose file names with ``external: true``. The content comes from a file or, with ``-``,
from standard input, and is read whole before anything is sent: a missing file or an empty
input is an error with nothing created. A secret's content is never shown (the server does
not send it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from swarmlite.api import Config, Secret, dockerjson
from swarmlite.api.control import BlobCreate, BlobView, ListRequest, NameRef
from swarmlite.api.routes import CONFIG_ROUTES, SECRET_ROUTES, BlobRoutes
from swarmlite.api.secret import MAX_CONTENT
from swarmlite.cli import format, listing
from swarmlite.cli.commands import client, each, filter_option, format_option, parse_labels


def read_content(source: str) -> bytes:
    """The whole content of ``source``: a file's path, or ``-`` for standard input."""
    if source == "-":
        data = sys.stdin.buffer.read(MAX_CONTENT + 1)
        where = "standard input"
    else:
        try:
            with Path(source).open("rb") as file:
                data = file.read(MAX_CONTENT + 1)
        except OSError as exc:
            raise click.BadParameter(f"cannot read {source}: {exc.strerror}") from None
        where = source
    if not data:
        raise click.BadParameter(f"{where} is empty: there is nothing to store")
    if len(data) > MAX_CONTENT:
        raise click.BadParameter(f"{where} is larger than {MAX_CONTENT // 1024} KiB")
    return data


def _docker_json(obj: Secret | Config) -> dict[str, Any]:
    """What `docker secret inspect` (never the content) or `docker config inspect` shows."""
    if isinstance(obj, Secret):
        return dockerjson.secret_json(obj)
    return dockerjson.config_json(obj)


def blob_group(kind: str, routes: BlobRoutes, blurb: str) -> click.Group:
    """The `secret` or `config` group, calling ``routes``."""
    upper = kind.upper()
    is_secret = kind == "secret"
    table = listing.SECRET_TABLE if is_secret else listing.CONFIG_TABLE
    pretty_template = listing.SECRET_PRETTY if is_secret else listing.CONFIG_PRETTY

    @click.group(kind, help=blurb)
    def group() -> None:
        pass

    @group.command("create")
    @click.option(
        "-l", "--label", "labels", multiple=True, metavar="KEY=VALUE", help="Set a label."
    )
    @click.argument("name", metavar=upper)
    @click.argument("source", metavar="FILE|-")
    def create(labels: tuple[str, ...], name: str, source: str) -> None:
        req = BlobCreate(name=name, data=read_content(source), labels=parse_labels(labels))
        view = client().call(routes.create, req)
        click.echo(view.object.id)

    create.help = f"Create a {kind} from a file or from standard input (-); prints its ID."

    @group.command("ls")
    @filter_option()
    @format_option()
    @click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
    def ls(filters: dict[str, list[str]], output: str, quiet: bool) -> None:
        views = client().call(routes.ls, ListRequest(filters=filters)).items
        rows = listing.blob_rows(views, now=time.time(), secret=is_secret)
        text = format.render_rows(output, rows, table, headers=listing.BLOB_HEADERS, quiet=quiet)
        click.echo(text, nl=False)

    ls.help = f"List the {kind}s of the cluster."

    @group.command("inspect")
    @format_option(default=None)
    @click.option(
        "--pretty", is_flag=True, help="Print the information in a human friendly format."
    )
    @click.argument("refs", nargs=-1, required=True, metavar=f"{upper}...")
    def inspect(output: str | None, pretty: bool, refs: tuple[str, ...]) -> None:
        rpc = client()
        found: list[BlobView] = []

        def one(ref: str) -> None:
            found.append(rpc.call(routes.inspect, NameRef(ref=ref)))

        try:
            each(refs, one)
        finally:  # those that were found are shown even when another one was not
            if pretty or output == "pretty":
                rows = [listing.blob_pretty_fields(view) for view in found]
                click.echo(format.render_rows(pretty_template, rows, ""), nl=False)
            else:
                objects = [_docker_json(view.object) for view in found]
                click.echo(format.render_inspect(output, objects), nl=False)

    inspect.help = f"Display detailed information on one or more {kind}s."

    @group.command("rm")
    @click.argument("refs", nargs=-1, required=True, metavar=f"{upper}...")
    def rm(refs: tuple[str, ...]) -> None:
        rpc = client()

        def one(ref: str) -> None:
            rpc.call(routes.rm, NameRef(ref=ref))
            click.echo(ref)

        each(refs, one)

    rm.help = f"Remove one or more {kind}s (none that a service still uses)."
    return group


secret = blob_group(
    "secret",
    SECRET_ROUTES,
    "Manage secrets: files for tasks that only the nodes running those tasks receive.",
)
config = blob_group(
    "config",
    CONFIG_ROUTES,
    "Manage configs: files for tasks, in the clear.",
)
