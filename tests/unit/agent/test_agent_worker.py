from __future__ import annotations

import asyncio

import msgspec
import pytest

from swarmlite.agent.driver import LABEL_CLUSTER, LABEL_NODE, LABEL_TASK, ContainerRequest
from swarmlite.agent.worker import Worker
from swarmlite.api import TaskState
from swarmlite.api.control import Assignments, StatusReport
from swarmlite.api.task import TaskStatus
from swarmlite.errors import RuntimeUnavailable


class Manager:
    """The far end of `send`: what reached the dispatcher, per task, in order."""

    def __init__(self) -> None:
        self.reports: list[StatusReport] = []

    async def send(self, message) -> None:
        assert isinstance(message, StatusReport)
        self.reports.append(message)

    def states(self, task_id: str) -> list[TaskState]:
        return [u.status.state for r in self.reports for u in r.updates if u.task_id == task_id]

    def last(self, task_id: str) -> TaskStatus:
        return [u.status for r in self.reports for u in r.updates if u.task_id == task_id][-1]


@pytest.fixture
async def worker(driver, clock):
    manager = Manager()
    worker = Worker("n1", "cl1", driver, clock, manager.send)
    worker.manager = manager
    running = asyncio.create_task(worker.run())
    yield worker
    worker.stop()
    await asyncio.wait_for(running, 5)


async def settle() -> None:
    for _ in range(30):
        await asyncio.sleep(0)


async def pump(clock, seconds: float = 0.1) -> None:
    """Let `seconds` pass in small steps, so that work woken on the way can sleep again."""
    await settle()
    steps = max(1, round(seconds / 0.05))
    for _ in range(steps):
        await clock.run_for(seconds / steps)
        await settle()


def ours(task) -> dict[str, str]:
    return {LABEL_CLUSTER: "cl1", LABEL_NODE: "n1", LABEL_TASK: task.id}


async def test_an_assigned_task_runs_and_every_state_is_reported_in_order(
    worker, driver, clock, task_factory
) -> None:
    await worker.on_message(Assignments(tasks=[task_factory()]))
    await pump(clock)
    assert worker.manager.states("t1") == [
        TaskState.ACCEPTED,
        TaskState.PREPARING,
        TaskState.STARTING,
        TaskState.RUNNING,
    ]
    assert len(worker.manager.reports) == 1  # the quick states travelled together
    cid = worker.manager.last("t1").container_id
    assert driver.container(cid).status == "running"

    driver.exit(cid, 1)
    await pump(clock)
    assert worker.manager.last("t1").state is TaskState.FAILED


async def test_a_restarted_agent_adopts_the_running_container(driver, clock, task_factory) -> None:
    task = task_factory()
    before = Manager()
    first = Worker("n1", "cl1", driver, clock, before.send)
    run = asyncio.create_task(first.run())
    await first.on_message(Assignments(tasks=[task]))
    await pump(clock)
    running = before.last("t1")
    assert running.state is TaskState.RUNNING
    first.stop()  # the agent goes away; its container runs on
    await run
    assert driver.container(running.container_id).status == "running"

    driver.calls.clear()
    after = Manager()
    second = Worker("n1", "cl1", driver, clock, after.send)
    run = asyncio.create_task(second.run())
    # The manager's view: RUNNING, as reported before the restart.
    await second.on_message(Assignments(tasks=[msgspec.structs.replace(task, status=running)]))
    await pump(clock)
    assert "create" not in driver.names() and "start" not in driver.names()
    assert "stop" not in driver.names()
    assert after.reports == []  # it was RUNNING and still is
    assert second.tasks["t1"].status.container_id == running.container_id

    driver.exit(running.container_id, 0)  # and it is watched like any other
    await pump(clock)
    assert after.last("t1").state is TaskState.COMPLETE
    second.stop()
    await run


