"""Jobs: completions, max_concurrent, failures, global jobs, no restart once complete."""

from __future__ import annotations

from typing import Any

import msgspec

from swarmlite.api import Service, TaskState
from swarmlite.store import Tx

Sim = Any  # conftest.Sim, reached through the `sim` fixture


async def test_replicated_job_runs_to_total_completions_two_at_a_time(sim: Sim) -> None:
    await sim.add_nodes(2)
    svc = await sim.add_service(mode="replicated-job", total_completions=5, max_concurrent=2)
    tasks = sim.tasks(svc.id)
    assert sorted(t.slot for t in tasks) == [1, 2]
    assert all(t.desired_state is TaskState.COMPLETE for t in tasks)
    completed = 0
    while sim.live(svc.id):
        await sim.converge()
        running = sim.running(svc.id)
        assert len(running) <= 2
        await sim.complete(running[0])
        completed += 1
    assert completed == 5
    done = [t for t in sim.tasks(svc.id) if t.status.state is TaskState.COMPLETE]
    assert sorted(t.slot for t in done) == [1, 2, 3, 4, 5]
    await sim.advance(100)
    await sim.restart_loops()
    assert len(sim.tasks(svc.id)) == 5  # a completed job is not run again


async def test_failed_job_task_is_retried_and_holds_its_turn(sim: Sim) -> None:
    await sim.add_nodes(1)
    svc = await sim.add_service(
        mode="replicated-job", total_completions=2, max_concurrent=1, restart_delay=5
    )
    await sim.converge()
    [first] = sim.running(svc.id)
    await sim.fail(first)
    await sim.advance(4)
    assert sim.live(svc.id) == []  # slot 2 does not jump the queue
    await sim.advance(1)
    await sim.converge()
    [retry] = sim.running(svc.id)
    assert retry.slot == first.slot
    await sim.complete(retry)
    await sim.converge()
    [second] = sim.running(svc.id)
    assert second.slot != first.slot


async def test_job_with_condition_none_gives_up_a_failed_slot(sim: Sim) -> None:
    await sim.add_nodes(1)
    svc = await sim.add_service(
        mode="replicated-job", total_completions=2, max_concurrent=2, restart_condition="none"
    )
    await sim.converge()
    failed, ok = sim.running(svc.id)
    await sim.fail(failed)
    await sim.complete(ok)
    await sim.advance(60)
    assert sim.live(svc.id) == []
    assert len(sim.tasks(svc.id)) == 2


async def test_global_job_runs_once_per_node_including_later_ones(sim: Sim) -> None:
    a, b = await sim.add_nodes(2)
    svc = await sim.add_service(mode="global-job")
    await sim.converge()
    assert sorted(t.node_id for t in sim.running(svc.id)) == sorted([a.id, b.id])
    await sim.complete(*sim.running(svc.id))
    await sim.advance(30)
    assert sim.live(svc.id) == []
    c = await sim.add_node()
    await sim.converge()
    assert [t.node_id for t in sim.running(svc.id)] == [c.id]
    assert len(sim.tasks(svc.id)) == 3


async def test_new_job_iteration_runs_again(sim: Sim) -> None:
    await sim.add_nodes(1)
    svc = await sim.add_service(mode="replicated-job", total_completions=1)
    await sim.converge()
    await sim.complete(*sim.running(svc.id))
    await sim.write(
        lambda rt: Tx().update(msgspec.structs.replace(rt.get(Service, svc.id), job_iteration=1))
    )
    [again] = sim.live(svc.id)
    assert again.job_iteration == 1 and again.slot == 1
