"""Task history: at most task_history_limit finished tasks per slot."""

from __future__ import annotations

from typing import Any

from swarmlite.api import TaskState

Sim = Any  # conftest.Sim, reached through the `sim` fixture


async def crash_loop(sim: Sim, service_id: str, times: int) -> None:
    for _ in range(times):
        await sim.converge()
        for task in sim.running(service_id):
            await sim.advance(1)
            await sim.fail(task)
        await sim.advance(1)


async def test_default_keeps_five_finished_tasks_per_slot(sim: Sim) -> None:
    await sim.add_nodes(1)
    svc = await sim.add_service(replicas=2, restart_delay=0)
    first = {t.id for t in sim.tasks(svc.id)}
    await crash_loop(sim, svc.id, 8)
    await sim.converge()
    for slot in (1, 2):
        tasks = [t for t in sim.tasks(svc.id) if t.slot == slot]
        finished = [t for t in tasks if t.status.state.terminal]
        assert len(finished) == 5
        assert len(sim.running(svc.id)) == 2
    assert first.isdisjoint(t.id for t in sim.tasks(svc.id))  # the oldest went first


async def test_cluster_setting_changes_the_limit(sim: Sim) -> None:
    await sim.set_history_limit(2)
    await sim.add_nodes(1)
    svc = await sim.add_service(replicas=1, restart_delay=0)
    await crash_loop(sim, svc.id, 4)
    await sim.converge()
    states = [t.status.state for t in sim.tasks(svc.id)]
    assert states.count(TaskState.FAILED) == 2
    assert states.count(TaskState.RUNNING) == 1


async def test_history_kept_for_max_attempts(sim: Sim) -> None:
    await sim.set_history_limit(1)
    await sim.add_nodes(1)
    svc = await sim.add_service(replicas=1, restart_delay=0, max_attempts=3)
    await crash_loop(sim, svc.id, 6)
    assert sim.live(svc.id) == []
    assert len(sim.tasks(svc.id)) == 4  # the first run and three restarts, all kept
