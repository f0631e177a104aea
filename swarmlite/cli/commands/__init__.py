"""What the command modules share: the invocation's settings, option types and helpers.

Owns ``--format`` (which also makes errors JSON) and ``-f/--filter`` as options, the
duration and key=value option types, and ``each``, which applies one call to several
references and reports every failure, not only the first. Does not own any command (one
module per noun), what a format prints (``cli.format``) nor how an error is printed
(``cli.main``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from swarmlite.api import durations
from swarmlite.api.filters import parse_filters
from swarmlite.cli import format
from swarmlite.cli.client import Client, Settings
from swarmlite.errors import InternalError, SwarmliteError

F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Settings:
    """The global options of the running invocation."""
    found = click.get_current_context().find_object(Settings)
    if found is None:  # only when a command is invoked outside `swarmlite`'s group
        raise InternalError("command run without the swarmlite settings object")
    return found


def client() -> Client:
    return settings().client()


def _remember_format(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    found = ctx.find_object(Settings)
    if found is not None:
        found.json_errors = format.is_json(value)
    format.check(value)
    return value


_TABLE_HELP = (
    "Output format: 'table' (the default), 'table TEMPLATE' (a Go template, with a "
    "header row), 'json' (one object a line; errors become JSON too) or 'TEMPLATE' "
    "(e.g. '{{.ID}}\\t{{.Name}}')."
)
_OBJECT_HELP = (
    "Output format: 'json' (compact; errors become JSON too) or a Go template "
    "(e.g. '{{.Spec.Name}}', '{{json .Spec}}')."
)


def format_option(default: str | None = "table") -> Callable[[F], F]:
    """``--format``: ``table``, ``table TEMPLATE``, ``json`` or ``TEMPLATE``, as docker's
    listings take it (``cli.format`` prints each form); ``--format json`` makes errors JSON
    on stderr too. A template that does not parse is refused before any call.

    ``default=None`` is for commands that print one object or a JSON array (``inspect``,
    ``version``, ``info``): as docker's, they also take ``-f`` for ``--format``.
    """
    names = ("--format", "output") if default is not None else ("-f", "--format", "output")
    return click.option(
        *names,
        default=default,
        metavar="FORMAT",
        show_default=False,
        callback=_remember_format,
        help=_TABLE_HELP if default is not None else _OBJECT_HELP,
    )


def _filters(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, list[str]]:
    return parse_filters(values)


def filter_option() -> Callable[[F], F]:
    """``-f/--filter key=value``, repeatable: docker's filters, checked by the server."""
    return click.option(
        "-f",
        "--filter",
        "filters",
        multiple=True,
        metavar="FILTER",
        callback=_filters,
        help="Filter output based on conditions provided (key=value; repeat for more).",
    )


def task_list_options() -> Callable[[F], F]:
    """What every `ps` takes (`node ps`, `service ps`, `stack ps`), as docker has it."""
    options = (
        filter_option(),
        format_option(),
        click.option("--no-resolve", is_flag=True, help="Do not map IDs to Names."),
        click.option("--no-trunc", is_flag=True, help="Do not truncate output."),
        click.option("-q", "--quiet", is_flag=True, help="Only display task IDs."),
    )

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


# --------------------------------------------------------------------------- option types


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (``2160h0m0s``, ``90d``, ``1h30m``, ``3600s``); days
    are allowed here, signs are not."""
    seconds = None if text[:1] in ("+", "-") else durations.parse_duration(text, days=True)
    if seconds is None:
        raise ValueError(f"{text!r} is not a duration such as 2160h0m0s, 90d or 3600s")
    return seconds


class Duration(click.ParamType[float]):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            seconds = parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} must be longer than zero", param, ctx)
        return seconds


def parse_labels(values: Iterable[str]) -> dict[str, str]:
    """``k=v`` pairs (a bare ``k`` means an empty value, as docker takes it)."""
    labels: dict[str, str] = {}
    for value in values:
        key, _, text = value.partition("=")
        if not key:
            raise click.BadParameter(f"{value!r} has no key (expected key=value)")
        labels[key] = text
    return labels


# --------------------------------------------------------------------------- several refs


def each(refs: Iterable[str], action: Callable[[str], None]) -> None:
    """Run ``action`` on every ref; afterwards raise the failure, or all of them as one."""
    failures: list[tuple[str, SwarmliteError]] = []
    for ref in refs:
        try:
            action(ref)
        except SwarmliteError as exc:
            failures.append((ref, exc))
    if len(failures) == 1:
        raise failures[0][1]
    if failures:
        first = failures[0][1]
        raise type(first)(
            "; ".join(exc.message for _, exc in failures),
            hint=first.hint,
            details={"failed": [ref for ref, _ in failures]},
        )
