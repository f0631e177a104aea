"""Restart policy: condition, delay, max_attempts within a window, and exit 0."""

from __future__ import annotations

from typing import Any

from swarmlite.api import TaskState

Sim = Any  # conftest.Sim, reached through the `sim` fixture


def slot_tasks(sim: Sim, service_id: str, slot: int = 1) -> list[Any]:
    """The slot's tasks, oldest first."""
    tasks = [t for t in sim.tasks(service_id) if t.slot == slot]
    return sorted(tasks, key=lambda t: t.created_at)


async def test_failed_task_is_marked_shutdown_and_replaced_after_the_delay(sim: Sim) -> None:
    await sim.add_nodes(1)
    svc = await sim.add_service(replicas=1, restart_delay=5)
    await sim.converge()
    first = sim.running(svc.id)[0]
    await sim.advance(1)
    await sim.fail(first)
    [task] = slot_tasks(sim, svc.id)
    assert task.status.state is TaskState.FAILED
    assert task.desired_state is TaskState.SHUTDOWN
    await sim.advance(4.5)
    assert len(slot_tasks(sim, svc.id)) == 1
    await sim.advance(0.5)
    tasks = slot_tasks(sim, svc.id)
    assert len(tasks) == 2
    assert tasks[-1].status.state is TaskState.PENDING and tasks[-1].slot == 1


async def test_max_attempts_leaves_the_slot_empty(sim: Sim) -> None:
    await sim.add_nodes(1)
    svc = await sim.add_service(replicas=1, restart_delay=1, max_attempts=2)
    for _ in range(3):
        await sim.converge()
        [task] = sim.running(svc.id)
        await sim.fail(task)
        await sim.advance(1)
    await sim.advance(60)
    tasks = slot_tasks(sim, svc.id)
    assert len(tasks) == 3  # the first run and two restarts
    assert sim.live(svc.id) == []
    await sim.restart_loops()
    assert len(slot_tasks(sim, svc.id)) == 3  # a new leader agrees


async def test_attempts_outside_the_window_do_not_count(sim: Sim) -> None:
    await sim.add_nodes(1)
    svc = await sim.add_service(replicas=1, restart_delay=1, max_attempts=1, restart_window=10)
    for _ in range(3):
        await sim.converge()
        [task] = sim.running(svc.id)
        await sim.advance(20)  # each run outlives the window
        await sim.fail(task)
        await sim.advance(1)
    await sim.converge()
    assert len(sim.running(svc.id)) == 1  # failures far apart never reach max_attempts
    [task] = sim.running(svc.id)
    await sim.fail(task)  # now two failures within 10 s
    await sim.advance(60)
    assert sim.live(svc.id) == []


async def test_on_failure_does_not_restart_an_exit_0(sim: Sim) -> None:
    await sim.add_nodes(1)
    svc = await sim.add_service(replicas=2, restart_condition="on-failure", restart_delay=0)
    await sim.converge()
    done, crashed = sim.running(svc.id)
    await sim.complete(done)
    await sim.fail(crashed, exit_code=2)
    await sim.advance(1)
    assert len(slot_tasks(sim, svc.id, done.slot)) == 1
    assert len(slot_tasks(sim, svc.id, crashed.slot)) == 2
    failed_zero = next(t for t in sim.tasks(svc.id) if t.id == done.id)
    assert failed_zero.desired_state is TaskState.SHUTDOWN


async def test_on_failure_restarts_after_a_node_went_down(sim: Sim) -> None:
    a = await sim.add_node()
    svc = await sim.add_service(replicas=1, restart_condition="on-failure", restart_delay=0)
    await sim.converge()
    await sim.add_node()
    await sim.set_node(a.id, state="down")
    await sim.converge()
    assert len(sim.running(svc.id)) == 1


async def test_condition_any_restarts_an_exit_0(sim: Sim) -> None:
    await sim.add_nodes(1)
    svc = await sim.add_service(replicas=1, restart_condition="any", restart_delay=0)
    await sim.converge()
    await sim.complete(sim.running(svc.id)[0])
    await sim.converge()
    assert len(sim.running(svc.id)) == 1
    assert len(sim.tasks(svc.id)) == 2


async def test_condition_none_never_restarts_until_the_spec_changes(sim: Sim) -> None:
    await sim.add_nodes(1)
    svc = await sim.add_service(replicas=1, restart_condition="none")
    await sim.converge()
    await sim.fail(sim.running(svc.id)[0])
    await sim.advance(100)
    assert sim.live(svc.id) == []
    await sim.set_image(svc.id, "nginx:2")  # an update gives the slot a fresh start
    await sim.converge()
    [task] = sim.running(svc.id)
    assert task.spec.container.image == "nginx:2"
