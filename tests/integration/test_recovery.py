"""Disaster recovery on real daemons: `init --force-new-cluster` after losing two of three
managers, and `swarm backup` on one cluster restored with `init --restore` on a fresh one.

Each test builds its own clusters of real daemons on 127.0.0.1 with the stacks harness
(tests/integration/stacks/conftest.py, loaded by path): a node that runs tasks has its own
private dockerd, a node that must run none is drained and given no runtime. A test drives
the clusters through the CLI, reads them through the control API with the CLI's client,
and reads containers straight from each node's dockerd. Killing is SIGKILL by pid, through
the harness.

Marked `integration` (by tests/integration/conftest.py). Needs root, docker.io and
busybox-static, as the stacks tests do.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from swarmlite.api import Secret, TaskState
from swarmlite.api.control import (
    BlobCreate,
    Empty,
    ListRequest,
    NameRef,
    NodeRef,
    NodeUpdate,
    ServiceFilter,
    TaskFilter,
)
from swarmlite.api.routes import (
    CONFIG_INSPECT,
    CONFIG_LS,
    NETWORK_LS,
    NODE_INSPECT,
    NODE_UPDATE,
    SECRET_CREATE,
    SECRET_LS,
    SERVICE_LS,
    SWARM_BACKUP,
    SWARM_INSPECT,
    TASK_LS,
)
from swarmlite.errors import FailedPrecondition
from swarmlite.testing.dockerd import engine_json
from swarmlite.testing.loadfile import load_file

pytestmark = pytest.mark.timeout(600)

WAIT = 90.0
SECRET = b"S3CRET-CANARY-42"
CONFIG = b"listen 8080; # RECOVERY-CONFIG-7"
PASSPHRASE = "a passphrase for the recovery test"
ACKED = 20  # secrets and labels written, each acknowledged, right before the loss


stacks_harness = load_file(
    "swarmlite_stack_harness", Path(__file__).resolve().parent / "stacks" / "conftest.py"
)
harness = stacks_harness.harness
StackCluster = Any  # stacks_harness.StackCluster

COMPOSE = """
services:
  web:
    image: swl/web:1
    deploy:
      replicas: 2
      placement:
        constraints: [node.role == worker]
  ops:
    image: swl/web:1
    deploy:
      placement:
        constraints: [node.role == manager]
  reader:
    image: swl/busybox:1
    command:
      - sh
      - -c
      - "cat /run/secrets/db_pass /etc/site.conf; trap 'exit 0' TERM; while :; do sleep 1; done"
    secrets: [db_pass]
    configs:
      - source: site
        target: /etc/site.conf
    networks: [default, backend]
secrets:
  db_pass:
    external: true
configs:
  site:
    external: true
networks:
  backend: {}
