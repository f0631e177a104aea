"""A worker sent a whole set and then only changes acts on exactly the whole set a full
`Assignments` would have given it (what `_apply` gets, and what then runs), and a change
before any whole set is refused without acting on it. Fake runtime, fake clock."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
import pytest

from swarmlite.agent.driver import LABEL_TASK
from swarmlite.agent.worker import Worker
from swarmlite.api import Config, ConfigSpec, FileRef, Secret, SecretSpec, TaskState
from swarmlite.api.control import AssignmentChanges, Assignments
from swarmlite.api.registryauth import RegistryAuth

replace = msgspec.structs.replace


async def pump(clock: Any, seconds: float = 0.2) -> None:
    for _ in range(4):
        for _ in range(30):
            await asyncio.sleep(0)
        await clock.run_for(seconds / 4)
    for _ in range(30):
        await asyncio.sleep(0)


def whole(assignments: Assignments) -> tuple[Any, ...]:
    """An Assignments as the worker uses it: order does not matter."""
    return (
        sorted(assignments.tasks, key=lambda t: t.id),
        sorted(assignments.secrets, key=lambda s: s.spec.name),
        sorted(assignments.configs, key=lambda c: c.spec.name),
        assignments.registry_auth,
    )


class Recorder:
    """A worker whose `_apply` inputs are kept, and what it sent the manager."""

    def __init__(self, driver: Any, clock: Any) -> None:
        self.sent: list[Any] = []
        self.worker = Worker("n1", "cl1", driver, clock, self._send)
        self.applied: list[Assignments] = []
        apply = self.worker._apply

        def recording(assignments: Assignments) -> None:
            self.applied.append(assignments)
            apply(assignments)

        self.worker._apply = recording  # type: ignore[method-assign]

    async def _send(self, message: Any) -> None:
        self.sent.append(message)


@pytest.fixture
async def recorder(driver: Any, clock: Any) -> Any:
    recorder = Recorder(driver, clock)
    running = asyncio.create_task(recorder.worker.run())
    await pump(clock)
    yield recorder
    recorder.worker.stop()
    await asyncio.wait_for(running, 5)


async def test_changes_merged_into_the_whole_set_are_what_a_full_set_would_be(
    recorder: Recorder, driver: Any, clock: Any, task_factory: Any
) -> None:
    pw = Secret(id="sec1", spec=SecretSpec(name="pw", data=b"hunter2"))
    key = Secret(id="sec2", spec=SecretSpec(name="key", data=b"k"))
    conf = Config(id="cfg1", spec=ConfigSpec(name="conf", data=b"c"))
    login = RegistryAuth(server="reg", username="ci", password="pw")
    t1 = task_factory("t1", secrets=[FileRef(name="pw", target="pw")])
    t2 = task_factory("t2", slot=2, configs=[FileRef(name="conf", target="/conf")])
    t3 = task_factory("t3", slot=3, secrets=[FileRef(name="key", target="key")])
    t4 = replace(task_factory("t4", slot=4), service_id="s2")

    first = Assignments(tasks=[t1, t2], secrets=[pw], configs=[conf])
    await recorder.worker.on_message(first)
    await pump(clock)
    # t3 (with a secret) comes, t1 goes, t2 is to stop, and credentials come for s1.
    stopping = replace(t2, desired_state=TaskState.SHUTDOWN)
    await recorder.worker.on_message(
        AssignmentChanges(
            tasks=[t3, stopping], removed=["t1"], secrets=[key], registry_auth={"s1": login}
        )
    )
    await pump(clock)
    second = Assignments(
        tasks=[stopping, t3], secrets=[key], configs=[conf], registry_auth={"s1": login}
    )
    assert whole(recorder.applied[-1]) == whole(second)
    # t4 of another service comes; credentials unchanged; t2 goes.
    await recorder.worker.on_message(AssignmentChanges(tasks=[t4], removed=["t2"]))
    await pump(clock)
    third = Assignments(tasks=[t3, t4], secrets=[key], registry_auth={"s1": login})
    assert whole(recorder.applied[-1]) == whole(third)
    assert [whole(a) for a in recorder.applied] == [whole(first), whole(second), whole(third)]

    # What runs is what the whole set says: t3 and t4, t3 with its secret; t1 and t2 gone.
    assert sorted(recorder.worker.tasks) == ["t3", "t4"]
    running = {c.labels[LABEL_TASK]: c for c in await driver.list_containers({})}
    assert sorted(t for t, c in running.items() if c.status == "running") == ["t3", "t4"]
    seen = driver.read_file(running["t3"].id, "/run/secrets/key")
    assert seen is not None and seen.data == b"k"


async def test_a_change_before_any_whole_set_is_refused_and_nothing_runs(
    recorder: Recorder, driver: Any, clock: Any, task_factory: Any, caplog: Any
) -> None:
    with caplog.at_level(logging.ERROR, logger="swarmlite.agent.worker"):
        await recorder.worker.on_message(AssignmentChanges(tasks=[task_factory("t1")]))
        await pump(clock)
    assert "assignment changes before any assignments" in caplog.text
    assert recorder.applied == []
    assert recorder.worker.tasks == {}
    assert await driver.list_containers({}) == []
    # The whole set that follows is acted on as usual.
    await recorder.worker.on_message(Assignments(tasks=[task_factory("t2")]))
    await pump(clock)
    assert sorted(recorder.worker.tasks) == ["t2"]
