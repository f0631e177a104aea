"""Stacks on a real cluster: `stack deploy` to `stack rm`, through the CLI, on real dockerds.

One manager (m1) and two workers (w1, w2), each a real daemon started with the CLI and each
with its own private dockerd (the `stacks` fixture, shared by this module). The stack is
shop.yml: `web` (2 replicas, only on workers, start-first updates that roll back on
failure), `agent` (global) and `migrate` (a replicated job). Every test starts by
restarting what an earlier one left down and deploying shop.yml again, so a failure in one
test does not hide what the next one checks. A test drives the cluster through the CLI and
checks what it did through the control API (with the client the CLI uses) and the
containers on each node's dockerd, by the labels swarmlite sets; it reads the CLI's output
only where what the CLI prints is the point, and then only text that does not depend on
the output's layout.

Marked `integration` (by tests/integration/conftest.py): `scripts/test` runs it, a plain
`pytest` does not. It needs root, docker.io and busybox-static (as tests/contract does).
"""

from __future__ import annotations

import base64
import collections
import json
import time
from pathlib import Path
from typing import Any

import pytest

from swarmlite.api import Task, TaskState
from swarmlite.api.control import Empty, ListRequest, NameRef, ServiceFilter, TaskFilter
from swarmlite.api.routes import (
    CONFIG_LS,
    NETWORK_LS,
    SECRET_INSPECT,
    SERVICE_LS,
    STACK_LS,
    TASK_LS,
)

HERE = Path(__file__).resolve().parent
SHOP = HERE / "shop.yml"
BAD_WEB = HERE / "bad-web.yml"
BLOBS = HERE / "external-blobs.yml"
HELD_PORT = HERE / "held-port.yml"
STACK = "shop"
WEB, AGENT, MIGRATE = f"{STACK}_web", f"{STACK}_agent", f"{STACK}_migrate"
WORKERS = {"w1", "w2"}
STACK_LABEL = "com.docker.stack.namespace"
WAIT = 60.0

pytestmark = pytest.mark.timeout(240)

StackCluster = Any  # conftest.StackCluster, reached through the `stacks` fixture


# --------------------------------------------------------------------------- helpers


def _deployed(stacks: StackCluster) -> None:
    """Every node up again and shop.yml deployed and converged."""
    stacks.cluster.heal()
    done = stacks.deploy(STACK, SHOP)
    assert done.returncode == 0, f"stack deploy exited {done.returncode}: {done.stderr}"


