"""`swarmlite events`: the cluster's changes as they happen, as `docker events` shows them.

Owns the command's options (``--since``, ``--until``, ``-f/--filter``, ``--format``) and the
line it prints: the event's local time (nine fraction digits), type, action and object id,
then its attributes sorted, in parentheses, as docker prints them; ``by`` (who asked) and
``reason`` (why) are swarmlite's attributes. ``--format`` templates see Docker's events
message (``{{.Type}}``, ``{{.Action}}``, ``{{.Actor.ID}}``, ``{{.Actor.Attributes.name}}``,
``{{json .}}``). The events come from the leader's event log (``manager/events.py``).
"""

from __future__ import annotations

import datetime
from typing import Any

import click

from swarmlite.api.control import ClusterEvent, EventsRequest
from swarmlite.api.dockerjson import event_json
from swarmlite.api.routes import EVENTS
from swarmlite.cli import format
from swarmlite.cli.commands import client, filter_option
from swarmlite.cli.flagtypes import Since
from swarmlite.errors import UsageError


def event_line(message: dict[str, Any]) -> str:
    """Docker's line for one events message."""
    nanos: int = message["timeNano"]
    moment = datetime.datetime.fromtimestamp(nanos // 1_000_000_000).astimezone()
    offset = moment.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    stamp = f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos % 1_000_000_000:09d}{zone}"
    actor = message["Actor"]
    line = f"{stamp} {message['Type']} {message['Action']} {actor['ID']}"
    attributes = actor["Attributes"]
    if attributes:
        line += " (" + ", ".join(f"{k}={attributes[k]}" for k in sorted(attributes)) + ")"
    return line


def _checked_format(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    format.check(value)
    return value


@click.command("events")
@filter_option()
@click.option(
    "--format",
    "output",
    metavar="FORMAT",
    callback=_checked_format,
    help="Format the output: 'json' (one message a line) or a Go template "
    "(e.g. '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}').",
)
@click.option("--since", type=Since(), help="Show all events created since timestamp.")
@click.option("--until", type=Since(), help="Stream events until this timestamp.")
def events(
    filters: dict[str, list[str]], output: str | None, since: float | None, until: float | None
) -> None:
    """Get real time events from the cluster.

    Without --since, only events from now on; without --until, the stream goes on until
    interrupted. Times are timestamps ("2026-12-07T10:00:00"), epoch seconds or durations
    back from now ("10m")."""
    if since is not None and until is not None and until < since:
        raise UsageError("--until must not be before --since")

    def show(event: ClusterEvent) -> None:
        message = event_json(event)
        text = format.render_object(output, message, pretty=lambda: event_line(message))
        click.echo(text, nl=False)

    client().each(EVENTS, EventsRequest(since=since, until=until, filters=filters), show)
