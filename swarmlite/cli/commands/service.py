"""`swarmlite service`: ls, ps, inspect, scale, update, rollback, logs, rm, as `docker service`.

Owns the service commands' flags and output, and ``Waiter``: watching services converge
after a change, which ``stack deploy`` shares. A command that changes a spec reads the
service, edits what it read and writes it back naming the version it read (re-reading on a
stale version), so a concurrent change is never overwritten.

How a wait decides (polling SERVICE_LS and TASK_LS every ``POLL_SECONDS``): a task counts
only if it is of the service's current spec (its spec_version, or the same task template:
a scale keeps the old tasks) and, for jobs, of the current run. A service has converged when
its current tasks running (and healthy, with a healthcheck) reach the desired count (jobs:
the completions) and no update or rollback is in progress. A wait fails when an update the
command started pauses or rolls back, when current tasks keep failing, or at the timeout
(naming why tasks are pending). Does not own rendering (``cli.render``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.live import Live
from rich.text import Text

from swarmlite.api import (
    FailureAction,
    RestartCondition,
    Service,
    ServiceMode,
    ServiceSpec,
    Task,
    TaskState,
    UpdateConfig,
    UpdateOrder,
    UpdateState,
    UpdateStatus,
)
from swarmlite.api.control import (
    NODE_LS,
    SERVICE_INSPECT,
    SERVICE_LOGS,
    SERVICE_LS,
    SERVICE_RM,
    SERVICE_ROLLBACK,
    SERVICE_UPDATE,
    TASK_LS,
    Empty,
    LogLine,
    LogsRequest,
    NameRef,
    NodeList,
    ServiceFilter,
    ServiceList,
    ServiceUpdate,
    ServiceView,
    TaskFilter,
    TaskList,
)
from swarmlite.ca import client_context, read_credentials
from swarmlite.cli import render
from swarmlite.cli.client import Client
from swarmlite.cli.commands import (
    client,
    each,
    format_option,
    parse_duration,
    parse_labels,
    settings,
)
from swarmlite.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    SwarmliteError,
    UsageError,
)
from swarmlite.rpc import RpcClient

POLL_SECONDS = 0.5
DEFAULT_TIMEOUT_SECONDS = 300.0
MAX_TASK_FAILURES = 3  # failed tasks of the new spec before a wait gives up
UPDATE_ATTEMPTS = 3  # read-edit-write rounds when someone else changed the service meanwhile

STARTED = "service_started"
HEALTHY = "service_healthy"
COMPLETED = "service_completed_successfully"

_FAILED = (TaskState.FAILED, TaskState.REJECTED)
_IN_PROGRESS = (UpdateState.UPDATING, UpdateState.ROLLBACK_STARTED)
# A rollback is waited for (ROLLBACK_STARTED is in progress), then reported as a failure.
_ROLLED_BACK = (UpdateState.ROLLBACK_COMPLETED,)
_GOOD_HEALTH = ("", "healthy")  # "": no healthcheck


class Seconds(click.ParamType[float]):
    """A timeout: ``300``, ``90s``, ``5m``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        text = str(value)
        try:
            seconds = float(text)
        except ValueError:
            try:
                seconds = parse_duration(text)
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} must be longer than zero", param, ctx)
        return seconds


def timeout_option() -> Callable[[Any], Any]:
    return click.option(
        "--timeout",
        type=Seconds(),
        default=DEFAULT_TIMEOUT_SECONDS,
        show_default="300s",
        help="Give up waiting for convergence after this long (300, 90s, 5m).",
    )


# --------------------------------------------------------------------------- waiting


@dataclass(frozen=True)
class Observed:
    """One service as one poll saw it: the service and its tasks."""

    view: ServiceView
    tasks: list[Task]

    @property
    def service(self) -> Service:
        return self.view.service


@dataclass(frozen=True)
class _Counts:
    running: int  # current tasks RUNNING
    healthy: int  # ... and healthy (or without a healthcheck)
    healthchecked: int  # ... and reported healthy by a healthcheck
    completed: int
    total: int  # jobs: completions wanted
    desired: int
    pending: tuple[str, ...]
    failed: list[Task]


