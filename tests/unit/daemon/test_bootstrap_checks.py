"""`init`/`join` check their paths before they write anything, so a refused one can simply
be run again (issue 13: `init --socket` into a missing directory left a half-made node)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from swarmlite.bootstrap import NodeOptions, init_cluster, join_cluster
from swarmlite.errors import FailedPrecondition, InvalidArgument


def options(tmp_path: Path, sock: Path) -> NodeOptions:
    return NodeOptions(data_dir=tmp_path / "data", socket=sock, listen_addr="127.0.0.1:0")


def test_init_with_a_socket_in_a_missing_directory_writes_nothing_and_can_be_retried(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere" / "swarmlite.sock"

    with pytest.raises(FailedPrecondition, match="does not exist"):
        init_cluster(options(tmp_path, missing))

    assert not (tmp_path / "data").exists()
    result = init_cluster(options(tmp_path, tmp_path / "data" / "swarmlite.sock"))
    assert result.node_id


def test_join_checks_the_socket_before_it_contacts_a_manager(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "swarmlite.sock"

    with pytest.raises(FailedPrecondition, match="does not exist"):
        join_cluster(options(tmp_path, missing), "SWMTKN-1-x-y", "127.0.0.1:1")

    assert not (tmp_path / "data").exists()


def test_a_socket_path_too_long_for_a_unix_socket_is_refused(tmp_path: Path) -> None:
    long = tmp_path / ("s" * 120)

    with pytest.raises(InvalidArgument, match="107"):
        init_cluster(options(tmp_path, long))

    assert not (tmp_path / "data").exists()


def test_a_socket_a_live_daemon_listens_on_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(path))
        live.listen(1)

        with pytest.raises(FailedPrecondition, match="already listening"):
            init_cluster(options(tmp_path, path))

    assert not (tmp_path / "data").exists()
