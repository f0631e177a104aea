"""Generic resources in the scheduler: nodes without enough free are filtered out with the
kind named in the reason, placed tasks are assigned specific named resources (or a count),
and what a task was assigned comes free again when it ends."""

from __future__ import annotations

from typing import Any

import msgspec

from swarmlite.api import (
    DiscreteResource,
    GenericResource,
    NamedResource,
    Node,
    Service,
    Task,
    TaskState,
)
from swarmlite.manager.scheduler import Planner, ResourcesFilter

replace = msgspec.structs.replace


def gpus(*names: str) -> list[GenericResource]:
    return [NamedResource(kind="gpu", value=name) for name in names]


def advertising(node: Node, resources: list[GenericResource]) -> Node:
    return replace(node, status=replace(node.status, generic_resources=resources))


def reserving(svc: Service, **counts: int) -> Service:
    """``svc`` reserving ``counts`` of each kind (``gpu=1``)."""
    wanted = [DiscreteResource(kind=kind, value=value) for kind, value in counts.items()]
    template = svc.spec.task
    reservations = replace(template.resources.reservations, generic_resources=wanted)
    resources = replace(template.resources, reservations=reservations)
    return replace(svc, spec=replace(svc.spec, task=replace(template, resources=resources)))


def running_on(task: Task, node_id: str, assigned: list[GenericResource]) -> Task:
    return replace(
        task,
        node_id=node_id,
        assigned_generic_resources=assigned,
        status=replace(task.status, state=TaskState.RUNNING),
    )


# --------------------------------------------------------------------------- the filter


def test_a_node_without_the_kind_is_rejected_naming_it(make: Any) -> None:
    svc = reserving(make.service("train"), gpu=1)
    view = make.view(make.node("plain"), advertising(make.node("gpu"), gpus("GPU-a")), svc)
    check, t = ResourcesFilter(), make.task(svc, 1)
    assert not check.accepts(view.nodes["plain"], t, view)
    assert check.detail(view.nodes["plain"], t, view) == "gpu"
    assert check.accepts(view.nodes["gpu"], t, view)


def test_named_resources_count_one_each_and_a_count_counts_its_value(make: Any) -> None:
    svc2, svc3 = reserving(make.service("two"), gpu=2), reserving(make.service("three"), gpu=3)
    named = advertising(make.node("named"), gpus("GPU-a", "GPU-b"))
    counted = advertising(make.node("counted"), [DiscreteResource(kind="gpu", value=2)])
    view = make.view(named, counted, svc2, svc3)
    check = ResourcesFilter()
    for node_id in ("named", "counted"):
        assert check.accepts(view.nodes[node_id], make.task(svc2, 1), view)
        assert not check.accepts(view.nodes[node_id], make.task(svc3, 1), view)


def test_what_live_tasks_were_assigned_is_not_free_until_they_end(make: Any) -> None:
    svc = reserving(make.service("train"), gpu=1)
    node = advertising(make.node("n1"), gpus("GPU-a", "GPU-b"))
    holders = [
        running_on(make.task(svc, 1), "n1", gpus("GPU-a")),
        running_on(make.task(svc, 2), "n1", gpus("GPU-b")),
    ]
    waiting = make.task(svc, 3)
    check = ResourcesFilter()
    view = make.view(node, svc, *holders, waiting)
    assert view.nodes["n1"].free("gpu") == 0
    assert not check.accepts(view.nodes["n1"], waiting, view)
    assert check.detail(view.nodes["n1"], waiting, view) == "gpu"

    ended = replace(holders[1], status=replace(holders[1].status, state=TaskState.FAILED))
    view = make.view(node, svc, holders[0], ended, waiting)
    assert view.nodes["n1"].free("gpu") == 1
    assert check.accepts(view.nodes["n1"], waiting, view)
    assert view.nodes["n1"].claim([DiscreteResource(kind="gpu", value=1)]) == gpus("GPU-b")


def test_a_counted_kind_is_taken_by_count(make: Any) -> None:
    svc = reserving(make.service("fast"), ssd=2)
    node = advertising(make.node("n1"), [DiscreteResource(kind="ssd", value=3)])
    holder = running_on(make.task(svc, 1), "n1", [DiscreteResource(kind="ssd", value=2)])
    view = make.view(node, svc, holder)
    assert view.nodes["n1"].free("ssd") == 1
    assert not ResourcesFilter().accepts(view.nodes["n1"], make.task(svc, 2), view)


