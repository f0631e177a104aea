"""Placement over a ClusterView: spread, preferences, limits, back-off, reasons."""

from __future__ import annotations

import collections
import random
from typing import Any

from swarmlite.api import NodeAvailability, NodeState, ServiceMode, TaskState
from swarmlite.manager.scheduler import FAILURE_WINDOW, Decision, Planner, spread_label

GIB = 1 << 30
NOW = 1_700_000_000.0


def counts(decisions: list[Decision]) -> dict[str, int]:
    return dict(collections.Counter(d.node_id for d in decisions if d.placed))


def test_replicas_spread_evenly_over_nodes(make: Any) -> None:
    svc = make.service("web", replicas=6)
    view = make.view(make.node("n1"), make.node("n2"), make.node("n3"), svc)
    decisions = Planner().plan(view, make.tasks(svc))
    assert counts(decisions) == {"n1": 2, "n2": 2, "n3": 2}
    assert all(d.reason == "" for d in decisions)


def test_nodes_with_fewer_tasks_of_the_service_come_first_then_fewer_tasks(make: Any) -> None:
    web, api = make.service("web"), make.service("api")
    view = make.view(
        make.node("n1"),
        make.node("n2"),
        make.node("n3"),
        web,
        api,
        make.task(web, 1, node_id="n1", state=TaskState.RUNNING),
        make.task(api, 1, node_id="n2", state=TaskState.RUNNING),
        make.task(api, 2, node_id="n2", state=TaskState.RUNNING),
    )
    # n3 is empty; n2 has no web task but two others; n1 has a web task.
    decisions = Planner().plan(view, make.tasks(web, 3)[1:])
    assert [d.node_id for d in decisions] == ["n3", "n2"]


def test_spread_preference_balances_label_values(make: Any) -> None:
    svc = make.service("web", replicas=6, preferences=["node.labels.zone"])
    view = make.view(
        make.node("a1", labels={"zone": "a"}),
        make.node("a2", labels={"zone": "a"}),
        make.node("b1", labels={"zone": "b"}),
        svc,
    )
    placed = counts(Planner().plan(view, make.tasks(svc)))
    assert placed["a1"] + placed["a2"] == 3
    assert placed["b1"] == 3
    assert abs(placed["a1"] - placed["a2"]) == 1


def test_nodes_without_the_preferred_label_form_their_own_group(make: Any) -> None:
    svc = make.service("web", replicas=6, preferences=["spread=node.labels.zone"])
    view = make.view(
        make.node("a1", labels={"zone": "a"}),
        make.node("b1", labels={"zone": "b"}),
        make.node("x1"),
        make.node("x2"),
        svc,
    )
    placed = counts(Planner().plan(view, make.tasks(svc)))
    assert placed["a1"] == 2
    assert placed["b1"] == 2
    assert placed["x1"] + placed["x2"] == 2


def test_spread_counts_tasks_already_running(make: Any) -> None:
    svc = make.service("web", replicas=4, preferences=["node.labels.zone"])
    view = make.view(
        make.node("a1", labels={"zone": "a"}),
        make.node("b1", labels={"zone": "b"}),
        svc,
        make.task(svc, 1, node_id="a1", state=TaskState.RUNNING),
        make.task(svc, 2, node_id="a1", state=TaskState.RUNNING),
    )
    decisions = Planner().plan(view, [make.task(svc, 3), make.task(svc, 4)])
    assert [d.node_id for d in decisions] == ["b1", "b1"]


def test_spread_label_forms() -> None:
    assert spread_label("node.labels.zone") == "zone"
    assert spread_label("spread=node.labels.rack") == "rack"
    assert spread_label("spread: node.labels.dc") == "dc"
    assert spread_label("engine.labels.zone") is None


def test_max_replicas_per_node_leaves_the_rest_pending(make: Any) -> None:
    svc = make.service("web", replicas=3, max_per_node=1)
    view = make.view(make.node("n1"), make.node("n2"), svc)
    decisions = Planner().plan(view, make.tasks(svc))
    assert counts(decisions) == {"n1": 1, "n2": 1}
    assert decisions[2].reason == (
        "no suitable node (max replicas per node reached on 2 nodes (limit 1))"
    )


