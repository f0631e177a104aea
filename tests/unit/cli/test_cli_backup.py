"""`swarmlite swarm backup FILE` and `swarmlite init --restore FILE`: the passphrase's ways
in, the file on disk, and the refusals that leave nothing written."""

from __future__ import annotations

import stat
from typing import Any

import pytest

from swarmlite import daemon as node_daemon
from swarmlite.api import Cluster, ClusterSpec, RootCAMaterial, Secret, SecretSpec, new_id
from swarmlite.api.control import Backup
from swarmlite.api.routes import SWARM_BACKUP
from swarmlite.bootstrap import read_node
from swarmlite.ca import seal_backup, unseal_backup
from swarmlite.testing.factories import make_node, make_service

PASSPHRASE = "a long enough passphrase"


def _backup() -> Backup:
    return Backup(
        cluster_id="old-cluster",
        index=17,
        objects=[
            Cluster(
                id="old-cluster",
                spec=ClusterSpec(labels={"team": "shop"}),
                root_ca=RootCAMaterial(cert_pem=b"OLD-CA", key_pem=b"OLD-CA-KEY"),
            ),
            make_node(hostname="old-m1"),
            make_service("shop_web", replicas=2),
            Secret(id=new_id(), spec=SecretSpec(name="db_pass", data=b"S3CRET")),
        ],
    )


def test_backup_writes_a_sealed_file_only_its_owner_reads(daemon, run, tmp_path) -> None:
    taken = _backup()
    daemon.on(SWARM_BACKUP, lambda request: taken)
    target = tmp_path / "cluster.swlbak"

    result = run("swarm", "backup", str(target), input=f"{PASSPHRASE}\n".encode())

    assert result.exit_code == 0, result.stderr
    assert "at raft index 17 written to" in result.stdout
    assert "1 service, 0 networks, 1 secret, 0 configs" in result.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert unseal_backup(target.read_bytes(), PASSPHRASE.encode()) == taken
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_backup_reads_the_passphrase_file_first_line(daemon, run, tmp_path) -> None:
    daemon.on(SWARM_BACKUP, lambda request: _backup())
    secret = tmp_path / "pass"
    secret.write_text(f"{PASSPHRASE}\nignored\n")

    result = run("swarm", "backup", "--passphrase-file", str(secret), str(tmp_path / "b"))

    assert result.exit_code == 0, result.stderr
    assert unseal_backup((tmp_path / "b").read_bytes(), PASSPHRASE.encode()).index == 17


@pytest.mark.parametrize(
    ("given", "says"), [("\n", "passphrase is empty"), ("short\n", "at least 8")]
)
def test_backup_refuses_a_weak_passphrase_and_writes_nothing(
    daemon, run, tmp_path, given: str, says: str
) -> None:
    daemon.on(SWARM_BACKUP, lambda request: _backup())

    result = run("swarm", "backup", str(tmp_path / "b"), input=given.encode())

    assert result.exit_code != 0
    assert says in result.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "d.sock"]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """start_daemon replaced by a recorder; init_cluster stays the real one."""
    calls: list[Any] = []

    def start(opts: node_daemon.NodeOptions, *, foreground: bool, timeout: float = 30.0) -> int:
        calls.append(opts)
        return 0 if foreground else 4242

    monkeypatch.setattr(node_daemon, "start_daemon", start)
    return calls


def test_init_restore_starts_a_new_cluster_with_the_backups_objects(run, tmp_path, started) -> None:
    sealed = tmp_path / "cluster.swlbak"
    sealed.write_bytes(seal_backup(_backup(), PASSPHRASE.encode()))
    data_dir = tmp_path / "new"

    result = run(
        "init",
        "--restore",
        str(sealed),
        "--data-dir",
        str(data_dir),
        "--listen-addr",
        "127.0.0.1:0",
        "--foreground",
        input=f"{PASSPHRASE}\n".encode(),
    )

    assert result.exit_code == 0, result.stderr
    assert "Restored from" in result.stdout and "(raft index 17)" in result.stdout
    assert read_node(data_dir).cluster_id != "old-cluster"  # a new cluster, a new CA
    assert len(started) == 1


@pytest.mark.parametrize(
    ("passphrase", "damage", "says"),
    [
        ("not the passphrase", False, "wrong passphrase for"),
        (PASSPHRASE, True, "is damaged"),
    ],
)
def test_init_restore_that_cannot_open_the_backup_writes_nothing(
    run, tmp_path, started, passphrase: str, damage: bool, says: str
) -> None:
    data = bytearray(seal_backup(_backup(), PASSPHRASE.encode()))
    if damage:
        data[-5] ^= 0xFF
    sealed = tmp_path / "cluster.swlbak"
    sealed.write_bytes(bytes(data))
    data_dir = tmp_path / "new"

    result = run(
        "init",
        "--restore",
        str(sealed),
        "--data-dir",
        str(data_dir),
        input=f"{passphrase}\n".encode(),
    )

    assert result.exit_code == 1
    assert says in result.stderr
    assert not data_dir.exists() and started == []


def test_init_restore_refuses_flags_the_backup_decides(run, tmp_path, started) -> None:
    sealed = tmp_path / "cluster.swlbak"
    sealed.write_bytes(b"unused")

    result = run(
        "init", "--restore", str(sealed), "--force-new-cluster", "--mesh-pool", "10.9.0.0/16"
    )

    assert result.exit_code == 2
    assert "--restore cannot be combined with --force-new-cluster, --mesh-pool" in result.stderr
    assert started == []
