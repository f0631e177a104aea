from __future__ import annotations

import asyncio

import msgspec
import pytest

from swarmlite.agent.driver import LABEL_CLUSTER, LABEL_NODE, LABEL_SERVICE, LABEL_SLOT, LABEL_TASK
from swarmlite.agent.executor import (
    HEALTH_POLL_SECONDS,
    UNHEALTHY,
    UNHEALTHY_DRAIN_SECONDS,
    Executor,
)
from swarmlite.api import FileRef, HealthCheck, TaskState
from swarmlite.api.task import TaskStatus
from swarmlite.errors import InvalidArgument, RuntimeUnavailable


def executor(task, driver, clock, **kwargs) -> Executor:
    return Executor(task, driver, clock, cluster_id="cl1", node_id="n1", **kwargs)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def run_to_running(ex: Executor) -> None:
    while ex.status.state is not TaskState.RUNNING:
        assert await ex.step() is not None


async def test_each_step_advances_exactly_one_state(driver, clock, task_factory) -> None:
    ex = executor(task_factory(), driver, clock)

    accepted = await ex.step()
    assert accepted is not None and accepted.state is TaskState.ACCEPTED
    preparing = await ex.step()
    assert preparing is not None and preparing.state is TaskState.PREPARING
    assert driver.calls == []  # nothing is pulled before PREPARING was reported

    starting = await ex.step()
    assert starting is not None and starting.state is TaskState.STARTING
    assert driver.names() == ["pull", "create"]
    assert starting.container_id == ex.container_id != ""
    request = driver.container(ex.container_id).request
    assert request.name == "shop_web.1.t1"
    assert request.labels == {
        LABEL_CLUSTER: "cl1",
        LABEL_NODE: "n1",
        LABEL_TASK: "t1",
        LABEL_SERVICE: "s1",
        LABEL_SLOT: "1",
    }
    assert driver.container(ex.container_id).status == "created"

    running = await ex.step()
    assert running is not None and running.state is TaskState.RUNNING
    assert driver.container(ex.container_id).status == "running"
    assert running.health == ""  # no healthcheck

    waiting = asyncio.create_task(ex.step())
    await settle()
    assert not waiting.done()  # RUNNING waits for the exit
    driver.exit(ex.container_id, 0)
    complete = await waiting
    assert complete is not None and complete.state is TaskState.COMPLETE
    assert complete.exit_code == 0 and complete.err == ""
    assert ex.finished
    assert [s.state for s in (accepted, preparing, starting, running, complete)] == sorted(
        s.state for s in (accepted, preparing, starting, running, complete)
    )


async def test_a_non_zero_exit_fails_the_task_with_its_code(driver, clock, task_factory) -> None:
    ex = executor(task_factory(), driver, clock)
    await run_to_running(ex)
    waiting = asyncio.create_task(ex.step())
    await settle()
    driver.exit(ex.container_id, 3)
    failed = await waiting
    assert failed is not None and failed.state is TaskState.FAILED
    assert failed.exit_code == 3
    assert failed.err == "task: non-zero exit (3)"


async def test_a_missing_image_rejects_the_task_and_says_why(driver, clock, task_factory) -> None:
    ex = executor(task_factory(image="nope:1"), driver, clock)
    await ex.step()
    await ex.step()
    rejected = await ex.step()
    assert rejected is not None and rejected.state is TaskState.REJECTED
    assert "nope:1" in rejected.err
    assert "create" not in driver.names()
    assert ex.finished


async def test_an_unavailable_runtime_leaves_the_task_where_it_is(
    driver, clock, task_factory
) -> None:
    ex = executor(task_factory(state=TaskState.PREPARING), driver, clock)
    driver.fail_next("pull", RuntimeUnavailable("docker is restarting"))
    with pytest.raises(RuntimeUnavailable):
        await ex.step()
    assert ex.status.state is TaskState.PREPARING and ex.status.err == ""
    again = await ex.step()  # the same step, tried again later
    assert again is not None and again.state is TaskState.STARTING
    assert driver.names() == ["pull", "pull", "create"]


async def test_a_container_that_fails_to_start_fails_the_task(driver, clock, task_factory) -> None:
    ex = executor(task_factory(state=TaskState.PREPARING), driver, clock)
    await ex.step()
    driver.fail_next("start", InvalidArgument('exec: "nope": executable file not found'))
    failed = await ex.step()
    assert failed is not None and failed.state is TaskState.FAILED
    assert "executable file not found" in failed.err


async def next_status(ex: Executor, clock) -> TaskStatus:
    """Step until something changes, letting health polls pass on the clock."""
    for _ in range(100):
        stepping = asyncio.create_task(ex.step())
        await settle()
        while not stepping.done():
            await clock.run_for(HEALTH_POLL_SECONDS)
            await settle()
        status = stepping.result()
        if status is not None:
            return status
    raise AssertionError("nothing changed")