def is_current(task: Task, service: Service) -> bool:
    """Whether ``task`` runs the service's current spec (and, for jobs, its current run)."""
    if service.spec.mode.is_job and task.job_iteration != service.job_iteration:
        return False
    return task.spec_version >= service.spec_version or task.spec == service.spec.task


def _counts(observed: Observed, old_failures: Collection[str]) -> _Counts:
    service = observed.service
    current = [task for task in observed.tasks if is_current(task, service)]
    live = [task for task in current if task.desired_state is TaskState.RUNNING]
    running = [task for task in live if task.status.state is TaskState.RUNNING]
    completed = sum(task.status.state is TaskState.COMPLETE for task in current)
    if service.spec.mode is ServiceMode.REPLICATED_JOB:
        total = service.spec.job.total_completions
    else:  # a global job: one completion a node; the view says how many are left
        total = completed + observed.view.desired
    failed = [
        task for task in current if task.status.state in _FAILED and task.id not in old_failures
    ]
    return _Counts(
        running=len(running),
        healthy=sum(task.status.health in _GOOD_HEALTH for task in running),
        healthchecked=sum(task.status.health == "healthy" for task in running),
        completed=completed,
        total=total,
        desired=observed.view.desired,
        pending=tuple(
            task.status.pending_reason for task in live if task.status.state <= TaskState.PENDING
        ),
        failed=sorted(failed, key=lambda task: task.status.timestamp),
    )


def converged(observed: Observed, counts: _Counts) -> bool:
    status = observed.service.update_status
    if status is not None and status.state in _IN_PROGRESS:
        return False
    if observed.service.spec.mode.is_job:
        return counts.completed >= counts.total
    return counts.healthy >= counts.desired


def condition_met(condition: str, observed: Observed, counts: _Counts) -> bool:
    """Whether a ``depends_on`` condition holds for the service depended on."""
    if condition == COMPLETED:
        if observed.service.spec.mode.is_job:
            return counts.completed >= counts.total
        return counts.completed >= max(counts.desired, 1)
    if condition == HEALTHY:
        return counts.healthchecked >= max(counts.desired, 1)
    if observed.service.spec.mode.is_job:  # started: running, or already done
        return counts.running + counts.completed >= min(counts.total, 1)
    return counts.running >= counts.desired


class Display:
    """Progress lines: a live view on a terminal, else a plain line whenever one changes."""

    def __init__(self, *, quiet: bool) -> None:
        self._quiet = quiet
        self._live: Live | None = None
        self._shown: dict[str, str] = {}

    @contextmanager
    def running(self) -> Iterator[Display]:
        stream = click.get_text_stream("stdout")
        if not self._quiet and stream.isatty():
            self._live = Live(Text(""), console=Console(file=stream), refresh_per_second=8)
            self._live.start()
        try:
            yield self
        finally:
            if self._live is not None:
                self._live.stop()
                self._live = None

    def echo(self, text: str) -> None:
        """A line that is not progress (``Creating service ...``): printed above the view."""
        if self._live is not None:
            self._live.console.print(Text(text))
        else:
            click.echo(text)

    def progress(self, lines: Mapping[str, str]) -> None:
        if self._quiet:
            return
        if self._live is not None:
            self._live.update(Text("\n".join(lines.values())))
            return
        for name, line in lines.items():
            if self._shown.get(name) != line:
                click.echo(line)
                self._shown[name] = line


