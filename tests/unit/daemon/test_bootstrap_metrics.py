"""`--metrics-addr` given to init is checked before any state is written, kept in node.json
and read back for the daemon's next start."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from swarmlite.bootstrap import NodeOptions, init_cluster, load_options, read_node
from swarmlite.errors import FailedPrecondition, InvalidArgument


def test_the_metrics_address_is_kept_for_the_next_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    opts = NodeOptions(data_dir=data_dir, listen_addr="127.0.0.1:0", metrics_addr="127.0.0.1:9")
    init_cluster(opts)
    assert read_node(data_dir).metrics_addr == "127.0.0.1:9"
    assert load_options(data_dir).metrics_addr == "127.0.0.1:9"


def test_no_metrics_address_means_none_saved(tmp_path: Path) -> None:
    init_cluster(NodeOptions(data_dir=tmp_path / "node", listen_addr="127.0.0.1:0"))
    assert load_options(tmp_path / "node").metrics_addr == ""


def test_a_bad_or_held_metrics_address_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    with pytest.raises(InvalidArgument, match="is not ADDR:PORT"):
        init_cluster(NodeOptions(data_dir=data_dir, listen_addr="127.0.0.1:0", metrics_addr="9"))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        held = f"127.0.0.1:{holder.getsockname()[1]}"
        with pytest.raises(FailedPrecondition, match="already in use"):
            init_cluster(
                NodeOptions(data_dir=data_dir, listen_addr="127.0.0.1:0", metrics_addr=held)
            )
    left = list(data_dir.iterdir()) if data_dir.exists() else []
    assert left == []
