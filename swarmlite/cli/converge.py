"""Waiting for services to converge after a change: what ``service create/update/scale/
rollback`` and ``stack deploy`` show while they wait, and when they stop.

Owns ``Waiter`` (polling SERVICE_LS and TASK_LS every ``POLL_SECONDS``), ``Display`` (the
progress lines: a live view on a terminal, plain lines otherwise) and the rules: a task
counts only if it is of the service's current spec (its spec_version, or the same task
template: a scale keeps the old tasks) and, for jobs, of the current run. A service has
converged when its current tasks running (and healthy, with a healthcheck) reach the
desired count (jobs: the completions) and no update or rollback is in progress. A wait
fails when an update the command started pauses or rolls back, when current tasks keep
failing, or at the timeout (naming why tasks are pending). Does not own making the change
(the commands) nor the words of a progress line (``cli.render``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from swarmlite.api import (
    RestartCondition,
    Service,
    ServiceMode,
    Task,
    TaskState,
    UpdateState,
    UpdateStatus,
)
from swarmlite.api.control import ServiceFilter, ServiceView, TaskFilter
from swarmlite.api.routes import SERVICE_LS, TASK_LS
from swarmlite.cli import render
from swarmlite.cli.client import Client
from swarmlite.cli.commands import parse_duration
from swarmlite.errors import FailedPrecondition

POLL_SECONDS = 0.5
DEFAULT_TIMEOUT_SECONDS = 300.0
MAX_TASK_FAILURES = 3  # failed tasks of the new spec before a wait gives up

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
        views = self._rpc.call(SERVICE_LS, services).services
        by_service: dict[str, list[Task]] = {}
        for task in self._rpc.call(TASK_LS, tasks).tasks:
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


def job_counts(rpc: Client, views: Collection[ServiceView]) -> dict[str, tuple[int, int]]:
    """(completed, total) of each job among ``views``, by service id, from its tasks."""
    found: dict[str, tuple[int, int]] = {}
    for view in views:
        if view.service.spec.mode.is_job:
            tasks = rpc.call(TASK_LS, TaskFilter(service=view.service.id)).tasks
            counts = _counts(Observed(view, tasks), ())
            found[view.service.id] = (counts.completed, counts.total)
    return found
