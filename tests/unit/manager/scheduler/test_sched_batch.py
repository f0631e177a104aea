"""Batch placement gives the decisions of placing one task at a time.

``Planner.plan`` places a run of like tasks with one filter sweep and a heap of nodes; the
reference below is what it did before: ``Planner.place`` for each task in order, the view
grown after each placement. Both run on random clusters (labels, resources, generic
resources, platforms, states, tasks already running, recent failures) and random pending
batches (constraints, spread preferences, reservations, host ports, replica limits, two
specs of one service interleaved, global tasks). A failure names SWARMLITE_SEED.
"""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from swarmlite.api import (
    DiscreteResource,
    GenericResource,
    NamedResource,
    Node,
    NodeAvailability,
    NodeState,
    Service,
    ServiceMode,
    Task,
    TaskState,
)
from swarmlite.manager.scheduler import ClusterView, Decision, Planner
from swarmlite.store import Event, EventAction, MemoryStore, Tx
from swarmlite.testing.clock import DEFAULT_WALL_START

replace = msgspec.structs.replace
GIB = 1 << 30
NOW = DEFAULT_WALL_START


def reference_plan(planner: Planner, view: ClusterView, tasks: list[Task]) -> list[Decision]:
    """One task at a time, in the planner's order, each placement recorded in ``view``."""
    decisions = []
    for task in sorted(tasks, key=lambda t: (t.service_id, t.slot, t.node_id, t.id)):
        decision = planner.place(view, task)
        if decision.placed:
            placed = replace(task, assigned_generic_resources=list(decision.assigned))
            view.place(placed, decision.node_id)
        decisions.append(decision)
    return decisions


def with_generic(node: Node, resources: list[GenericResource]) -> Node:
    return replace(node, status=replace(node.status, generic_resources=resources))


def reserving_generic(svc: Service, wanted: list[DiscreteResource]) -> Service:
    template = svc.spec.task
    reservations = replace(template.resources.reservations, generic_resources=wanted)
    resources = replace(template.resources, reservations=reservations)
    return replace(svc, spec=replace(svc.spec, task=replace(template, resources=resources)))


def random_node(rng: random.Random, make: Any, index: int) -> Node:
    labels = {}
    if rng.random() < 0.8:
        labels["zone"] = rng.choice("abc")
    if rng.random() < 0.5:
        labels["rack"] = rng.choice("xy")
    node = make.node(
        f"n{index:02d}",
        labels=labels,
        state=rng.choice([NodeState.READY] * 6 + [NodeState.DOWN]),
        availability=rng.choice([NodeAvailability.ACTIVE] * 6 + [NodeAvailability.DRAIN]),
        cpus=rng.choice([0, 2, 4]),
        memory=rng.choice([0, 2 * GIB, 4 * GIB]),
        arch=rng.choice(["x86_64"] * 4 + ["aarch64"]),
    )
    generic: list[GenericResource] = []
    if rng.random() < 0.3:
        generic += [NamedResource(kind="gpu", value=f"GPU-{i}") for i in range(rng.randint(1, 3))]
    if rng.random() < 0.3:
        generic.append(DiscreteResource(kind="fpga", value=rng.randint(1, 4)))
    return with_generic(node, generic) if generic else node


