"""The Scheduler loop on a store: what it writes, when it retries, and what it leaves alone."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from swarmlite.api import NodeAvailability, NodeState, ServiceMode, Task, TaskState
from swarmlite.errors import InternalError, Unavailable
from swarmlite.manager.scheduler import ASSIGNED_MESSAGE, MAX_TX_TASKS
from swarmlite.store import Tx

GIB = 1 << 30
replace = msgspec.structs.replace


async def test_pending_tasks_of_several_services_are_assigned_in_one_transaction(
    cluster: Any, make: Any
) -> None:
    web, api = make.service("web", replicas=3), make.service("api", replicas=2)
    await cluster.create(make.node("n1"), make.node("n2"), make.node("n3"), web, api)
    await cluster.create(*make.tasks(web), *make.tasks(api))
    before = cluster.memory.applied_index
    await cluster.clock.run_for(12.5)
    async with cluster.running():
        assert cluster.memory.applied_index == before + 1
        assert cluster.per_node("web") == {"n1": 1, "n2": 1, "n3": 1}
        assert sum(cluster.per_node("api").values()) == 2
        assigned = cluster.task("web.1")
        assert assigned.status.state == TaskState.ASSIGNED
        assert assigned.status.message == ASSIGNED_MESSAGE
        assert assigned.status.timestamp == cluster.clock.wall()
        assert assigned.status.pending_reason == ""


async def test_a_large_pass_writes_transactions_of_at_most_max_tx_tasks(
    cluster: Any, make: Any
) -> None:
    services = [make.service(name, replicas=150) for name in ("web", "api", "db")]
    await cluster.create(make.node("n1"), make.node("n2"), *services)
    await cluster.create(*(t for svc in services for t in make.tasks(svc)))
    watch = cluster.memory.watch(kinds=["task"])
    async with cluster.running():
        written: dict[int, int] = {}  # raft index -> tasks written there
        for event in watch.take_nowait():
            written[event.index] = written.get(event.index, 0) + 1
        assert sorted(written.values()) == [50, MAX_TX_TASKS, MAX_TX_TASKS]
        assert sum(cluster.per_node(svc.id).get("n1", 0) for svc in services) == 225
    watch.close()


async def test_tasks_created_while_running_are_placed_counting_earlier_ones(
    cluster: Any, make: Any
) -> None:
    svc = make.service("web", replicas=4)
    await cluster.create(make.node("n1"), make.node("n2"), svc)
    async with cluster.running():
        await cluster.create(*make.tasks(svc, 2))
        await cluster.settle()
        assert cluster.per_node("web") == {"n1": 1, "n2": 1}
        await cluster.create(make.task(svc, 3), make.task(svc, 4))
        await cluster.settle()
        assert cluster.per_node("web") == {"n1": 2, "n2": 2}


async def test_an_unplaceable_task_stays_pending_with_its_reason(cluster: Any, make: Any) -> None:
    svc = make.service("web", constraints=["node.labels.zone==b"])
    await cluster.create(make.node("n1", labels={"zone": "a"}), svc, make.task(svc, 1))
    async with cluster.running():
        pending = cluster.task("web.1")
        assert pending.status.state == TaskState.PENDING
        assert pending.node_id == ""
        reason = "no node satisfies constraint node.labels.zone==b: 1 node rejected"
        assert pending.status.pending_reason == reason
        assert pending.status.message == reason


async def test_the_reason_is_written_only_when_it_changes(cluster: Any, make: Any) -> None:
    svc = make.service("web", constraints=["node.labels.zone==b"])
    n1 = make.node("n1", labels={"zone": "a"})
    await cluster.create(n1, svc, make.task(svc, 1))
    async with cluster.running():
        written = cluster.task("web.1").version
        # A heartbeat, and a label change that does not help: the reason stays the same.
        await cluster.update(replace(n1, status=replace(n1.status, last_seen=5.0)))
        await cluster.update(replace(n1, spec=replace(n1.spec, labels={"zone": "c"})))
        await cluster.settle()
        assert cluster.task("web.1").version == written
        # A second node that also fails: the count in the reason changes, so it is written.
        await cluster.create(make.node("n2", labels={"zone": "a"}))
        await cluster.settle()
        task = cluster.task("web.1")
        assert task.version > written
        assert task.status.pending_reason.endswith(": 2 nodes rejected")


async def test_a_node_coming_ready_picks_up_pending_tasks(cluster: Any, make: Any) -> None:
    svc = make.service("web", replicas=2)
    n1 = make.node("n1", state=NodeState.UNKNOWN)
    await cluster.create(n1, svc, *make.tasks(svc))
    async with cluster.running():
        assert cluster.task("web.1").status.pending_reason == (
            "no suitable node (1 node not ready (unknown))"
        )
        await cluster.update(replace(n1, status=replace(n1.status, state=NodeState.READY)))
        await cluster.settle()
        assert cluster.per_node("web") == {"n1": 2}
        assert cluster.task("web.2").status.pending_reason == ""


async def test_a_joining_node_picks_up_pending_tasks(cluster: Any, make: Any) -> None:
    svc = make.service("web", replicas=2, max_per_node=1)
    await cluster.create(make.node("n1"), svc, *make.tasks(svc))
    async with cluster.running():
        assert cluster.per_node("web") == {"n1": 1}
        await cluster.create(make.node("n2"))
        await cluster.settle()
        assert cluster.per_node("web") == {"n1": 1, "n2": 1}


async def test_drained_and_paused_nodes_get_nothing_until_active(cluster: Any, make: Any) -> None:
    svc = make.service("web", replicas=2)
    drained = make.node("n1", availability=NodeAvailability.DRAIN)
    paused = make.node("n2", availability=NodeAvailability.PAUSE)
    await cluster.create(drained, paused, svc, *make.tasks(svc))
    async with cluster.running():
        assert cluster.per_node("web") == {}
        assert cluster.task("web.1").status.pending_reason == (
            "no suitable node (2 nodes not available (drain, pause))"
        )
        active = NodeAvailability.ACTIVE
        await cluster.update(replace(paused, spec=replace(paused.spec, availability=active)))
        await cluster.settle()
        assert cluster.per_node("web") == {"n2": 2}


async def test_freed_resources_let_a_pending_task_in(cluster: Any, make: Any) -> None:
    svc = make.service("db", replicas=2, memory=3 * GIB)
    await cluster.create(make.node("n1", memory=4 * GIB), svc, *make.tasks(svc))
    async with cluster.running():
        assert cluster.per_node("db") == {"n1": 1}
        (placed,) = [t for t in cluster.memory.list(Task) if t.node_id]
        (waiting,) = [t for t in cluster.memory.list(Task) if not t.node_id]
        assert waiting.status.pending_reason == (
            "no suitable node (insufficient resources on 1 node (memory))"
        )
        status = replace(placed.status, state=TaskState.FAILED)
        await cluster.update(replace(placed, status=status))
        await cluster.settle()
        assert cluster.task(waiting.id).node_id == "n1"
        assert cluster.task(waiting.id).status.state == TaskState.ASSIGNED


async def test_global_tasks_are_assigned_only_where_their_node_allows(
    cluster: Any, make: Any
) -> None:
    svc = make.service("agent", mode=ServiceMode.GLOBAL)
    n2 = make.node("n2", availability=NodeAvailability.DRAIN)
    await cluster.create(make.node("n1"), n2, svc)
    await cluster.create(make.task(svc, 0, node_id="n1"), make.task(svc, 0, node_id="n2"))
    async with cluster.running():
        assert cluster.task("agent.n1").status.state == TaskState.ASSIGNED
        held = cluster.task("agent.n2")
        assert (held.status.state, held.node_id) == (TaskState.PENDING, "n2")
        assert held.status.pending_reason == "no suitable node (1 node not available (drain))"
        active = NodeAvailability.ACTIVE
        await cluster.update(replace(n2, spec=replace(n2.spec, availability=active)))
        await cluster.settle()
        assert cluster.task("agent.n2").status.state == TaskState.ASSIGNED
        assert cluster.task("agent.n2").node_id == "n2"


async def test_a_pending_task_being_shut_down_is_left_alone(cluster: Any, make: Any) -> None:
    svc = make.service("web")
    await cluster.create(make.node("n1"), svc, make.task(svc, 1, desired=TaskState.SHUTDOWN))
    before = cluster.memory.applied_index
    async with cluster.running():
        assert cluster.memory.applied_index == before
        assert cluster.task("web.1").node_id == ""


@pytest.mark.parametrize("error", [Unavailable("leader moving"), InternalError("bug")])
async def test_a_failed_write_is_tried_again(cluster: Any, make: Any, error: Exception) -> None:
    svc = make.service("web", replicas=2)
    await cluster.create(make.node("n1"), svc, *make.tasks(svc))
    cluster.proposer.failures.append(error)
    async with cluster.running():
        assert cluster.per_node("web") == {}
        await cluster.clock.run_for(1.0)
        await cluster.settle()
        assert cluster.per_node("web") == {"n1": 2}


async def test_a_task_stopped_while_the_pass_ran_is_not_assigned(cluster: Any, make: Any) -> None:
    svc = make.service("web", replicas=2)
    first, second = make.tasks(svc)
    await cluster.create(make.node("n1"), svc, first, second)
    stored = cluster.task(first.id)
    cluster.proposer.rivals.append(Tx().update(replace(stored, desired_state=TaskState.SHUTDOWN)))
    async with cluster.running():
        assert cluster.task(first.id).node_id == ""
        assert cluster.task(first.id).status.state == TaskState.PENDING
        assert cluster.task(second.id).node_id == "n1"


async def test_a_restarted_scheduler_reaches_the_same_placements(
    new_cluster: Any, make: Any
) -> None:
    web = make.service("web", replicas=6, preferences=["node.labels.zone"], memory=GIB)
    api = make.service("api", replicas=5, max_per_node=2)
    nodes = [
        make.node("n1", labels={"zone": "a"}, memory=2 * GIB),
        make.node("n2", labels={"zone": "a"}, memory=4 * GIB),
        make.node("n3", labels={"zone": "b"}, memory=4 * GIB),
    ]

    async def run(*, restart: bool) -> dict[str, Task]:
        cluster = new_cluster()
        await cluster.create(*nodes, web, api)
        async with cluster.running():
            await cluster.create(*make.tasks(web))
            await cluster.settle()
            if not restart:
                await cluster.create(*make.tasks(api))
                await cluster.settle()
        if restart:
            await cluster.create(*make.tasks(api))  # while no scheduler runs
            async with cluster.running():
                pass
        return {t.id: t for t in cluster.memory.list(Task)}

    continuous, restarted = await run(restart=False), await run(restart=True)
    assert {i: t.node_id for i, t in continuous.items()} == {
        i: t.node_id for i, t in restarted.items()
    }
    assert {i: t.status.pending_reason for i, t in continuous.items()} == {
        i: t.status.pending_reason for i, t in restarted.items()
    }
    assert sum(1 for t in continuous.values() if t.node_id) == 11


async def test_job_tasks_meant_to_complete_are_placed_and_count_on_their_node(
    cluster: Any, make: Any
) -> None:
    job = make.service("job", mode=ServiceMode.REPLICATED_JOB, replicas=2)
    await cluster.create(make.node("n1"), make.node("n2"), job)
    tasks = [make.task(job, slot, desired=TaskState.COMPLETE) for slot in (1, 2)]
    await cluster.create(*tasks)
    async with cluster.running():
        await cluster.settle()
        assert cluster.per_node("job") == {"n1": 1, "n2": 1}
