"""Global services: one task per eligible node, following joins, drains, labels, removals."""

from __future__ import annotations

from typing import Any

from swarmlite.api import NodeAvailability, NodeState, TaskState, UpdateState

Sim = Any  # conftest.Sim, reached through the `sim` fixture


def nodes_with_tasks(sim: Sim, service_id: str) -> list[str]:
    return sorted(t.node_id for t in sim.live(service_id))


async def test_one_task_per_node_with_the_node_set(sim: Sim) -> None:
    a, b = await sim.add_nodes(2)
    svc = await sim.add_service(name="agent", mode="global")
    tasks = sim.tasks(svc.id)
    assert sorted(t.node_id for t in tasks) == sorted([a.id, b.id])
    assert all(t.slot == 0 and t.status.state is TaskState.PENDING for t in tasks)
    assert {t.name for t in tasks} == {f"agent.{a.id}", f"agent.{b.id}"}


async def test_follows_a_node_joining(sim: Sim) -> None:
    a = await sim.add_node()
    svc = await sim.add_service(mode="global")
    await sim.converge()
    b = await sim.add_node()
    assert nodes_with_tasks(sim, svc.id) == sorted([a.id, b.id])


async def test_drain_shuts_its_task_down_and_active_brings_it_back(sim: Sim) -> None:
    a, b = await sim.add_nodes(2)
    svc = await sim.add_service(mode="global")
    await sim.converge()
    await sim.set_node(a.id, availability=NodeAvailability.DRAIN)
    await sim.converge()
    assert nodes_with_tasks(sim, svc.id) == [b.id]
    await sim.set_node(a.id, availability=NodeAvailability.ACTIVE)
    await sim.converge()
    assert nodes_with_tasks(sim, svc.id) == sorted([a.id, b.id])


async def test_follows_label_changes(sim: Sim) -> None:
    a = await sim.add_node(labels={"zone": "a"})
    b = await sim.add_node(labels={"zone": "b"})
    svc = await sim.add_service(mode="global", constraints=["node.labels.zone==b"])
    await sim.converge()
    assert nodes_with_tasks(sim, svc.id) == [b.id]
    await sim.set_node(a.id, labels={"zone": "B"})  # values compare case-insensitively
    await sim.set_node(b.id, labels={"zone": "c"})
    await sim.converge()
    assert nodes_with_tasks(sim, svc.id) == [a.id]
    [old] = [t for t in sim.tasks(svc.id) if t.node_id == b.id]
    assert old.status.state is TaskState.SHUTDOWN


async def test_removed_or_down_node_loses_its_task(sim: Sim) -> None:
    a, b, c = await sim.add_nodes(3)
    svc = await sim.add_service(mode="global", restart_delay=0)
    await sim.converge()
    await sim.remove_node(a.id)
    await sim.set_node(b.id, state=NodeState.DOWN)
    await sim.converge()
    assert nodes_with_tasks(sim, svc.id) == [c.id]
    assert all(
        t.desired_state is TaskState.SHUTDOWN for t in sim.tasks(svc.id) if t.node_id != c.id
    )
    await sim.set_node(b.id, state=NodeState.READY)  # back: a new task there
    await sim.converge()
    assert nodes_with_tasks(sim, svc.id) == sorted([b.id, c.id])


async def test_paused_node_keeps_its_task_but_gets_no_new_one(sim: Sim) -> None:
    a = await sim.add_node()
    first = await sim.add_service(name="one", mode="global")
    await sim.converge()
    await sim.set_node(a.id, availability=NodeAvailability.PAUSE)
    second = await sim.add_service(name="two", mode="global")
    await sim.converge()
    assert nodes_with_tasks(sim, first.id) == [a.id]
    assert sim.tasks(second.id) == []


async def test_failed_task_restarts_on_its_node_after_the_delay(sim: Sim) -> None:
    a = await sim.add_node()
    svc = await sim.add_service(mode="global", restart_delay=3)
    await sim.converge()
    await sim.fail(sim.running(svc.id)[0])
    assert sim.live(svc.id) == []
    await sim.advance(3)
    await sim.converge()
    assert [t.node_id for t in sim.running(svc.id)] == [a.id]


async def test_rolling_update_node_by_node(sim: Sim) -> None:
    await sim.add_nodes(3)
    svc = await sim.add_service(mode="global", image="app:1", parallelism=1, monitor=0)
    await sim.converge()
    await sim.set_image(svc.id, "app:2")
    assert len([t for t in sim.tasks(svc.id) if t.desired_state is TaskState.SHUTDOWN]) == 1
    await sim.converge()
    assert sorted(t.spec.container.image for t in sim.running(svc.id)) == ["app:2"] * 3
    assert sim.service(svc.id).update_status.state is UpdateState.COMPLETED
