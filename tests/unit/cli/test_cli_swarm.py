"""`swarmlite init|join|join-token|leave|daemon`: what reaches the daemon module and the
daemon's socket, and what the user reads. The daemon functions are replaced by recorders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from swarmlite import daemon as node_daemon
from swarmlite.api import NodeRole
from swarmlite.api.cluster import ClusterSpec
from swarmlite.api.control import (
    Backup,
    JoinTokenReply,
    JoinTokenRequest,
    LeaveRequest,
    SwarmUpdate,
    SwarmView,
)
from swarmlite.api.routes import JOIN_TOKEN, LEAVE, SWARM_UPDATE
from swarmlite.cli import client as cli_client
from swarmlite.cli.commands import nodeflags, parse_duration
from swarmlite.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from swarmlite.rpc import control

NODE_ID = "n0de" * 6 + "1"
WORKER_TOKEN = "SWLTKN-1-worker"
MANAGER_TOKEN = "SWLTKN-1-manager"


@dataclass
class Recorder:
    """Stands in for swarmlite.daemon's init/join/start/load functions."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    start_code: int = 0
    init_error: Exception | None = None
    restored: Backup | None = None

    def init_cluster(
        self,
        opts: node_daemon.NodeOptions,
        *,
        force_new_cluster: bool = False,
        restore: Backup | None = None,
    ) -> node_daemon.InitResult:
        self.calls.append(("init", (opts, force_new_cluster)))
        self.restored = restore
        if self.init_error is not None:
            raise self.init_error
        return node_daemon.InitResult(
            node_id=NODE_ID, cluster_id="cluster-1", advertise_addr="10.0.0.1:2377"
        )

    def join_cluster(
        self, opts: node_daemon.NodeOptions, token: str, manager: str
    ) -> node_daemon.JoinResult:
        self.calls.append(("join", (opts, token, manager)))
        role = NodeRole.MANAGER if "manager" in token else NodeRole.WORKER
        return node_daemon.JoinResult(
            node_id=NODE_ID, cluster_id="cluster-1", role=role, managers=[manager]
        )

    def start_daemon(
        self, opts: node_daemon.NodeOptions, *, foreground: bool, timeout: float = 30.0
    ) -> int:
        self.calls.append(("start", (opts, foreground)))
        return self.start_code if foreground else 4242

    def load_options(self, data_dir: Path, socket: Path | None = None) -> node_daemon.NodeOptions:
        self.calls.append(("load", (data_dir, socket)))
        return node_daemon.NodeOptions(data_dir=data_dir, socket=socket)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    fake = Recorder()
    for name in ("init_cluster", "join_cluster", "start_daemon", "load_options"):
        monkeypatch.setattr(node_daemon, name, getattr(fake, name))
    return fake


def tokens(request: JoinTokenRequest) -> JoinTokenReply:
    token = WORKER_TOKEN if request.role is NodeRole.WORKER else MANAGER_TOKEN
    if request.rotate:
        token += "-rotated"
    return JoinTokenReply(token=token, managers=["10.0.0.1:2377", "10.0.0.2:2377"])


def test_the_cli_defaults_are_the_daemons() -> None:
    assert cli_client.DEFAULT_SOCKET == node_daemon.DEFAULT_SOCKET
    assert control.DEFAULT_PORT == node_daemon.DEFAULT_PORT
    assert nodeflags.DEFAULT_DATA_DIR == node_daemon.DEFAULT_DATA_DIR