def random_service(rng: random.Random, make: Any, index: int) -> Service:
    constraints = []
    if rng.random() < 0.3:
        constraints.append(rng.choice(["node.labels.zone!=c", "node.labels.zone==a"]))
    if rng.random() < 0.05:
        constraints.append("node.labels.zone=~a")  # invalid: the reason says so
    preferences = rng.sample(
        ["spread=node.labels.zone", "node.labels.rack"], rng.choice([0, 0, 1, 2])
    )
    svc = make.service(
        f"s{index}",
        constraints=constraints,
        preferences=preferences,
        max_per_node=rng.choice([0, 0, 1, 2, 3]),
        cpus=rng.choice([0, 0, 0.5, 1]),
        memory=rng.choice([0, 0, GIB // 2, GIB]),
        host_ports=[8080] if rng.random() < 0.15 else None,
    )
    if rng.random() < 0.25:
        kind = rng.choice(["gpu", "fpga"])
        svc = reserving_generic(svc, [DiscreteResource(kind=kind, value=rng.randint(1, 2))])
    return svc


def random_case(seed: int, make: Any) -> tuple[list[Any], list[Task]]:
    """The objects of a store (nodes, services, tasks on nodes) and a pending batch."""
    rng = random.Random(seed)
    nodes = [random_node(rng, make, i) for i in range(rng.randint(0, 12))]
    services = [random_service(rng, make, i) for i in range(rng.randint(1, 4))]
    stored: list[Any] = [*nodes, *services]
    pending: list[Task] = []
    for svc in services:
        # Tasks already on nodes: running (they occupy) or failed (they back a node off).
        for i in range(rng.randint(0, 6)):
            if not nodes:
                break
            node = rng.choice(nodes)
            state = rng.choice([TaskState.RUNNING, TaskState.RUNNING, TaskState.FAILED])
            task = make.task(
                svc,
                100 + i,
                node_id=node.id,
                state=state,
                timestamp=NOW - rng.choice([1, 10, 400]),
                id=f"{svc.id}.old{i}",
            )
            stored.extend([task] * (6 if state == TaskState.FAILED else 1))
            if state == TaskState.FAILED:  # five more failures there: may back it off
                stored[-5:] = [replace(task, id=f"{task.id}.f{k}") for k in range(5)]
        # Pending: a run of replicas, sometimes a second spec interleaved (an update).
        count = rng.randint(0, 25)
        other = replace(svc.spec.task, placement=replace(svc.spec.task.placement, constraints=[]))
        for slot in range(1, count + 1):
            task = make.task(svc, slot)
            if rng.random() < 0.15:
                task = replace(task, spec=other)
            pending.append(task)
        if rng.random() < 0.3:
            for node in [*nodes, make.node("gone")]:
                global_svc = replace(svc, spec=replace(svc.spec, mode=ServiceMode.GLOBAL))
                pending.append(make.task(global_svc, 0, node_id=node.id))
    return stored, pending


def view_of(objects: list[Any]) -> ClusterView:
    memory = MemoryStore()
    tx = Tx()
    for obj in objects:
        tx.create(obj)
    memory.apply(1, tx.encode()).unwrap()
    return ClusterView.build(memory, NOW)


def occupancy(view: ClusterView) -> dict[str, Any]:
    return {
        info.id: (sorted(info.tasks), dict(info.by_service), sorted(info.named_used))
        for info in view.nodes.values()
    }


@pytest.mark.parametrize("seed", range(400))
def test_batch_decisions_equal_one_task_at_a_time(seed: int, make: Any) -> None:
    stored, pending = random_case(seed, make)
    batch_view, reference_view = view_of(stored), view_of(stored)
    planner = Planner()
    batch = planner.plan(batch_view, pending)
    reference = reference_plan(planner, reference_view, pending)
    assert [(d.task.id, d.node_id, d.assigned, d.reason) for d in batch] == [
        (d.task.id, d.node_id, d.assigned, d.reason) for d in reference
    ], f"SWARMLITE_SEED={seed}"
    assert occupancy(batch_view) == occupancy(reference_view), f"SWARMLITE_SEED={seed}"


def test_the_random_cases_cover_what_the_batch_must_get_right(make: Any) -> None:
    """The cases above place tasks, leave some pending, and spread over label groups."""
    placed = unplaced = spread_runs = 0
    for seed in range(400):
        stored, pending = random_case(seed, make)
        decisions = Planner().plan(view_of(stored), pending)
        placed += sum(1 for d in decisions if d.placed)
        unplaced += sum(1 for d in decisions if not d.placed)
        spread_runs += any(d.task.spec.placement.preferences and d.placed for d in decisions)
    assert placed > 1000 and unplaced > 1000 and spread_runs > 50


def test_a_long_run_with_spread_and_limits_matches(make: Any) -> None:
    """A run that fills nodes to their limit, so that nodes leave it in the middle."""
    nodes = [
        make.node(f"n{i}", labels={"zone": "ab"[i % 2]}, memory=(1 + i % 3) * GIB) for i in range(9)
    ]
    svc = make.service("web", preferences=["node.labels.zone"], memory=GIB // 2, max_per_node=3)
    running = [make.task(svc, 90 + i, node_id=f"n{i}", state=TaskState.RUNNING) for i in (0, 2)]
    stored = [*nodes, svc, *running]
    pending = make.tasks(svc, 40)
    planner = Planner()
    batch = planner.plan(view_of(stored), pending)
    reference = reference_plan(planner, view_of(stored), pending)
    assert [(d.node_id, d.reason) for d in batch] == [(d.node_id, d.reason) for d in reference]
    # Each node holds what its memory allows, at most 3; two slots were already taken.
    assert sum(1 for d in batch if d.placed) == sum(min(2 * (1 + i % 3), 3) for i in range(9)) - 2
    assert batch[-1].reason.startswith("no suitable node (")


def test_a_kept_planner_sees_a_node_change_between_plans(make: Any) -> None:
    """The static sweep a planner keeps across plans is dropped when a node changes:
    a node drained after the first plan takes nothing in the second."""
    n1, n2 = make.node("n1"), make.node("n2")
    svc = make.service("web", replicas=4)
    view = view_of([n1, n2, svc])
    planner = Planner()
    first = planner.plan(view, make.tasks(svc, 2))
    assert sorted(d.node_id for d in first) == ["n1", "n2"]
    drained = replace(n1, spec=replace(n1.spec, availability=NodeAvailability.DRAIN))
    view.apply(Event(EventAction.UPDATED, 2, n1, drained))
    second = planner.plan(view, make.tasks(svc, 4)[2:])
    assert [d.node_id for d in second] == ["n2", "n2"]


@pytest.mark.parametrize("seed", range(40))
def test_a_kept_planner_decides_as_a_fresh_one_over_node_changes(seed: int, make: Any) -> None:
    """Plans in a row on one view, nodes changing between some of them: one planner kept
    throughout decides as a new planner for each plan does."""
    rng = random.Random(seed)
    stored, pending = random_case(seed, make)
    nodes = [obj for obj in stored if isinstance(obj, Node)]
    kept_view, fresh_view = view_of(stored), view_of(stored)
    kept = Planner()
    for step, batch in enumerate(pending[i::3] for i in range(3)):
        if nodes and rng.random() < 0.7:
            old = rng.choice(nodes)
            new = replace(
                old,
                spec=replace(old.spec, availability=rng.choice(list(NodeAvailability))),
                status=replace(old.status, state=rng.choice([NodeState.READY, NodeState.DOWN])),
            )
            nodes[nodes.index(old)] = new
            for view in (kept_view, fresh_view):
                view.apply(Event(EventAction.UPDATED, 2 + step, old, new))
        got = kept.plan(kept_view, batch)
        want = Planner().plan(fresh_view, batch)
        assert [(d.task.id, d.node_id, d.reason) for d in got] == [
            (d.task.id, d.node_id, d.reason) for d in want
        ], f"SWARMLITE_SEED={seed} step {step}"
