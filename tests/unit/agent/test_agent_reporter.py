from __future__ import annotations

import asyncio

import pytest

from swarmlite.agent.reporter import WINDOW_SECONDS, Reporter
from swarmlite.api import TaskState
from swarmlite.api.control import StatusReport
from swarmlite.api.task import TaskStatus
from swarmlite.errors import Unavailable


class Session:
    def __init__(self) -> None:
        self.up = True
        self.sent: list[StatusReport] = []
        self.attempts = 0

    async def send(self, message) -> None:
        self.attempts += 1
        if not self.up:
            raise Unavailable("no session with a manager right now")
        self.sent.append(message)

    def updates(self) -> list[tuple[str, TaskState]]:
        return [(u.task_id, u.status.state) for r in self.sent for u in r.updates]


@pytest.fixture
async def session_and_reporter(clock):
    session = Session()
    reporter = Reporter(session.send, clock)
    running = asyncio.create_task(reporter.run())
    yield session, reporter
    reporter.stop()
    await asyncio.wait_for(running, 5)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def status(state: TaskState) -> TaskStatus:
    return TaskStatus(state=state)


async def test_updates_within_the_window_travel_in_one_report_in_order(
    clock, session_and_reporter
) -> None:
    session, reporter = session_and_reporter
    for state in (TaskState.ACCEPTED, TaskState.PREPARING, TaskState.STARTING):
        reporter.report("t1", status(state))
    reporter.report("t2", status(TaskState.ACCEPTED))
    await settle()
    assert session.sent == []  # it waits for more first
    await clock.run_for(WINDOW_SECONDS)
    await settle()
    assert len(session.sent) == 1
    assert session.updates() == [
        ("t1", TaskState.ACCEPTED),
        ("t1", TaskState.PREPARING),
        ("t1", TaskState.STARTING),
        ("t2", TaskState.ACCEPTED),
    ]
    assert reporter.pending == []


async def test_without_a_session_the_latest_status_is_kept_and_sent_later(
    clock, session_and_reporter
) -> None:
    session, reporter = session_and_reporter
    session.up = False
    reporter.report("t1", status(TaskState.ACCEPTED))
    reporter.report("t1", status(TaskState.PREPARING))
    reporter.report("t2", status(TaskState.ACCEPTED))
    await settle()
    await clock.run_for(WINDOW_SECONDS)
    await settle()
    assert session.sent == [] and session.attempts == 1
    assert [(u.task_id, u.status.state) for u in reporter.pending] == [
        ("t1", TaskState.PREPARING),
        ("t2", TaskState.ACCEPTED),
    ]
    reporter.report("t1", status(TaskState.STARTING))
    for _ in range(20):  # a second passes, still down: it keeps trying, calmly
        await clock.run_for(0.05)
        await settle()
    assert session.sent == []
    assert 1 < session.attempts < 10

    session.up = True
    reporter.wake()  # as the worker does when the manager speaks again
    await settle()
    await clock.run_for(WINDOW_SECONDS)
    await settle()
    assert session.updates() == [("t2", TaskState.ACCEPTED), ("t1", TaskState.STARTING)]
    assert reporter.pending == []


async def test_it_retries_on_its_own_when_nobody_wakes_it(clock, session_and_reporter) -> None:
    session, reporter = session_and_reporter
    session.up = False
    reporter.report("t1", status(TaskState.RUNNING))
    await settle()
    await clock.run_for(WINDOW_SECONDS)
    await settle()
    session.up = True
    for _ in range(60):  # at most a few seconds of backoff
        await clock.run_for(0.05)
        await settle()
    assert session.updates() == [("t1", TaskState.RUNNING)]


async def test_pending_updates_are_bounded_per_task(clock) -> None:
    session = Session()
    session.up = False
    reporter = Reporter(session.send, clock, max_pending=10)
    for i in range(100):
        reporter.report(f"t{i % 3}", TaskStatus(state=TaskState.RUNNING, message=str(i)))
    assert len(reporter.pending) <= 10
    latest = {u.task_id: u.status.message for u in reporter.pending}
    assert latest == {"t0": "99", "t1": "97", "t2": "98"}


async def test_a_forgotten_task_is_not_reported(clock, session_and_reporter) -> None:
    session, reporter = session_and_reporter
    reporter.report("t1", status(TaskState.RUNNING))
    reporter.report("t2", status(TaskState.RUNNING))
    reporter.forget("t1")
    await settle()
    await clock.run_for(WINDOW_SECONDS)
    await settle()
    assert session.updates() == [("t2", TaskState.RUNNING)]
