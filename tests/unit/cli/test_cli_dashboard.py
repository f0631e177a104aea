"""`--dashboard-addr` on init and daemon, and `swarmlite dashboard`: refusals up front, and
the URL printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarmlite.bootstrap import NodeOptions, init_cluster
from swarmlite.dashboard import ensure_token


def test_init_refuses_a_malformed_dashboard_address_before_anything(
    run: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "node"
    result = run(
        "init", "--data-dir", str(data_dir), "--listen-addr", "127.0.0.1:0",
        "--dashboard-addr", "localhost",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "error: --dashboard-addr 'localhost' is not ADDR:PORT" in result.stderr
    assert not (data_dir / "node.json").exists()


def test_daemon_refuses_a_malformed_dashboard_address_before_starting(
    run: Any, tmp_path: Path
) -> None:
    init_cluster(NodeOptions(data_dir=tmp_path, listen_addr="127.0.0.1:0"))
    result = run("daemon", "--data-dir", str(tmp_path), "--dashboard-addr", "127.0.0.1:99999")
    assert result.exit_code == 1
    assert "the port must be 1 to 65535" in result.stderr
    assert not (tmp_path / "swarmlite.pid").exists()


def test_dashboard_prints_the_url_with_the_token(run: Any, tmp_path: Path) -> None:
    init_cluster(
        NodeOptions(data_dir=tmp_path, listen_addr="127.0.0.1:0", dashboard_addr="127.0.0.1:8765")
    )
    token = ensure_token(tmp_path)
    result = run("dashboard", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"http://127.0.0.1:8765/?token={token}\n"


def test_dashboard_on_a_node_without_one_says_how_to_start_it(run: Any, tmp_path: Path) -> None:
    init_cluster(NodeOptions(data_dir=tmp_path, listen_addr="127.0.0.1:0"))
    result = run("dashboard", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "this node serves no dashboard" in result.stderr
    assert "--dashboard-addr" in result.stderr