async def test_health_is_tracked_and_unhealthy_fails_the_task(driver, clock, task_factory) -> None:
    check = HealthCheck(test=["CMD", "probe"], interval=2.0, retries=1)
    driver.health_results[("CMD", "probe")] = [True, True, False]
    task = task_factory(healthcheck=check, stop_signal="SIGINT", stop_grace_period=3)
    ex = executor(task, driver, clock)
    await run_to_running(ex)
    assert ex.status.health == "starting"
    started, cid = clock.monotonic(), ex.container_id

    healthy = await next_status(ex, clock)
    assert (healthy.state, healthy.health) == (TaskState.RUNNING, "healthy")
    assert clock.monotonic() - started == pytest.approx(2.0)  # the first probe passed

    # The second probe passes too: nothing until the third. Unhealthy is reported while
    # the container still runs (so it leaves rotation), and it is stopped a moment later.
    unhealthy = await next_status(ex, clock)
    assert clock.monotonic() - started == pytest.approx(6.0)
    assert (unhealthy.state, unhealthy.health) == (TaskState.RUNNING, "unhealthy")
    assert driver.container(cid).status == "running"
    assert not any(call[0] == "stop" for call in driver.calls)

    failed = await next_status(ex, clock)
    assert clock.monotonic() - started == pytest.approx(6.0 + UNHEALTHY_DRAIN_SECONDS)
    assert failed.state is TaskState.FAILED
    assert failed.err == UNHEALTHY and failed.health == "unhealthy"
    assert ("stop", cid, "SIGINT", 3) in driver.calls
    assert driver.container(cid).status == "exited"


async def test_shutdown_stops_with_the_signal_and_grace_period(
    driver, clock, task_factory, desired
) -> None:
    task = task_factory(
        command=["deaf"],  # ignores its stop signal (conftest)
        stop_signal="SIGINT",
        stop_grace_period=7.0,
    )
    ex = executor(task, driver, clock)
    await run_to_running(ex)
    waiting = asyncio.create_task(ex.step())
    await settle()

    ex.update(desired(task, TaskState.SHUTDOWN))
    assert await waiting is None  # woke up for the new desired state
    stopping = asyncio.create_task(ex.step())
    await settle()
    await clock.run_for(6.9)
    assert not stopping.done()  # the container still has its grace period
    await clock.run_for(0.1)
    shutdown = await stopping
    assert shutdown is not None and shutdown.state is TaskState.SHUTDOWN
    assert ("stop", ex.container_id, "SIGINT", 7.0) in driver.calls
    assert driver.container(ex.container_id).exit_code == 137
    assert ex.finished


async def test_shutdown_before_start_creates_nothing(driver, clock, task_factory, desired) -> None:
    task = task_factory()
    ex = executor(task, driver, clock)
    await ex.step()
    ex.update(desired(task, TaskState.SHUTDOWN))
    shutdown = await ex.step()
    assert shutdown is not None and shutdown.state is TaskState.SHUTDOWN
    assert driver.calls == []


async def test_a_job_with_desired_complete_runs_to_completion(driver, clock, task_factory) -> None:
    ex = executor(task_factory(desired=TaskState.COMPLETE), driver, clock)
    await run_to_running(ex)
    waiting = asyncio.create_task(ex.step())
    await settle()
    driver.exit(ex.container_id, 0)
    done = await waiting
    assert done is not None and done.state is TaskState.COMPLETE


async def test_secrets_and_configs_reach_the_container_as_files(
    driver, clock, task_factory
) -> None:
    task = task_factory(
        state=TaskState.PREPARING,
        secrets=[FileRef(name="db_pw", target="db_pw", uid="100", mode=0o400)],
        configs=[FileRef(name="nginx", target="/etc/nginx.conf")],
    )
    ex = executor(task, driver, clock, secrets={"db_pw": b"s3cret"}, configs={"nginx": b"conf"})
    await ex.step()
    files = driver.container(ex.container_id).request.files
    assert [(f.target, f.data, f.uid, f.mode) for f in files] == [
        ("/run/secrets/db_pw", b"s3cret", 100, 0o400),
        ("/etc/nginx.conf", b"conf", 0, 0o444),
    ]


async def test_a_missing_secret_rejects_the_task(driver, clock, task_factory) -> None:
    task = task_factory(state=TaskState.PREPARING, secrets=[FileRef(name="db_pw", target="pw")])
    rejected = await executor(task, driver, clock).step()
    assert rejected is not None and rejected.state is TaskState.REJECTED
    assert "db_pw" in rejected.err
    assert driver.calls == []


async def test_a_stale_view_from_the_manager_never_moves_the_task_back(
    driver, clock, task_factory
) -> None:
    task = task_factory()
    ex = executor(task, driver, clock)
    await run_to_running(ex)
    ex.update(task)  # the manager has not seen our reports yet: it still says ASSIGNED
    assert ex.status.state is TaskState.RUNNING
    assert ex.status.container_id != ""


async def test_a_manager_view_that_ends_the_task_mid_step_is_not_undone(
    driver, clock, task_factory
) -> None:
    task = task_factory(state=TaskState.PREPARING)
    ex = executor(task, driver, clock)
    await ex.step()
    orphaned = msgspec.structs.replace(
        task, desired_state=TaskState.SHUTDOWN, status=TaskStatus(state=TaskState.ORPHANED)
    )
    starting = asyncio.create_task(ex.step())
    await asyncio.sleep(0)  # the step is inside driver.start now
    assert driver.names()[-1] == "start" and not starting.done()
    ex.update(orphaned)  # arrives while the container is being started
    status = await starting
    assert status is not None and status.state is TaskState.ORPHANED
    assert await ex.step() is None  # the container that started is stopped again
    assert ex.finished
    assert driver.container(ex.container_id).status == "exited"
