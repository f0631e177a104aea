"""What the CLI shows: tables, JSON, node details, join instructions and errors, as text.

Owns the look of every output: plain columns like docker's (a rich table without borders,
never wrapped nor cut, no trailing blanks), JSON through ``api.codec`` with the api's own
field names, and the ``error:``/``hint:`` lines. Every function returns a string; printing
is left to the commands and to ``cli.main``, so each output can be tested as a value.
"""

from __future__ import annotations

import datetime
import io
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from swarmlite.api import Node, NodeRole, Task, TaskState, encode_json
from swarmlite.api.control import JoinTokenReply, ManagerStatus, NodeView
from swarmlite.errors import SwarmliteError

NODE_COLUMNS = (
    "ID",
    "HOSTNAME",
    "STATUS",
    "AVAILABILITY",
    "MANAGER STATUS",
    "ENGINE VERSION",
)
TASK_COLUMNS = ("ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR")
_COLUMN_GAP = 3
_PRETTY_LABEL_WIDTH = 24
_FAILED = (TaskState.FAILED, TaskState.REJECTED)

# --------------------------------------------------------------------------- generic


def table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Plain left-aligned columns three blanks apart, each as wide as its widest cell."""
    grid = Table(
        box=None,
        header_style="",
        show_edge=False,
        pad_edge=False,
        padding=(0, _COLUMN_GAP, 0, 0),
    )
    for column in columns:
        grid.add_column(column, no_wrap=True, overflow="ignore")
    for row in rows:
        # Text, not str: a hostname like "db[1]" must not be read as rich markup.
        grid.add_row(*(Text(cell) for cell in row))
    measure = Console(width=1_000_000, color_system=None)
    width = max(1, measure.measure(grid).maximum)
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        color_system=None,
        markup=False,
        highlight=False,
        emoji=False,
        soft_wrap=True,
    )
    console.print(grid)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def to_json(value: Any) -> str:
    """Indented JSON of api structs (or lists of them), enums as their lowercase names."""
    return msgspec.json.format(encode_json(value), indent=2).decode()


def title(word: str) -> str:
    """``ready`` -> ``Ready``: docker shows states and availabilities capitalized."""
    return word[:1].upper() + word[1:]


def ago(then: float, now: float) -> str:
    """``3 minutes ago``, as docker words the age of a state."""
    seconds = now - then
    if seconds < 1:
        return "Less than a second ago"
    units = ((604800, "week"), (86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))
    for size, unit in units:
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    raise AssertionError("unreachable: seconds >= 1 matches the last unit")


def timestamp(seconds: float) -> str:
    if not seconds:
        return ""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


# --------------------------------------------------------------------------- nodes


def manager_status(manager: ManagerStatus | None) -> str:
    if manager is None:
        return ""
    if manager.leader:
        return "Leader"
    return title(manager.reachability)


def engine_version(node: Node) -> str:
    version = getattr(node.status, "version", "")
    return version if isinstance(version, str) else ""


def sort_nodes(views: Iterable[NodeView]) -> list[NodeView]:
    return sorted(views, key=lambda view: (view.node.status.hostname, view.node.id))


def node_rows(views: Iterable[NodeView]) -> list[list[str]]:
    return [
        [
            view.node.id + (" *" if view.self else ""),
            view.node.status.hostname,
            title(view.node.status.state.value),
            title(view.node.spec.availability.value),
            manager_status(view.manager),
            engine_version(view.node),
        ]
        for view in sort_nodes(views)
    ]


def node_table(views: Iterable[NodeView]) -> str:
    return table(NODE_COLUMNS, node_rows(views))


def node_pretty(view: NodeView) -> str:
    """``node inspect --pretty``: the node in words, one field a line."""
    node = view.node
    lines: list[tuple[str, str] | str] = [
        ("ID", node.id),
        ("Hostname", node.status.hostname),
        ("Joined at", timestamp(node.created_at)),
        "Status:",
        (" State", title(node.status.state.value)),
        (" Availability", title(node.spec.availability.value)),
        (" Address", node.status.addresses[0] if node.status.addresses else ""),
    ]
    if node.status.message:
        lines.append((" Message", node.status.message))
    if view.manager is not None:
        lines += [
            "Manager Status:",
            (" Address", view.manager.addr),
            (" Raft Status", title(view.manager.reachability)),
            (" Leader", "Yes" if view.manager.leader else "No"),
        ]
    if node.spec.labels:
        lines.append("Labels:")
        lines += [f" - {key}={value}" for key, value in sorted(node.spec.labels.items())]
    lines.append(("Engine Version", engine_version(node)))
    return "\n".join(
        line if isinstance(line, str) else f"{line[0] + ':':<{_PRETTY_LABEL_WIDTH}}{line[1]}"
        for line in lines
    )


# --------------------------------------------------------------------------- tasks


def task_rows(tasks: Iterable[Task], now: float) -> list[list[str]]:
    return [
        [
            task.id,
            task.name if task.service_name else f"{task.service_id}.{task.slot or task.node_id}",
            task.spec.container.image,
            task.node_id,
            title(task.desired_state.value),
            f"{title(task.status.state.value)} {ago(task.status.timestamp, now)}",
            (task.status.err or task.status.message) if task.status.state in _FAILED else "",
        ]
        for task in tasks
    ]


def task_table(tasks: Iterable[Task], now: float) -> str:
    return table(TASK_COLUMNS, task_rows(tasks, now))


# --------------------------------------------------------------------------- joining


def join_command(reply: JoinTokenReply) -> str:
    address = reply.managers[0] if reply.managers else "<manager-address>"
    return f"swarmlite join --token {reply.token} {address}"


def join_instructions(role: NodeRole, reply: JoinTokenReply) -> str:
    """What ``join-token ROLE`` prints: the command a new node runs, docker's wording."""
    return (
        f"To add a {role.value} to this cluster, run the following command:\n\n"
        f"    {join_command(reply)}\n"
    )