class Waiter:
    """Watches the services of one stack, or one service, until they do what was asked.

    ``baseline`` is taken before the change, so that an update status or failed task from
    before the command is not blamed on it; the deadline runs from construction.
    """

    def __init__(
        self,
        rpc: Client,
        display: Display,
        *,
        stack: str | None = None,
        service: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        expect_rollback: bool = False,
        hint: str = "",
    ) -> None:
        self._rpc = rpc
        self._display = display
        self._stack = stack
        self._service = service
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._expect_rollback = expect_rollback
        self._hint = hint
        self._before: dict[str, UpdateStatus | None] = {}
        self._old_failures: set[str] = set()

    def poll(self) -> dict[str, Observed]:
        if self._stack is not None:
            services = ServiceFilter(stack=self._stack)
            tasks = TaskFilter(stack=self._stack)
        else:
            services = ServiceFilter(names=[self._service or ""])
            tasks = TaskFilter(service=self._service)
        views = self._rpc.call(SERVICE_LS, services, ServiceList).services
        by_service: dict[str, list[Task]] = {}
        for task in self._rpc.call(TASK_LS, tasks, TaskList).tasks:
            by_service.setdefault(task.service_id, []).append(task)
        return {
            view.service.spec.name: Observed(view, by_service.get(view.service.id, []))
            for view in views
        }

    def baseline(self) -> None:
        observed = self.poll()
        self._before = {name: seen.service.update_status for name, seen in observed.items()}
        self._old_failures = {
            task.id
            for seen in observed.values()
            for task in seen.tasks
            if task.status.state in _FAILED
        }

    def converge(self, names: Collection[str]) -> None:
        """Wait until every service in ``names`` has converged."""

        def done(observed: Mapping[str, Observed], counts: Mapping[str, _Counts]) -> bool:
            return all(
                name in observed and converged(observed[name], counts[name]) for name in names
            )

        self._wait(names, done, "converge")

    def satisfy(self, conditions: Collection[tuple[str, str]], shown: Collection[str]) -> None:
        """Wait until each (service, depends_on condition) holds; show ``shown``'s progress."""

        def done(observed: Mapping[str, Observed], counts: Mapping[str, _Counts]) -> bool:
            for name, condition in conditions:
                if name not in observed:
                    return False
                if condition == COMPLETED and counts[name].failed:
                    raise FailedPrecondition(
                        f"{name} did not complete successfully: {_error(counts[name].failed[-1])}",
                        hint=self._hint or None,
                    )
                if not condition_met(condition, observed[name], counts[name]):
                    return False
            return True

        waiting = sorted({name for name, _ in conditions})
        self._wait([*shown, *(n for n in waiting if n not in shown)], done, "be ready")

    def _wait(
        self,
        names: Collection[str],
        done: Callable[[Mapping[str, Observed], Mapping[str, _Counts]], bool],
        what: str,
    ) -> None:
        while True:
            observed = self.poll()
            counts = {
                name: _counts(seen, self._old_failures)
                for name, seen in observed.items()
                if name in names
            }
            lines = {name: self._line(name, observed, counts) for name in names}
            self._display.progress(lines)
            for name in names:
                if name in observed:
                    self._check(observed[name], counts[name])
            if done(observed, counts):
                return
            if time.monotonic() >= self._deadline:
                late = [
                    lines[name]
                    for name in names
                    if name not in observed or not converged(observed[name], counts[name])
                ]
                raise FailedPrecondition(
                    f"services did not {what} within {render.seconds(self._timeout)}: "
                    + "; ".join(late or lines.values()),
                    hint=self._hint or None,
                )
            time.sleep(POLL_SECONDS)

    def _line(
        self, name: str, observed: Mapping[str, Observed], counts: Mapping[str, _Counts]
    ) -> str:
        if name not in observed:
            return f"{name}: not found yet"
        seen, count = observed[name], counts[name]
        status = seen.service.update_status
        return render.progress_line(
            render.ServiceProgress(
                name=name,
                job=seen.service.spec.mode.is_job,
                running=count.healthy,
                desired=count.desired,
                completed=count.completed,
                total=count.total,
                update=status.state if status is not None else None,
                pending=count.pending,
                failed=len(count.failed),
                error=_error(count.failed[-1]) if count.failed else "",
            )
        )

    def _check(self, observed: Observed, counts: _Counts) -> None:
        """Raise when ``observed`` cannot converge: a paused or rolled back update, or tasks
        that keep failing."""
        service = observed.service
        name = service.spec.name
        status = service.update_status
        hint = self._hint or None
        if status is not None and status != self._before.get(name):
            message = f": {status.message}" if status.message else ""
            if status.state is UpdateState.PAUSED:
                raise FailedPrecondition(
                    f"update of {name} paused{message}",
                    hint=f"`swarmlite service ps {name}` shows the failed tasks; "
                    f"`swarmlite service rollback {name}` returns to the previous spec",
                )
            if status.state is UpdateState.ROLLBACK_PAUSED:
                raise FailedPrecondition(f"rollback of {name} paused{message}", hint=hint)
            if status.state in _ROLLED_BACK and not self._expect_rollback:
                raise FailedPrecondition(
                    f"update of {name} failed and is rolled back{message}", hint=hint
                )
        failed = counts.failed
        restart = service.spec.task.restart_policy.condition
        if len(failed) >= MAX_TASK_FAILURES or (failed and restart is RestartCondition.NONE):
            raise FailedPrecondition(
                f"{len(failed)} task{'s' if len(failed) > 1 else ''} of {name} failed: "
                f"{_error(failed[-1])}",
                hint=hint,
            )


