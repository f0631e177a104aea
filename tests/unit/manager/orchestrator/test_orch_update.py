"""Rolling updates: stop-first and start-first batches, delay, monitor, pause, continue and
rollback."""

from __future__ import annotations

from typing import Any

import msgspec

from swarmlite.api import ServiceSpec, TaskState, UpdateConfig, UpdateState
from swarmlite.manager.orchestrator.common import Plan
from swarmlite.testing.factories import make_service

Sim = Any  # conftest.Sim, reached through the `sim` fixture


def images(sim: Sim, service_id: str) -> list[str]:
    return sorted(t.spec.container.image for t in sim.live(service_id))


def in_flight(sim: Sim, service_id: str, image: str) -> list[Any]:
    """New-spec tasks not running yet."""
    return [
        t
        for t in sim.live(service_id)
        if t.spec.container.image == image and t.status.state is not TaskState.RUNNING
    ]


async def batch(sim: Sim, health: str = "") -> None:
    """One turn of the agents and the scheduler: the old tasks stop, the new ones run."""
    await sim.stop_requested()
    await sim.schedule()
    await sim.start(health)


async def deployed(sim: Sim, **kw: Any) -> Any:
    await sim.add_nodes(3)
    svc = await sim.add_service(image="app:1", **kw)
    await sim.converge()
    return svc


async def test_stop_first_with_parallelism_2_replaces_two_at_a_time(sim: Sim) -> None:
    svc = await deployed(sim, replicas=5, parallelism=2, order="stop-first", monitor=1)
    await sim.advance(1)
    await sim.set_image(svc.id, "app:2")
    status = sim.service(svc.id).update_status
    assert status.state is UpdateState.UPDATING
    stopping = [t for t in sim.tasks(svc.id) if t.desired_state is TaskState.SHUTDOWN]
    assert sorted(t.slot for t in stopping) == [1, 2]  # the old ones go first
    assert [t for t in sim.tasks(svc.id) if t.spec.container.image == "app:2"] == []

    await sim.stop_requested()  # old ones end: their new ones are created
    assert sorted(t.slot for t in in_flight(sim, svc.id, "app:2")) == [1, 2]
    await sim.schedule()
    await sim.start()  # new ones run: the next batch starts
    stopping = [
        t
        for t in sim.tasks(svc.id)
        if t.desired_state is TaskState.SHUTDOWN and t.status.state is TaskState.RUNNING
    ]
    assert sorted(t.slot for t in stopping) == [3, 4]
    await sim.converge()
    assert images(sim, svc.id) == ["app:2"] * 5
    assert sim.service(svc.id).update_status.state is UpdateState.UPDATING  # monitoring
    await sim.advance(1)
    status = sim.service(svc.id).update_status
    assert status.state is UpdateState.COMPLETED
    assert status.completed_at >= status.started_at > 0


async def test_start_first_with_parallelism_2_waits_for_healthy_new_tasks(sim: Sim) -> None:
    svc = await deployed(sim, replicas=4, parallelism=2, order="start-first", monitor=0)
    await sim.set_image(svc.id, "app:2")
    new = in_flight(sim, svc.id, "app:2")
    assert sorted(t.slot for t in new) == [1, 2]
    assert len(sim.running(svc.id)) == 4  # nothing stopped yet
    await sim.schedule()
    await sim.start(health="starting")
    assert len([t for t in sim.running(svc.id) if t.spec.container.image == "app:1"]) == 4
    await sim.set_health([t for t in sim.running(svc.id) if t.slot in (1, 2)], "healthy")
    old = [t for t in sim.tasks(svc.id) if t.spec.container.image == "app:1"]
    assert sorted(t.slot for t in old if t.desired_state is TaskState.SHUTDOWN) == [1, 2]
    assert sorted(t.slot for t in in_flight(sim, svc.id, "app:2")) == [3, 4]
    await sim.converge(health="healthy")
    assert images(sim, svc.id) == ["app:2"] * 4
    assert sorted(t.slot for t in sim.running(svc.id)) == [1, 2, 3, 4]
    assert sim.service(svc.id).update_status.state is UpdateState.COMPLETED


async def test_delay_between_batches(sim: Sim) -> None:
    update = UpdateConfig(parallelism=1, delay=10, monitor=0)
    svc = await deployed(sim, replicas=2, update=update)
    await sim.set_image(svc.id, "app:2")
    await sim.converge()
    assert images(sim, svc.id) == ["app:1", "app:2"]
    await sim.advance(9)
    await sim.converge()
    assert images(sim, svc.id) == ["app:1", "app:2"]
    await sim.advance(1)
    await sim.converge()
    assert images(sim, svc.id) == ["app:2", "app:2"]


