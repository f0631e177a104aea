"""Which tasks a node is told of, and which status reports change a task."""

from __future__ import annotations

import msgspec
import pytest

from swarmlite.api import TaskState, TaskStatus
from swarmlite.manager.dispatcher.dispatcher import advances, assigned
from swarmlite.testing.factories import make_service, make_task

S = TaskState


@pytest.mark.parametrize(
    ("state", "desired", "told"),
    [
        (S.PENDING, S.RUNNING, False),  # a global task before the scheduler placed it
        (S.ASSIGNED, S.RUNNING, True),
        (S.RUNNING, S.RUNNING, True),
        (S.RUNNING, S.SHUTDOWN, True),  # it still has to stop it
        (S.SHUTDOWN, S.SHUTDOWN, False),  # done: history only
        (S.ASSIGNED, S.COMPLETE, True),  # a job task
        (S.COMPLETE, S.COMPLETE, False),
    ],
)
def test_a_node_is_told_of_placed_tasks_until_they_are_done(
    state: TaskState, desired: TaskState, told: bool
) -> None:
    task = make_task(make_service(), node_id="n1", state=state, desired=desired)
    assert assigned(task) is told


def test_reports_never_move_a_task_back_but_bring_news_within_a_state() -> None:
    running = TaskStatus(state=S.RUNNING, health="starting")
    assert not advances(running, TaskStatus(state=S.STARTING))
    assert advances(running, TaskStatus(state=S.FAILED, exit_code=1))
    assert advances(running, msgspec.structs.replace(running, health="healthy"))
    assert not advances(running, running)
