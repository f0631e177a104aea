"""The dashboard's JSON shapes, from factory-made objects: which tasks the grid shows, where
each lands, what a service and an event look like, and the replica history."""

from __future__ import annotations

import msgspec

from swarmlite.api import NodeRole, NodeState, TaskState, UpdateState, UpdateStatus
from swarmlite.api.control import ClusterEvent, ManagerStatus, NodeView, ServiceView
from swarmlite.dashboard.shape import (
    MAX_ATTRIBUTE,
    History,
    event_json,
    events_json,
    service_json,
    state_json,
    visible_tasks,
)
from swarmlite.testing.factories import make_node, make_service, make_task

WEB = make_service("shop_web", id="svc-web", replicas=2, image="swl/web:1")
AGENT = make_service("shop_agent", id="svc-agent", mode="global")


def _view(node_id: str, hostname: str, **kwargs: object) -> NodeView:
    return NodeView(node=make_node(id=node_id, hostname=hostname, **kwargs))  # type: ignore[arg-type]


def test_the_grid_shows_each_slots_newest_task_and_every_live_one() -> None:
    failed = make_task(WEB, id="old-1", slot=1, state="failed", desired="shutdown", created_at=1)
    retry = make_task(WEB, id="new-1", slot=1, state="running", created_at=2)
    old_2 = make_task(WEB, id="old-2", slot=2, state="running", desired="shutdown", created_at=1)
    new_2 = make_task(WEB, id="new-2", slot=2, state="starting", created_at=2)
    done = make_task(WEB, id="gone-2", slot=2, state="shutdown", desired="shutdown", created_at=0)
    crash = make_task(WEB, id="crash-3", slot=3, state="failed", desired="shutdown", created_at=5)
    per_node = [
        make_task(AGENT, id=f"agent-{n}", slot=0, node_id=n, state="running") for n in ("a", "b")
    ]

    shown = [t.id for t in visible_tasks([failed, retry, old_2, new_2, done, crash, *per_node])]

    # slot 1: the retry only; slot 2: an update's old task still runs beside the new one;
    # slot 3: its newest task failed, and shows it; global tasks are one slot per node
    assert shown == ["agent-a", "agent-b", "new-1", "old-2", "new-2", "crash-3"]


def test_state_puts_each_task_under_its_node_and_the_unplaced_apart() -> None:
    nodes = [
        NodeView(
            node=make_node(id="n2", hostname="w1", state=NodeState.DOWN),
            last_heartbeat=12.0,
        ),
        NodeView(
            node=make_node(id="n1", hostname="m1", role=NodeRole.MANAGER),
            manager=ManagerStatus(addr="127.0.0.1:1", leader=True, reachability="reachable"),
            self=True,
        ),
    ]
    tasks = [
        make_task(WEB, id="t1", slot=1, node_id="n1", state="running"),
        make_task(WEB, id="t2", slot=2, node_id="n2", state="running"),
        make_task(WEB, id="t3", slot=3, state="pending"),
    ]
    services = [ServiceView(service=WEB, running=2, desired=3)]

    state = state_json(nodes, services, tasks, now=100.0)

    assert [n["name"] for n in state["nodes"]] == ["m1", "w1"]  # by hostname
    m1, w1 = state["nodes"]
    assert (m1["leader"], m1["role"], m1["reachability"], m1["self"]) == (
        True,
        "manager",
        "reachable",
        True,
    )
    assert (w1["state"], w1["leader"], w1["reachability"]) == ("down", False, None)
    assert [t["id"] for t in m1["tasks"]] == ["t1"]
    assert [t["id"] for t in w1["tasks"]] == ["t2"]
    assert [t["id"] for t in state["unassigned"]] == ["t3"]
    assert state["unassigned"][0]["state"] == "pending"
    assert state["time"] == 100.0
    assert state["error"] is None
    task = m1["tasks"][0]
    assert task["name"] == "shop_web.1"
    assert (task["service"], task["service_id"], task["image"]) == (
        "shop_web",
        "svc-web",
        "swl/web:1",
    )
    assert msgspec.json.decode(msgspec.json.encode(state)) == state  # plain JSON


def test_a_task_on_a_node_the_listing_lacks_is_shown_as_unplaced() -> None:
    tasks = [make_task(WEB, id="t1", node_id="removed-node", state="running")]
    state = state_json([_view("n1", "m1")], [], tasks, now=0.0)
    assert [t["id"] for t in state["unassigned"]] == ["t1"]
    assert state["nodes"][0]["tasks"] == []


def test_a_service_says_its_replicas_and_update_state() -> None:
    updating = msgspec.structs.replace(
        WEB,
        spec_version=3,
        update_status=UpdateStatus(
            state=UpdateState.UPDATING, message="update in progress", started_at=5.0
        ),
    )

    shaped = service_json(ServiceView(service=updating, running=1, desired=2))

    assert shaped["name"] == "shop_web"
    assert (shaped["running"], shaped["desired"], shaped["mode"]) == (1, 2, "replicated")
    assert shaped["update"] == {
        "state": "updating",
        "message": "update in progress",
        "started_at": 5.0,
        "completed_at": 0.0,
    }
    assert service_json(ServiceView(service=AGENT, running=3, desired=3))["update"] is None


def test_events_are_numbered_by_the_dashboard_and_asked_after_a_number() -> None:
    event = ClusterEvent(
        seq=41,
        time=7.0,
        index=900,
        type="node",
        action="update",
        id="n2",
        attributes={"name": "w1", "state.old": "ready", "state.new": "down", "x": "y" * 999},
        actor="dispatcher",
    )
    shaped = [event_json(n, event) for n in (1, 2, 3)]

    assert shaped[0]["name"] == "w1"
    assert shaped[0]["seq"] == 41
    assert len(shaped[0]["attributes"]["x"]) == MAX_ATTRIBUTE
    reply = events_json(shaped, 1, status="live", error="")
    assert [e["n"] for e in reply["events"]] == [2, 3]
    assert reply["last"] == 3
    assert events_json(shaped, 3, status="unavailable", error="no leader") == {
        "events": [],
        "last": 3,
        "status": "unavailable",
        "error": "no leader",
    }


def test_history_keeps_the_newest_samples_and_forgets_removed_services() -> None:
    history = History(max_samples=3)
    for t in range(5):
        history.record(
            float(t),
            [
                ServiceView(service=WEB, running=t, desired=4),
                ServiceView(service=AGENT, running=1, desired=1),
            ],
        )
    shaped = history.to_json(2.0)
    assert shaped["period"] == 2.0
    assert list(shaped["services"]) == ["svc-agent", "svc-web"]  # by name
    assert shaped["services"]["svc-web"] == {
        "name": "shop_web",
        "samples": [[2.0, 2, 4], [3.0, 3, 4], [4.0, 4, 4]],
    }

    history.record(5.0, [ServiceView(service=WEB, running=4, desired=4)])
    assert list(history.to_json(2.0)["services"]) == ["svc-web"]


def test_task_states_are_their_wire_names() -> None:
    task = make_task(WEB, state=TaskState.ORPHANED, desired=TaskState.SHUTDOWN, node_id="n1")
    state = state_json([_view("n1", "m1")], [], [task], now=0.0)
    assert (state["nodes"][0]["tasks"][0]["state"], state["nodes"][0]["tasks"][0]["desired"]) == (
        "orphaned",
        "shutdown",
    )
