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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from swarmlite.api import (
    Node,
    NodeRole,
    Service,
    ServiceMode,
    Task,
    TaskState,
    UpdateConfig,
    UpdateState,
    encode_json,
)
from swarmlite.api.control import (
    BlobView,
    JoinTokenReply,
    LogLine,
    ManagerStatus,
    NetworkView,
    NodeView,
    ServiceView,
    StackDeployReply,
    StackInfo,
)
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


# --------------------------------------------------------------------------- services and stacks

SERVICE_COLUMNS = ("ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS")
SERVICE_TASK_COLUMNS = (*TASK_COLUMNS, "PORTS")
STACK_COLUMNS = ("NAME", "SERVICES")
SHORT_ID = 12  # docker's truncated ids
_MAX_ERROR = 30  # docker cuts a task's error to this many characters unless --no-trunc
_UPDATING = {
    UpdateState.UPDATING: "updating",
    UpdateState.ROLLBACK_STARTED: "rolling back",
}


def short_id(object_id: str, *, no_trunc: bool = False) -> str:
    return object_id if no_trunc else object_id[:SHORT_ID]


def service_mode(mode: ServiceMode) -> str:
    """``replicated``, ``global``, ``replicated job``, ``global job``: docker's words."""
    return mode.value.replace("-", " ")


def service_ports(service: Service, *, mode: str | None = None) -> str:
    """Published ports as docker lists them: ``*:8080->80/tcp`` (the ports the allocator
    chose, else the spec's); only those published in ``mode`` if given."""
    ports = service.endpoint.ports or service.spec.endpoint.ports
    return ", ".join(
        f"*:{port.published}->{port.target}/{port.protocol}"
        for port in ports
        if port.published and (mode is None or port.mode == mode)
    )


def service_replicas(view: ServiceView, jobs: Mapping[str, tuple[int, int]]) -> str:
    """``running/desired``; ``completed/total completed`` for a job (from ``jobs[id]``)."""
    spec = view.service.spec
    if spec.mode.is_job:
        completed, total = jobs.get(view.service.id, (0, 0))
        return f"{completed}/{total} completed"
    text = f"{view.running}/{view.desired}"
    if spec.mode is ServiceMode.REPLICATED and spec.task.placement.max_replicas_per_node:
        text += f" (max {spec.task.placement.max_replicas_per_node} per node)"
    return text


def sort_services(views: Iterable[ServiceView]) -> list[ServiceView]:
    return sorted(views, key=lambda view: (view.service.spec.name, view.service.id))


def service_rows(
    views: Iterable[ServiceView], jobs: Mapping[str, tuple[int, int]] | None = None
) -> list[list[str]]:
    return [
        [
            short_id(view.service.id),
            view.service.spec.name,
            service_mode(view.service.spec.mode),
            service_replicas(view, jobs or {}),
            view.service.spec.image,
            service_ports(view.service),
        ]
        for view in sort_services(views)
    ]


def service_table(
    views: Iterable[ServiceView], jobs: Mapping[str, tuple[int, int]] | None = None
) -> str:
    return table(SERVICE_COLUMNS, service_rows(views, jobs))


def _image(image: str, no_trunc: bool) -> str:
    return image if no_trunc else image.partition("@")[0]  # docker hides the digest


def _task_error(task: Task, no_trunc: bool) -> str:
    if task.status.state not in _FAILED:
        return ""
    text = task.status.err or task.status.message
    if not text:
        return ""
    if not no_trunc and len(text) > _MAX_ERROR:
        text = text[: _MAX_ERROR - 1] + "\u2026"
    return f'"{text}"'


def sort_service_tasks(tasks: Iterable[Task]) -> list[tuple[Task, bool]]:
    """Tasks as ``service ps`` lists them: by service and slot (or node), newest first in
    each; the flag says whether a task is an older one of its slot (shown under it)."""
    ordered = sorted(
        tasks,
        key=lambda task: (
            task.service_name,
            task.slot,
            task.node_id if not task.slot else "",
            -task.created_at,
            task.id,
        ),
    )
    shown: list[tuple[Task, bool]] = []
    previous: tuple[str, int, str] | None = None
    for task in ordered:
        slot = (task.service_name, task.slot, task.node_id if not task.slot else "")
        shown.append((task, slot == previous))
        previous = slot
    return shown


def service_task_rows(
    tasks: Iterable[Task],
    *,
    hostnames: Mapping[str, str],
    ports: Mapping[str, str],
    now: float,
    no_trunc: bool = False,
) -> list[list[str]]:
    """Rows of ``service ps``/``stack ps``: NODE is the hostname, PORTS the host-mode ports
    (``ports`` by service id) of a running task."""
    return [
        [
            short_id(task.id, no_trunc=no_trunc),
            (" \\_ " if older else "") + task.name,
            _image(task.spec.container.image, no_trunc),
            hostnames.get(task.node_id, task.node_id),
            title(task.desired_state.value),
            f"{title(task.status.state.value)} {ago(task.status.timestamp, now)}",
            _task_error(task, no_trunc),
            ports.get(task.service_id, "") if task.status.state is TaskState.RUNNING else "",
        ]
        for task, older in sort_service_tasks(tasks)
    ]