def test_init_starts_a_detached_daemon_and_prints_the_join_command(
    daemon, run, recorder, tmp_path
) -> None:
    daemon.on(JOIN_TOKEN, tokens)
    data_dir = tmp_path / "node-1"

    result = run(
        "init",
        "--advertise-addr",
        "10.0.0.1",
        "--listen-addr",
        "127.0.0.1:4000",
        "--data-dir",
        str(data_dir),
        "--socket",
        str(daemon.socket),
        "--cert-expiry",
        "2160h0m0s",
    )

    assert result.exit_code == 0, result.stderr
    opts = node_daemon.NodeOptions(
        data_dir=data_dir,
        socket=daemon.socket,
        listen_addr="127.0.0.1:4000",
        advertise_addr="10.0.0.1",
        cert_expiry=90 * 86400.0,
    )
    assert recorder.calls == [("init", (opts, False)), ("start", (opts, False))]
    assert daemon.requests(JOIN_TOKEN) == [JoinTokenRequest(role=NodeRole.WORKER)]
    assert result.stdout == (
        f"swarmlite initialized: current node ({NODE_ID}) is now a manager.\n"
        "\n"
        "To add a worker to this cluster, run the following command:\n"
        "\n"
        f"    swarmlite join --token {WORKER_TOKEN} 10.0.0.1:2377\n"
        "\n"
        "To add a manager to this cluster, run 'swarmlite join-token manager' and follow the "
        "instructions.\n"
    )


def test_init_defaults_leave_the_daemons_own(run, recorder, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SWARMLITE_DATA_DIR", str(tmp_path))

    result = run("init", "--foreground", "--force-new-cluster")

    opts = node_daemon.NodeOptions(data_dir=tmp_path, socket=tmp_path / "swarmlite.sock")
    assert recorder.calls == [("init", (opts, True)), ("start", (opts, True))]
    assert opts.listen_addr == "0.0.0.0:2377" and opts.cert_expiry == 90 * 86400.0
    assert result.exit_code == 0, result.stderr


def test_init_in_the_foreground_exits_with_the_daemons_code(daemon, run, recorder, tmp_path):
    recorder.start_code = 3

    result = run("init", "--foreground", "--data-dir", str(tmp_path), "--listen-addr", "10.1.1.1")

    assert result.exit_code == 3
    opts, foreground = recorder.calls[-1][1]
    assert foreground is True
    assert opts.listen_addr == "10.1.1.1:2377"
    assert daemon.calls == []  # nobody to ask yet: the daemon runs in this very process
    assert result.stdout.splitlines()[0] == (
        f"swarmlite initialized: current node ({NODE_ID}) is now a manager."
    )
    assert "run 'swarmlite join-token worker'" in result.stdout


def test_init_refused_by_the_daemon_module_is_an_error(run, recorder, tmp_path) -> None:
    recorder.init_error = FailedPrecondition(
        f"{tmp_path} already holds a cluster", hint="pass --force-new-cluster, or leave first"
    )

    result = run("init", "--data-dir", str(tmp_path))

    assert result.exit_code == 1
    assert recorder.kinds() == ["init"]
    assert result.stderr.splitlines() == [
        f"error: {tmp_path} already holds a cluster",
        "hint: pass --force-new-cluster, or leave first",
    ]


@pytest.mark.parametrize("expiry", ["90", "90x", "h", "-1h", "0s"])
def test_init_refuses_a_bad_cert_expiry(run, recorder, expiry) -> None:
    result = run("init", "--cert-expiry", expiry)

    assert result.exit_code == 2
    assert "--cert-expiry" in result.stderr
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2160h0m0s", 7776000.0), ("90d", 7776000.0), ("3600s", 3600.0), ("1h30m", 5400.0),
     ("1.5h", 5400.0), ("500ms", 0.5)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("token", ["SWLTKN-1-worker", "SWLTKN-1-manager"])
def test_join_prints_the_role_the_token_gave(run, recorder, tmp_path, token) -> None:
    result = run("join", "--token", token, "--data-dir", str(tmp_path), "10.0.0.1:2377")

    assert result.exit_code == 0, result.stderr
    opts = node_daemon.NodeOptions(data_dir=tmp_path, socket=tmp_path / "swarmlite.sock")
    assert recorder.calls == [("join", (opts, token, "10.0.0.1:2377")), ("start", (opts, False))]
    role = "manager" if "manager" in token else "worker"
    assert result.stdout == f"This node joined a swarmlite cluster as a {role}.\n"


def test_join_with_a_refused_token(run, recorder, monkeypatch, tmp_path) -> None:
    def refuse(opts: Any, token: str, manager: str) -> None:
        raise PermissionDenied("the join token was refused", hint="ask for a new one")

    monkeypatch.setattr(node_daemon, "join_cluster", refuse)

    result = run("join", "--token", "bad", "--data-dir", str(tmp_path), "m1")

    assert result.exit_code == 1
    assert result.stderr == "error: the join token was refused\nhint: ask for a new one\n"
    assert recorder.calls == []  # no daemon started


def test_join_needs_a_token(run, recorder) -> None:
    result = run("join", "10.0.0.1")

    assert result.exit_code == 2
    assert "--token" in result.stderr
    assert recorder.calls == []


def test_join_token_prints_the_instructions(daemon, run) -> None:
    daemon.on(JOIN_TOKEN, tokens)

    result = run("join-token", "manager")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(JOIN_TOKEN) == [JoinTokenRequest(role=NodeRole.MANAGER)]
    assert result.stdout == (
        "To add a manager to this cluster, run the following command:\n"
        "\n"
        f"    swarmlite join --token {MANAGER_TOKEN} 10.0.0.1:2377\n"
        "\n"
    )


@pytest.mark.parametrize("prefix", [(), ("swarm",)])
def test_the_lifecycle_commands_are_under_swarm_too(daemon, run, prefix) -> None:
    daemon.on(JOIN_TOKEN, tokens)

    result = run(*prefix, "join-token", "-q", "worker")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{WORKER_TOKEN}\n"


def test_swarm_group_has_dockers_commands(run) -> None:
    result = run("swarm", "--help")

    assert result.exit_code == 0
    commands = result.stdout.split("Commands:")[1].splitlines()
    named = [line.split()[0] for line in commands if line[2:3].strip()]  # not wrapped text
    assert named == [
        "backup",
        "ca",
        "init",
        "join",
        "join-token",
        "leave",
        "unlock",
        "unlock-key",
        "update",
    ]


def test_swarm_update_sends_only_the_flags_given(daemon, run) -> None:
    daemon.on(SWARM_UPDATE, lambda request: swarm_view())

    result = run(
        "swarm", "update", "--cert-expiry", "720h", "--dispatcher-heartbeat", "5s",
        "--task-history-limit", "3",
    )  # fmt: skip
    nothing = run("swarm", "update", "--task-history-limit", "0")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Swarm updated.\n"
    assert daemon.requests(SWARM_UPDATE) == [
        SwarmUpdate(heartbeat_period=5.0, task_history_limit=3, cert_expiry=720 * 3600.0),
        SwarmUpdate(task_history_limit=0),
    ]
    assert nothing.exit_code == 0, nothing.stderr


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (("--dispatcher-heartbeat", "soon"), "is not a duration"),
        (("--task-history-limit", "-1"), "-1 is not in the range x>=0"),
        (("--autolock", "maybe"), "is not a valid boolean"),
    ],
)
def test_swarm_update_refuses_bad_values_before_calling(daemon, run, args, word) -> None:
    result = run("swarm", "update", *args)

    assert result.exit_code == 2
    assert word in result.stderr
    assert daemon.calls == []


