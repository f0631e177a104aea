"""Node daemons and the cluster, as a user drives them: real daemons on 127.0.0.1, only the CLI.

One cluster of three managers and two workers is shared by the tests of this module (the
`cluster` fixture); each test starts by restarting whatever an earlier one left down and
waiting until every node is READY with one leader, so a failure in one test does not hide
what the next one checks. Tests assert what happens, not how fast: a wait's deadline only
bounds it (the harness's WAIT_TIMEOUT), and scripts/bench/cluster.py measures how long
failure detection takes.

Marked `integration` (by tests/integration/conftest.py): `scripts/test` runs it, a plain
`pytest` does not.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import ssl
import time
from functools import partial
from pathlib import Path
from typing import Any

import msgspec

from swarmlite.api.control import ListRequest, NodeRef
from swarmlite.api.routes import NODE_INSPECT, NODE_LS
from swarmlite.ca import (
    RootCA,
    client_context,
    issue_node_cert,
    read_credentials,
    write_credentials,
)
from swarmlite.malloc import find_jemalloc
from swarmlite.rpc import ControlClient

Cluster = Any  # conftest.Cluster, reached through the `cluster` fixture

HEARTBEAT_PERIOD = 1.0


def _gone(cluster: Cluster, node: Any) -> bool:
    return not cluster.alive(node)


def _by_name(rows: list[Any]) -> dict[str, Any]:
    return {row.hostname: row for row in rows}


def test_three_managers_and_two_workers_form_one_cluster(cluster: Cluster) -> None:
    rows = cluster.heal()
    assert sorted(r.hostname for r in rows) == ["m1", "m2", "m3", "w1", "w2"]
    assert all(r.state == "ready" for r in rows)
    seen = _by_name(rows)
    assert [name for name in ("m1", "m2", "m3") if seen[name].is_manager_member] == [
        "m1",
        "m2",
        "m3",
    ]
    assert not seen["w1"].is_manager_member and not seen["w2"].is_manager_member
    assert len(cluster.leaders(rows)) == 1
    # Every manager answers, and they agree on the nodes and on the leader.
    for name in ("m1", "m2", "m3"):
        other = cluster.node_ls(cluster.nodes[name])
        assert {r.id for r in other} == {r.id for r in rows}
        assert cluster.leaders(other) == cluster.leaders(rows)


def test_every_daemon_runs_on_jemalloc(cluster: Cluster) -> None:
    # init/join start the daemon detached, `swarmlite daemon` starts itself again: both
    # end on jemalloc (scripts/setup installs it).
    assert find_jemalloc() is not None, "scripts/setup installs libjemalloc2"
    cluster.heal()
    for name in ("m1", "w1"):
        pid = cluster.pid(cluster.nodes[name])
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "libjemalloc" in maps, f"{name}'s daemon runs without jemalloc"
        environ = dict(
            item.split("=", 1)
            for item in Path(f"/proc/{pid}/environ").read_text().split("\0")
            if "=" in item
        )
        assert environ.get("SWARMLITE_MALLOC") == "jemalloc"


def test_killed_leader_is_replaced_and_workers_follow(cluster: Cluster) -> None:
    rows = cluster.heal()
    (old,) = cluster.leaders(rows)
    leader = cluster.nodes[old]
    survivors = [cluster.nodes[n] for n in ("m1", "m2", "m3") if n != old]
    workers = [cluster.nodes["w1"], cluster.nodes["w2"]]
    offsets = {w.name: cluster.log_size(w) for w in workers}

    killed = cluster.kill(leader)

    def new_leader() -> str | None:
        rows = cluster.try_node_ls(survivors[0])
        if rows is None or len(cluster.leaders(rows)) != 1:
            return None
        (name,) = cluster.leaders(rows)
        return name if name != old else None

    elected = cluster.wait("a new leader among the surviving managers", new_leader)
    assert elected in {s.name for s in survivors}
    assert cluster.leaders(cluster.node_ls(survivors[1])) == [elected]

    # The workers' sessions move to a live manager: they never go DOWN, for well over the
    # three missed heartbeats after which a node without a session is marked DOWN.
    while time.monotonic() < killed + 5 * HEARTBEAT_PERIOD:
        rows = cluster.try_node_ls(survivors[0])
        if rows is not None:
            seen = _by_name(rows)
            assert seen["w1"].state == "ready" and seen["w2"].state == "ready", rows
    live = {s.addr for s in survivors}
    for worker in workers:
        moved = cluster.log_since(worker, offsets[worker.name])
        established = [
            line.split("manager=")[1].split()[0]
            for line in moved.splitlines()
            if "session established" in line
        ]
        assert established and established[-1] in live, moved

    # The old leader comes back as a follower of the same cluster.
    cluster.start(leader)
    rows = cluster.heal()
    assert _by_name(rows)[old].reachability == "reachable"


def test_killed_worker_goes_down_and_comes_back(cluster: Cluster) -> None:
    before = _by_name(cluster.heal())
    worker = cluster.nodes["w2"]
    cluster.kill(worker)

    def w2_is(state: str) -> list[Any] | None:
        rows = cluster.try_node_ls()
        row = cluster.row(rows, worker) if rows else None
        return rows if row is not None and row.state == state else None

    # Only w2 goes DOWN: the other nodes stay READY.
    down = _by_name(cluster.wait("w2 DOWN", lambda: w2_is("down")))
    assert {name for name, row in down.items() if row.state != "ready"} == {"w2"}, down

    # Restarted from its data dir, it is the same node again, not a new one.
    cluster.start(worker)
    back = _by_name(cluster.wait("w2 READY again", lambda: w2_is("ready")))
    assert back["w2"].id == before["w2"].id
    assert back.keys() == before.keys()


def test_a_manager_and_a_worker_stop_on_sigterm_and_come_back(cluster: Cluster) -> None:
    """SIGTERM (what systemd and `kill` send) ends a daemon by itself: the harness's
    SIGKILL is never needed, and the node restarts as itself."""
    before = _by_name(cluster.heal())
    for name in ("m3", "w1"):
        node = cluster.nodes[name]
        pid = cluster.pid(node)
        os.kill(pid, signal.SIGTERM)
        cluster.wait(f"{name} (pid {pid}) to exit on SIGTERM", partial(_gone, cluster, node))
        cluster.reap(node)
    back = _by_name(cluster.heal())
    assert {name: row.id for name, row in back.items()} == {
        name: row.id for name, row in before.items()
    }


def test_whole_cluster_killed_and_restarted_is_the_same_cluster(cluster: Cluster) -> None:
    before = cluster.heal()
    token = cluster.token("worker")
    ids = {r.hostname: r.id for r in before}
    running = [n for n in cluster.nodes.values() if not n.removed and cluster.alive(n)]
    assert len(running) == 5

    for node in running:
        cluster.kill(node)
    for node in running:
        cluster.start(node)

    after = cluster.heal()
    assert {r.hostname: r.id for r in after} == ids
    assert len(cluster.leaders(after)) == 1
    # The join token carries the CA's digest and the cluster's secret: same CA, same store.
    assert cluster.token("worker") == token
    inspected = [cluster.call(NODE_INSPECT, NodeRef(ref=name)).node.id for name in ("m1", "w1")]
    assert inspected == [ids["m1"], ids["w1"]]


def test_cluster_port_refuses_callers_without_the_right_certificate(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.heal()
    manager = cluster.nodes["m2"]
    worker = cluster.nodes["w1"]

    # No client certificate: only joining is open.
    context = ssl.create_default_context(cafile=manager.certs / "ca.crt")
    context.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", manager.port, context=context, timeout=30)
    try:
        conn.request("POST", "/control/v1/node/ls", body=msgspec.msgpack.encode({}))
        reply = conn.getresponse()
        body = msgspec.msgpack.decode(reply.read())
    finally:
        conn.close()
    assert reply.status == 403
    assert body["code"] == "permission_denied"

    # A certificate from another CA (while trusting this cluster's CA) is refused.
    foreign = tmp_path / "foreign"
    other = RootCA.create("another-cluster")
    creds = issue_node_cert(
        other, "intruder", "manager", "another-cluster", expiry_days=1, addresses=["127.0.0.1"]
    )
    write_credentials(foreign, creds)
    shutil.copy(manager.certs / "ca.crt", foreign / "ca.crt")
    done = cluster.cli("node", "ls", host=manager.https, cert_dir=foreign)
    assert done.returncode == 1, done
    assert done.stderr.startswith("error:"), done.stderr

    # A worker's certificate is of this cluster, but not a manager's.
    done = cluster.cli("node", "ls", host=manager.https, cert_dir=worker.certs)
    assert done.returncode == 1, done
    assert "needs a manager" in done.stderr and "worker" in done.stderr, done.stderr

    # A manager's certificate can: through the CLI, and with the client the CLI uses.
    cluster.ok("node", "ls", host=manager.https, cert_dir=manager.certs)
    over_tls = ControlClient(
        manager.https, ssl_context=lambda: client_context(read_credentials(manager.certs))
    )
    assert len(over_tls.call(NODE_LS, ListRequest()).nodes) >= 5


def test_old_worker_token_is_refused_after_rotation(cluster: Cluster) -> None:
    cluster.heal()
    manager = cluster.nodes["m1"]
    old = cluster.token("worker", manager)
    cluster.ok("join-token", "--rotate", "worker", host=manager.host)
    new = cluster.token("worker", manager)
    assert new != old

    done = cluster.join_cmd("late", old, manager)
    assert done.returncode == 1, done
    assert done.stderr.startswith("error:") and "token" in done.stderr, done.stderr
    assert not (cluster.nodes["late"].data_dir / "node.json").exists()
    del cluster.nodes["late"]

    # The new token works (w3 is the worker the removal test takes out again).
    done = cluster.join_cmd("w3", new, manager)
    assert done.returncode == 0, done.stderr
    rows = cluster.heal()
    assert _by_name(rows)["w3"].state == "ready"


def test_removed_worker_is_refused(cluster: Cluster) -> None:
    if "w3" not in cluster.nodes:
        cluster.join("w3", "worker")
    cluster.heal()
    worker = cluster.nodes["w3"]
    manager = cluster.a_manager()

    # A worker that runs cannot be removed without --force.
    done = cluster.cli("node", "rm", "w3", host=manager.host)
    assert done.returncode == 1 and "down" in done.stderr, done

    cluster.kill(worker)

    def down() -> bool:
        rows = cluster.try_node_ls()
        row = cluster.row(rows, worker) if rows else None
        return row is not None and row.state == "down"

    cluster.wait("w3 DOWN", down)
    cluster.ok("node", "rm", "w3", host=manager.host)
    worker.removed = True
    assert cluster.row(cluster.node_ls(), worker) is None

    # Its certificate is refused from now on, with the reason.
    done = cluster.cli("node", "ls", host=manager.https, cert_dir=worker.certs)
    assert done.returncode == 1, done
    assert "removed" in done.stderr, done.stderr

    # Its daemon, started again, is refused by the cluster and says so.
    offset = cluster.log_size(worker)
    cluster.start(worker)
    cluster.wait(
        "the removed worker's log to say it was refused",
        lambda: "refused" in cluster.log_since(worker, offset),
    )
    assert cluster.row(cluster.node_ls(), worker) is None
    if cluster.alive(worker):
        cluster.kill(worker)


def test_promote_and_demote_a_worker(cluster: Cluster) -> None:
    cluster.heal()
    worker = cluster.nodes["w1"]
    manager = cluster.a_manager()

    def reachability() -> str | None:
        rows = cluster.try_node_ls(manager)
        row = cluster.row(rows, worker) if rows else None
        return row.reachability if row and row.state == "ready" else "?"

    assert reachability() is None
    cluster.ok("node", "promote", "w1", host=manager.host)
    cluster.wait("w1 a reachable manager", lambda: reachability() == "reachable")
    rows = cluster.heal()
    assert _by_name(rows)["w1"].role == "manager"

    cluster.ok("node", "demote", "w1", host=manager.host)
    cluster.wait("w1 a worker again", lambda: reachability() is None)
    rows = cluster.heal()
    assert _by_name(rows)["w1"].role == "worker"
    assert sum(r.is_manager_member for r in rows) == 3


def test_demotion_that_would_lose_quorum_is_refused(cluster: Cluster) -> None:
    rows = cluster.heal()
    (leader_name,) = cluster.leaders(rows)
    leader = cluster.nodes[leader_name]
    follower, stopped = [cluster.nodes[n] for n in ("m1", "m2", "m3") if n != leader_name]
    cluster.kill(stopped)

    def unreachable() -> bool:
        rows = cluster.try_node_ls(leader)
        row = cluster.row(rows, stopped) if rows else None
        return row is not None and row.reachability == "unreachable"

    cluster.wait(f"{stopped.name} unreachable", unreachable)
    done = cluster.cli("node", "demote", follower.name, host=leader.host)
    assert done.returncode == 1, done
    assert "quorum" in done.stderr, done.stderr
    rows = cluster.node_ls(leader)
    assert _by_name(rows)[follower.name].reachability == "reachable"
    cluster.heal()
