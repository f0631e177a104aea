"""Each placement filter on its own: what it accepts, and the words it rejects with."""

from __future__ import annotations

from typing import Any

import pytest

from swarmlite.api import NodeAvailability, NodeRole, NodeState, TaskState
from swarmlite.manager.scheduler import (
    AvailabilityFilter,
    ConstraintsFilter,
    HostPortFilter,
    MaxReplicasFilter,
    PlatformFilter,
    ReadyFilter,
    ResourcesFilter,
    default_filters,
)

GIB = 1 << 30


def test_filters_run_in_the_documented_order() -> None:
    assert [f.name for f in default_filters()] == [
        "ready",
        "availability",
        "platform",
        "constraints",
        "resources",
        "max_replicas_per_node",
        "host_ports",
    ]


@pytest.mark.parametrize(
    ("state", "accepted"),
    [
        (NodeState.READY, True),
        (NodeState.DOWN, False),
        (NodeState.UNKNOWN, False),
        (NodeState.DISCONNECTED, False),
    ],
)
def test_ready_takes_only_ready_nodes(make: Any, state: NodeState, accepted: bool) -> None:
    svc = make.service("web")
    view = make.view(make.node("n1", state=state), svc)
    check = ReadyFilter()
    t = make.task(svc, 1)
    assert check.accepts(view.nodes["n1"], t, view) is accepted
    if not accepted:
        assert check.detail(view.nodes["n1"], t, view) == state.value
    assert check.explain(1) == "1 node not ready"
    assert check.explain(2) == "2 nodes not ready"


@pytest.mark.parametrize(
    ("availability", "accepted"),
    [
        (NodeAvailability.ACTIVE, True),
        (NodeAvailability.PAUSE, False),
        (NodeAvailability.DRAIN, False),
    ],
)
def test_availability_takes_only_active_nodes(
    make: Any, availability: NodeAvailability, accepted: bool
) -> None:
    svc = make.service("web")
    view = make.view(make.node("n1", availability=availability), svc)
    check = AvailabilityFilter()
    t = make.task(svc, 1)
    assert check.accepts(view.nodes["n1"], t, view) is accepted
    assert check.detail(view.nodes["n1"], t, view) == availability.value
    assert check.explain(3) == "3 nodes not available"


def test_platform_accepts_any_node_when_the_task_declares_none(make: Any) -> None:
    svc = make.service("web")
    view = make.view(make.node("arm", os="linux", arch="aarch64"), svc)
    check = PlatformFilter()
    assert check.accepts(view.nodes["arm"], make.task(svc, 1), view)
    assert check.detail(view.nodes["arm"], make.task(svc, 1), view) == "linux/aarch64"
    assert check.explain(2) == "unsupported platform on 2 nodes"


@pytest.mark.parametrize(
    ("constraint", "matching"),
    [
        ("node.labels.zone==b", {"n2"}),
        ("node.labels.zone!=b", {"n1", "n3"}),  # a node without the label is not b
        ("node.role==manager", {"n1"}),
        ("node.role!=manager", {"n2", "n3"}),
        ("node.hostname==host-n3", {"n3"}),
        ("node.id==n2", {"n2"}),
        ("node.platform.os==linux", {"n1", "n2", "n3"}),
        ("node.platform.arch==aarch64", {"n3"}),
    ],
)
def test_constraints_select_nodes(make: Any, constraint: str, matching: set[str]) -> None:
    svc = make.service("web", constraints=[constraint])
    view = make.view(
        make.node("n1", role=NodeRole.MANAGER, labels={"zone": "a"}),
        make.node("n2", labels={"zone": "b"}),
        make.node("n3", arch="aarch64"),
        svc,
    )
    check = ConstraintsFilter()
    t = make.task(svc, 1)
    accepted = {info.id for info in view.nodes.values() if check.accepts(info, t, view)}
    assert accepted == matching
    for info in view.nodes.values():
        if info.id not in matching:
            assert check.detail(info, t, view) == constraint


def test_constraints_all_must_hold_and_the_first_unmet_is_named(make: Any) -> None:
    svc = make.service("web", constraints=["node.labels.zone==a", "node.labels.disk==ssd"])
    view = make.view(
        make.node("n1", labels={"zone": "a", "disk": "ssd"}),
        make.node("n2", labels={"zone": "a", "disk": "hdd"}),
        svc,
    )
    check = ConstraintsFilter()
    t = make.task(svc, 1)
    assert check.accepts(view.nodes["n1"], t, view)
    assert not check.accepts(view.nodes["n2"], t, view)
    assert check.detail(view.nodes["n2"], t, view) == "node.labels.disk==ssd"
    assert check.explain(2) == "scheduling constraints not satisfied on 2 nodes"