def _error(task: Task) -> str:
    return task.status.err or task.status.message or task.status.state.value


# --------------------------------------------------------------------------- helpers


def read(rpc: Client, ref: str) -> Service:
    return rpc.call(SERVICE_INSPECT, NameRef(ref=ref), ServiceView).service


def hostnames(rpc: Client) -> dict[str, str]:
    """Node id -> hostname, for the NODE column and log prefixes."""
    return {
        view.node.id: view.node.status.hostname
        for view in rpc.call(NODE_LS, Empty(), NodeList).nodes
    }


def job_counts(rpc: Client, views: Collection[ServiceView]) -> dict[str, tuple[int, int]]:
    """(completed, total) of each job among ``views``, by service id, from its tasks."""
    found: dict[str, tuple[int, int]] = {}
    for view in views:
        if view.service.spec.mode.is_job:
            tasks = rpc.call(TASK_LS, TaskFilter(service=view.service.id), TaskList).tasks
            counts = _counts(Observed(view, tasks), ())
            found[view.service.id] = (counts.completed, counts.total)
    return found


def update_spec(
    rpc: Client,
    ref: str,
    edit: Callable[[Service], ServiceSpec],
    before: Callable[[Service], None] | None = None,
) -> Service:
    """Read, edit and write back a service's spec; retried on a stale version."""
    for attempt in range(1, UPDATE_ATTEMPTS + 1):
        service = read(rpc, ref)
        spec = edit(service)
        if before is not None:
            before(service)
        request = ServiceUpdate(ref=service.id, spec=spec, version=service.version)
        try:
            rpc.call(SERVICE_UPDATE, request, msgspec.Raw)
        except Conflict:
            if attempt == UPDATE_ATTEMPTS:
                raise
            continue
        return service
    raise AssertionError("unreachable: the last attempt returns or raises")


# --------------------------------------------------------------------------- commands


@click.group("service")
def service() -> None:
    """Manage the services of the cluster."""


@service.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@format_option()
def ls(quiet: bool, output: str) -> None:
    """List services."""
    rpc = client()
    views = rpc.call(SERVICE_LS, ServiceFilter(), ServiceList).services
    show_services(rpc, views, quiet=quiet, output=output)


def show_services(rpc: Client, views: list[ServiceView], *, quiet: bool, output: str) -> None:
    """What ``service ls`` and ``stack services`` print."""
    if quiet:
        for view in render.sort_services(views):
            click.echo(render.short_id(view.service.id))
    elif output == "json":
        click.echo(render.to_json(render.sort_services(views)))
    else:
        click.echo(render.service_table(views, job_counts(rpc, views)))


def show_tasks(
    rpc: Client,
    tasks: list[Task],
    views: list[ServiceView],
    *,
    quiet: bool,
    no_trunc: bool,
    output: str,
) -> None:
    """What ``service ps`` and ``stack ps`` print."""
    ordered = [task for task, _ in render.sort_service_tasks(tasks)]
    if quiet:
        for task in ordered:
            click.echo(render.short_id(task.id, no_trunc=no_trunc))
    elif output == "json":
        click.echo(render.to_json(ordered))
    else:
        ports = {view.service.id: render.service_ports(view.service, mode="host") for view in views}
        click.echo(
            render.service_task_table(
                tasks, hostnames=hostnames(rpc), ports=ports, now=time.time(), no_trunc=no_trunc
            )
        )