async def test_failed_new_tasks_roll_back_to_the_old_spec(sim: Sim) -> None:
    svc = await deployed(
        sim,
        replicas=3,
        parallelism=2,
        failure_action="rollback",
        monitor=5,
        rollback=UpdateConfig(parallelism=0, monitor=1),
        restart_delay=5,
    )
    old_spec: ServiceSpec = sim.service(svc.id).spec
    await sim.set_image(svc.id, "app:bad")
    await batch(sim)
    new = [t for t in sim.running(svc.id) if t.spec.container.image == "app:bad"]
    assert len(new) == 2
    await sim.advance(1)
    await sim.fail(new[0])  # fails within its monitor period
    rolled = sim.service(svc.id)
    assert rolled.update_status.state is UpdateState.ROLLBACK_STARTED
    assert "failure" in rolled.update_status.message
    assert rolled.spec == old_spec
    assert rolled.spec_version == svc.spec_version + 2
    await sim.converge()
    assert images(sim, svc.id) == ["app:1"] * 3
    await sim.advance(1)
    status = sim.service(svc.id).update_status
    assert status.state is UpdateState.ROLLBACK_COMPLETED
    # The reason for the rollback outlives it: `stack deploy` reports it once it is over.
    assert status.message.startswith("rollback completed (") and "failure" in status.message
    assert sim.service(svc.id).spec.task.container.image == "app:1"


async def test_failure_pauses_the_update(sim: Sim) -> None:
    svc = await deployed(sim, replicas=3, parallelism=1, failure_action="pause", monitor=5)
    await sim.set_image(svc.id, "app:bad")
    await batch(sim)
    [new] = [t for t in sim.running(svc.id) if t.spec.container.image == "app:bad"]
    await sim.fail(new)
    status = sim.service(svc.id).update_status
    assert status.state is UpdateState.PAUSED
    assert new.id in status.message
    await sim.advance(30)
    await sim.converge()
    # Slot 2 was already on its way when slot 1 failed; slot 3 is left alone.
    assert [t.spec.container.image for t in sim.live(svc.id) if t.slot == 3] == ["app:1"]
    await sim.restart_loops()
    assert sim.service(svc.id).update_status.state is UpdateState.PAUSED
    await sim.set_image(svc.id, "app:3")  # a new update resumes
    await sim.converge()
    await sim.advance(30)
    await sim.converge()
    assert images(sim, svc.id) == ["app:3"] * 3
    assert sim.service(svc.id).update_status.state is UpdateState.COMPLETED


async def test_failure_with_continue_finishes_the_update(sim: Sim) -> None:
    svc = await deployed(
        sim, replicas=3, parallelism=1, failure_action="continue", monitor=2, restart_delay=0
    )
    await sim.set_image(svc.id, "app:2")
    await batch(sim)
    [new] = [t for t in sim.running(svc.id) if t.spec.container.image == "app:2"]
    await sim.fail(new)
    assert sim.service(svc.id).update_status.state is UpdateState.UPDATING
    await sim.converge()
    await sim.advance(2)
    assert images(sim, svc.id) == ["app:2"] * 3
    assert sim.service(svc.id).update_status.state is UpdateState.COMPLETED


async def test_unhealthy_new_task_counts_as_a_failure(sim: Sim) -> None:
    svc = await deployed(sim, replicas=2, order="start-first", failure_action="pause")
    await sim.set_image(svc.id, "app:2")
    await sim.converge(health="starting")
    [new] = [t for t in sim.live(svc.id) if t.spec.container.image == "app:2"]
    await sim.set_health([new], "unhealthy")
    status = sim.service(svc.id).update_status
    assert status.state is UpdateState.PAUSED
    assert "unhealthy" in status.message
    assert images(sim, svc.id).count("app:1") == 2  # start-first: the old ones still run


async def test_restarted_leader_carries_on_without_duplicates(sim: Sim) -> None:
    svc = await deployed(sim, replicas=4, parallelism=2, monitor=0)
    await sim.set_image(svc.id, "app:2")
    await sim.restart_loops()
    await sim.stop_requested()
    await sim.restart_loops()
    assert len(in_flight(sim, svc.id, "app:2")) == 2
    await sim.converge()
    assert images(sim, svc.id) == ["app:2"] * 4
    assert len(sim.tasks(svc.id)) == 8
    assert sim.service(svc.id).update_status.state is UpdateState.COMPLETED


def test_a_plan_that_sets_its_service_as_read_writes_nothing() -> None:
    # An update that starts and ends in one plan, at the time the last one ended, left the
    # service as it was: writing it anyway was an event, whose plan wrote it again, forever.
    service = make_service("web", replicas=1)
    same, bumped = Plan(service, [], now=0.0), Plan(service, [], now=0.0)
    same.set_service(msgspec.structs.replace(service, update_status=None))
    bumped.set_service(msgspec.structs.replace(service, spec_version=service.spec_version + 1))
    assert (same.service_changed, same.tx()) == (False, None)
    assert bumped.service_changed and bumped.tx() is not None