def test_a_batch_counts_its_own_reservations(make: Any) -> None:
    svc = make.service("db", replicas=3, memory=2 * GIB)
    view = make.view(make.node("n1", memory=4 * GIB), svc)
    decisions = Planner().plan(view, make.tasks(svc))
    assert counts(decisions) == {"n1": 2}
    assert decisions[2].reason == "no suitable node (insufficient resources on 1 node (memory))"


def test_reason_lists_every_cause_most_nodes_first(make: Any) -> None:
    svc = make.service("db", memory=8 * GIB)
    view = make.view(
        make.node("n1", memory=4 * GIB),
        make.node("n2", memory=4 * GIB),
        make.node("n3", memory=64 * GIB, availability=NodeAvailability.DRAIN),
        svc,
    )
    (decision,) = Planner().plan(view, make.tasks(svc))
    assert decision.reason == (
        "no suitable node (insufficient resources on 2 nodes (memory); "
        "1 node not available (drain))"
    )


def test_one_unmet_constraint_is_named(make: Any) -> None:
    svc = make.service("web", constraints=["node.labels.zone==b"])
    nodes = [make.node(f"n{i}", labels={"zone": "a"}) for i in range(3)]
    (decision,) = Planner().plan(make.view(*nodes, svc), make.tasks(svc))
    assert not decision.placed
    assert decision.reason == "no node satisfies constraint node.labels.zone==b: 3 nodes rejected"


def test_different_unmet_constraints_are_counted_together(make: Any) -> None:
    svc = make.service("web", constraints=["node.labels.zone==b", "node.role==manager"])
    view = make.view(
        make.node("n1", labels={"zone": "a"}),
        make.node("n2", labels={"zone": "b"}),
        make.node("n3", labels={"zone": "b"}),
        svc,
    )
    (decision,) = Planner().plan(view, make.tasks(svc))
    assert decision.reason == (
        "no suitable node (scheduling constraints not satisfied on 3 nodes "
        "(node.labels.zone==b, node.role==manager))"
    )


def test_an_invalid_constraint_is_the_reason(make: Any) -> None:
    svc = make.service("web", constraints=["node.labels.zone"])
    (decision,) = Planner().plan(make.view(make.node("n1"), svc), make.tasks(svc))
    assert not decision.placed
    assert "invalid constraint 'node.labels.zone'" in decision.reason


def test_no_nodes_at_all(make: Any) -> None:
    svc = make.service("web")
    (decision,) = Planner().plan(make.view(svc), make.tasks(svc))
    assert decision.reason == "no suitable node (the cluster has no nodes)"


def test_drained_paused_and_down_nodes_take_no_new_tasks(make: Any) -> None:
    svc = make.service("web", replicas=4)
    view = make.view(
        make.node("active"),
        make.node("drained", availability=NodeAvailability.DRAIN),
        make.node("paused", availability=NodeAvailability.PAUSE),
        make.node("down", state=NodeState.DOWN),
        svc,
    )
    assert counts(Planner().plan(view, make.tasks(svc))) == {"active": 4}


def test_host_ports_put_one_task_per_node(make: Any) -> None:
    svc = make.service("lb", replicas=3, host_ports=[8080])
    view = make.view(make.node("n1"), make.node("n2"), svc)
    decisions = Planner().plan(view, make.tasks(svc))
    assert counts(decisions) == {"n1": 1, "n2": 1}
    assert decisions[2].reason == (
        "no suitable node (host-mode port already in use on 2 nodes (8080/tcp))"
    )


def failed(
    make: Any,
    svc: Any,
    node_id: str,
    count: int,
    *,
    at: float,
    state: TaskState = TaskState.FAILED,
) -> list[Any]:
    """``count`` tasks of ``svc`` that ended in ``state`` on ``node_id`` at wall time ``at``."""
    return [
        make.task(svc, 100 + i, node_id=node_id, state=state, timestamp=at, id=f"{node_id}.f{i}")
        for i in range(count)
    ]