def test_resources_count_reservations_of_live_tasks_on_the_node(make: Any) -> None:
    svc = make.service("db", cpus=1, memory=2 * GIB)
    view = make.view(
        make.node("n1", cpus=2, memory=4 * GIB),
        svc,
        make.task(svc, 1, node_id="n1", state=TaskState.RUNNING),
        # Finished or being shut down: frees what it reserved.
        make.task(svc, 2, node_id="n1", state=TaskState.FAILED),
        make.task(svc, 3, node_id="n1", state=TaskState.RUNNING, desired=TaskState.SHUTDOWN),
    )
    info = view.nodes["n1"]
    assert (info.reserved_nano_cpus, info.reserved_memory_bytes) == (1_000_000_000, 2 * GIB)
    check = ResourcesFilter()
    assert check.accepts(info, make.task(svc, 4), view)  # 2 CPUs, 4 GiB exactly fit
    view.place(make.task(svc, 4), "n1")
    assert not check.accepts(info, make.task(svc, 5), view)
    assert check.detail(info, make.task(svc, 5), view) == "cpu and memory"
    assert check.explain(2) == "insufficient resources on 2 nodes"


def test_resources_unlimited_when_the_node_reports_none(make: Any) -> None:
    svc = make.service("db", cpus=64, memory=512 * GIB)
    view = make.view(make.node("n1"), make.node("n2", memory=GIB), svc)
    check = ResourcesFilter()
    t = make.task(svc, 1)
    assert check.accepts(view.nodes["n1"], t, view)
    assert not check.accepts(view.nodes["n2"], t, view)
    assert check.detail(view.nodes["n2"], t, view) == "memory"  # no CPU count reported


def test_max_replicas_per_node_counts_live_tasks_of_the_same_service(make: Any) -> None:
    svc = make.service("web", max_per_node=2)
    other = make.service("api")
    view = make.view(
        make.node("n1"),
        svc,
        other,
        make.task(svc, 1, node_id="n1", state=TaskState.RUNNING),
        make.task(svc, 2, node_id="n1", state=TaskState.COMPLETE),
        make.task(other, 1, node_id="n1", state=TaskState.RUNNING),
        make.task(other, 2, node_id="n1", state=TaskState.RUNNING),
    )
    check = MaxReplicasFilter()
    info = view.nodes["n1"]
    assert check.accepts(info, make.task(svc, 3), view)
    view.place(make.task(svc, 3), "n1")
    assert not check.accepts(info, make.task(svc, 4), view)
    assert check.detail(info, make.task(svc, 4), view) == "limit 2"
    assert check.explain(1) == "max replicas per node reached on 1 node"
    unlimited = make.service("api")
    assert check.accepts(info, make.task(unlimited, 9), view)


def test_host_port_conflicts_with_another_live_task_on_the_node(make: Any) -> None:
    web = make.service("web", host_ports=[8080])
    other = make.service("other", host_ports=[8080])
    free = make.service("free", host_ports=[9090])
    view = make.view(
        make.node("n1"),
        make.node("n2"),
        web,
        other,
        free,
        make.task(web, 1, node_id="n1", state=TaskState.RUNNING),
        make.task(web, 2, node_id="n2", state=TaskState.SHUTDOWN),
    )
    check = HostPortFilter()
    assert not check.accepts(view.nodes["n1"], make.task(other, 1), view)
    assert check.detail(view.nodes["n1"], make.task(other, 1), view) == "8080/tcp"
    assert check.accepts(view.nodes["n2"], make.task(other, 1), view)  # that task stopped
    assert check.accepts(view.nodes["n1"], make.task(free, 1), view)
    # A task never conflicts with itself.
    assert check.accepts(view.nodes["n1"], view.nodes["n1"].tasks["web.1"], view)
    assert check.explain(1) == "host-mode port already in use on 1 node"


def test_host_port_conflicts_only_on_the_same_protocol(make: Any) -> None:
    tcp = make.service("tcp", host_ports=[53])
    udp = make.service("udp", host_ports=[53], protocol="udp")
    view = make.view(
        make.node("n1"), tcp, udp, make.task(tcp, 1, node_id="n1", state=TaskState.RUNNING)
    )
    assert HostPortFilter().accepts(view.nodes["n1"], make.task(udp, 1), view)
    assert not HostPortFilter().accepts(view.nodes["n1"], make.task(tcp, 2), view)