def test_swarm_update_refused_by_the_server(daemon, run) -> None:
    def refuse(request: SwarmUpdate) -> SwarmView:
        raise InvalidArgument("certificate expiry 60s is too short: it must be at least 1h")

    daemon.on(SWARM_UPDATE, refuse)

    result = run("swarm", "update", "--cert-expiry", "60s")

    assert result.exit_code == 1
    assert result.stderr == ("error: certificate expiry 60s is too short: it must be at least 1h\n")


def swarm_view() -> SwarmView:
    return SwarmView(
        id="c" * 25,
        version=7,
        created_at=1_700_000_000.0,
        updated_at=1_700_000_000.0,
        spec=ClusterSpec(),
        ca_cert_pem=b"PEM",
    )


def test_join_token_quiet_prints_only_the_token(daemon, run) -> None:
    daemon.on(JOIN_TOKEN, tokens)

    result = run("join-token", "-q", "worker")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{WORKER_TOKEN}\n"


def test_join_token_rotate(daemon, run) -> None:
    daemon.on(JOIN_TOKEN, tokens)

    loud = run("join-token", "--rotate", "worker")
    quiet = run("join-token", "--rotate", "-q", "manager")

    assert daemon.requests(JOIN_TOKEN) == [
        JoinTokenRequest(role=NodeRole.WORKER, rotate=True),
        JoinTokenRequest(role=NodeRole.MANAGER, rotate=True),
    ]
    assert loud.stdout.startswith("Successfully rotated worker join token.\n\n")
    assert f"swarmlite join --token {WORKER_TOKEN}-rotated 10.0.0.1:2377" in loud.stdout
    assert quiet.stdout == f"{MANAGER_TOKEN}-rotated\n"