def service_task_table(
    tasks: Iterable[Task],
    *,
    hostnames: Mapping[str, str],
    ports: Mapping[str, str],
    now: float,
    no_trunc: bool = False,
) -> str:
    rows = service_task_rows(tasks, hostnames=hostnames, ports=ports, now=now, no_trunc=no_trunc)
    return table(SERVICE_TASK_COLUMNS, rows)


def stack_table(stacks: Iterable[StackInfo]) -> str:
    rows = [[info.name, str(info.services)] for info in sorted(stacks, key=lambda s: s.name)]
    return table(STACK_COLUMNS, rows)


NETWORK_COLUMNS = ("NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET")


def network_table(views: Iterable[NetworkView], *, no_trunc: bool = False) -> str:
    """``network ls``: docker's columns, plus the subnet the cluster gave each network."""
    rows = [
        [
            short_id(v.network.id, no_trunc=no_trunc),
            v.network.spec.name,
            v.network.spec.driver,
            "swarm",
            v.network.status.subnet or "(not allocated yet)",
        ]
        for v in sorted(views, key=lambda v: (v.network.spec.name, v.network.id))
    ]
    return table(NETWORK_COLUMNS, rows)


BLOB_COLUMNS = ("ID", "NAME", "CREATED", "UPDATED")


def blob_table(views: Iterable[BlobView], now: float, *, no_trunc: bool = False) -> str:
    """``secret ls``, ``config ls``: docker's columns, in the order given."""
    rows = [
        [
            short_id(v.object.id, no_trunc=no_trunc),
            v.object.spec.name,
            ago(v.object.created_at, now),
            ago(v.object.updated_at or v.object.created_at, now),
        ]
        for v in views
    ]
    return table(BLOB_COLUMNS, rows)


def blob_json(views: Iterable[BlobView]) -> str:
    """``inspect`` of secrets and configs; a secret shows no content (not even empty)."""
    items = msgspec.json.decode(encode_json(list(views)))
    for item in items:
        if item["object"]["kind"] == "secret":
            item["object"]["spec"].pop("data", None)
    return to_json(items)