async def test_an_adopted_container_skips_the_states_it_passed(driver, clock, task_factory) -> None:
    task = task_factory(state=TaskState.PREPARING)  # our STARTING/RUNNING reports were lost
    cid = await driver.run_container(
        ContainerRequest(task=task, name="shop_web.1.t1", labels=ours(task))
    )
    manager = Manager()
    worker = Worker("n1", "cl1", driver, clock, manager.send)
    run = asyncio.create_task(worker.run())
    await worker.on_message(Assignments(tasks=[task]))
    await pump(clock)
    assert manager.states("t1") == [TaskState.RUNNING]
    assert manager.last("t1").container_id == cid
    assert "create" not in driver.names()
    worker.stop()
    await run


async def test_unknown_containers_are_removed_only_after_the_first_assignments(
    driver, clock, task_factory
) -> None:
    old = task_factory("old", slot=2)
    stray = await driver.run_container(
        ContainerRequest(task=old, name="shop_web.2.old", labels=ours(old))
    )
    foreign = await driver.run_container(
        ContainerRequest(task=old, name="x", labels={LABEL_CLUSTER: "other", LABEL_TASK: "x"})
    )
    manager = Manager()
    worker = Worker("n1", "cl1", driver, clock, manager.send)
    run = asyncio.create_task(worker.run())
    await pump(clock, 30.0)  # the manager is slow to send anything
    assert driver.exists(stray)
    assert not worker.ready

    await worker.on_message(Assignments(tasks=[task_factory("t1")]))
    await pump(clock)
    assert not driver.exists(stray)
    assert ("stop", stray, "", 10.0) in driver.calls
    assert driver.exists(foreign)  # not this cluster's: never touched
    assert worker.ready
    worker.stop()
    await run


async def test_a_task_no_longer_assigned_is_stopped_then_removed(
    worker, driver, clock, task_factory
) -> None:
    task = task_factory(command=["deaf"], stop_grace_period=4.0)  # ignores SIGTERM
    await worker.on_message(Assignments(tasks=[task]))
    await pump(clock)
    cid = worker.manager.last("t1").container_id

    await worker.on_message(Assignments(tasks=[]))
    await pump(clock, 1.0)
    assert driver.exists(cid)  # still in its grace period
    await pump(clock, 3.5)
    assert not driver.exists(cid)
    assert driver.names()[-2:] == ["stop", "remove"]
    assert "t1" not in worker.tasks


async def test_desired_shutdown_stops_the_task_and_reports_it(
    worker, driver, clock, task_factory, desired
) -> None:
    task = task_factory()
    await worker.on_message(Assignments(tasks=[task]))
    await pump(clock)
    await worker.on_message(Assignments(tasks=[desired(task, TaskState.SHUTDOWN)]))
    await pump(clock)
    assert worker.manager.last("t1").state is TaskState.SHUTDOWN
    cid = worker.manager.last("t1").container_id
    assert driver.container(cid).status == "exited"  # kept until the task is unassigned


async def test_an_unavailable_runtime_is_retried_until_it_is_back(
    worker, driver, clock, task_factory
) -> None:
    driver.fail_next("pull", RuntimeUnavailable("dockerd is not running"), times=3)
    await worker.on_message(Assignments(tasks=[task_factory()]))
    await pump(clock)
    assert worker.manager.last("t1").state is TaskState.PREPARING
    await pump(clock, 5.0)
    assert worker.manager.last("t1").state is TaskState.RUNNING
    assert driver.names().count("pull") == 4
    assert TaskState.REJECTED not in worker.manager.states("t1")


async def test_a_report_the_manager_missed_is_sent_again(
    worker, driver, clock, task_factory
) -> None:
    task = task_factory()
    await worker.on_message(Assignments(tasks=[task]))
    await pump(clock)
    sent = len(worker.manager.reports)
    # The manager's view still says ASSIGNED (say, our report died with its session).
    await worker.on_message(Assignments(tasks=[task]))
    await pump(clock)
    assert len(worker.manager.reports) == sent + 1
    assert worker.manager.last("t1").state is TaskState.RUNNING