@service.command("ps")
@click.option("-q", "--quiet", is_flag=True, help="Only display task IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@format_option()
@click.argument("services", nargs=-1, required=True, metavar="SERVICE...")
def ps(quiet: bool, no_trunc: bool, output: str, services: tuple[str, ...]) -> None:
    """List the tasks of one or more services."""
    rpc = client()
    tasks: list[Task] = []

    def one(ref: str) -> None:
        tasks.extend(rpc.call(TASK_LS, TaskFilter(service=ref), TaskList).tasks)

    failure: SwarmliteError | None = None
    try:
        each(services, one)
    except SwarmliteError as exc:  # the tasks that were found are shown all the same
        failure = exc
    if tasks or failure is None:
        views: list[ServiceView] = []
        if not quiet and output != "json":
            filter_ = ServiceFilter(names=list(services))
            views = rpc.call(SERVICE_LS, filter_, ServiceList).services
        show_tasks(rpc, tasks, views, quiet=quiet, no_trunc=no_trunc, output=output)
    if failure is not None:
        raise failure


@service.command("inspect")
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format.")
@format_option(default=None)
@click.argument("services", nargs=-1, required=True, metavar="SERVICE...")
def inspect(pretty: bool, output: str | None, services: tuple[str, ...]) -> None:
    """Display detailed information on one or more services."""
    pretty = pretty or output == "table"
    rpc = client()
    found: list[Service] = []

    def one(ref: str) -> None:
        found.append(read(rpc, ref))

    try:
        each(services, one)
    finally:  # the services that were found are shown even when another one was not
        if pretty and found:
            click.echo("\n\n".join(render.service_pretty(one) for one in found))
        elif found or not pretty:
            click.echo(render.to_json(found))


# --------------------------------------------------------------------------- changes


def parse_scale(text: str) -> tuple[str, int]:
    name, sep, number = text.rpartition("=")
    if not sep or not name or not number.isdigit():
        raise UsageError(
            f"invalid scale specifier {text!r}",
            hint="write SERVICE=REPLICAS, such as shop_web=3",
        )
    return name, int(number)


def _scaled(service: Service, replicas: int, flag: str) -> ServiceSpec:
    spec = service.spec
    if spec.mode is ServiceMode.REPLICATED:
        return msgspec.structs.replace(spec, replicas=replicas)
    if spec.mode is ServiceMode.REPLICATED_JOB:  # docker scales a job's concurrency
        return msgspec.structs.replace(
            spec, job=msgspec.structs.replace(spec.job, max_concurrent=replicas)
        )
    raise InvalidArgument(
        f"{spec.name}: {flag} can only be used with replicated or replicated-job mode",
        details={"service": spec.name, "mode": spec.mode.value},
    )


def detach_option() -> Callable[[Any], Any]:
    return click.option(
        "-d",
        "--detach",
        is_flag=True,
        help="Exit immediately instead of waiting for the service to converge.",
    )


def quiet_option() -> Callable[[Any], Any]:
    return click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")


def change_and_wait(
    rpc: Client,
    ref: str,
    edit: Callable[[Service], ServiceSpec],
    *,
    detach: bool,
    quiet: bool,
    timeout: float,
    announce: Callable[[Service], str],
) -> None:
    """Edit the service, print ``announce(service)``, then wait unless ``detach``."""
    display = Display(quiet=quiet)
    waiters: list[Waiter] = []

    def before(service: Service) -> None:
        if not detach and not waiters:
            waiter = _waiter(rpc, display, service, timeout=timeout)
            waiter.baseline()
            waiters.append(waiter)

    service = update_spec(rpc, ref, edit, before)
    click.echo(announce(service))
    if waiters:
        with display.running():
            waiters[0].converge([service.spec.name])
        if not quiet:
            click.echo(f"verify: Service {service.spec.name} converged")


def _waiter(
    rpc: Client, display: Display, service: Service, *, timeout: float, rollback: bool = False
) -> Waiter:
    return Waiter(
        rpc,
        display,
        service=service.id,
        timeout=timeout,
        expect_rollback=rollback,
        hint=f"`swarmlite service ps {service.spec.name}` shows its tasks",
    )


@service.command("scale")
@detach_option()
@quiet_option()
@timeout_option()
@click.argument("scales", nargs=-1, required=True, metavar="SERVICE=REPLICAS...")
def scale(detach: bool, quiet: bool, timeout: float, scales: tuple[str, ...]) -> None:
    """Scale one or more replicated services."""
    wanted = dict(parse_scale(text) for text in scales)
    rpc = client()

    def one(ref: str) -> None:
        change_and_wait(
            rpc,
            ref,
            lambda service: _scaled(service, wanted[ref], "scale"),
            detach=detach,
            quiet=quiet,
            timeout=timeout,
            announce=lambda service: f"{ref} scaled to {wanted[ref]}",
        )

    each(wanted, one)


def _env_key(entry: str) -> str:
    return entry.partition("=")[0]


@dataclass(frozen=True, kw_only=True)
class Changes:
    """What ``service update``'s flags ask for, applied to the spec read."""

    image: str | None = None
    force: bool = False
    replicas: int | None = None
    env_add: tuple[str, ...] = ()
    env_rm: tuple[str, ...] = ()
    label_add: dict[str, str] | None = None
    label_rm: tuple[str, ...] = ()
    constraint_add: tuple[str, ...] = ()
    constraint_rm: tuple[str, ...] = ()
    update_parallelism: int | None = None
    update_order: str | None = None
    update_failure_action: str | None = None

    def apply(self, service: Service) -> ServiceSpec:
        spec = service.spec
        if self.replicas is not None:
            spec = _scaled(service, self.replicas, "--replicas")
        task, container = spec.task, spec.task.container
        if self.image is not None:
            container = msgspec.structs.replace(container, image=self.image)
        if self.env_add or self.env_rm:
            gone = set(self.env_rm) | {_env_key(entry) for entry in self.env_add}
            env = [entry for entry in container.env if _env_key(entry) not in gone]
            container = msgspec.structs.replace(container, env=[*env, *self.env_add])
        constraints = [c for c in task.placement.constraints if c not in self.constraint_rm]
        constraints += [c for c in self.constraint_add if c not in constraints]
        task = msgspec.structs.replace(
            task,
            container=container,
            placement=msgspec.structs.replace(task.placement, constraints=constraints),
            force_update=task.force_update + (1 if self.force else 0),
        )
        labels = {k: v for k, v in spec.labels.items() if k not in self.label_rm}
        labels.update(self.label_add or {})
        update = spec.update_config or UpdateConfig()
        if self.update_parallelism is not None:
            update = msgspec.structs.replace(update, parallelism=self.update_parallelism)
        if self.update_order is not None:
            update = msgspec.structs.replace(update, order=UpdateOrder(self.update_order))
        if self.update_failure_action is not None:
            action = FailureAction(self.update_failure_action)
            update = msgspec.structs.replace(update, failure_action=action)
        changed_update = update != (spec.update_config or UpdateConfig())
        return msgspec.structs.replace(
            spec,
            task=task,
            labels=labels,
            update_config=update if changed_update else spec.update_config,
        )


def _env_pairs(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not _env_key(value):
            raise click.BadParameter(f"{value!r} has no key (expected KEY=VALUE)")
    return values


@service.command("update")
@click.option("--image", help="Service image tag.")
@click.option("--force", is_flag=True, help="Force update even if no changes require it.")
@click.option("--replicas", type=click.IntRange(min=0), help="Number of tasks.")
@click.option("--env-add", multiple=True, metavar="KEY=VALUE", help="Add or update an env var.")
@click.option("--env-rm", multiple=True, metavar="KEY", help="Remove an environment variable.")
@click.option("--label-add", multiple=True, metavar="KEY=VALUE", help="Add or update a label.")
@click.option("--label-rm", multiple=True, metavar="KEY", help="Remove a label by its key.")
@click.option("--constraint-add", multiple=True, help="Add or update a placement constraint.")
@click.option("--constraint-rm", multiple=True, help="Remove a constraint.")
@click.option(
    "--update-parallelism",
    type=click.IntRange(min=0),
    help="Maximum number of tasks updated simultaneously (0 to update all at once).",
)
@click.option(
    "--update-order",
    type=click.Choice([order.value for order in UpdateOrder]),
    help="Update order.",
)
@click.option(
    "--update-failure-action",
    type=click.Choice([action.value for action in FailureAction]),
    help="Action on update failure.",
)
@detach_option()
@quiet_option()
@timeout_option()
@click.argument("ref", metavar="SERVICE")
def update(
    image: str | None,
    force: bool,
    replicas: int | None,
    env_add: tuple[str, ...],
    env_rm: tuple[str, ...],
    label_add: tuple[str, ...],
    label_rm: tuple[str, ...],
    constraint_add: tuple[str, ...],
    constraint_rm: tuple[str, ...],
    update_parallelism: int | None,
    update_order: str | None,
    update_failure_action: str | None,
    detach: bool,
    quiet: bool,
    timeout: float,
    ref: str,
) -> None:
    """Update a service (a rolling update of its tasks)."""
    changes = Changes(
        image=image,
        force=force,
        replicas=replicas,
        env_add=_env_pairs(env_add),
        env_rm=env_rm,
        label_add=parse_labels(label_add),
        label_rm=label_rm,
        constraint_add=constraint_add,
        constraint_rm=constraint_rm,
        update_parallelism=update_parallelism,
        update_order=update_order,
        update_failure_action=update_failure_action,
    )
    change_and_wait(
        client(),
        ref,
        changes.apply,
        detach=detach,
        quiet=quiet,
        timeout=timeout,
        announce=lambda service: service.spec.name,
    )


@service.command("rollback")
@detach_option()
@quiet_option()
@timeout_option()
@click.argument("ref", metavar="SERVICE")
def rollback(detach: bool, quiet: bool, timeout: float, ref: str) -> None:
    """Revert a service to its previous spec."""
    rpc = client()
    service = read(rpc, ref)
    display = Display(quiet=quiet)
    waiter = None if detach else _waiter(rpc, display, service, timeout=timeout, rollback=True)
    if waiter is not None:
        waiter.baseline()
    rpc.call(SERVICE_ROLLBACK, NameRef(ref=service.id), msgspec.Raw)
    click.echo(service.spec.name)
    click.echo("rollback: manually requested rollback")
    if waiter is not None:
        with display.running():
            waiter.converge([service.spec.name])
        if not quiet:
            click.echo(f"verify: Service {service.spec.name} converged")


@service.command("rm")
@click.argument("services", nargs=-1, required=True, metavar="SERVICE...")
def rm(services: tuple[str, ...]) -> None:
    """Remove one or more services."""
    rpc = client()

    def one(ref: str) -> None:
        rpc.call(SERVICE_RM, NameRef(ref=ref), msgspec.Raw)
        click.echo(ref)

    each(services, one)


# --------------------------------------------------------------------------- logs

_log_lines: msgspec.msgpack.Decoder[LogLine | list[LogLine]] = msgspec.msgpack.Decoder(
    LogLine | list[LogLine]
)


@service.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("ref", metavar="SERVICE")
def logs(follow: bool, tail: str, timestamps: bool, ref: str) -> None:
    """Fetch the logs of a service's tasks."""
    if tail == "all":
        lines = -1
    elif tail.isdigit():
        lines = int(tail)
    else:
        raise UsageError(f"--tail {tail}: expected a number of lines or 'all'")
    rpc = client()
    names = hostnames(rpc)  # also checks that the daemon answers before streaming
    request = LogsRequest(service=ref, follow=follow, tail=lines, timestamps=timestamps)
    asyncio.run(_stream_logs(rpc, request, names))


def _stream_client(rpc: Client) -> RpcClient:
    if rpc.unix_socket is not None:
        return RpcClient("http://localhost", None, unix_socket=rpc.unix_socket)
    cert_dir = settings().cert_dir or ""  # Client.call already refused a missing one
    return RpcClient(rpc.address, client_context(read_credentials(cert_dir)))


async def _stream_logs(rpc: Client, request: LogsRequest, names: Mapping[str, str]) -> None:
    """Send ``request`` as the stream's first frame; print each LogLine frame that comes."""
    stream_client = _stream_client(rpc)
    try:
        stream = await stream_client.open_stream(SERVICE_LOGS)
        try:
            await stream.send(msgspec.msgpack.encode(request))
            while (frame := await stream.recv()) is not None:
                try:
                    decoded = _log_lines.decode(frame)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise InvalidArgument(f"malformed log line from {rpc.address}: {exc}") from exc
                for line in decoded if isinstance(decoded, list) else [decoded]:
                    text = render.log_line(
                        line, names.get(line.node_id, ""), timestamps=request.timestamps
                    )
                    click.echo(text, err=line.stream == "stderr")
        finally:
            await stream.close()
    finally:
        await stream_client.close()
