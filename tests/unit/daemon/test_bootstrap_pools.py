"""`swarmlite init --default-addr-pool/--default-addr-pool-mask-length/--mesh-pool` reach
the cluster object, where the allocator reads them; bad values are refused before any state
is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlite.bootstrap import NodeOptions, _pool_labels, init_cluster
from swarmlite.errors import InvalidArgument
from swarmlite.manager.allocator import MESH_LABEL, POOL_LABEL, SIZE_LABEL, Pools


def test_the_pools_given_at_init_become_the_allocators_pools() -> None:
    opts = NodeOptions(
        default_addr_pool="198.19.0.0/17",
        default_addr_pool_mask_length=26,
        mesh_pool="198.19.240.0/20",
    )
    labels = _pool_labels(opts)
    assert labels == {
        POOL_LABEL: "198.19.0.0/17",
        SIZE_LABEL: "26",
        MESH_LABEL: "198.19.240.0/20",
    }
    pools = Pools().with_labels(labels)
    assert (str(pools.default_pool), pools.subnet_size, str(pools.mesh_pool)) == (
        "198.19.0.0/17",
        26,
        "198.19.240.0/20",
    )
    assert _pool_labels(NodeOptions()) == {}


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("default_addr_pool", "10.0.0.0/33", "is not an IPv4 network"),
        ("mesh_pool", "nonsense", "is not an IPv4 network"),
        ("default_addr_pool_mask_length", 31, "must be 8 to 29"),
    ],
)
def test_a_bad_pool_is_refused_and_nothing_is_written(
    tmp_path: Path, field: str, value: object, says: str
) -> None:
    opts = NodeOptions(data_dir=tmp_path / "node", listen_addr="127.0.0.1:0", **{field: value})
    with pytest.raises(InvalidArgument, match=says):
        init_cluster(opts)
    left = list((tmp_path / "node").iterdir()) if (tmp_path / "node").exists() else []
    assert left == []  # no node.json, no certificates, no raft log, no staging directory