def test_join_token_of_an_unknown_role_is_a_usage_error(daemon, run) -> None:
    result = run("join-token", "admin")

    assert result.exit_code == 2
    assert "admin" in result.stderr
    assert daemon.calls == []


@pytest.mark.parametrize("force", [False, True])
def test_leave(daemon, run, force) -> None:
    daemon.on(LEAVE, lambda request: None)

    result = run("leave", *(["--force"] if force else []))

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(LEAVE) == [LeaveRequest(force=force)]
    assert result.stdout == "Node left the cluster.\n"


def test_leave_on_a_manager_without_force_shows_the_refusal(daemon, run) -> None:
    def refuse(request: LeaveRequest) -> None:
        raise FailedPrecondition(
            "this node is a manager: leaving erases the cluster's whole state",
            hint="use --force to leave anyway",
        )

    daemon.on(LEAVE, refuse)

    result = run("leave")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: this node is a manager: leaving erases the cluster's whole state",
        "hint: use --force to leave anyway",
    ]


def test_leave_refuses_a_remote_host(daemon, run) -> None:
    result = run("-H", "https://10.0.0.1:2377", "--cert-dir", "certs", "leave")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: leave is asked of the local daemon")
    assert daemon.calls == []


def test_daemon_runs_in_the_foreground_with_the_saved_options(run, recorder, tmp_path) -> None:
    recorder.start_code = 7

    result = run("daemon", "--data-dir", str(tmp_path), "--socket", str(tmp_path / "x.sock"))

    assert result.exit_code == 7
    opts = node_daemon.NodeOptions(data_dir=tmp_path, socket=tmp_path / "x.sock")
    assert recorder.calls == [("load", (tmp_path, tmp_path / "x.sock")), ("start", (opts, True))]


def test_init_and_join_pass_the_metrics_address_on(run, recorder, tmp_path) -> None:
    result = run(
        "init", "--foreground", "--data-dir", str(tmp_path / "a"),
        "--metrics-addr", "127.0.0.1:9323",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    opts = recorder.calls[0][1][0]
    assert opts.metrics_addr == "127.0.0.1:9323"

    result = run(
        "join", "--token", WORKER_TOKEN, "--data-dir", str(tmp_path / "b"),
        "--metrics-addr", "0.0.0.0:9323", "10.0.0.1:2377",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    opts = recorder.calls[2][1][0]
    assert opts.metrics_addr == "0.0.0.0:9323"


def test_daemon_metrics_addr_replaces_the_saved_one_for_this_run(run, recorder, tmp_path) -> None:
    sock = tmp_path / "x.sock"
    result = run("daemon", "--data-dir", str(tmp_path), "--socket", str(sock),
                 "--metrics-addr", "127.0.0.1:0")  # fmt: skip
    assert result.exit_code == 1  # port 0 is no address Prometheus could scrape
    assert result.stderr.startswith(
        "error: --metrics-addr '127.0.0.1:0': the port must be 1 to 65535"
    )
    assert recorder.kinds() == ["load"]

    result = run("daemon", "--data-dir", str(tmp_path), "--socket", str(sock), "--metrics-addr", "")
    assert result.exit_code == 0, result.stderr
    opts = node_daemon.NodeOptions(data_dir=tmp_path, socket=sock, metrics_addr="")
    assert recorder.calls[-1] == ("start", (opts, True))
