"""Rolling updates and rollbacks: replace tasks made from an older spec, a few at a time.

Owns the updater's rules, for replicated and global services alike (a key is a slot or a
node). A task is *dirty* when its spec differs from the service's task template (so a
scale, which changes only ``replicas``, replaces nothing). An update starts when a live
task is dirty and the service is not mid-update: ``update_status`` becomes UPDATING. Per
``update_config`` (``rollback_config`` while rolling back; swarm's defaults otherwise):

- parallelism N (0: all): at most N keys in flight, a key being in flight from the moment
  its old task is told to stop (stop-first) or its new task is created (start-first) until
  its new task is ready (RUNNING and not unhealthy or still starting), and for ``delay``
  seconds after that;
- stop-first: the old task is told to stop; the orchestrator's refill creates the new one
  once the old one has ended. start-first: the new task is created next to the old one,
  which is told to stop once the new one is ready;
- failures: a task of the new spec created since the update started that fails, is
  rejected, exits, or turns unhealthy while the update runs. When failures / keys updated
  so far > ``max_failure_ratio``: ``pause`` (PAUSED, with the task named), ``continue``, or
  ``rollback`` (spec := previous_spec, spec_version + 1, ROLLBACK_STARTED; the same
  machinery then runs with ``rollback_config``; a rollback that fails pauses);
- the update is COMPLETED (ROLLBACK_COMPLETED) once no key is dirty or in flight and
  ``monitor`` seconds have passed since the last new task became ready.

Everything is derived from the store (task specs, statuses, times and the service's
``update_status``), so a new leader carries on where the old one was. A PAUSED update stays
paused until the service is updated again (any update, even one that changes nothing: the
control API then clears ``update_status``). Writes through the plan only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import msgspec

from swarmlite.api import (
    FailureAction,
    Service,
    Task,
    TaskState,
    UpdateConfig,
    UpdateOrder,
    UpdateState,
    UpdateStatus,
)
from swarmlite.log import kv
from swarmlite.manager.orchestrator.common import (
    EPSILON,
    Key,
    Nodes,
    Plan,
    is_live,
    is_occupying,
    is_ready,
)

log = logging.getLogger(__name__)

replace = msgspec.structs.replace

_FAILED_STATES = (TaskState.FAILED, TaskState.REJECTED, TaskState.COMPLETE, TaskState.ORPHANED)
_IN_PROGRESS = (UpdateState.UPDATING, UpdateState.ROLLBACK_STARTED)
_PAUSED = (UpdateState.PAUSED, UpdateState.ROLLBACK_PAUSED)


def update_in_progress(service: Service) -> bool:
    """An update or rollback is running: each round looks at every key of the service."""
    status = service.update_status
    return status is not None and status.state in _IN_PROGRESS


def counts_as_failure(task: Task) -> bool:
    if task.status.state in _FAILED_STATES:
        return True
    return not task.status.state.terminal and task.status.health == "unhealthy"


def advance_update(
    plan: Plan,
    keys: Sequence[Key],
    nodes: Nodes,
    make: Callable[[Key], Task],
) -> None:
    """Move the service's update (if any) one step, writing into ``plan``."""
    service = plan.service
    assert service is not None
    status = service.update_status
    state = status.state if status is not None else None
    if state in _PAUSED:
        return
    current = service.spec.task
    groups = plan.by_key()

    def live(key: Key) -> list[Task]:
        return [t for t in _now(plan, groups, key) if is_live(t, nodes)]

    dirty = [k for k in keys if any(t.spec != current for t in live(k))]
    if status is None or state not in _IN_PROGRESS:
        if not dirty:
            return
        status = UpdateStatus(state=UpdateState.UPDATING, message="update in progress")
    if status.started_at <= 0:
        status = replace(status, started_at=plan.now)
    if status != service.update_status:
        service = replace(service, update_status=status)
        plan.set_service(service)
        log.info("update started %s", kv(service=service.spec.name, state=status.state.value))
    rolling_back = status.state is UpdateState.ROLLBACK_STARTED
    config = (service.spec.rollback_config if rolling_back else service.spec.update_config) or (
        UpdateConfig()
    )
    started = status.started_at

    # What this update has done so far, per key: the new-spec tasks created since it began.
    attempted: dict[Key, list[Task]] = {}
    for key in keys:
        new = [
            plan.tasks[t.id]
            for t in groups.get(key, [])
            if t.spec == current and t.created_at >= started - EPSILON
        ]
        if new:
            attempted[key] = new
    failures = [t for tasks in attempted.values() for t in tasks if counts_as_failure(t)]
    ratio = len(failures) / max(1, len(attempted))
    if (
        failures
        and ratio > config.max_failure_ratio
        and _on_failure(plan, service, config, failures[-1], rolling_back)
    ):
        return

    in_flight = 0
    cooling = 0
    last_ready = started
    candidates: list[Key] = []
    for key in keys:
        tasks = live(key)
        new = [t for t in tasks if t.spec == current]
        old = [t for t in tasks if t.spec != current]
        ready = [t for t in new if is_ready(t)]
        if new and old:  # start-first, in flight
            if ready:
                for task in old:
                    plan.set_desired(task, TaskState.SHUTDOWN)
            else:
                in_flight += 1
                continue
        elif old:
            if key not in attempted:  # a start-first attempt that failed is not retried
                candidates.append(key)
            continue
        elif new and len(ready) < len(new):
            in_flight += 1
            continue
        elif not new:
            # stop-first: the old task was told to stop and has not ended yet.
            if any(t.spec != current and is_occupying(t, nodes) for t in _now(plan, groups, key)):
                in_flight += 1
            continue
        # The key holds a ready task of the new spec.
        if key in attempted:
            ready_at = max(t.status.timestamp for t in ready)
            last_ready = max(last_ready, ready_at)
            if config.delay > 0 and plan.now < ready_at + config.delay - EPSILON:
                cooling += 1
                plan.wake_at(ready_at + config.delay)

    limit = config.parallelism if config.parallelism > 0 else len(candidates)
    free = max(0, limit - in_flight - cooling)
    for key in candidates[:free]:
        if config.order is UpdateOrder.START_FIRST:
            plan.create(make(key))
        else:
            for task in live(key):
                plan.set_desired(task, TaskState.SHUTDOWN)
    if candidates or in_flight:
        return
    done_at = last_ready + config.monitor
    if plan.now + EPSILON < done_at:
        plan.wake_at(done_at)
        return
    final = UpdateState.ROLLBACK_COMPLETED if rolling_back else UpdateState.COMPLETED
    message = "update completed"
    if rolling_back:
        # Keep why it rolled back: that is what the user of `stack deploy` needs to read.
        why = status.message if status.message != "rollback started" else ""
        message = f"rollback completed ({why})" if why else "rollback completed"
    plan.set_service(
        replace(
            service,
            update_status=replace(status, state=final, message=message, completed_at=plan.now),
        )
    )
    log.info("update finished %s", kv(service=service.spec.name, state=final.value))


