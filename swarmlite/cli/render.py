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
    AutoscaleStatus,
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
from swarmlite.api.autoscale import autoscale_spec
from swarmlite.api.control import (
    JoinTokenReply,
    LogLine,
    ManagerStatus,
    NodeView,
    ServiceView,
    StackDeployReply,
)
from swarmlite.api.dockerjson import rfc3339
from swarmlite.errors import SwarmliteError

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


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration, docker's words for a length of time: ``Less than a second``,
    ``1 second``, ``About a minute``, ``3 hours``, ``2 weeks``, ``3 months``."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds // 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"


def ago(then: float, now: float) -> str:
    """``3 minutes ago``, ``About a minute ago``: docker's words for the age of a thing (a
    task's state lower-cases them: ``Running about a minute ago``)."""
    return human_duration(now - then) + " ago"


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


def byte_size(size: float) -> str:
    """go-units' BytesSize, as docker shows a node's memory: ``7.637GiB``, ``512MiB``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    index = 0
    while size >= 1024 and index < len(units) - 1:
        size /= 1024
        index += 1
    return f"{size:.4g}{units[index]}"


def node_pretty(view: NodeView, now: float) -> str:
    """``node inspect --pretty``: the node in words, one field a line, docker's order (and
    when the leader last heard from it)."""
    node = view.node
    lines: list[tuple[str, str] | str] = [("ID", node.id)]
    if node.spec.labels:
        lines.append("Labels:")
        lines += [f" - {key}={value}" for key, value in sorted(node.spec.labels.items())]
    lines += [
        ("Hostname", node.status.hostname),
        ("Joined at", timestamp(node.created_at)),
        "Status:",
        (" State", title(node.status.state.value)),
        (" Availability", title(node.spec.availability.value)),
        (" Address", node.status.addresses[0] if node.status.addresses else ""),
    ]
    if node.status.message:
        lines.append((" Message", node.status.message))
    if view.last_heartbeat:
        lines.append((" Last heartbeat", ago(view.last_heartbeat, now)))
    if view.manager is not None:
        lines += [
            "Manager Status:",
            (" Address", view.manager.addr),
            (" Raft Status", title(view.manager.reachability)),
            (" Leader", "Yes" if view.manager.leader else "No"),
        ]
    lines += [
        "Platform:",
        (" Operating System", node.status.os),
        (" Architecture", node.status.arch),
        "Resources:",
        (" CPUs", f"{node.status.nano_cpus // 1_000_000_000}"),
        (" Memory", byte_size(node.status.memory_bytes)),
    ]
    if node.status.generic_resources:
        texts = (f"{r.kind}={r.value}" for r in node.status.generic_resources)
        lines.append((" Generic Resources", ", ".join(texts)))
    lines += [
        ("Engine Version", engine_version(node)),
    ]
    return "\n".join(
        line if isinstance(line, str) else f"{line[0] + ':':<{_PRETTY_LABEL_WIDTH}}{line[1]}"
        for line in lines
    )


# --------------------------------------------------------------------------- services and stacks

# docker's default `service ls` and `service ps` tables (rows: service_fields, service_task_fields)
SERVICE_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}"
SERVICE_TASK_TABLE = (
    "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}"
    "\t{{.Error}}\t{{.Ports}}"
)
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


def service_fields(
    views: Iterable[ServiceView],
    jobs: Mapping[str, tuple[int, int]] | None = None,
    *,
    no_trunc: bool = False,
) -> list[dict[str, str]]:
    """``service ls`` rows by docker's field names (``--format '{{.Name}}'``), sorted."""
    return [
        {
            "ID": short_id(view.service.id, no_trunc=no_trunc),
            "Name": view.service.spec.name,
            "Mode": service_mode(view.service.spec.mode),
            "Replicas": service_replicas(view, jobs or {}),
            "Image": _image(view.service.spec.image, no_trunc),
            "Ports": service_ports(view.service),
        }
        for view in sort_services(views)
    ]


def _image(image: str, no_trunc: bool) -> str:
    return image if no_trunc else image.partition("@")[0]  # docker hides the digest


def _task_error(task: Task, no_trunc: bool) -> str:
    # docker's ERROR column also says why a pending task has no node (swarmkit's Err)
    if task.status.state is TaskState.PENDING:
        text = task.status.pending_reason
    elif task.status.state not in _FAILED:
        return ""
    else:
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