# --------------------------------------------------------------------------- the planner


def test_each_task_gets_its_own_named_resources_on_the_only_node_that_has_them(
    make: Any,
) -> None:
    svc = reserving(make.service("train", replicas=3), gpu=1)
    gpu_node = advertising(make.node("gpu"), gpus("GPU-a", "GPU-b"))
    view = make.view(make.node("plain"), gpu_node, svc)
    decisions = Planner().plan(view, make.tasks(svc))
    placed = [(d.task.slot, d.node_id, d.assigned) for d in decisions if d.placed]
    assert placed == [
        (1, "gpu", (NamedResource(kind="gpu", value="GPU-a"),)),
        (2, "gpu", (NamedResource(kind="gpu", value="GPU-b"),)),
    ]
    (unplaced,) = [d for d in decisions if not d.placed]
    assert unplaced.task.slot == 3
    assert unplaced.reason == "no suitable node (insufficient resources on 2 nodes (gpu))"


def test_a_task_reserving_several_gets_that_many_and_a_count_is_assigned_as_one(
    make: Any,
) -> None:
    svc = reserving(make.service("big"), gpu=2, ssd=1)
    node = advertising(
        make.node("n1"), [*gpus("GPU-a", "GPU-b", "GPU-c"), DiscreteResource(kind="ssd", value=4)]
    )
    (decision,) = Planner().plan(make.view(node, svc), make.tasks(svc))
    assert decision.node_id == "n1"
    assert decision.assigned == (
        NamedResource(kind="gpu", value="GPU-a"),
        NamedResource(kind="gpu", value="GPU-b"),
        DiscreteResource(kind="ssd", value=1),
    )


def test_a_task_reserving_nothing_is_assigned_nothing(make: Any) -> None:
    svc = make.service("web")
    node = advertising(make.node("n1"), gpus("GPU-a"))
    (decision,) = Planner().plan(make.view(node, svc), make.tasks(svc))
    assert decision.node_id == "n1" and decision.assigned == ()


# --------------------------------------------------------------------------- the loop


async def test_the_loop_stores_the_assignment_and_reuses_what_an_ended_task_gave_back(
    make: Any, cluster: Any
) -> None:
    svc = reserving(make.service("train", replicas=2), gpu=1)
    await cluster.create(
        make.node("plain"), advertising(make.node("gpu"), gpus("GPU-a")), svc, *make.tasks(svc)
    )
    async with cluster.running():
        first, second = cluster.task("train.1"), cluster.task("train.2")
        assert (first.node_id, first.status.state) == ("gpu", TaskState.ASSIGNED)
        assert first.assigned_generic_resources == gpus("GPU-a")
        assert second.node_id == "" and second.status.state == TaskState.PENDING
        assert second.status.pending_reason == (
            "no suitable node (insufficient resources on 2 nodes (gpu))"
        )
        assert second.assigned_generic_resources == []

        # The first task ends: its GPU is free again, and the waiting task gets it.
        done = replace(first, status=replace(first.status, state=TaskState.COMPLETE))
        await cluster.update(done)
        await cluster.settle()
        second = cluster.task("train.2")
        assert (second.node_id, second.status.state) == ("gpu", TaskState.ASSIGNED)
        assert second.assigned_generic_resources == gpus("GPU-a")


async def test_a_node_that_starts_advertising_the_kind_takes_the_waiting_task(
    make: Any, cluster: Any
) -> None:
    svc = reserving(make.service("train"), gpu=1)
    plain = make.node("n1")
    await cluster.create(plain, svc, *make.tasks(svc))
    async with cluster.running():
        assert cluster.task("train.1").status.state == TaskState.PENDING
        # The node comes back after a restart with --node-generic-resource gpu=GPU-z.
        await cluster.update(advertising(plain, gpus("GPU-z")))
        await cluster.settle()
        placed = cluster.task("train.1")
        assert placed.node_id == "n1" and placed.assigned_generic_resources == gpus("GPU-z")
