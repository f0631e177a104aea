"""The route table across processes: any manager answers as the leader does, a worker
refuses every manager call, and a request that can never succeed is refused at once.

Real daemons on 127.0.0.1 (two managers and a worker, no container runtime: nothing here
needs a task to run), driven by the CLI as a user would, and read back through the CLI's
own control client. Marked `integration` (tests/integration/conftest.py).
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any, get_args, get_origin

import msgspec
import pytest

from swarmlite.api.control import CONTROL, Empty, ListRequest, ServiceFilter
from swarmlite.api.routes import INFO, NODE_LS, ROUTES, SERVICE_LS, Route
from swarmlite.errors import FailedPrecondition, SwarmliteError
from swarmlite.rpc import ControlClient

Cluster = Any  # conftest.Cluster, through the `small_cluster` fixture
Node = Any  # conftest.Node

IMAGE = "swl/web:1"
CALL_TIMEOUT = 60.0


@pytest.fixture
def small(small_cluster: Cluster) -> Cluster:
    return small_cluster


def _m1(cluster: Cluster) -> str:
    host: str = cluster.nodes["m1"].host
    return host


def _leader_and_follower(cluster: Cluster) -> tuple[Node, Node]:
    rows = cluster.heal()
    [leader] = cluster.leaders(rows)
    follower = next(n for n in ("m1", "m2") if n != leader)
    return cluster.nodes[leader], cluster.nodes[follower]


def _services(cluster: Cluster, via: Node) -> list[str]:
    listed = cluster.call(SERVICE_LS, ServiceFilter(), via=via).services
    return sorted(view.service.spec.name for view in listed)


def _sample(kind: Any) -> Any:
    """A value of `kind` good enough to decode: what a request's required field needs."""
    origin = get_origin(kind)
    if kind is str:
        return "x"
    if kind in (int, float):
        return 0
    if kind is bytes:
        return b"x"
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return next(iter(kind)).value
    if origin in (list, tuple):
        return []
    if origin is dict:
        return {}
    args = [a for a in get_args(kind) if a is not type(None)]
    if args:
        return _sample(args[0])
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return _minimal(kind)
    raise AssertionError(f"no sample for {kind!r}")


def _minimal(kind: type[msgspec.Struct]) -> dict[str, Any]:
    return {f.name: _sample(f.type) for f in msgspec.structs.fields(kind) if f.required}


def _request(route: Route[Any, Any]) -> msgspec.Struct:
    return msgspec.convert(_minimal(route.request), route.request)


# --------------------------------------------------------------------------- the tests


def test_a_follower_answers_as_the_leader_and_calls_itself_self(small: Cluster) -> None:
    leader, follower = _leader_and_follower(small)
    small.ok("service", "create", "-d", "--name", "made-on-follower", "--replicas", "0",
             IMAGE, host=follower.host)  # fmt: skip
    assert "made-on-follower" in _services(small, leader)
    assert _services(small, leader) == _services(small, follower)

    shown = small.ok("node", "ls", "--format", "json", host=follower.host)
    rows = [json.loads(line) for line in shown.splitlines()]
    assert [r["Hostname"] for r in rows if r["Self"]] == [follower.name]
    assert [r["Hostname"] for r in rows if r["ManagerStatus"] == "Leader"] == [leader.name]
    small.ok("service", "rm", "made-on-follower", host=follower.host)
    assert "made-on-follower" not in _services(small, leader)


def test_a_worker_refuses_every_manager_call_and_answers_its_own(small: Cluster) -> None:
    small.heal()
    worker = ControlClient.unix(small.nodes["w1"].socket)
    refused = []
    for route in ROUTES:
        if route.role != "manager" or not route.path.startswith(CONTROL):
            continue
        with pytest.raises(FailedPrecondition) as caught:
            if route.stream:
                worker.each(route, _request(route), lambda item: None)
            else:
                worker.call(route, _request(route))
        assert "not a manager" in caught.value.message, route.path
        refused.append(route.path)
    assert len(refused) >= 30, refused
    info = worker.call(INFO, Empty())
    assert info.role.value == "worker" and info.hostname == "w1"
    done = small.cli("service", "ls", host=small.nodes["w1"].host)
    assert done.returncode == 1
    assert "this node is not a manager" in done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--name", "Bad Name!", IMAGE], "service name 'Bad Name!' is not valid"),
        (["--name", "slash", "/swl/web:2"], 'image reference "/swl/web:2"'),
        (["--name", "upper", "BAD/IMAGE"], 'image reference "BAD/IMAGE"'),
        (["--name", "mem", "--limit-memory", "1k", IMAGE], "limits.memory"),
        (["--name", "where", "--constraint", "node.rank==1", IMAGE], "node.rank"),
    ],
)
def test_a_service_that_can_never_run_is_refused_at_once_and_nothing_stored(
    small: Cluster, args: list[str], said: str
) -> None:
    small.heal()
    before = _services(small, small.nodes["m1"])
    done = small.cli("service", "create", "-d", "--replicas", "0", *args, host=_m1(small))
    assert done.returncode == 1, done.stdout
    assert said in done.stderr
    assert _services(small, small.nodes["m1"]) == before