async def test_secrets_from_the_assignments_reach_the_task(
    worker, driver, clock, task_factory
) -> None:
    from swarmlite.api import FileRef, Secret, SecretSpec

    task = task_factory(secrets=[FileRef(name="pw", target="pw")])
    secret = Secret(id="sec1", spec=SecretSpec(name="pw", data=b"hunter2"))
    await worker.on_message(Assignments(tasks=[task], secrets=[secret]))
    await pump(clock)
    cid = worker.manager.last("t1").container_id
    files = driver.container(cid).request.files
    assert [(f.target, f.data) for f in files] == [("/run/secrets/pw", b"hunter2")]


async def test_a_running_tasks_secret_is_only_in_its_container_and_goes_when_it_ends(
    worker, driver, clock, task_factory
) -> None:
    from swarmlite.api import FileRef, Secret, SecretSpec

    task = task_factory(secrets=[FileRef(name="pw", target="pw", mode=0o400, uid="1000")])
    secret = Secret(id="sec1", spec=SecretSpec(name="pw", data=b"hunter2"))
    await worker.on_message(Assignments(tasks=[task], secrets=[secret]))
    await pump(clock)
    running = worker.manager.last("t1")
    assert running.state is TaskState.RUNNING
    assert driver.host_files() == {}  # not on the node: only in the container's mount
    seen = driver.read_file(running.container_id, "/run/secrets/pw")
    assert seen is not None and (seen.data, seen.mode, seen.uid) == (b"hunter2", 0o400, 1000)

    driver.exit(running.container_id, 0)
    await pump(clock)
    assert worker.manager.last("t1").state is TaskState.COMPLETE
    assert driver.read_file(running.container_id, "/run/secrets/pw") is None
    assert driver.host_files() == {}


async def test_a_starting_agent_removes_the_files_an_earlier_run_left(
    driver, clock, task_factory
) -> None:
    from swarmlite.agent.driver import FileData

    waiting = task_factory("t1")
    secret = FileData(target="/run/secrets/pw", data=b"hunter2")
    created = await driver.create(
        ContainerRequest(task=waiting, name="shop_web.1.t1", labels=ours(waiting), files=[secret])
    )
    driver.leave_files("shop_web.2.t2", [secret])  # its container is gone
    driver.calls.clear()
    manager = Manager()
    worker = Worker("n1", "cl1", driver, clock, manager.send)
    run = asyncio.create_task(worker.run())
    await pump(clock)
    assert driver.names()[:2] == ["remove_stale_files", "list_containers"]
    assert list(driver.host_files()) == ["shop_web.1.t1"]  # still to start: it needs them

    await worker.on_message(Assignments(tasks=[waiting]))
    await pump(clock)
    assert manager.last("t1").state is TaskState.RUNNING
    assert manager.last("t1").container_id == created
    assert driver.host_files() == {}
    worker.stop()
    await run


async def test_registry_credentials_from_the_assignments_go_with_the_pull(
    worker, driver, clock, task_factory
) -> None:
    """`--with-registry-auth`: the credentials of the task's service (by service id), and
    no others, are what the runtime pulls its image with."""
    from swarmlite.api.registryauth import RegistryAuth
    from swarmlite.testing.fakeruntime import FakeImage

    login = RegistryAuth(server="reg:5000", username="ci", password="pw")
    other = RegistryAuth(server="reg:5000", username="someone", password="else")
    task = task_factory(image="reg:5000/web:1")
    driver.add_to_registry(FakeImage(ref="reg:5000/web:1"))
    await worker.on_message(
        Assignments(tasks=[task], registry_auth={task.service_id: login, "other": other})
    )
    await pump(clock)
    assert worker.manager.last("t1").state is TaskState.RUNNING
    assert driver.pull_auth == {"reg:5000/web:1": login}
