"""`init --restore`: what a new cluster keeps of a backup (`bootstrap.restored_objects`),
and a backup that cannot start a cluster is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlite.api import (
    Cluster,
    ClusterSettings,
    ClusterSpec,
    Config,
    ConfigSpec,
    RootCAMaterial,
    Secret,
    SecretSpec,
    new_id,
)
from swarmlite.api.control import Backup
from swarmlite.bootstrap import NodeOptions, init_cluster, read_node, restored_objects
from swarmlite.errors import InvalidArgument
from swarmlite.testing.factories import make_network, make_node, make_service, make_task

SPEC = ClusterSpec(labels={"team": "shop"}, settings=ClusterSettings(task_history_limit=2))


def _cluster() -> Cluster:
    return Cluster(id="old", spec=SPEC, root_ca=RootCAMaterial(cert_pem=b"C", key_pem=b"K"))


def test_a_restore_keeps_the_desired_state_and_drops_nodes_and_tasks() -> None:
    service = make_service("shop_web", replicas=3)
    network = make_network("shop_default", stack="shop")
    secret = Secret(id=new_id(), spec=SecretSpec(name="db_pass", data=b"S3CRET"))
    config = Config(id=new_id(), spec=ConfigSpec(name="site", data=b"listen 80;"))
    backup = Backup(
        index=9,
        objects=[
            _cluster(),
            make_node(hostname="old-m1"),
            service,
            make_task(service, node_id="gone"),
            network,
            secret,
            config,
        ],
    )

    spec, kept = restored_objects(backup)

    assert spec == SPEC
    assert kept == [service, network, secret, config]  # the content of secrets included


def test_a_backup_without_its_cluster_object_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="holds 0 cluster objects"):
        restored_objects(Backup(objects=[make_service("web")]))


def test_a_backup_whose_objects_clash_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    clash = Backup(objects=[_cluster(), make_service("web"), make_service("web")])
    opts = NodeOptions(data_dir=tmp_path / "node", listen_addr="127.0.0.1:0")

    with pytest.raises(InvalidArgument, match=r"cannot be restored: .*'web' is used twice"):
        init_cluster(opts, restore=clash)
    assert not (tmp_path / "node").exists()


def test_a_restored_cluster_is_a_new_one_with_the_backups_settings(tmp_path: Path) -> None:
    opts = NodeOptions(data_dir=tmp_path / "node", listen_addr="127.0.0.1:0")

    result = init_cluster(opts, restore=Backup(objects=[_cluster()]))

    assert result.cluster_id != "old"
    assert read_node(opts.data_dir).cluster_id == result.cluster_id