def service_task_fields(
    tasks: Iterable[Task],
    *,
    hostnames: Mapping[str, str] | None,
    ports: Mapping[str, str],
    now: float,
    no_trunc: bool = False,
    indent: bool = True,
) -> list[dict[str, str]]:
    """``service ps``/``stack ps`` rows by docker's field names: Node is the hostname
    (the node id when ``hostnames`` is None: ``--no-resolve``, which also names a task by
    its service's id), Ports the host-mode ports (``ports`` by service id) of a running
    task; ``indent`` puts an older task of a slot under the current one."""
    rows: list[dict[str, str]] = []
    for task, older in sort_service_tasks(tasks):
        if hostnames is None:
            name, node = f"{task.service_id}.{task.slot or task.node_id}", task.node_id
        else:
            name, node = task.name, hostnames.get(task.node_id, task.node_id)
        running = task.status.state is TaskState.RUNNING
        rows.append(
            {
                "ID": short_id(task.id, no_trunc=no_trunc),
                "Name": (" \\_ " if older and indent else "") + name,
                "Image": _image(task.spec.container.image, no_trunc),
                "Node": node,
                "DesiredState": title(task.desired_state.value),
                "CurrentState": f"{title(task.status.state.value)} "
                f"{ago(task.status.timestamp, now).lower()}",  # docker: "about a minute ago"
                "Error": _task_error(task, no_trunc),
                "Ports": ports.get(task.service_id, "") if running else "",
            }
        )
    return rows


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
    lines += _autoscale_lines(service)
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
    return rfc3339(seconds_since_epoch, fixed=True)


def log_line(
    line: LogLine, prefix: str | None, *, timestamps: bool = False, details: str = ""
) -> str:
    """``[time ]shop_web.1.abcdefghijkl@node-1    | [details ]the line``, docker's
    ``service logs`` shape; without a prefix (``--raw``) ``[time ][details ]the line``."""
    stamp = f"{log_time(line.timestamp)} " if timestamps else ""
    told = f"{details} " if details else ""
    if prefix is None:
        return f"{stamp}{told}{line.line}"
    return f"{stamp}{prefix}    | {told}{line.line}"


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


def _autoscale_lines(service: Service) -> list[str | tuple[str, str]]:
    """``inspect --pretty``: the autoscaling the labels declare, and its last change."""
    try:
        auto = autoscale_spec(service.spec.labels)
    except SwarmliteError:
        return []
    if auto is None:
        return []
    targets = ", ".join(
        f"{name} {value:g}{unit}"
        for name, value, unit in (
            ("cpu", auto.cpu, "%"),
            ("memory", auto.memory, "%"),
            ("rps", auto.rps, " req/s per task"),
        )
        if value is not None
    )
    lines: list[str | tuple[str, str]] = [
        "Autoscale:",
        (" Replicas", f"{auto.min} to {auto.max}"),
        (" Targets", targets),
        (" Cool-down", f"{auto.cooldown_up:g}s up, {auto.cooldown_down:g}s down"),
    ]
    status = service.autoscale
    if status is not None:
        lines.append((" Last Change", timestamp(status.changed_at)))
        lines.append((" Reason", autoscale_reason(status)))
    return lines


def autoscale_reason(status: AutoscaleStatus) -> str:
    """The last change to an autoscaled service's replicas, in words."""
    return f"{status.reason} (by hand)" if status.by_hand else status.reason


def autoscale_note(service: Service, now: float) -> str | None:
    """The line ``service ps`` prints under an autoscaled service's tasks."""
    status = service.autoscale
    if status is None:
        return None
    who = "Scaled by hand" if status.by_hand else "Autoscaled"
    return (
        f"{who} to {status.replicas} replicas {ago(status.changed_at, now)} "
        f"({service.spec.name}): {status.reason}"
    )


def unlock_instructions(key: str) -> str:
    """What `swarm update --autolock=true`, `init --autolock` and `unlock-key` say."""
    return (
        "To unlock a swarm manager after it restarts, run the `swarmlite swarm unlock`\n"
        "command and provide the following key:\n\n"
        f"    {key}\n\n"
        "Remember to store this key in a password manager, since without it you\n"
        "will not be able to restart the manager."
    )
