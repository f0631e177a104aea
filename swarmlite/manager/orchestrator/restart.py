"""Restart policy: whether an empty slot gets a new task now, later, or never.

Owns the decision only, made from the slot's task history in the store, so that a new
leader decides the same: the newest finished task says why the slot is empty. If it was
stopped on purpose (scale, update, drain) or the slot never had a task, start at once. If
it ended unexpectedly (failed, rejected, exited, its node went down): condition ``none``
never restarts, ``on-failure`` does not restart a task that exited 0, ``max_attempts``
counts the unexpected ends of the current spec version within ``window`` seconds before
the newest one (window 0: all), and the new task waits ``delay`` seconds after that end.
A refusal is final until the service's spec changes (as in swarm mode, an update gives
every slot a fresh start). Pure; writes nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from swarmlite.api import RestartCondition, RestartPolicy, Service, Task
from swarmlite.manager.orchestrator.common import (
    EPSILON,
    Nodes,
    Plan,
    ended_at,
    ended_unexpectedly,
    exited_zero,
    is_finished,
    is_occupying,
    task_order,
)


class Verdict(enum.Enum):
    START = "start"  # create the new task now
    WAIT = "wait"  # create it at `at`
    NEVER = "never"  # the policy says the slot stays empty


@dataclass(frozen=True, slots=True)
class RestartDecision:
    verdict: Verdict
    at: float = 0.0  # wall time, for WAIT
    reason: str = ""


START = RestartDecision(Verdict.START)


def decide_restart(
    service: Service,
    slot_tasks: Sequence[Task],
    nodes: Nodes,
    now: float,
    *,
    job: bool = False,
) -> RestartDecision:
    """What to do about a slot that holds no task: ``slot_tasks`` is its whole history."""
    finished = sorted((t for t in slot_tasks if is_finished(t, nodes)), key=task_order)
    if not finished:
        return START
    latest = finished[-1]
    if not ended_unexpectedly(latest, nodes, job=job):
        return START
    if latest.spec_version != service.spec_version:
        return START
    policy: RestartPolicy = service.spec.task.restart_policy
    if policy.condition is RestartCondition.NONE:
        return RestartDecision(Verdict.NEVER, reason="restart condition is none")
    if policy.condition is RestartCondition.ON_FAILURE and exited_zero(latest):
        return RestartDecision(Verdict.NEVER, reason="exited 0 and restart condition is on-failure")
    end = ended_at(latest)
    if policy.max_attempts > 0:
        attempts = sum(
            1
            for t in finished
            if t.spec_version == service.spec_version
            and ended_unexpectedly(t, nodes, job=job)
            and (policy.window <= 0 or ended_at(t) > end - policy.window - EPSILON)
        )
        if attempts > policy.max_attempts:
            return RestartDecision(
                Verdict.NEVER, reason=f"restarted {policy.max_attempts} times already"
            )
    at = end + max(0.0, policy.delay)
    if now + EPSILON >= at:
        return START
    return RestartDecision(Verdict.WAIT, at=at, reason="restart delay")


def refill(
    plan: Plan,
    service: Service,
    slot_tasks: Sequence[Task],
    nodes: Nodes,
    make: Callable[[], Task],
    *,
    job: bool = False,
) -> Task | None:
    """Give an empty slot its next task if the restart policy allows it now.

    Does nothing while a task still holds the slot; asks the plan to wake up when the
    restart delay ends. Returns the task created, if any.
    """
    current = [plan.tasks[t.id] for t in slot_tasks if t.id in plan.tasks]
    if any(is_occupying(t, nodes) for t in current):
        return None
    decision = decide_restart(service, current, nodes, plan.now, job=job)
    if decision.verdict is Verdict.WAIT:
        plan.wake_at(decision.at)
        return None
    if decision.verdict is Verdict.NEVER:
        return None
    return plan.create(make())