def test_a_published_port_another_service_holds_is_refused_naming_the_holder(
    small: Cluster,
) -> None:
    small.heal()
    small.ok("service", "create", "-d", "--name", "holder", "--replicas", "0",
             "-p", "18080:80", IMAGE, host=_m1(small))  # fmt: skip
    try:
        done = small.cli("service", "create", "-d", "--name", "second", "--replicas", "0",
                         "-p", "published=18080,target=8080", IMAGE, host=_m1(small))  # fmt: skip
        assert done.returncode == 1
        assert "port 18080/tcp is already published by service holder" in done.stderr
        assert "second" not in _services(small, small.nodes["m1"])
        # and the same through `service update` of a third one
        small.ok(
            "service", "create", "-d", "--name", "third", "--replicas", "0", IMAGE, host=_m1(small)
        )
        done = small.cli(
            "service", "update", "-d", "--publish-add", "18080:80", "third", host=_m1(small)
        )
        assert done.returncode == 1
        assert "already published by service holder" in done.stderr
        third = small.ok(
            "service", "inspect", "--format", "{{json .Endpoint.Spec}}", "third", host=_m1(small)
        )
        assert "18080" not in third
    finally:
        for name in ("holder", "third"):
            small.cli("service", "rm", name, host=_m1(small))


def test_a_stack_with_a_bad_name_is_refused_before_anything_is_stored(
    small: Cluster, tmp_path: Path
) -> None:
    small.heal()
    compose = tmp_path / "compose.yml"
    compose.write_text(f"services:\n  web:\n    image: {IMAGE}\n    deploy:\n      replicas: 0\n")
    done = small.cli("stack", "deploy", "-d", "-c", str(compose), "Bad Name!", host=_m1(small))
    assert done.returncode == 1
    assert "stack name 'Bad Name!' is not valid" in done.stderr
    assert small.ok("stack", "ls", "--format", "{{.Name}}", host=_m1(small)).strip() == ""


def test_swarm_update_changes_what_info_shows(small: Cluster) -> None:
    small.heal()
    small.ok(
        "swarm",
        "update",
        "--dispatcher-heartbeat",
        "2s",
        "--task-history-limit",
        "3",
        host=_m1(small),
    )
    try:
        shown = json.loads(
            small.ok("info", "--format", "{{json .Swarm.Cluster.Spec}}", host=_m1(small))
        )
        assert shown["Dispatcher"]["HeartbeatPeriod"] == 2_000_000_000
        assert shown["Orchestration"]["TaskHistoryRetentionLimit"] == 3
        done = small.cli("swarm", "update", "--dispatcher-heartbeat", "1ms", host=_m1(small))
        assert done.returncode == 1 and "heartbeat" in done.stderr
    finally:
        small.ok(
            "swarm",
            "update",
            "--dispatcher-heartbeat",
            "1s",
            "--task-history-limit",
            "5",
            host=_m1(small),
        )


def test_version_names_client_and_server(small: Cluster) -> None:
    small.heal()
    shown = small.ok("version", "--format", "{{json .}}", host=_m1(small))
    version = json.loads(shown)
    assert version["Client"]["Version"] == version["Server"]["Version"]


def test_node_ls_shows_the_last_heartbeat_moving(small: Cluster) -> None:
    small.heal()

    def heartbeat() -> str:
        shown = small.ok(
            "node", "ls", "--format", "{{.Hostname}} {{.LastHeartbeat}}", host=_m1(small)
        )
        beats = dict(line.split(" ", 1) for line in shown.splitlines())
        return beats["w1"]

    first = heartbeat()
    assert first.endswith("Z")
    later = small.wait("a newer heartbeat", lambda: (beat := heartbeat()) != first and beat)
    assert later > first  # RFC 3339 times of one zone sort as text


def test_every_route_is_answered_by_every_manager(small: Cluster) -> None:
    """No route is missing a handler: a manager never answers 'no rpc endpoint'."""
    leader, follower = _leader_and_follower(small)
    for via in (leader, follower):
        client = ControlClient.unix(via.socket, timeout=CALL_TIMEOUT)
        listed = client.call(NODE_LS, ListRequest()).nodes
        assert len(listed) == 3
        for route in ROUTES:
            if route.stream or route.role == "local" or not route.path.startswith(CONTROL):
                continue
            if route.path.endswith(("/create", "/deploy")):
                continue  # they would store something; the tests above create for real
            try:
                client.call(route, _request(route))
            except SwarmliteError as exc:
                assert "no rpc endpoint" not in exc.message, route.path
