"""`swarmlite secret` and `swarmlite config`: create, ls, inspect, rm, as `docker secret` and
`docker config` have them.

Owns both groups' flags and what each prints; the two differ only in their paths and words
(one factory makes both). What is made here is what a compose file names with
``external: true``. The content comes from a file or, with ``-``, from standard input, and
is read whole before anything is sent: a missing file or an empty input is an error with
nothing created. A secret's content is never shown (the server does not send it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from swarmlite.api.control import (
    CONFIG_PATHS,
    SECRET_PATHS,
    BlobCreate,
    BlobList,
    BlobView,
    Empty,
    NameRef,
)
from swarmlite.api.secret import MAX_CONTENT
from swarmlite.cli import render
from swarmlite.cli.commands import client, each, format_option, parse_labels


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


def blob_group(kind: str, paths: tuple[str, str, str, str], blurb: str) -> click.Group:
    """The `secret` or `config` group; ``paths`` are its create, ls, inspect and rm."""
    create_path, ls_path, inspect_path, rm_path = paths
    upper = kind.upper()

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
        view = client().call(create_path, req, BlobView)
        click.echo(view.object.id)

    create.help = f"Create a {kind} from a file or from standard input (-); prints its ID."

    @group.command("ls")
    @click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
    @click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
    @format_option()
    def ls(quiet: bool, no_trunc: bool, output: str) -> None:
        views = client().call(ls_path, Empty(), BlobList).items
        views.sort(key=lambda v: (v.object.spec.name, v.object.id))
        if quiet:
            for view in views:
                click.echo(render.short_id(view.object.id, no_trunc=no_trunc))
        elif output == "json":
            click.echo(render.blob_json(views))
        else:
            click.echo(render.blob_table(views, time.time(), no_trunc=no_trunc))

    ls.help = f"List the {kind}s of the cluster."

    @group.command("inspect")
    @format_option(default=None)
    @click.argument("refs", nargs=-1, required=True, metavar=f"{upper}...")
    def inspect(output: str | None, refs: tuple[str, ...]) -> None:
        rpc = client()
        found: list[BlobView] = []

        def one(ref: str) -> None:
            found.append(rpc.call(inspect_path, NameRef(ref=ref), BlobView))

        try:
            each(refs, one)
        finally:  # those that were found are shown even when another one was not
            click.echo(render.blob_json(found))

    inspect.help = f"Display detailed information on one or more {kind}s (JSON)."

    @group.command("rm")
    @click.argument("refs", nargs=-1, required=True, metavar=f"{upper}...")
    def rm(refs: tuple[str, ...]) -> None:
        rpc = client()

        def one(ref: str) -> None:
            rpc.call(rm_path, NameRef(ref=ref), BlobView)
            click.echo(ref)

        each(refs, one)

    rm.help = f"Remove one or more {kind}s (none that a service still uses)."
    return group


secret = blob_group(
    "secret",
    SECRET_PATHS,
    "Manage secrets: files for tasks that only the nodes running those tasks receive.",
)
config = blob_group(
    "config",
    CONFIG_PATHS,
    "Manage configs: files for tasks, in the clear.",
)
