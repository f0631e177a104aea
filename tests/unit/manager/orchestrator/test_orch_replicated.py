"""Replicated services: slots, scaling, node failures, drains, restarts after a new leader."""

from __future__ import annotations

from typing import Any

from swarmlite.api import NodeAvailability, NodeState, TaskState
from swarmlite.testing.clock import DEFAULT_WALL_START

Sim = Any  # conftest.Sim, reached through the `sim` fixture


async def test_new_service_gets_one_pending_task_per_slot(sim: Sim) -> None:
    await sim.advance(3)
    svc = await sim.add_service(name="web", replicas=3, image="nginx:1", labels={"tier": "a"})
    tasks = sim.tasks(svc.id)
    assert [t.slot for t in tasks] == [1, 2, 3]
    for task in tasks:
        assert task.service_name == "web"
        assert task.service_labels == {"tier": "a"}  # what the node may act on (swarm's too)
        assert task.spec == svc.spec.task
        assert task.spec_version == svc.spec_version
        assert task.desired_state is TaskState.RUNNING
        assert task.status.state is TaskState.PENDING
        assert task.status.timestamp == DEFAULT_WALL_START + 3
        assert task.node_id == ""
    assert svc.update_status is None  # a new service is not an update


async def test_scale_2_to_6_to_1_keeps_the_lowest_slots(sim: Sim) -> None:
    await sim.add_nodes(3)
    svc = await sim.add_service(replicas=2)
    await sim.converge()
    first = {t.slot: t.id for t in sim.running(svc.id)}
    assert sorted(first) == [1, 2]

    await sim.scale(svc.id, 6)
    await sim.converge()
    assert sim.slots(svc.id) == [1, 2, 3, 4, 5, 6]
    assert {t.slot: t.id for t in sim.running(svc.id) if t.slot <= 2} == first  # untouched
    assert sim.service(svc.id).update_status is None  # scaling is not a rolling update

    await sim.scale(svc.id, 1)
    assert sim.slots(svc.id) == [1]
    stopped = [t for t in sim.tasks(svc.id) if t.desired_state is TaskState.SHUTDOWN]
    assert sorted(t.slot for t in stopped) == [2, 3, 4, 5, 6]
    await sim.converge()
    assert [t.id for t in sim.running(svc.id)] == [first[1]]


async def test_scale_up_waits_for_a_slot_still_stopping(sim: Sim) -> None:
    await sim.add_nodes(1)
    svc = await sim.add_service(replicas=2)
    await sim.converge()
    await sim.scale(svc.id, 1)
    await sim.scale(svc.id, 2)
    slot2 = [t for t in sim.tasks(svc.id) if t.slot == 2]
    assert len(slot2) == 1 and slot2[0].desired_state is TaskState.SHUTDOWN
    await sim.stop_requested()
    states = sorted(t.status.state.value for t in sim.tasks(svc.id) if t.slot == 2)
    assert states == ["pending", "shutdown"]


async def test_removed_service_tasks_are_shut_down_then_deleted(sim: Sim) -> None:
    await sim.add_nodes(2)
    svc = await sim.add_service(replicas=3)
    other = await sim.add_service(name="api", replicas=1)
    await sim.converge()
    await sim.remove_service(svc.id)
    tasks = sim.tasks(svc.id)
    assert len(tasks) == 3
    assert all(t.desired_state is TaskState.SHUTDOWN for t in tasks)
    await sim.converge()  # the agents stop them
    assert sim.tasks(svc.id) == []
    assert len(sim.running(other.id)) == 1


async def test_task_on_a_down_node_is_replaced_after_the_restart_delay(sim: Sim) -> None:
    a, b = await sim.add_nodes(2)
    svc = await sim.add_service(replicas=2, restart_delay=5)
    await sim.converge()
    lost = [t for t in sim.running(svc.id) if t.node_id == a.id]
    assert len(lost) == 1
    await sim.set_node(a.id, state=NodeState.DOWN)
    gone = next(t for t in sim.tasks(svc.id) if t.id == lost[0].id)
    assert gone.desired_state is TaskState.SHUTDOWN
    assert len(sim.tasks(svc.id)) == 2  # no replacement before the delay
    await sim.advance(4.9)
    assert len(sim.tasks(svc.id)) == 2
    await sim.advance(0.2)
    await sim.converge()
    replacement = [t for t in sim.running(svc.id) if t.slot == lost[0].slot and t.id != gone.id]
    assert len(replacement) == 1 and replacement[0].node_id == b.id


async def test_removed_node_counts_as_down_forever(sim: Sim) -> None:
    a, b = await sim.add_nodes(2)
    svc = await sim.add_service(replicas=2, restart_delay=0)
    await sim.converge()
    await sim.remove_node(a.id)
    await sim.converge()
    running = sim.running(svc.id)
    assert sorted(t.slot for t in running) == [1, 2]
    assert all(t.node_id == b.id for t in running)


async def test_drain_moves_tasks_at_once(sim: Sim) -> None:
    a, b = await sim.add_nodes(2)
    svc = await sim.add_service(replicas=4, restart_delay=30)
    await sim.converge()
    on_a = [t for t in sim.running(svc.id) if t.node_id == a.id]
    assert on_a
    await sim.set_node(a.id, availability=NodeAvailability.DRAIN)
    await sim.converge()  # no restart delay: all of this at the same instant
    running = sim.running(svc.id)
    assert sorted(t.slot for t in running) == [1, 2, 3, 4]
    assert all(t.node_id == b.id for t in running)
    for old in on_a:
        assert next(t for t in sim.tasks(svc.id) if t.id == old.id).status.state is (
            TaskState.SHUTDOWN
        )


async def test_paused_node_keeps_its_tasks(sim: Sim) -> None:
    a, _ = await sim.add_nodes(2)
    svc = await sim.add_service(replicas=2)
    await sim.converge()
    before = {t.id for t in sim.running(svc.id)}
    await sim.set_node(a.id, availability=NodeAvailability.PAUSE)
    await sim.converge()
    assert {t.id for t in sim.running(svc.id)} == before


async def test_a_new_leader_makes_no_duplicate_tasks(sim: Sim) -> None:
    await sim.add_nodes(2)
    svc = await sim.add_service(replicas=3, restart_delay=10)
    await sim.converge()
    failed = sim.running(svc.id)[0]
    await sim.fail(failed)
    await sim.restart_loops()
    await sim.restart_loops()
    assert len(sim.tasks(svc.id)) == 3  # the delay holds across leaders
    await sim.advance(10)
    await sim.restart_loops()
    await sim.converge()
    assert sim.slots(svc.id) == [1, 2, 3]
    assert len(sim.tasks(svc.id)) == 4