def _current(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks that should run (desired running), the way `service ps` lists them first."""
    return [t for t in tasks if t["desired_state"] == "running"]


def _state(task: dict[str, Any]) -> str:
    state: str = task["status"]["state"]
    return state


def _running(task: Task) -> bool:
    """A task of TASK_LS that should run and does."""
    return task.desired_state is TaskState.RUNNING and task.status.state is TaskState.RUNNING


def _service_id(stacks: StackCluster, service: str) -> str:
    sid: str = stacks.inspect(service)["id"]
    return sid


def _running_web(stacks: StackCluster, hosts: dict[str, str]) -> list[dict[str, Any]] | None:
    """The running web tasks, if there are exactly the 2 wanted and all run on workers."""
    current = _current(stacks.tasks(WEB))
    if len(current) != 2 or any(_state(t) != "running" for t in current):
        return None
    assert {hosts[t["node_id"]] for t in current} <= WORKERS, current
    return current


# --------------------------------------------------------------------------- the tests


def test_deploy_places_each_service_where_its_mode_and_constraints_say(
    stacks: StackCluster,
) -> None:
    _deployed(stacks)
    hosts = stacks.node_names()
    assert sorted(hosts.values()) == ["m1", "w1", "w2"]

    web = _current(stacks.tasks(WEB))
    assert sorted(t["slot"] for t in web) == [1, 2]
    assert all(_state(t) == "running" for t in web), web
    assert {hosts[t["node_id"]] for t in web} <= WORKERS  # node.role == worker

    agent = _current(stacks.tasks(AGENT))
    assert sorted(hosts[t["node_id"]] for t in agent) == ["m1", "w1", "w2"]  # one per node
    assert all(_state(t) == "running" for t in agent), agent

    migrate = stacks.tasks(MIGRATE)
    assert [_state(t) for t in migrate] == ["complete"], migrate
    assert migrate[0]["status"]["exit_code"] == 0

    # what the dockerds run is what the cluster says
    for service, tasks in ((WEB, web), (AGENT, agent)):
        sid = _service_id(stacks, service)
        running = stacks.running(**{"swarmlite.service": sid})
        assert sorted(c.task for c in running) == sorted(t["id"] for t in tasks)
        for c in running:
            assert hosts[next(t for t in tasks if t["id"] == c.task)["node_id"]] == c.node
    assert stacks.running(**{"swarmlite.service": _service_id(stacks, MIGRATE)}) == []


@pytest.mark.parametrize("replicas", [6, 1])
def test_service_scale_changes_the_containers_on_the_workers(
    stacks: StackCluster, replicas: int
) -> None:
    stacks.cluster.heal()
    if replicas == 6:
        _deployed(stacks)  # from 2
    stacks.ok("service", "scale", f"{WEB}={replicas}")
    sid = _service_id(stacks, WEB)

    current = _current(stacks.tasks(WEB))
    assert len(current) == replicas
    assert all(_state(t) == "running" for t in current), current
    # the scaled-down containers are stopped by the time they are counted (a short wait:
    # `service scale` returns once the tasks' states say so)
    running = stacks.cluster.wait(
        f"{replicas} running containers of {WEB}",
        lambda: (r := stacks.running(**{"swarmlite.service": sid})) and len(r) == replicas and r,
        WAIT,
    )
    assert sorted(c.task for c in running) == sorted(t["id"] for t in current)
    assert {c.node for c in running} <= WORKERS
    assert all(c.image == "swl/web:1" for c in running)


def test_failed_start_first_update_rolls_back_to_the_old_image(stacks: StackCluster) -> None:
    _deployed(stacks)
    sid = _service_id(stacks, WEB)
    before = {t["id"] for t in _current(stacks.tasks(WEB))}

    done = stacks.deploy(STACK, SHOP, BAD_WEB)
    assert done.returncode != 0, f"deploy of a failing update exited 0: {done.stdout}"

    assert "rolled back" in done.stderr and "unhealthy" in done.stderr, done.stderr

    # The CLI gives up once the rollback has started (`docker stack deploy` waits until it
    # completed): the end state is waited for.
    def rolled_back() -> dict[str, Any] | None:
        service: dict[str, Any] = stacks.inspect(WEB)
        status = service["update_status"] or {}
        return service if status.get("state") == "rollback_completed" else None

    service = stacks.cluster.wait("update_status rollback_completed", rolled_back, WAIT)
    assert service["spec"]["task"]["container"]["image"] == "swl/web:1"

    def settled() -> list[dict[str, Any]] | None:
        current = _current(stacks.tasks(WEB))
        ok = len(current) == 2 and all(
            _state(t) == "running" and t["spec"]["container"]["image"] == "swl/web:1"
            for t in current
        )
        return current if ok else None

    current = stacks.cluster.wait("2 running web tasks on swl/web:1", settled, WAIT)
    # start-first: the old tasks kept running while the new ones failed their health check
    assert {t["id"] for t in current} == before
    running = stacks.cluster.wait(
        "only swl/web:1 containers running",
        lambda: (r := stacks.running(**{"swarmlite.service": sid})) and len(r) == 2 and r,
        WAIT,
    )
    assert {c.image for c in running} == {"swl/web:1"}
    assert {c.task for c in running} == before
    bad = [t for t in stacks.tasks(WEB) if t["spec"]["container"]["image"] == "swl/web:bad"]
    assert bad, "no task of swl/web:bad was ever started"
    assert all(t["desired_state"] != "running" for t in bad), bad


def test_killed_container_is_replaced_in_its_slot(stacks: StackCluster) -> None:
    _deployed(stacks)
    hosts = stacks.node_names()
    victim = _current(stacks.tasks(WEB))[0]
    [container] = stacks.containers(hosts[victim["node_id"]], **{"swarmlite.task": victim["id"]})
    assert container.state == "running"

    stacks.kill_container(container)

    def replaced() -> dict[str, Any] | None:
        tasks = stacks.tasks(WEB)
        for t in _current(tasks):
            if t["slot"] == victim["slot"] and t["id"] != victim["id"] and _state(t) == "running":
                return t
        return None

    new = stacks.cluster.wait(f"a new running task in slot {victim['slot']}", replaced, WAIT)
    old = next(t for t in stacks.tasks(WEB) if t["id"] == victim["id"])
    assert _state(old) == "failed", old["status"]
    assert old["desired_state"] == "shutdown"
    assert old["status"]["exit_code"] not in (None, 0)
    [fresh] = stacks.containers(hosts[new["node_id"]], **{"swarmlite.task": new["id"]})
    assert fresh.state == "running"


def test_crashed_worker_tasks_are_rescheduled_on_the_other_worker(stacks: StackCluster) -> None:
    _deployed(stacks)
    hosts = stacks.node_names()
    web = _current(stacks.tasks(WEB))
    victim_name = hosts[web[0]["node_id"]]
    survivor_name = ({"w1", "w2"} - {victim_name}).pop()
    victim = stacks.cluster.nodes[victim_name]
    moved = {t["id"] for t in web if hosts[t["node_id"]] == victim_name}

    stacks.cluster.kill(victim)  # SIGKILL of the daemon ...
    for container in stacks.containers(victim_name):  # ... and of what it ran
        if container.state == "running":
            stacks.kill_container(container)

    stacks.cluster.wait(
        f"{victim_name} DOWN",
        lambda: any(
            r.hostname == victim_name and r.state == "down"
            for r in stacks.cluster.try_node_ls() or []
        ),
        WAIT,
    )
    current = stacks.cluster.wait(
        "2 running web tasks, none on the dead worker",
        lambda: (
            (c := _running_web(stacks, hosts))
            and all(hosts[t["node_id"]] == survivor_name for t in c)
            and c
        ),
        WAIT,
    )
    assert not moved & {t["id"] for t in current}  # replacements, not the same tasks
    sid = _service_id(stacks, WEB)
    running = stacks.running(**{"swarmlite.service": sid})
    assert sorted(c.task for c in running) == sorted(t["id"] for t in current)
    assert {c.node for c in running} == {survivor_name}


def test_restarted_agent_adopts_its_running_containers(stacks: StackCluster) -> None:
    _deployed(stacks)
    hosts = stacks.node_names()
    # the worker with the most running tasks of the stack
    per_node = collections.Counter(
        c.node for c in stacks.running(**{"com.docker.stack.namespace": STACK})
    )
    name = max(sorted(WORKERS), key=lambda n: per_node[n])
    node = stacks.cluster.nodes[name]
    before = {
        c.task: c.id
        for c in stacks.running(**{"com.docker.stack.namespace": STACK})
        if c.node == name
    }
    assert before, f"no task runs on {name}"

    stacks.cluster.kill(node)  # the daemon only: its containers keep running
    stacks.cluster.start(node)
    stacks.cluster.heal()

    def adopted() -> dict[str, dict[str, Any]] | None:
        tasks = {t["id"]: t for t in stacks.tasks(WEB, AGENT)}
        if all(tid in tasks and _state(tasks[tid]) == "running" for tid in before):
            return tasks
        return None

    tasks = stacks.cluster.wait(f"the tasks of {name} RUNNING again", adopted, WAIT)
    for tid, container_id in before.items():
        assert hosts[tasks[tid]["node_id"]] == name
        assert tasks[tid]["desired_state"] == "running"
        on_node = stacks.containers(name, **{"swarmlite.task": tid})
        assert [(c.id, c.state) for c in on_node] == [(container_id, "running")], on_node
    # and nothing was started twice anywhere
    every = stacks.all_containers(**{"com.docker.stack.namespace": STACK})
    counts = collections.Counter(c.task for c in every)
    assert max(counts.values()) == 1, counts


def test_node_ps_lists_the_tasks_of_the_nodes_it_names(stacks: StackCluster) -> None:
    _deployed(stacks)
    hosts = stacks.node_names()
    # Read before `node ps` runs: a task created meanwhile is simply not looked for, and one
    # pruned from the history meanwhile was still known here.
    known = stacks.call(TASK_LS, TaskFilter()).tasks
    assert {hosts[t.node_id] for t in known if t.node_id} == {"m1", "w1", "w2"}, known

    def listed(out: str) -> set[str]:
        """The known tasks whose id `out` shows (whole or cut to 12 characters)."""
        return {t.id for t in known if t.id[:12] in out}

    def running_on(names: set[str]) -> set[str]:
        return {t.id for t in known if hosts.get(t.node_id) in names and _running(t)}

    def ever_on(names: set[str]) -> set[str]:
        return {t.id for t in known if hosts.get(t.node_id) in names}

    on_workers = listed(stacks.ok("node", "ps", "w1", "w2"))
    assert running_on(WORKERS) <= on_workers <= ever_on(WORKERS), on_workers
    assert len(running_on(WORKERS)) == 4  # web's 2 replicas and one agent on each worker

    m1 = stacks.cluster.nodes["m1"]
    on_m1 = listed(stacks.cluster.ok("node", "ps", host=m1.host))  # no NODE: the node asked
    [agent] = running_on({"m1"})
    assert next(t for t in known if t.id == agent).service_name == AGENT
    assert agent in on_m1 <= ever_on({"m1"}), on_m1


def test_a_stack_publishing_a_held_port_is_refused_and_nothing_of_it_stored(
    stacks: StackCluster,
) -> None:
    _deployed(stacks)
    held = stacks.inspect(WEB)["spec"]["endpoint"]["ports"]
    assert [(p["published"], p["mode"]) for p in held] == [(8080, "ingress")], held
    hosts = stacks.node_names()
    before = {t["id"] for t in _running_web(stacks, hosts) or []}
    assert len(before) == 2

    done = stacks.deploy("held", HELD_PORT)
    assert done.returncode == 1, f"exited {done.returncode}: {done.stdout}\n{done.stderr}"
    assert "8080" in done.stderr and WEB in done.stderr, done.stderr
    assert "held_web" in done.stderr, done.stderr  # the service that asked for it

    # Refused whole: no service, no network, no stack of it; shop's web keeps its tasks.
    assert stacks.call(SERVICE_LS, ServiceFilter(stack="held")).services == []
    networks = [v.network.spec for v in stacks.call(NETWORK_LS, ListRequest()).networks]
    assert [
        n.name
        for n in networks
        if n.name.startswith("held_") or n.labels.get(STACK_LABEL) == "held"
    ] == []
    assert "held" not in {s.name for s in stacks.call(STACK_LS, Empty()).stacks}
    assert {t["id"] for t in _running_web(stacks, hosts) or []} == before


def test_stack_rm_leaves_no_container_on_any_node(stacks: StackCluster) -> None:
    _deployed(stacks)
    assert stacks.all_containers(**{"com.docker.stack.namespace": STACK})

    stacks.ok("stack", "rm", STACK)

    assert STACK not in stacks.ok("stack", "ls")  # whatever the layout, no row names it
    assert STACK not in {s.name for s in stacks.call(STACK_LS, Empty()).stacks}
    stacks.cluster.wait(
        "no container of the stack on any dockerd",
        lambda: not stacks.all_containers(**{"com.docker.stack.namespace": STACK}),
        WAIT,
    )
    assert stacks.all_containers() == []  # nor any other container: the job's, the killed ones


def test_a_secret_and_a_config_made_by_hand_reach_a_stack_that_names_them_external(
    stacks: StackCluster, tmp_path: Path
) -> None:
    early = stacks.deploy("blobs", BLOBS)
    assert early.returncode == 1
    assert "service blobs_reader uses secret db_pass, which does not exist" in early.stderr
    assert "`swarmlite secret create db_pass FILE`" in early.stderr, early.stderr
    assert "blobs" not in stacks.ok("stack", "ls")  # nothing of it was stored
    # A secret a compose file makes is held to the same rules as one made by hand.
    (tmp_path / "big.bin").write_bytes(b"x" * (500 * 1024 + 1))
    big = tmp_path / "big.yml"
    big.write_text(
        "services:\n  reader:\n    image: swl/busybox:1\n    secrets: [blob]\n"
        "secrets:\n  blob:\n    file: ./big.bin\n"
    )
    refused = stacks.deploy("big", big)
    assert refused.returncode == 1
    assert "secret big_blob: the content is 512001 bytes; it must be 1 byte to 500 KiB" in (
        refused.stderr
    ), refused.stderr
    assert "big" not in stacks.ok("stack", "ls")

    (tmp_path / "pass").write_text("s3cret-for-the-reader\n")
    (tmp_path / "site.conf").write_text("listen 8080;\n")
    secret_id = stacks.ok("secret", "create", "db_pass", str(tmp_path / "pass")).strip()
    stacks.ok("config", "create", "--label", "team=shop", "site", str(tmp_path / "site.conf"))
    stored = stacks.call(SECRET_INSPECT, NameRef(ref="db_pass")).object
    assert stored.id == secret_id and stored.spec.data == b""  # the content never leaves
    shown = stacks.ok("secret", "inspect", "db_pass")
    assert secret_id in shown, shown
    content = (tmp_path / "pass").read_bytes()
    for form in (content.decode().strip(), base64.b64encode(content).decode()):
        assert form not in shown, shown

    done = stacks.deploy("blobs", BLOBS)
    assert done.returncode == 0, f"stack deploy exited {done.returncode}: {done.stderr}"

    def printed() -> str:
        out = stacks.ok("service", "logs", "blobs_reader")
        return out if "listen 8080;" in out else ""

    logs = stacks.cluster.wait("the reader's output", printed, WAIT)
    assert "s3cret-for-the-reader" in logs, logs

    refused = stacks.swl("secret", "rm", "db_pass")
    assert refused.returncode == 1
    assert "secret db_pass is in use by service blobs_reader" in refused.stderr, refused.stderr
    assert [v.services for v in stacks.call(CONFIG_LS, ListRequest()).items] == [["blobs_reader"]]

    stacks.ok("stack", "rm", "blobs")  # they were not made by the stack: they stay
    # (`-q` prints ids cut to 12 characters or whole, as docker does: compare 12)
    assert [i[:12] for i in stacks.ok("secret", "ls", "-q").split()] == [secret_id[:12]]
    assert stacks.ok("secret", "rm", "db_pass").split() == ["db_pass"]
    assert stacks.ok("config", "rm", "site").split() == ["site"]
    assert stacks.ok("secret", "ls", "-q").split() == []
    assert stacks.call(CONFIG_LS, ListRequest()).items == []
    stacks.cluster.wait(
        "no container of the stack on any dockerd",
        lambda: not stacks.all_containers(**{"com.docker.stack.namespace": "blobs"}),
        WAIT,
    )


def test_events_tell_a_deploy_a_rolling_update_and_a_killed_node_in_order(
    stacks: StackCluster, tmp_path: Path
) -> None:
    stacks.cluster.heal()
    compose = tmp_path / "events.yml"
    compose.write_text(
        "services:\n  app:\n    image: swl/web:1\n    deploy:\n      replicas: 2\n"
        "      placement:\n        constraints: [node.role == worker]\n"
        "      update_config:\n        parallelism: 1\n        monitor: 1s\n"
    )
    since = f"{time.time() - 1:.3f}"
    done = stacks.deploy("ev", compose)
    assert done.returncode == 0, f"stack deploy exited {done.returncode}: {done.stderr}"
    stacks.ok("service", "update", "--image", "swl/web:2", "ev_app")  # waits for the update
    hosts = stacks.node_names()
    victim_id = _current(stacks.tasks("ev_app"))[0]["node_id"]
    victim = stacks.cluster.nodes[hosts[victim_id]]
    stacks.cluster.kill(victim)
    stacks.cluster.wait(
        f"{victim.name} DOWN",
        lambda: any(
            r.hostname == victim.name and r.state == "down"
            for r in stacks.cluster.try_node_ls() or []
        ),
        WAIT,
    )
    until = f"{time.time():.3f}"

    out = stacks.ok("events", "--since", since, "--until", until, "--format", "{{json .}}")
    events = [json.loads(line) for line in out.splitlines()]
    service_id = _service_id(stacks, "ev_app")

    def at(what: str, wanted: Any) -> int:
        for n, event in enumerate(events):
            attributes = event["Actor"]["Attributes"]
            if wanted(event["Type"], event["Action"], event["Actor"]["ID"], attributes):
                return n
        raise AssertionError(f"no event of {what} in:\n{out}")

    def app_task(state_key: str, value: str) -> Any:
        return lambda kind, action, oid, a: (
            kind == "task" and a.get("service") == "ev_app" and a.get(state_key) == value
        )

    created = at(
        "the service's creation",
        lambda kind, action, oid, a: (kind, action, oid) == ("service", "create", service_id),
    )
    running = at("a task running", app_task("state.new", "running"))
    new_image = at(
        "the new image",
        lambda kind, action, oid, a: oid == service_id and a.get("image.new") == "swl/web:2",
    )
    updating = at(
        "the update starting",
        lambda kind, action, oid, a: oid == service_id and a.get("updatestate.new") == "updating",
    )
    replaced = at("an old task told to stop", app_task("desiredstate.new", "shutdown"))
    completed = at(
        "the update completing",
        lambda kind, action, oid, a: oid == service_id and a.get("updatestate.new") == "completed",
    )
    down = at(
        "the killed node going down",
        lambda kind, action, oid, a: (kind, oid, a.get("state.new")) == ("node", victim_id, "down"),
    )
    assert created < running < new_image <= updating < replaced < completed < down, out
    # Who asked and why.
    attributes = [e["Actor"]["Attributes"] for e in events]
    assert attributes[created]["by"].startswith("admin@"), out
    assert attributes[running]["by"] == f"agent@{events[running]['Actor']['Attributes']['node']}"
    assert attributes[down]["by"] == "dispatcher"
    assert attributes[down]["reason"] == "heartbeat failure"
    # The line docker prints, and a filter.
    plain = stacks.ok("events", "--since", since, "--until", until, "--filter", "type=node")
    assert f" node update {victim_id} (" in plain, plain
    assert "state.new=down" in plain, plain
    assert {line.split()[1] for line in plain.splitlines()} == {"node"}, plain

    stacks.cluster.heal()
    stacks.ok("stack", "rm", "ev")