def _now(plan: Plan, groups: dict[Key, list[Task]], key: Key) -> list[Task]:
    return [plan.tasks[t.id] for t in groups.get(key, []) if t.id in plan.tasks]


def _on_failure(
    plan: Plan, service: Service, config: UpdateConfig, task: Task, rolling_back: bool
) -> bool:
    """Apply the failure action; True when the update must not go on this round."""
    action = config.failure_action
    what = task.status.err or task.status.message or task.status.state.value
    if task.status.health == "unhealthy" and not task.status.state.terminal:
        what = "unhealthy"
    cause = f"task {task.name} ({task.id}) {task.status.state.value}: {what}"
    if action is FailureAction.CONTINUE:
        return False
    status = service.update_status
    assert status is not None
    if action is FailureAction.ROLLBACK and not rolling_back and service.previous_spec is not None:
        rolled = replace(
            service,
            spec=service.previous_spec,
            previous_spec=None,
            spec_version=service.spec_version + 1,
            update_status=UpdateStatus(
                state=UpdateState.ROLLBACK_STARTED,
                message=f"update rolled back due to failure of {cause}",
                started_at=plan.now,
            ),
        )
        plan.set_service(rolled)
        log.warning("update rolled back %s", kv(service=service.spec.name, task=task.id))
        return True
    paused = UpdateState.ROLLBACK_PAUSED if rolling_back else UpdateState.PAUSED
    reason = f"{'rollback' if rolling_back else 'update'} paused due to failure of {cause}"
    if action is FailureAction.ROLLBACK and not rolling_back:
        reason += "; no previous spec to roll back to"
    plan.set_service(replace(service, update_status=replace(status, state=paused, message=reason)))
    log.warning("update paused %s", kv(service=service.spec.name, task=task.id))
    return True