"""
SERVICES = {"shop_web": 2, "shop_ops": 1, "shop_reader": 1}


# --------------------------------------------------------------------------- helpers


def _stack_cluster(root: Path) -> StackCluster:
    try:
        return stacks_harness.StackCluster(harness.Cluster(root))
    except FailedPrecondition as exc:  # pragma: no cover - the machine lacks dockerd
        pytest.fail(f"the recovery test needs private dockerds: {exc.message}", pytrace=False)


@pytest.fixture
def clusters() -> Iterator[list[StackCluster]]:
    """Every StackCluster a test makes, closed afterwards (daemons killed, dockerds gone)."""
    made: list[StackCluster] = []
    yield made
    for one in made:
        one.close()


def _no_runtime(stacks: StackCluster, name: str, *flags: str, via: Any = None) -> Any:
    """A node with no container runtime (init, or a join through `via`), drained at once:
    it must run no task."""
    cluster = stacks.cluster
    node = stacks._new_node(name)
    args = ["--data-dir", str(node.data_dir), "--listen-addr", node.addr]
    args += ["--docker-host", f"unix://{cluster.root}/no-docker.sock"]
    try:
        if via is None:
            cluster.ok("init", *args, *flags, name=name)
        else:
            token = cluster.token("manager", via)
            cluster.ok("join", "--token", token, *args, via.addr, name=name)
    finally:
        cluster._remember_pid(node)
    cluster.ok("node", "update", "--availability", "drain", name, host=node.host)
    return node


def _write_blobs(stacks: StackCluster, tmp_path: Path) -> None:
    (tmp_path / "db_pass").write_bytes(SECRET)
    (tmp_path / "site.conf").write_bytes(CONFIG)
    stacks.ok("secret", "create", "--label", "tier=db", "db_pass", str(tmp_path / "db_pass"))
    stacks.ok("config", "create", "site", str(tmp_path / "site.conf"))
    stacks.ok("network", "create", "--label", "made=by-hand", "hand_net")


def _deploy(stacks: StackCluster, tmp_path: Path) -> None:
    compose = tmp_path / "recovery.yml"
    compose.write_text(COMPOSE)
    done = stacks.deploy("shop", compose)
    assert done.returncode == 0, f"stack deploy exited {done.returncode}: {done.stderr}"


def _running_tasks(stacks: StackCluster) -> dict[str, str] | None:
    """Task id -> container id of every task that should run and does, once every service
    has all its replicas running (None before)."""
    running: dict[str, str] = {}
    for service, replicas in SERVICES.items():
        tasks = [
            t
            for t in stacks.call(TASK_LS, TaskFilter(service=service)).tasks
            if t.desired_state is TaskState.RUNNING and t.status.state is TaskState.RUNNING
        ]
        if len(tasks) != replicas:
            return None
        running.update({t.id: t.status.container_id for t in tasks})
    return running


def _containers(stacks: StackCluster) -> dict[str, tuple[str, str]]:
    """Container id -> (state, StartedAt) of every swarmlite task container on any dockerd."""
    found = {}
    for container in stacks.all_containers():
        if not container.task:
            continue
        inspected = engine_json(
            stacks.dockerds[container.node].socket, "GET", f"/containers/{container.id}/json"
        )
        found[container.id] = (container.state, inspected["State"]["StartedAt"])
    return found


def _names(stacks: StackCluster, route: Any) -> set[str]:
    reply = stacks.call(route, ListRequest())
    items = getattr(reply, "items", None) or getattr(reply, "networks", [])
    return {getattr(item, "object", item).spec.name for item in items}


# --------------------------------------------------------------------------- lost the majority


def test_force_new_cluster_on_the_survivor_of_three_managers_keeps_everything(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, clusters: list[StackCluster]
) -> None:
    stacks = _stack_cluster(tmp_path_factory.mktemp("lost-majority").resolve())
    clusters.append(stacks)
    cluster = stacks.cluster
    m1 = _no_runtime(stacks, "m1")
    _no_runtime(stacks, "m2", via=m1)
    m3 = stacks.join("m3", "manager", m1)  # the survivor: it runs shop_ops
    w1 = stacks.join("w1", "worker", m1)
    cluster.heal()
    _write_blobs(stacks, tmp_path)
    _deploy(stacks, tmp_path)
    before = cluster.wait("every service at its replicas", lambda: _running_tasks(stacks), WAIT)
    containers = _containers(stacks)
    assert {state for state, _ in containers.values()} == {"running"}
    assert set(before.values()) == set(containers)

    # Writes, each acknowledged, until the very moment of the loss.
    lost = [cluster.nodes["m1"], cluster.nodes["m2"]]
    leader = [r.hostname for r in cluster.node_ls() if r.leader]
    via = cluster.nodes[leader[0]] if leader[0] != "m3" else m1
    client = cluster.control(via)
    for i in range(ACKED):
        client.call(SECRET_CREATE, BlobCreate(name=f"ack-{i}", data=f"acked-{i}".encode()))
        client.call(NODE_UPDATE, NodeUpdate(ref="w1", label_add={f"ack-{i}": str(i)}))
    lost.sort(key=lambda n: n.name != leader[0])  # the leader first, when it is lost
    for node in lost:
        cluster.kill(node)
    for node in lost:
        shutil.rmtree(node.data_dir)

    # The survivor, alone, cannot serve; forced into a new cluster, it can.
    assert cluster.try_node_ls(m3) is None
    cluster.ok(
        "init",
        "--force-new-cluster",
        "--data-dir",
        str(m3.data_dir),
        "--listen-addr",
        m3.addr,
        name="m3",
        timeout=120,
    )
    cluster.pid(m3)  # the harness remembers the new daemon, to kill it at the end
    rows = cluster.wait("m3 leading", lambda: cluster.try_node_ls(m3), WAIT)
    assert cluster.leaders(rows) == ["m3"]

    after = cluster.wait("every service at its replicas", lambda: _running_tasks(stacks), WAIT)
    assert after == before  # the same tasks, in the same containers
    assert _containers(stacks) == containers  # none stopped, restarted or added

    kept = _blobs(cluster.call(SWARM_BACKUP, Empty(), m3).objects, Secret)
    for i in range(ACKED):
        assert kept[f"ack-{i}"] == (f"acked-{i}".encode(), {}), i
    assert kept["db_pass"] == (SECRET, {"tier": "db"})
    labels = stacks.call(NODE_INSPECT, NodeRef(ref="w1")).node.spec.labels
    assert {f"ack-{i}": str(i) for i in range(ACKED)}.items() <= labels.items()

    # Two new managers join with the token the new cluster gives; the lost ones go.
    cluster.join("m4", "manager", via=m3)
    cluster.join("m5", "manager", via=m3)
    stacks.ok("node", "demote", "m1", "m2")
    stacks.ok("node", "rm", "m1", "m2")
    for node in lost:
        node.removed = True
    rows = cluster.heal(timeout=WAIT)
    managers = sorted(r.hostname for r in rows if r.is_manager_member)
    assert managers == ["m3", "m4", "m5"]
    assert {r.hostname for r in rows} == {"m3", "m4", "m5", "w1"}

    # The new managers hold the state and take writes (a follower forwards them).
    m4 = cluster.nodes["m4"]
    cluster.call(SECRET_CREATE, BlobCreate(name="after-recovery", data=b"x"), m4)
    assert {f"ack-{i}" for i in range(ACKED)} | {"after-recovery"} <= _names(stacks, SECRET_LS)
    assert _running_tasks(stacks) == before
    assert w1.name in stacks.node_names().values()


# --------------------------------------------------------------------------- lost everything


def test_a_backup_restored_on_a_fresh_cluster_has_the_same_state(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, clusters: list[StackCluster]
) -> None:
    source = _stack_cluster(tmp_path_factory.mktemp("source").resolve())
    clusters.append(source)
    s1 = source.init("s1")
    source.join("sw1", "worker", s1)
    source.cluster.heal()
    _write_blobs(source, tmp_path)
    source.ok("swarm", "update", "--task-history-limit", "3")
    _deploy(source, tmp_path)
    source.cluster.wait("every service at its replicas", lambda: _running_tasks(source), WAIT)

    passphrase = tmp_path / "passphrase"
    passphrase.write_text(f"{PASSPHRASE}\n")
    backup = tmp_path / "cluster.swlbak"
    done = source.ok("swarm", "backup", "--passphrase-file", str(passphrase), str(backup))
    assert "written to" in done
    sealed = backup.read_bytes()
    for plain in (SECRET, CONFIG, b"db_pass", b"BEGIN"):
        assert plain not in sealed
    old = source.call(SWARM_INSPECT, Empty())
    old_services = {s.service.spec.name: s.service.spec for s in _services(source)}
    old_networks = _networks(source)
    old_secrets = _blobs(source.call(SWARM_BACKUP, Empty()).objects, Secret)
    old_config = source.call(CONFIG_INSPECT, NameRef(ref="site")).object
    source.close()  # everything but the backup is lost
    clusters.remove(source)

    restored = _stack_cluster(tmp_path_factory.mktemp("restored").resolve())
    clusters.append(restored)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    refused = restored.cluster.cli(
        "init",
        "--restore",
        str(backup),
        "--passphrase-file",
        str(wrong),
        "--data-dir",
        str(restored.cluster.root / "nothing"),
    )
    assert refused.returncode == 1 and "wrong passphrase" in refused.stderr, refused.stderr
    assert not (restored.cluster.root / "nothing").exists()

    r1 = restored.init("r1", "--restore", str(backup), "--passphrase-file", str(passphrase))
    restored.join("rw1", "worker", r1)
    restored.cluster.heal()
    restored.cluster.wait(
        "every restored service at its replicas", lambda: _running_tasks(restored), WAIT
    )

    new = restored.call(SWARM_INSPECT, Empty())
    assert new.spec == old.spec and new.spec.settings.task_history_limit == 3
    assert new.id != old.id and new.ca_cert_pem != old.ca_cert_pem  # a new cluster, a new CA
    assert {s.service.spec.name: s.service.spec for s in _services(restored)} == old_services
    assert _networks(restored) == old_networks
    new_secrets = _blobs(restored.call(SWARM_BACKUP, Empty()).objects, Secret)
    assert new_secrets == old_secrets and new_secrets["db_pass"] == (SECRET, {"tier": "db"})
    new_config = restored.call(CONFIG_INSPECT, NameRef(ref="site")).object
    assert (new_config.spec.data, new_config.spec.labels) == (CONFIG, old_config.spec.labels)
    assert _names(restored, CONFIG_LS) == {"site"}
    # The old cluster's nodes are not carried over.
    assert sorted(restored.node_names().values()) == ["r1", "rw1"]


def _services(stacks: StackCluster) -> list[Any]:
    return list(stacks.call(SERVICE_LS, ServiceFilter()).services)


def _networks(stacks: StackCluster) -> dict[str, Any]:
    return {
        n.network.spec.name: msgspec.to_builtins(n.network.spec)
        for n in stacks.call(NETWORK_LS, ListRequest()).networks
    }


def _blobs(objects: list[Any], kind: type[Any]) -> dict[str, tuple[bytes, dict[str, str]]]:
    return {o.spec.name: (o.spec.data, o.spec.labels) for o in objects if isinstance(o, kind)}
