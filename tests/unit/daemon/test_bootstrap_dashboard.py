"""`--dashboard-addr` given to init or join is checked before any state is written and kept
in node.json; `daemon.dashboard_url` builds the URL `swarmlite dashboard` prints."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from swarmlite.api import NodeRole
from swarmlite.bootstrap import NodeOptions, change_role, init_cluster, load_options, read_node
from swarmlite.daemon import dashboard_url
from swarmlite.dashboard import ensure_token
from swarmlite.dashboard.access import write_addr
from swarmlite.errors import FailedPrecondition, InvalidArgument


def _init(data_dir: Path, dashboard_addr: str = "") -> None:
    init_cluster(
        NodeOptions(data_dir=data_dir, listen_addr="127.0.0.1:0", dashboard_addr=dashboard_addr)
    )


def test_the_dashboard_address_is_kept_for_the_next_start(tmp_path: Path) -> None:
    _init(tmp_path / "node", "127.0.0.1:8765")
    assert read_node(tmp_path / "node").dashboard_addr == "127.0.0.1:8765"
    assert load_options(tmp_path / "node").dashboard_addr == "127.0.0.1:8765"


def test_no_dashboard_address_means_none(tmp_path: Path) -> None:
    _init(tmp_path / "node")
    assert load_options(tmp_path / "node").dashboard_addr == ""
    with pytest.raises(FailedPrecondition, match="serves no dashboard"):
        dashboard_url(tmp_path / "node")


def test_a_bad_or_held_dashboard_address_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "node"
    with pytest.raises(InvalidArgument, match="is not ADDR:PORT"):
        _init(data_dir, "8765")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with pytest.raises(FailedPrecondition, match="already in use"):
            _init(data_dir, f"127.0.0.1:{holder.getsockname()[1]}")
    left = list(data_dir.iterdir()) if data_dir.exists() else []
    assert left == []


def test_the_url_carries_the_token_and_the_address_the_dashboard_runs_on(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "node"
    _init(data_dir, "0.0.0.0:8765")
    with pytest.raises(FailedPrecondition, match="no dashboard token yet"):
        dashboard_url(data_dir)  # the daemon has not started it yet
    token = ensure_token(data_dir)
    # a wildcard address is shown as the node's advertised host
    assert dashboard_url(data_dir) == f"http://127.0.0.1:8765/?token={token}"
    write_addr(data_dir, "127.0.0.1:9999")  # `daemon --dashboard-addr` for this run
    assert dashboard_url(data_dir) == f"http://127.0.0.1:9999/?token={token}"


def test_a_worker_serves_no_dashboard(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    _init(data_dir, "127.0.0.1:8765")
    change_role(data_dir, read_node(data_dir), NodeRole.WORKER)
    with pytest.raises(FailedPrecondition, match="only managers"):
        dashboard_url(data_dir)
