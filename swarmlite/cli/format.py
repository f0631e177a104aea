"""Docker's ``--format``: ``table``, ``table TEMPLATE``, ``json`` and ``TEMPLATE``, for a
listing's rows and for ``inspect``'s objects.

Owns how each form prints, as docker's CLI does (cli/command/formatter, cli/command/inspect):

- ``table`` (the default): the listing's own ``table ...`` template; with ``-q``, ``{{.ID}}``;
- ``table TEMPLATE``: a header row made of the fields' column names (``{{.CreatedAt}}`` is
  headed ``CREATED AT``; a listing may name its own), then one row per item, cells split
  on tabs and aligned like ``render.table``;
- ``json``: one compact JSON object per row, docker's field names as keys, sorted;
- ``TEMPLATE``: the template once per row (or object), each followed by a newline.

In a template ``\\t`` and ``\\n`` are a tab and a newline, and leading and trailing blanks
are dropped, as docker does. ``inspect`` prints an indented JSON array without a format.
A template that does not parse is a UsageError, one that fails on a row (a field that is
not there) an InvalidArgument; both name the template and carry Go's words. The template
language is ``cli.gotemplate``'s. Every function returns the exact text to write (each line
ending in a newline, nothing at all for no rows): ``click.echo(text, nl=False)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from swarmlite.cli.gotemplate import HEADER_FUNCTIONS, Record, Template, TemplateError, to_json
from swarmlite.errors import InvalidArgument, UsageError

TABLE = "table"
JSON = "json"
QUIET = "{{.ID}}"
_COLUMN_GAP = 3  # as render.table: columns three blanks apart, no trailing blanks


def is_json(fmt: str | None) -> bool:
    """``--format json``: rows (or objects) as JSON, and errors as JSON too."""
    return fmt == JSON


def is_table(fmt: str | None) -> bool:
    return fmt is None or fmt.startswith(TABLE)


def template_text(fmt: str) -> str:
    """What docker executes for ``fmt``: ``table`` dropped, blanks trimmed, escapes read."""
    if fmt == JSON:
        return "{{json .}}"
    text = fmt.removeprefix(TABLE) if fmt.startswith(TABLE) else fmt
    return text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def parse(fmt: str) -> Template:
    """The template of ``fmt``; UsageError if it does not parse."""
    try:
        return Template(template_text(fmt))
    except TemplateError as exc:
        raise UsageError(
            f"--format {fmt!r}: {exc.message}",
            hint="--format takes table, json, or a Go template such as '{{.ID}}\\t{{.Name}}'",
            details={"template": fmt},
        ) from None


def check(fmt: str | None) -> None:
    """Refuse a template that does not parse before anything is asked of the daemon."""
    if fmt and fmt != TABLE:
        parse(fmt)


def _execute(template: Template, fmt: str, data: Any, hint: str) -> str:
    try:
        return template.execute(data)
    except TemplateError as exc:
        raise InvalidArgument(
            f"--format {fmt!r}: {exc.message}", hint=hint, details={"template": fmt}
        ) from None


# --------------------------------------------------------------------------- rows


def column_name(field: str) -> str:
    """``CreatedAt`` -> ``CREATED AT``, ``ID`` -> ``ID``: a field's default column name."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", field).upper()


class _Headers(Record):
    """The header row's data: every field answers its column's name."""

    def __init__(self, names: Mapping[str, str]) -> None:
        super().__init__(names)

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> Any:
        if key == "Label":  # docker's header of {{.Label "com.example.key"}}: "key"
            return lambda name: re.sub(r"[-_]", " ", str(name).split(".")[-1])
        return column_name(key)


_ACTION = re.compile(r"{{.*?}}", re.DOTALL)
_LAST_FIELD = re.compile(r"\.([A-Za-z_]\w*)(?!.*\.[A-Za-z_])", re.DOTALL)


def _header(template: Template, headers: Mapping[str, str]) -> str:
    try:
        return Template(template.source, HEADER_FUNCTIONS).execute(_Headers(headers))
    except TemplateError:  # docker ignores it too; name each action by its last field

        def name(match: re.Match[str]) -> str:
            found = _LAST_FIELD.search(match.group())
            return headers.get(found.group(1), column_name(found.group(1))) if found else ""

        return _ACTION.sub(name, template.source)


def render_rows(
    fmt: str | None,
    rows: Sequence[Mapping[str, Any]],
    default_table: str,
    *,
    headers: Mapping[str, str] | None = None,
    quiet: bool = False,
) -> str:
    """A listing under ``--format fmt``: ``rows`` are docker's fields of each item (a
    callable value is a method with arguments, ``Label``); ``default_table`` is the
    listing's ``table ...`` template; ``headers`` names the columns whose names are not
    ``column_name``'s; ``quiet`` (``-q``) prints ``{{.ID}}`` unless a format is given."""
    fmt = fmt or TABLE
    if fmt == TABLE:
        fmt = QUIET if quiet else default_table
    template = parse(fmt)
    records = [row if isinstance(row, Record) else Record(row) for row in rows]
    fields = sorted({key for row in records for key in row if not callable(row[key])})
    hint = "the fields are " + ", ".join(fields) if fields else "check the field names"
    lines = [_execute(template, fmt, row, hint) + "\n" for row in records]
    if not is_table(fmt):
        return "".join(lines)
    return align(_header(template, headers or {}) + "\n" + "".join(lines))


# --------------------------------------------------------------------------- objects


def render_object(fmt: str | None, obj: Any, pretty: Callable[[], str] | None = None) -> str:
    """One object (``version``, ``info``): ``json`` compact, a template executed on it,
    else ``pretty()`` (the command's own words) or indented JSON."""
    if fmt == JSON:
        return to_json(obj) + "\n"
    if fmt and fmt != TABLE:
        return _execute(parse(fmt), fmt, obj, "the command without --format shows the fields") + (
            "\n"
        )
    if pretty is not None:
        return pretty() + "\n"
    return to_json(obj, indent=4) + "\n"


def render_inspect(fmt: str | None, objects: Sequence[Any]) -> str:
    """``inspect``: an indented JSON array without a format (docker's four blanks), a
    compact one for ``json``, else the template once per object."""
    if not fmt:
        return to_json(list(objects), indent=4) + "\n" if objects else "[]\n"
    if fmt == JSON:
        return to_json(list(objects)) + "\n"
    template = parse(fmt)
    hint = "inspect without --format shows the fields"
    out = "".join(_execute(template, fmt, obj, hint) + "\n" for obj in objects)
    return out or "\n"


# --------------------------------------------------------------------------- alignment


def align(text: str) -> str:
    """Go's tabwriter on ``text``: the cells of a column (a run of lines that have a cell
    there) as wide as the widest, three blanks apart; the last cell of a line is not
    padded; trailing blanks dropped."""
    lines = [line.split("\t") for line in text.split("\n")]
    if lines and lines[-1] == [""]:
        lines.pop()
    out: list[str] = []

    def write(first: int, end: int, widths: list[int]) -> None:
        for cells in lines[first:end]:
            text = "".join(
                cell.ljust(widths[j]) if j < len(widths) else cell for j, cell in enumerate(cells)
            )
            out.append(text.rstrip())

    def block(first: int, end: int, widths: list[int]) -> None:
        column = len(widths)
        this = first
        while this < end:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write(first, this, widths)
            first = this
            width = 0
            while this < end and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + _COLUMN_GAP)
                this += 1
            block(first, this, [*widths, width])
            first = this
        write(first, end, widths)

    block(0, len(lines), [])
    return "".join(line + "\n" for line in out)