def test_a_node_where_the_service_keeps_failing_is_tried_last(make: Any) -> None:
    svc = make.service("web", replicas=3)
    view = make.view(
        make.node("n1"), make.node("n2"), svc, *failed(make, svc, "n1", 5, at=NOW - 60), now=NOW
    )
    assert counts(Planner().plan(view, make.tasks(svc))) == {"n2": 3}


def test_a_backed_off_node_is_still_used_when_it_is_the_only_one(make: Any) -> None:
    svc = make.service("web", replicas=2)
    view = make.view(make.node("n1"), svc, *failed(make, svc, "n1", 6, at=NOW - 1), now=NOW)
    assert counts(Planner().plan(view, make.tasks(svc))) == {"n1": 2}


def test_back_off_needs_five_recent_failures_of_the_same_service(make: Any) -> None:
    svc, other = make.service("web", replicas=2), make.service("other")
    view = make.view(
        make.node("n1"),
        make.node("n2"),
        svc,
        other,
        *failed(make, svc, "n1", 4, at=NOW - 10),  # only four
        *failed(make, other, "n2", 5, at=NOW, state=TaskState.REJECTED),
        now=NOW,
    )
    assert counts(Planner().plan(view, make.tasks(svc))) == {"n1": 1, "n2": 1}
    stale = make.view(
        make.node("n1"),
        make.node("n2"),
        svc,
        *failed(make, svc, "n1", 9, at=NOW - FAILURE_WINDOW - 1),
        now=NOW,
    )
    assert counts(Planner().plan(stale, make.tasks(svc))) == {"n1": 1, "n2": 1}


def test_global_tasks_are_checked_against_their_own_node_only(make: Any) -> None:
    svc = make.service("agent", mode=ServiceMode.GLOBAL, memory=2 * GIB)
    view = make.view(
        make.node("n1"),
        make.node("n2", availability=NodeAvailability.DRAIN),
        make.node("n3", memory=GIB),
        svc,
    )
    ok, drained, small, gone = Planner().plan(
        view,
        [
            make.task(svc, 0, node_id="n1"),
            make.task(svc, 0, node_id="n2"),
            make.task(svc, 0, node_id="n3"),
            make.task(svc, 0, node_id="n4"),
        ],
    )
    assert ok.node_id == "n1"
    assert (drained.node_id, drained.reason) == (
        "",
        "no suitable node (1 node not available (drain))",
    )
    assert small.reason == "no suitable node (insufficient resources on 1 node (memory))"
    assert gone.reason == "node n4 is not in the cluster"


def test_the_same_state_gives_the_same_placements_in_any_task_order(make: Any) -> None:
    web = make.service("web", replicas=5, preferences=["node.labels.zone"])
    api = make.service("api", replicas=4, memory=GIB)
    nodes = [
        make.node("n1", labels={"zone": "a"}, memory=2 * GIB),
        make.node("n2", labels={"zone": "b"}, memory=2 * GIB),
        make.node("n3", labels={"zone": "b"}, memory=GIB),
    ]
    pending = make.tasks(web) + make.tasks(api)
    first = {d.task.id: d.node_id for d in Planner().plan(make.view(*nodes, web, api), pending)}
    shuffled = list(pending)
    random.Random(7).shuffle(shuffled)
    again = {d.task.id: d.node_id for d in Planner().plan(make.view(*nodes, web, api), shuffled)}
    assert first == again
    assert sorted(first.values()).count("") == 0  # 4 GiB hold four 1 GiB api tasks


def test_backed_off_nodes_are_ordered_last_fewest_failures_first(make: Any) -> None:
    svc = make.service("web")
    view = make.view(
        make.node("n1"),
        make.node("n2"),
        make.node("n3"),
        svc,
        *failed(make, svc, "n1", 7, at=NOW),
        *failed(make, svc, "n2", 5, at=NOW, state=TaskState.REJECTED),
        now=NOW,
    )
    eligible = list(view.nodes.values())
    order = Planner().order(eligible, make.task(svc, 1))
    assert [info.id for info in order] == ["n3", "n2", "n1"]
