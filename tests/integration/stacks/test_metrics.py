"""Prometheus metrics on a real cluster: every family scraped over HTTP and checked against
what the control API (what `service ps`, `service ls` and `node ls` show) says.

Two managers (m1, m2) and a worker (w1), each a real daemon started by the CLI with
`--metrics-addr 127.0.0.1:<free port>` and its own private dockerd (this module's own
cluster, `metered`). The stack is metrics.yml: `web` (2 replicas) and `agent` (global), so
every node runs tasks. A scrape is a real `GET /metrics`, parsed with the library's parser.
Values that move (task stats are sampled every 5 s) are waited for, never slept for.

Marked `integration` (by tests/integration/conftest.py): `scripts/test` runs it, a plain
`pytest` does not. It needs root, docker.io and busybox-static, as the other stack tests do.
"""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from swarmlite.api import TaskState
from swarmlite.api.control import ServiceFilter, TaskFilter
from swarmlite.api.routes import SERVICE_LS, TASK_LS
from swarmlite.errors import FailedPrecondition
from swarmlite.testing.loadfile import load_file

HERE = Path(__file__).resolve().parent
COMPOSE = HERE / "metrics.yml"
STACK = "metered"
WEB, AGENT = f"{STACK}_web", f"{STACK}_agent"
WAIT = 60.0
LOOPS = {"orchestrator.replicated", "orchestrator.global", "allocator", "scheduler", "dispatcher"}

pytestmark = pytest.mark.timeout(420)

StackCluster = Any  # the stacks conftest's StackCluster
Metered = tuple[StackCluster, dict[str, str]]  # the cluster, and each node's metrics address
Sample = tuple[str, dict[str, str], float]


def _stack_harness() -> ModuleType:
    """This directory's conftest.py as a module of its own (as test_docker_passthrough.py
    loads it), for a cluster of our own with more flags on init and join."""
    return load_file("swarmlite_stack_harness", HERE / "conftest.py")


