"""Autolock on real daemons: the raft data is sealed with the cluster's unlock key, a
restarted manager serves nothing until it is unlocked, a wrong key is refused, and the other
managers keep the cluster running meanwhile; turning autolock off lets managers restart on
their own again.

Three managers on 127.0.0.1 (the harness of tests/integration/conftest.py), driven through
the CLI. Marked `integration` (tests/integration/conftest.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from swarmlite.api.control import Empty
from swarmlite.api.routes import INFO
from swarmlite.errors import SwarmliteError

CANARY = "S3CRET-CANARY-autolock-7"

Cluster = Any  # conftest.Cluster, through the `own_cluster` fixture


def every_byte(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


def unlock(cluster: Cluster, node: Any, key: str) -> subprocess.CompletedProcess[str]:
    return cluster.cli("swarm", "unlock", host=node.host, input=key + "\n")


def test_a_restarted_manager_is_locked_until_it_gets_the_right_key(own_cluster: Cluster) -> None:
    cluster = own_cluster
    m1 = cluster.init("m1", "--autolock")
    m2 = cluster.join("m2", "manager", via=m1)
    cluster.join("m3", "manager", via=m1)
    cluster.heal()
    key = cluster.ok("swarm", "unlock-key", "-q", host=m1.host).strip()
    assert key.startswith("SWLKEY-1-")
    secret = cluster.root / "secret.txt"
    secret.write_text(CANARY)
    cluster.ok("secret", "create", "canary", str(secret), host=m1.host)
    for node in (m1, m2):
        raft = node.data_dir / "raft"
        assert not (raft / "kek").exists(), f"{node.name} keeps a key file beside its raft data"
        data = every_byte(node.data_dir)
        assert CANARY.encode() not in data, f"the secret is readable in {node.name}'s data dir"
        assert b"BEGIN EC PRIVATE KEY" not in every_byte(raft)  # the CA key is in the store

    cluster.kill(m2)
    cluster.start(m2)
    cluster.wait("m2 up and locked", lambda: _state(cluster, m2) == "locked")
    refused = cluster.cli("node", "ls", host=m2.host)
    assert refused.returncode == 1 and "this manager is locked" in refused.stderr
    assert "swarmlite swarm unlock" in refused.stderr
    assert [r.hostname for r in cluster.node_ls(m1)]  # the others serve meanwhile
    other = cluster.ok("swarm", "unlock-key", "-q", "--rotate", host=m1.host).strip()
    assert other != key
    wrong = unlock(cluster, m2, "SWLKEY-1-" + "A" * 43)
    assert wrong.returncode == 1 and "the unlock key is wrong" in wrong.stderr
    assert _state(cluster, m2) == "locked"
    # m2 went down before the rotation: its data is still sealed with the key it had.
    done = unlock(cluster, m2, key)
    assert done.returncode == 0, done.stderr
    cluster.heal()
    assert "canary" in cluster.ok("secret", "ls", host=m2.host)
    # Back in the cluster, it follows the rotation: the new key opens it next time.
    cluster.kill(m2)
    cluster.start(m2)
    cluster.wait("m2 locked again", lambda: _state(cluster, m2) == "locked")
    assert unlock(cluster, m2, key).returncode == 1
    assert unlock(cluster, m2, other).returncode == 0
    cluster.heal()

    # Autolock off: a restart needs no key.
    cluster.ok("swarm", "update", "--autolock=false", host=m1.host)
    cluster.wait("m2 unsealed", lambda: (m2.data_dir / "raft" / "kek").exists())
    cluster.kill(m2)
    cluster.start(m2)
    cluster.wait("m2 serving without a key", lambda: _state(cluster, m2) == "active")
    refused = cluster.cli("swarm", "unlock-key", host=m1.host)
    assert refused.returncode == 1 and "autolock is off" in refused.stderr


def _state(cluster: Cluster, node: Any) -> str | None:
    try:
        state: str = cluster.call(INFO, Empty(), via=node).state
    except SwarmliteError:  # not listening yet
        return None
    return state
