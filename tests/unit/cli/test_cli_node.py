"""`swarmlite node ...` against a fake daemon: what is sent, what is printed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import msgspec
import pytest

from swarmlite.api import (
    ContainerSpec,
    NodeAvailability,
    NodeRole,
    NodeState,
    Task,
    TaskState,
    TaskStatus,
    TaskTemplate,
)
from swarmlite.api.control import (
    Info,
    ListRequest,
    ManagerStatus,
    NodeList,
    NodeRef,
    NodeRemove,
    NodeTasks,
    NodeUpdate,
    NodeView,
    ServiceList,
    TaskList,
)
from swarmlite.api.routes import (
    INFO,
    NODE_INSPECT,
    NODE_LS,
    NODE_PS,
    NODE_RM,
    NODE_UPDATE,
    SERVICE_LS,
)
from swarmlite.errors import FailedPrecondition, NotFound

LEADER = "a1" * 12 + "a"
MANAGER = "b2" * 12 + "b"
WORKER = "c3" * 12 + "c"

MakeView = Callable[..., NodeView]


def info(node_id: str) -> Info:
    return Info(
        node_id=node_id,
        cluster_id="cluster-1",
        role=NodeRole.MANAGER,
        hostname="manager-1",
        addr="manager-1:2377",
        managers=["manager-1:2377"],
    )


def task(
    task_id: str, *, slot: int, state: TaskState, at: float, err: str = "", created: float = 0.0
) -> Task:
    desired = TaskState.RUNNING if state is TaskState.RUNNING else TaskState.SHUTDOWN
    return Task(
        id=task_id,
        created_at=created or at,
        service_id="svc1",
        service_name="shop_web",
        slot=slot,
        node_id=LEADER,
        desired_state=desired,
        spec=TaskTemplate(container=ContainerSpec(image="nginx:1.25@sha256:" + "a" * 64)),
        status=TaskStatus(state=state, timestamp=at, err=err),
    )


@pytest.fixture
def three(make_view: MakeView) -> list[NodeView]:
    """A leader (the node answering), a reachable manager, and a drained worker that is down."""
    return [
        make_view(WORKER, "worker-1", state=NodeState.DOWN, availability=NodeAvailability.DRAIN),
        make_view(
            MANAGER,
            "manager-2",
            manager=ManagerStatus(addr="manager-2:2377", reachability="reachable"),
            version="",
        ),
        make_view(
            LEADER,
            "manager-1",
            manager=ManagerStatus(addr="manager-1:2377", leader=True, reachability="reachable"),
            is_self=True,
            labels={"zone": "a"},
        ),
    ]


def test_node_ls_table(daemon, run, three) -> None:
    daemon.on(NODE_LS, lambda request: NodeList(nodes=three))

    result = run("node", "ls")

    assert result.exit_code == 0, result.stderr
    assert daemon.calls == [(NODE_LS, ListRequest())]
    pad = " " * 25  # the ID column is as wide as the widest cell ("<id> *")
    assert result.stdout.splitlines() == [
        f"ID{pad}   HOSTNAME    STATUS   AVAILABILITY   MANAGER STATUS   ENGINE VERSION",
        f"{LEADER} *   manager-1   Ready    Active         Leader           0.1.0",
        f"{MANAGER}     manager-2   Ready    Active         Reachable",
        f"{WORKER}     worker-1    Down     Drain                           0.1.0",
    ]


def test_node_ls_quiet_prints_ids_only(daemon, run, three) -> None:
    daemon.on(NODE_LS, lambda request: NodeList(nodes=three))

    result = run("node", "ls", "-q")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [LEADER, MANAGER, WORKER]


def test_node_ls_json_is_one_docker_row_a_line(daemon, run, three) -> None:
    # the leader heard from manager-1 at 2023-11-14T22:13:20.5Z
    three[2] = msgspec.structs.replace(three[2], last_heartbeat=1_700_000_000.5)
    daemon.on(NODE_LS, lambda request: NodeList(nodes=three))

    result = run("node", "ls", "--format", "json")

    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["ID"] for row in rows] == [LEADER, MANAGER, WORKER]
    assert rows[0] == {
        "Availability": "Active",
        "EngineVersion": "0.1.0",
        "Hostname": "manager-1",
        "ID": LEADER,
        "ManagerStatus": "Leader",
        "Self": True,
        "Status": "Ready",
        "TLSStatus": "Ready",
        "LastHeartbeat": "2023-11-14T22:13:20.5Z",
    }
    assert rows[2]["ManagerStatus"] == ""
    assert rows[1]["LastHeartbeat"] == ""  # not heard from since this leader took over


def test_node_ls_filters_and_templates(daemon, run, three) -> None:
    daemon.on(NODE_LS, lambda request: NodeList(nodes=three))

    table = run("node", "ls", "-f", "role=manager", "--format", "table {{.Hostname}}\t{{.Self}}")
    bare = run("node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}")
    quiet = run("node", "ls", "-q", "--format", "{{.Hostname}}")  # a format wins, as docker's

    assert table.exit_code == 0, table.stderr
    assert daemon.requests(NODE_LS)[0] == ListRequest(filters={"role": ["manager"]})
    assert table.stdout.splitlines() == [
        "HOSTNAME",
        "manager-1   true",
        "manager-2   false",
        "worker-1    false",
    ]
    assert bare.stdout == "manager-1 Leader\nmanager-2 Reachable\nworker-1 \n"
    assert quiet.stdout.split() == ["manager-1", "manager-2", "worker-1"]


def test_node_ls_refuses_a_bad_template_before_calling(daemon, run) -> None:
    broken = run("node", "ls", "--format", "{{.Hostname")
    missing = run("node", "ls", "--format", "json", "-f", "nokey")

    assert broken.exit_code == 2
    assert broken.stderr.splitlines()[0] == (
        "error: --format '{{.Hostname': template: :1: unclosed action"
    )
    assert json.loads(missing.stderr)["message"] == "bad format of filter (expected name=value)"
    assert daemon.calls == []


def test_node_ls_template_with_an_unknown_field(daemon, run, three) -> None:
    daemon.on(NODE_LS, lambda request: NodeList(nodes=three))

    result = run("node", "ls", "--format", "{{.Name}}")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: --format '{{.Name}}': template: :1:2: executing \"\" at <.Name>: "
        "can't evaluate field Name in type row",
        "hint: the fields are Availability, EngineVersion, Hostname, ID, LastHeartbeat, "
        "ManagerStatus, Self, Status, TLSStatus",
    ]


def test_node_inspect_several_as_dockers_json(daemon, run, three) -> None:
    by_ref = {"manager-1": three[2], WORKER[:6]: three[0]}
    daemon.on(NODE_INSPECT, lambda request: by_ref[request.ref])

    result = run("node", "inspect", "manager-1", WORKER[:6])

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(NODE_INSPECT) == [NodeRef(ref="manager-1"), NodeRef(ref=WORKER[:6])]
    document = json.loads(result.stdout)
    assert [node["ID"] for node in document] == [LEADER, WORKER]
    assert document[0]["Spec"] == {
        "Labels": {"zone": "a"},
        "Role": "manager",
        "Availability": "active",
    }
    assert document[0]["ManagerStatus"] == {
        "Leader": True,
        "Reachability": "reachable",
        "Addr": "manager-1:2377",
    }
    assert "ManagerStatus" not in document[1]


def test_node_inspect_format(daemon, run, three) -> None:
    daemon.on(NODE_INSPECT, lambda request: three[2])

    result = run(
        "node", "inspect", "-f", "{{.Description.Hostname}} {{index .Spec.Labels \"zone\"}}",
        "manager-1", "manager-1",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "manager-1 a\nmanager-1 a\n"


def test_node_inspect_pretty_of_self(daemon, run, three) -> None:
    daemon.on(INFO, lambda request: info(LEADER))
    daemon.on(NODE_INSPECT, lambda request: three[2])

    result = run("node", "inspect", "--pretty", "self")

    assert result.exit_code == 0, result.stderr
    # `self` is the local node's id, asked of the local daemon as docker's CLI does
    assert daemon.requests(NODE_INSPECT) == [NodeRef(ref=LEADER)]
    lines = result.stdout.splitlines()
    assert lines[0] == f"ID:                     {LEADER}"
    assert "Hostname:               manager-1" in lines
    assert "Joined at:              2023-11-14 22:13:20 UTC" in lines
    assert " State:                 Ready" in lines
    assert " Availability:          Active" in lines
    assert " Raft Status:           Reachable" in lines
    assert " Leader:                Yes" in lines
    assert " - zone=a" in lines
    assert lines[-1] == "Engine Version:         0.1.0"


def test_node_inspect_shows_the_found_nodes_then_the_error(daemon, run, three) -> None:
    def inspect(request: NodeRef) -> NodeView:
        if request.ref == "ghost":
            raise NotFound('node "ghost" not found', hint="`swarmlite node ls` lists the nodes")
        return three[0]

    daemon.on(NODE_INSPECT, inspect)

    result = run("node", "inspect", "ghost", "worker-1")

    assert result.exit_code == 1
    assert [node["ID"] for node in json.loads(result.stdout)] == [WORKER]
    assert result.stderr.splitlines() == [
        'error: node "ghost" not found',
        "hint: `swarmlite node ls` lists the nodes",
    ]


def test_node_update_flags_map_to_node_update(daemon, run, three) -> None:
    daemon.on(NODE_UPDATE, lambda request: three[0])

    result = run(
        "node",
        "update",
        "--availability",
        "drain",
        "--label-add",
        "zone=b",
        "--label-add",
        "ssd",
        "--label-add",
        "rack=r=1",
        "--label-rm",
        "old",
        "--label-rm",
        "older",
        "--role",
        "manager",
        "worker-1",
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "worker-1\n"
    assert daemon.requests(NODE_UPDATE) == [
        NodeUpdate(
            ref="worker-1",
            availability=NodeAvailability.DRAIN,
            role=NodeRole.MANAGER,
            label_add={"zone": "b", "ssd": "", "rack": "r=1"},
            label_rm=["old", "older"],
        )
    ]


def test_node_update_without_a_change_is_a_usage_error(daemon, run) -> None:
    result = run("node", "update", "worker-1")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: nothing to update",
        "hint: pass --availability, --label-add, --label-rm or --role",
    ]
    assert daemon.calls == []


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (("--availability", "sleepy"), "sleepy"),
        (("--label-add", "=v"), "has no key"),
        (("--role", "boss"), "boss"),
    ],
)
def test_node_update_refuses_bad_values(daemon, run, args, word) -> None:
    result = run("node", "update", *args, "worker-1")

    assert result.exit_code == 2
    assert word in result.stderr
    assert daemon.calls == []


def test_promote_and_demote_send_the_role(daemon, run, three) -> None:
    daemon.on(NODE_UPDATE, lambda request: three[0])

    promoted = run("node", "promote", "worker-1", "worker-2")
    demoted = run("node", "demote", "manager-2")

    assert promoted.exit_code == 0 and demoted.exit_code == 0
    assert daemon.requests(NODE_UPDATE) == [
        NodeUpdate(ref="worker-1", role=NodeRole.MANAGER),
        NodeUpdate(ref="worker-2", role=NodeRole.MANAGER),
        NodeUpdate(ref="manager-2", role=NodeRole.WORKER),
    ]
    assert promoted.stdout.splitlines() == [
        "Node worker-1 promoted to a manager in the cluster.",
        "Node worker-2 promoted to a manager in the cluster.",
    ]
    assert demoted.stdout == "Manager manager-2 demoted in the cluster.\n"


def test_demote_refused_by_the_server_is_shown_with_its_hint(daemon, run) -> None:
    def refuse(request: NodeUpdate) -> None:
        raise FailedPrecondition(
            "demoting manager-1 would leave 1 of 2 managers: quorum lost",
            hint="promote another node first, or pass --force",
        )

    daemon.on(NODE_UPDATE, refuse)

    result = run("node", "demote", "manager-1")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: demoting manager-1 would leave 1 of 2 managers: quorum lost",
        "hint: promote another node first, or pass --force",
    ]


def test_rm_force_removes_every_node_and_reports_the_failures(daemon, run) -> None:
    def remove(request: NodeRemove) -> None:
        if request.ref in ("ghost", "phantom"):
            raise NotFound(f'node "{request.ref}" not found')
        return None

    daemon.on(NODE_RM, remove)

    result = run("node", "rm", "--force", "ghost", "worker-1", "phantom", "worker-2")

    assert result.exit_code == 1
    assert daemon.requests(NODE_RM) == [
        NodeRemove(ref=ref, force=True) for ref in ("ghost", "worker-1", "phantom", "worker-2")
    ]
    assert result.stdout.splitlines() == ["worker-1", "worker-2"]
    assert result.stderr == 'error: node "ghost" not found; node "phantom" not found\n'


def test_rm_without_force_sends_force_false(daemon, run) -> None:
    daemon.on(NODE_RM, lambda request: None)

    result = run("node", "rm", "worker-1")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(NODE_RM) == [NodeRemove(ref="worker-1", force=False)]


def test_node_ps_renders_an_empty_task_table(daemon, run) -> None:
    daemon.on(NODE_PS, lambda request: TaskList())
    daemon.on(NODE_LS, lambda request: NodeList(nodes=[]))

    this_node = run("node", "ps")
    other = run("node", "ps", "-f", "desired-state=running", "worker-1", "worker-2")

    assert this_node.exit_code == 0, this_node.stderr
    assert this_node.stdout.splitlines() == [
        "ID   NAME   IMAGE   NODE   DESIRED STATE   CURRENT STATE   ERROR   PORTS"
    ]
    assert other.exit_code == 0, other.stderr
    # no NODE: no reference, which the server reads as the node answering
    running = {"desired-state": ["running"]}
    assert daemon.requests(NODE_PS) == [
        NodeTasks(),
        NodeTasks(refs=["worker-1"], filters=running),
        NodeTasks(refs=["worker-2"], filters=running),
    ]


def test_node_ps_shows_dockers_task_columns(daemon, run, three) -> None:
    now = time.time()
    old = task("t-old", slot=1, state=TaskState.FAILED, at=now - 7200, err="x" * 40)
    new = task("t-new", slot=1, state=TaskState.RUNNING, at=now - 90, created=now - 100)
    daemon.on(INFO, lambda request: info(LEADER))
    daemon.on(NODE_PS, lambda request: TaskList(tasks=[old, new]))
    daemon.on(NODE_LS, lambda request: NodeList(nodes=three))
    daemon.on(SERVICE_LS, lambda request: ServiceList(services=[]))

    result = run("node", "ps", "self")
    no_resolve = run("node", "ps", "--no-resolve", "--no-trunc", "--format", "json", "self")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(NODE_PS)[0] == NodeTasks(refs=[LEADER])
    assert [re.split(r" {3,}", line) for line in result.stdout.splitlines()] == [
        ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"],
        ["t-new", "shop_web.1", "nginx:1.25", "manager-1", "Running", "Running about a minute ago"],
        [
            "t-old",
            "\\_ shop_web.1",  # " \\_ ", after the column's blanks
            "nginx:1.25",
            "manager-1",
            "Shutdown",
            "Failed 2 hours ago",
            '"' + "x" * 29 + '\u2026"',
        ],
    ]
    rows = [json.loads(line) for line in no_resolve.stdout.splitlines()]
    assert [row["Name"] for row in rows] == ["svc1.1", "svc1.1"]  # ids, and no indent
    assert rows[1]["Node"] == LEADER
    assert rows[1]["Error"] == '"' + "x" * 40 + '"'


def test_self_resolves_for_update_promote_and_rm(daemon, run, three) -> None:
    daemon.on(INFO, lambda request: info(WORKER))
    daemon.on(NODE_UPDATE, lambda request: three[0])
    daemon.on(NODE_RM, lambda request: None)

    updated = run("node", "update", "--availability", "pause", "self")
    promoted = run("node", "promote", "self")
    removed = run("node", "rm", "self")

    assert (updated.exit_code, promoted.exit_code, removed.exit_code) == (0, 0, 0)
    assert [request.ref for request in daemon.requests(NODE_UPDATE)] == [WORKER, WORKER]
    assert daemon.requests(NODE_RM) == [NodeRemove(ref=WORKER)]


def test_self_over_https_is_a_usage_error(run, tmp_path) -> None:
    result = run("-H", "https://10.0.0.1:2377", "--cert-dir", str(tmp_path), "node", "rm", "self")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: `self` names the local node, and https://10.0.0.1:2377 is not a local socket",
        "hint: name the node by id or hostname (`swarmlite node ls` lists them)",
    ]