def scrape(addr: str) -> list[Sample]:
    """Every sample of http://addr/metrics: (name, labels, value)."""
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The one sample `name` with these labels (among others)."""
    found = [v for n, ls, v in samples if n == name and labels.items() <= ls.items()]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


def series(samples: list[Sample], name: str) -> list[dict[str, str]]:
    return [ls for n, ls, _ in samples if n == name]


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Metered]:
    """m1, m2 (managers) and w1 (worker), each with metrics on; the stack deployed."""
    stacks = _stack_harness()
    made = stacks.StackCluster(stacks.harness.Cluster(tmp_path_factory.mktemp("metrics").resolve()))
    addrs = {name: f"127.0.0.1:{stacks.harness.free_port()}" for name in ("m1", "m2", "w1")}
    try:
        m1 = made.init("m1", "--metrics-addr", addrs["m1"])
        made.join("m2", "manager", m1, "--metrics-addr", addrs["m2"])
        made.join("w1", "worker", m1, "--metrics-addr", addrs["w1"])
        made.cluster.heal()
        done = made.deploy(STACK, COMPOSE)
        assert done.returncode == 0, f"stack deploy exited {done.returncode}: {done.stderr}"
    except FailedPrecondition as exc:
        made.close()
        pytest.fail(f"the metrics test needs private dockerds: {exc.message}", pytrace=False)
    except BaseException:
        made.close()
        raise
    try:
        yield made, addrs
    finally:
        made.close()


def _ids(stacks: StackCluster) -> dict[str, str]:
    """Hostname -> node id."""
    return {host: node_id for node_id, host in stacks.node_names().items()}


def test_every_node_serves_its_identity_and_process(metered: Metered) -> None:
    stacks, addrs = metered
    ids = _ids(stacks)
    for name, addr in addrs.items():
        samples = scrape(addr)
        role = "worker" if name == "w1" else "manager"
        assert value(samples, "swarmlite_node_info", node=ids[name], hostname=name, role=role) == 1
        assert value(samples, "process_resident_memory_bytes") > 0


def test_raft_on_the_managers(metered: Metered) -> None:
    stacks, addrs = metered
    rows = stacks.cluster.node_ls()
    leader = stacks.cluster.leaders(rows)
    assert len(leader) == 1
    managers = {name: scrape(addrs[name]) for name in ("m1", "m2")}
    is_leader = {name: value(s, "swarmlite_raft_is_leader") for name, s in managers.items()}
    assert sorted(is_leader.values()) == [0, 1]  # exactly one leader
    assert [name for name, v in is_leader.items() if v == 1] == leader  # the one node ls names
    terms = {value(s, "swarmlite_raft_term") for s in managers.values()}
    assert len(terms) == 1 and min(terms) >= 1
    for samples in managers.values():
        assert value(samples, "swarmlite_raft_has_leader") == 1
        assert value(samples, "swarmlite_raft_voters") == 2
        commit = value(samples, "swarmlite_raft_commit_index")
        assert 1 <= value(samples, "swarmlite_raft_applied_index") <= commit
        assert commit <= value(samples, "swarmlite_raft_last_index")
        assert value(samples, "swarmlite_raft_leader_changes_total") >= 1
    lead = managers[leader[0]]
    assert value(lead, "swarmlite_raft_proposal_duration_seconds_count") > 0  # the deploy's
    assert value(lead, "swarmlite_raft_proposal_duration_seconds_sum") > 0
    assert not series(scrape(addrs["w1"]), "swarmlite_raft_term")  # a worker has no raft


def test_the_store_loops_and_sessions_on_the_leader(metered: Metered) -> None:
    stacks, addrs = metered
    leader = stacks.cluster.leaders(stacks.cluster.node_ls())[0]
    follower = "m2" if leader == "m1" else "m1"
    samples = scrape(addrs[leader])

    services = stacks.call(SERVICE_LS, ServiceFilter()).services
    assert value(samples, "swarmlite_store_objects", kind="service") == len(services)
    assert value(samples, "swarmlite_store_objects", kind="node") == 3
    assert value(samples, "swarmlite_store_transactions_total", result="applied") > 0

    assert {ls["loop"] for ls in series(samples, "swarmlite_manager_loop_pending_events")} >= LOOPS
    for loop in LOOPS:
        assert value(samples, "swarmlite_manager_loop_pending_events", loop=loop) >= 0
        count = "swarmlite_manager_loop_reconcile_duration_seconds_count"
        assert value(samples, count, loop=loop) > 0

    assert value(samples, "swarmlite_dispatcher_sessions") == 3  # m1, m2 and w1
    assert value(samples, "swarmlite_dispatcher_heartbeats_total") > 0
    ready = Counter(
        (ls["role"], ls["state"])
        for n, ls, v in samples
        if n == "swarmlite_nodes" and v > 0
        for _ in range(int(v))
    )
    assert ready == {("manager", "ready"): 2, ("worker", "ready"): 1}

    other = scrape(addrs[follower])
    assert value(other, "swarmlite_dispatcher_sessions") == 0  # only the leader serves them
    assert not series(other, "swarmlite_manager_loop_pending_events")  # nor runs loops
    assert value(other, "swarmlite_store_objects", kind="node") == 3  # its copy of the store


def _running_by_service(stacks: StackCluster) -> dict[str, int]:
    tasks = [t for s in (WEB, AGENT) for t in stacks.call(TASK_LS, TaskFilter(service=s)).tasks]
    return dict(Counter(t.service_name for t in tasks if t.status.state is TaskState.RUNNING))


def test_tasks_by_service_and_state_match_service_ps(metered: Metered) -> None:
    stacks, addrs = metered
    assert _running_by_service(stacks) == {WEB: 2, AGENT: 3}

    def counted(name: str) -> dict[str, int]:
        samples = scrape(addrs[name])
        return {
            service: int(value(samples, "swarmlite_tasks", stack=STACK, service=service,
                               state="running"))
            for service in (WEB, AGENT)
        }  # fmt: skip

    for manager in ("m1", "m2"):  # a follower's copy of the store catches up
        assert stacks.cluster.wait(
            f"{manager}'s running tasks to match service ps",
            lambda m=manager: counted(m) == _running_by_service(stacks),
            timeout=WAIT,
        )
    samples = scrape(addrs["m1"])
    states = {ls["state"] for ls in series(samples, "swarmlite_tasks") if ls["service"] == WEB}
    assert states == {state.value for state in TaskState}  # zeros included


def test_each_running_task_reports_its_container(metered: Metered) -> None:
    stacks, addrs = metered
    names = stacks.node_names()  # id -> hostname
    tasks = [
        t
        for s in (WEB, AGENT)
        for t in stacks.call(TASK_LS, TaskFilter(service=s)).tasks
        if t.status.state is TaskState.RUNNING
    ]
    assert len(tasks) == 5

    def reported() -> dict[str, dict[str, Any]]:
        """Task id -> its labels and values, as the node running it reports them."""
        seen: dict[str, dict[str, Any]] = {}
        for name, addr in addrs.items():
            for n, ls, v in scrape(addr):
                if n.startswith("swarmlite_task_"):
                    entry = seen.setdefault(ls["task"], {"labels": ls, "from": name})
                    entry[n] = v
        return seen

    def all_reported() -> dict[str, dict[str, Any]] | None:
        seen = reported()
        return seen if {t.id for t in tasks} <= set(seen) else None

    seen = stacks.cluster.wait(
        "every running task's stats (sampled every 5 s)", all_reported, timeout=WAIT
    )
    for task in tasks:
        entry = seen[task.id]
        assert entry["from"] == names[task.node_id]  # reported by the node that runs it
        assert entry["labels"] == {
            "stack": STACK,
            "service": task.service_name,
            "slot": str(task.slot),
            "node": task.node_id,
            "task": task.id,
        }
        assert entry["swarmlite_task_memory_usage_bytes"] > 0
        assert entry["swarmlite_task_cpu_seconds_total"] > 0  # starting took some
        assert entry["swarmlite_task_memory_limit_bytes"] == 0  # metrics.yml sets none
        # These tasks have no network but loopback (the harness runs no overlays), which
        # is not counted; tests/integration/test_lab.py sees bytes on a real overlay.
        assert entry["swarmlite_task_network_receive_bytes_total"] == 0
        assert entry["swarmlite_task_network_transmit_bytes_total"] == 0


def test_a_bad_or_held_metrics_address_is_refused_up_front(
    metered: Metered, tmp_path: Path
) -> None:
    stacks, addrs = metered
    for addr, says in (("127.0.0.1", "is not ADDR:PORT"), (addrs["m1"], "already in use")):
        done = stacks.cluster.cli(
            "init", "--data-dir", str(tmp_path / "x"), "--listen-addr",
            f"127.0.0.1:{_stack_harness().harness.free_port()}", "--metrics-addr", addr,
        )  # fmt: skip
        assert done.returncode == 1, done
        assert says in done.stderr, done.stderr
        assert not (tmp_path / "x" / "node.json").exists()