def seconds(value: float) -> str:
    """``5s``, ``1m30s``, ``500ms``: a duration as docker prints one."""
    if value < 1:
        return f"{value * 1000:g}ms" if value else "0s"
    minutes, rest = divmod(value, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return text + f"{rest:g}s"


def _pretty(lines: Iterable[tuple[str, str] | str]) -> str:
    return "\n".join(
        line if isinstance(line, str) else f"{line[0] + ':':<{_PRETTY_LABEL_WIDTH}}{line[1]}"
        for line in lines
    )


def _update_config_lines(config: UpdateConfig) -> list[tuple[str, str] | str]:
    return [
        (" Parallelism", str(config.parallelism)),
        (" On failure", config.failure_action.value),
        (" Delay", seconds(config.delay)),
        (" Monitoring Period", seconds(config.monitor)),
        (" Max failure ratio", f"{config.max_failure_ratio:g}"),
        (" Update order", config.order.value),
    ]


def service_pretty(service: Service) -> str:
    """``service inspect --pretty``: the service in words, one field a line, docker's order."""
    spec = service.spec
    container = spec.task.container
    lines: list[tuple[str, str] | str] = [("ID", service.id), ("Name", spec.name)]
    if spec.labels:
        lines.append("Labels:")
        lines += [f" {key}={value}" for key, value in sorted(spec.labels.items())]
    lines.append(("Service Mode", title(service_mode(spec.mode))))
    if spec.mode is ServiceMode.REPLICATED:
        lines.append((" Replicas", str(spec.replicas)))
    elif spec.mode is ServiceMode.REPLICATED_JOB:
        lines += [
            (" Max Concurrent Tasks", str(spec.job.max_concurrent)),
            (" Total Completions", str(spec.job.total_completions)),
        ]
    status = service.update_status
    if status is not None:
        lines += ["UpdateStatus:", (" State", status.state.value)]
        if status.started_at:
            lines.append((" Started", timestamp(status.started_at)))
        if status.completed_at:
            lines.append((" Completed", timestamp(status.completed_at)))
        if status.message:
            lines.append((" Message", status.message))
    placement = spec.task.placement
    lines.append("Placement:")
    if placement.constraints:
        lines.append((" Constraints", "[" + " ".join(placement.constraints) + "]"))
    if placement.preferences:
        lines.append((" Preferences", ", ".join(f"spread={p}" for p in placement.preferences)))
    if placement.max_replicas_per_node:
        lines.append((" Max Replicas Per Node", str(placement.max_replicas_per_node)))
    lines.append("UpdateConfig:")
    lines += _update_config_lines(spec.update_config or UpdateConfig())
    lines.append("RollbackConfig:")
    lines += _update_config_lines(spec.rollback_config or UpdateConfig())
    lines += ["", "ContainerSpec:", (" Image", container.image)]
    if container.entrypoint is not None:
        lines.append((" Entrypoint", " ".join(container.entrypoint)))
    if container.command is not None:
        lines.append((" Args", " ".join(container.command)))
    if container.env:
        lines.append((" Env", " ".join(container.env)))
    if container.user:
        lines.append((" User", container.user))
    if container.mounts:
        lines.append("Mounts:")
        lines += [
            f" Target: {m.target}  Source: {m.source}  Type: {m.type}" for m in container.mounts
        ]
    limits = spec.task.resources.limits
    if limits.nano_cpus or limits.memory_bytes:
        lines.append("Resources:")
        lines.append(" Limits:")
        if limits.nano_cpus:
            lines.append(("  CPU", f"{limits.nano_cpus / 1e9:g}"))
        if limits.memory_bytes:
            lines.append(("  Memory", f"{limits.memory_bytes} B"))
    if spec.task.networks:
        lines.append(("Networks", " ".join(n.target for n in spec.task.networks)))
    lines.append(("Endpoint Mode", spec.endpoint.mode))
    if spec.endpoint.ports:
        lines.append("Ports:")
        for port in spec.endpoint.ports:
            lines += [
                f" PublishedPort = {port.published}",
                f"  Protocol = {port.protocol}",
                f"  TargetPort = {port.target}",
                f"  PublishMode = {port.mode}",
            ]
    return _pretty(lines)


@dataclass(frozen=True, kw_only=True)
class ServiceProgress:
    """Where one service stands while a command waits for it: what its progress line shows."""

    name: str
    job: bool = False
    running: int = 0  # tasks of the current spec running (and healthy, with a healthcheck)
    desired: int = 0
    completed: int = 0  # jobs: completions of this run
    total: int = 0  # jobs: completions wanted
    update: UpdateState | None = None
    pending: tuple[str, ...] = ()  # why each pending task waits ("" when unknown)
    failed: int = 0  # tasks of the current spec that failed since the command began
    error: str = ""  # the latest of their errors


def progress_line(progress: ServiceProgress) -> str:
    """``web: 3/3 running``, ``api: updating 2/4``, ``migrate: 0/1 completed``, with the
    pending and failed tasks after a comma."""
    if progress.job:
        text = f"{progress.name}: {progress.completed}/{progress.total} completed"
    else:
        doing = _UPDATING.get(progress.update) if progress.update is not None else None
        counts = f"{progress.running}/{progress.desired}"
        text = f"{progress.name}: " + (f"{doing} {counts}" if doing else f"{counts} running")
    if progress.pending:
        reasons = sorted({reason for reason in progress.pending if reason})
        text += f", {len(progress.pending)} pending" + (
            f" ({'; '.join(reasons)})" if reasons else ""
        )
    if progress.failed:
        text += f", {progress.failed} failed" + (f" ({progress.error})" if progress.error else "")
    return text


def deploy_lines(reply: StackDeployReply) -> list[str]:
    """``Creating service shop_web`` and the like, for what one deploy call changed."""
    return (
        [f"Creating service {name}" for name in reply.created]
        + [f"Updating service {name}" for name in reply.updated]
        + [f"Removing service {name}" for name in reply.removed]
    )


def log_time(seconds_since_epoch: float) -> str:
    """RFC 3339 with nanoseconds in UTC, as docker's ``logs -t`` prints a time."""
    whole = int(seconds_since_epoch)
    nanos = round((seconds_since_epoch - whole) * 1e6) * 1000
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, 0
    moment = datetime.datetime.fromtimestamp(whole, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def log_line(line: LogLine, hostname: str, *, timestamps: bool = False) -> str:
    """``shop_web.1.abcdefghijkl@node-1    | the line``, docker's ``service logs`` shape."""
    prefix = f"{line.task_name}.{short_id(line.task_id)}@{hostname or line.node_id}"
    stamp = f"{log_time(line.timestamp)} " if timestamps else ""
    return f"{prefix}    | {stamp}{line.line}"


def compose_warning(path: str, line: int | None, key: str, message: str) -> str:
    """``warning: compose.yml:12: services.web.build: ignored``: a compose key that
    swarmlite ignores, and where it is."""
    where = f"{path}:{line}" if line else path
    return f"warning: {where}: {key}: {message}" if key else f"warning: {where}: {message}"


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
