"""The one error handler: what a user reads on stderr, and the exit code, for each failure."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from click.testing import CliRunner

from swarmlite.api.control import ListRequest, NodeList
from swarmlite.api.routes import NODE_INSPECT, NODE_LS
from swarmlite.ca import RootCA, issue_node_cert, server_context, write_credentials
from swarmlite.cli import listing, render
from swarmlite.cli.main import cli
from swarmlite.errors import NotFound
from swarmlite.rpc import Peer, RpcServer

UNREACHABLE_HINT = "hint: is this node part of a cluster? run `swarmlite init` or `swarmlite join`"


def not_found(request: object) -> None:
    raise NotFound(
        'node "ghost" not found',
        hint="`swarmlite node ls` lists the nodes of this cluster",
        details={"ref": "ghost"},
    )


def test_not_found_prints_error_and_hint(daemon, run) -> None:
    daemon.on(NODE_INSPECT, not_found)

    result = run("node", "inspect", "--pretty", "ghost")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        'error: node "ghost" not found\nhint: `swarmlite node ls` lists the nodes of this cluster\n'
    )


def test_json_format_writes_the_error_as_json(daemon, run) -> None:
    daemon.on(NODE_INSPECT, not_found)

    result = run("node", "inspect", "--format", "json", "ghost")

    assert result.exit_code == 1
    assert json.loads(result.stderr) == {
        "code": "not_found",
        "message": 'node "ghost" not found',
        "hint": "`swarmlite node ls` lists the nodes of this cluster",
        "details": {"ref": "ghost"},
    }


def test_unknown_flag_is_a_usage_error(daemon, run) -> None:
    result = run("node", "ls", "--bogus")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: No such option '--bogus'.",
        "hint: `swarmlite node ls --help` shows the usage",
    ]
    assert daemon.calls == []


def test_unknown_command_is_a_usage_error(run) -> None:
    result = run("nodes", "ls")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: No such command 'nodes'.")


def test_usage_error_in_json(run) -> None:
    result = run("node", "ls", "--format", "json", "extra")

    assert result.exit_code == 2
    error = json.loads(result.stderr)
    assert error["code"] == "usage"
    assert "extra" in error["message"]


def test_missing_socket_says_the_daemon_is_unreachable(monkeypatch, tmp_path) -> None:
    for name in ("SWARMLITE_HOST", "SWARMLITE_SOCKET"):
        monkeypatch.delenv(name, raising=False)
    missing = tmp_path / "none.sock"

    default = CliRunner().invoke(cli, ["node", "ls"])
    chosen = CliRunner().invoke(cli, ["node", "ls"], env={"SWARMLITE_SOCKET": str(missing)})

    assert default.exit_code == 1
    assert default.stderr.splitlines() == [
        "error: cannot reach the swarmlite daemon at unix:///run/swarmlite/swarmlite.sock",
        UNREACHABLE_HINT,
    ]
    assert chosen.exit_code == 1
    assert chosen.stderr.splitlines() == [
        f"error: cannot reach the swarmlite daemon at unix://{missing}",
        UNREACHABLE_HINT,
    ]


def test_stale_socket_says_the_daemon_is_unreachable(tmp_path) -> None:
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # bound, never listening: what a killed daemon leaves behind
    try:
        result = CliRunner().invoke(cli, ["-H", f"unix://{path}", "node", "ls"])
    finally:
        stale.close()

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: cannot reach the swarmlite daemon at unix://{path}",
        UNREACHABLE_HINT,
    ]


@pytest.mark.parametrize(
    ("host", "word"),
    [("tcp://10.0.0.1:2377", "unknown scheme"), ("unix://", "names no socket path")],
)
def test_bad_host_is_a_usage_error(host: str, word: str) -> None:
    result = CliRunner().invoke(cli, ["-H", host, "node", "ls"])

    assert result.exit_code == 2
    assert word in result.stderr
    assert "hint: use -H unix:///path/to/swarmlite.sock or -H https://manager:2377" in result.stderr


def test_https_host_needs_a_cert_dir(monkeypatch) -> None:
    monkeypatch.delenv("SWARMLITE_CERT_DIR", raising=False)

    result = CliRunner().invoke(cli, ["-H", "https://10.0.0.1", "node", "ls"])

    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: calling https://10.0.0.1:2377 needs this node's certificate\nhint: pass --cert-dir"
    )


async def test_https_host_with_a_cert_dir(tmp_path, make_view) -> None:
    ca = RootCA.create("cluster-1")
    server = RpcServer(server_context(issue_node_cert(ca, "manager-1", "manager", "cluster-1")))
    views = [make_view("m" * 25, "manager-1")]

    async def ls(request: ListRequest, peer: Peer) -> NodeList:
        return NodeList(nodes=views)

    server.add_route(NODE_LS, ls)
    port = await server.start("127.0.0.1", 0)
    write_credentials(tmp_path, issue_node_cert(ca, "operator", "manager", "cluster-1"))
    args = ["-H", f"https://127.0.0.1:{port}", "--cert-dir", str(tmp_path), "node", "ls", "-q"]
    try:
        # The CLI runs its own event loop (asyncio.run): give it a thread of its own.
        result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    finally:
        await server.stop()

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "m" * 25 + "\n"


def test_internal_error_names_the_type_and_asks_for_debug(daemon, run, monkeypatch) -> None:
    daemon.on(NODE_LS, lambda request: NodeList(nodes=[]))

    def broken(views: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(listing, "node_rows", broken)

    plain = run("node", "ls")
    debug = run("--debug", "node", "ls")

    assert plain.exit_code == 1
    assert plain.stderr.splitlines() == [
        "error: internal error (RuntimeError): boom",
        "hint: this is a bug in swarmlite; rerun with --debug for the traceback and report it",
    ]
    assert debug.exit_code == 1
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert "in broken" in debug.stderr
    assert debug.stderr.endswith("error: internal error (RuntimeError): boom\n")


def test_debug_adds_the_traceback_to_our_errors(daemon, run) -> None:
    daemon.on(NODE_INSPECT, not_found)

    result = run("--debug", "node", "inspect", "--pretty", "ghost")

    assert result.exit_code == 1
    assert "Traceback (most recent call last):" in result.stderr
    assert "swarmlite.errors.NotFound" in result.stderr
    assert result.stderr.endswith(
        'error: node "ghost" not found\nhint: `swarmlite node ls` lists the nodes of this cluster\n'
    )


def test_interrupt_exits_130(daemon, run, monkeypatch) -> None:
    daemon.on(NODE_LS, lambda request: NodeList(nodes=[]))

    def interrupted(views: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(listing, "node_rows", interrupted)

    result = run("node", "ls")

    assert result.exit_code == 130


def test_table_keeps_markup_and_long_cells_as_they_are() -> None:
    text = render.table(("NAME", "NOTE"), [("db[1]", "x" * 300), ("[bold]web[/bold]", "")])

    assert text.splitlines() == [
        "NAME               NOTE",
        "db[1]              " + "x" * 300,
        "[bold]web[/bold]",
    ]


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0.2, "Less than a second ago"), (1, "1 second ago"), (59, "59 seconds ago"),
     (60, "About a minute ago"), (119, "About a minute ago"), (120, "2 minutes ago"),
     (3599, "59 minutes ago"), (3600, "About an hour ago"), (5399, "About an hour ago"),
     (7200, "2 hours ago"), (86400 * 3, "3 days ago"), (86400 * 20, "2 weeks ago"),
     (86400 * 90, "3 months ago"), (86400 * 800, "2 years ago")],
)  # fmt: skip
def test_ago_is_dockers_human_duration(seconds: float, words: str) -> None:
    assert render.ago(1000.0, 1000.0 + seconds) == words