def init_message(node_id: str, worker: JoinTokenReply | None) -> str:
    lines = [f"swarmlite initialized: current node ({node_id}) is now a manager.", ""]
    if worker is not None:
        lines += [join_instructions(NodeRole.WORKER, worker)]
    else:  # a foreground daemon cannot be asked yet: point at the command instead
        lines += [
            "To add a worker to this cluster, run 'swarmlite join-token worker' and follow "
            "the instructions.",
            "",
        ]
    lines.append(
        "To add a manager to this cluster, run 'swarmlite join-token manager' and follow "
        "the instructions."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- errors


def error_text(message: str, hint: str | None, *, traceback_of: BaseException | None = None) -> str:
    """``error: ...`` and ``hint: ...`` lines, after the traceback when one is asked for."""
    parts = []
    if traceback_of is not None:
        parts.append("".join(traceback.format_exception(traceback_of)).rstrip())
    parts.append(f"error: {message}")
    if hint:
        parts.append(f"hint: {hint}")
    return "\n".join(parts)


def error_json(
    code: str,
    message: str,
    hint: str | None,
    details: dict[str, Any] | None = None,
    *,
    traceback_of: BaseException | None = None,
) -> str:
    """The error as one JSON object: ``{code, message, hint, details}`` (+ ``traceback``)."""
    document: dict[str, Any] = {
        "code": code,
        "message": message,
        "hint": hint,
        "details": details or {},
    }
    if traceback_of is not None:
        document["traceback"] = "".join(traceback.format_exception(traceback_of))
    return msgspec.json.encode(document, enc_hook=repr).decode()


def swarmlite_error_text(exc: SwarmliteError, *, debug: bool) -> str:
    return error_text(exc.message, exc.hint, traceback_of=exc if debug else None)


def swarmlite_error_json(exc: SwarmliteError, *, debug: bool) -> str:
    return error_json(
        exc.code, exc.message, exc.hint, exc.details, traceback_of=exc if debug else None
    )
