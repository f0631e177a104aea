"""`swarmlite version` and `swarmlite info` against a fake daemon: docker's words and shapes,
a worker's info without the cluster's view, and --format on both."""

from __future__ import annotations

import json
import platform

from swarmlite import __version__
from swarmlite.api import NodeRole
from swarmlite.api.cluster import ClusterSettings, ClusterSpec
from swarmlite.api.control import Empty, Info, SwarmView, VersionInfo
from swarmlite.api.routes import INFO, SWARM_INSPECT, VERSION
from swarmlite.errors import NoLeader

NODE_ID = "n" * 25
CLUSTER_ID = "c" * 25


def version_info(request: Empty) -> VersionInfo:
    return VersionInfo(
        version="0.9.0",
        api_version="v1",
        python="3.12.1",
        os="linux",
        arch="aarch64",
        runtime="docker 24.0.7",
    )


def info(role: NodeRole = NodeRole.MANAGER) -> Info:
    return Info(
        node_id=NODE_ID,
        cluster_id=CLUSTER_ID,
        role=role,
        hostname="manager-1",
        addr="10.0.0.1:2377",
        managers=["10.0.0.2:2377", "10.0.0.1:2377"],
        version="0.9.0",
        runtime="docker 24.0.7",
        data_dir="/var/lib/swarmlite",
    )


def swarm_view(request: Empty) -> SwarmView:
    settings = ClusterSettings(heartbeat_period=5.0, task_history_limit=3, cert_expiry=90 * 86400)
    return SwarmView(
        id=CLUSTER_ID,
        version=12,
        created_at=1_700_000_000.0,
        updated_at=1_700_000_100.0,
        spec=ClusterSpec(settings=settings),
        ca_cert_pem=b"-----BEGIN CERTIFICATE-----\n",
        nodes=3,
        managers=1,
    )


# --------------------------------------------------------------------------- version


def test_version_shows_the_client_and_the_server(daemon, run) -> None:
    daemon.on(VERSION, version_info)

    result = run("version")

    assert result.exit_code == 0, result.stderr
    client_os = f"{platform.system().lower()}/{platform.machine()}"
    assert result.stdout.splitlines() == [
        "Client:",
        f" Version:           {__version__}",
        " API version:       v1",
        f" Python version:    {platform.python_version()}",
        f" OS/Arch:           {client_os}",
        "",
        "Server:",
        " Version:           0.9.0",
        " API version:       v1",
        " Python version:    3.12.1",
        " OS/Arch:           linux/aarch64",
        " Runtime:           docker 24.0.7",
    ]


def test_version_format(daemon, run) -> None:
    daemon.on(VERSION, version_info)

    server = run("version", "--format", "{{.Server.Version}}")
    as_json = run("version", "-f", "json")

    assert server.stdout == "0.9.0\n"
    document = json.loads(as_json.stdout)
    assert document["Server"]["Runtime"] == "docker 24.0.7"
    assert document["Client"]["Version"] == __version__


def test_version_without_a_daemon_shows_the_client_then_the_error(run, tmp_path) -> None:
    result = run("-H", f"unix://{tmp_path}/none.sock", "version")

    assert result.exit_code == 1
    assert result.stdout.splitlines()[:2] == ["Client:", f" Version:           {__version__}"]
    assert result.stderr.startswith("error: cannot reach the swarmlite daemon at unix://")


# --------------------------------------------------------------------------- info


def test_info_on_a_manager_has_dockers_swarm_section(daemon, run) -> None:
    daemon.on(INFO, lambda request: info())
    daemon.on(SWARM_INSPECT, swarm_view)

    result = run("info")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Client:",
        f" Version:    {__version__}",
        "",
        "Server:",
        " Server Version: 0.9.0",
        " Swarm: active",
        f"  NodeID: {NODE_ID}",
        "  Is Manager: true",
        f"  ClusterID: {CLUSTER_ID}",
        "  Managers: 1",
        "  Nodes: 3",
        "  Orchestration:",
        "   Task History Retention Limit: 3",
        "  Dispatcher:",
        "   Heartbeat Period: 5 seconds",
        "  CA Configuration:",
        "   Expiry Duration: 3 months",
        "  Node Address: 10.0.0.1",
        "  Manager Addresses:",
        "   10.0.0.1:2377",
        "   10.0.0.2:2377",
        " Runtime: docker 24.0.7",
        " Name: manager-1",
        " Data Dir: /var/lib/swarmlite",
    ]


def test_info_on_a_worker_asks_nothing_of_the_cluster(daemon, run) -> None:
    daemon.on(INFO, lambda request: info(NodeRole.WORKER))

    result = run("info")
    state = run("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SWARM_INSPECT) == []
    assert "  Is Manager: false" in result.stdout.splitlines()
    assert "ClusterID" not in result.stdout
    assert state.stdout == "active false\n"


def test_info_of_a_manager_without_a_leader_shows_the_error_in_the_swarm_section(
    daemon, run
) -> None:
    def no_leader(request: Empty) -> SwarmView:
        raise NoLeader("no leader: the managers cannot elect one")

    daemon.on(INFO, lambda request: info())
    daemon.on(SWARM_INSPECT, no_leader)

    result = run("info")

    assert result.exit_code == 0, result.stderr
    assert "  Error: no leader: the managers cannot elect one" in result.stdout.splitlines()


def test_info_format_sees_dockers_shape(daemon, run) -> None:
    daemon.on(INFO, lambda request: info())
    daemon.on(SWARM_INSPECT, swarm_view)

    cluster = run(
        "info",
        "--format",
        "{{.Swarm.Cluster.ID}} {{.Swarm.Cluster.Spec.Dispatcher.HeartbeatPeriod}}",
    )
    as_json = run("info", "--format", "json")

    assert cluster.exit_code == 0, cluster.stderr
    assert cluster.stdout == f"{CLUSTER_ID} 5000000000\n"
    document = json.loads(as_json.stdout)
    assert document["Swarm"]["NodeAddr"] == "10.0.0.1"
    assert document["Swarm"]["RemoteManagers"] == [
        {"Addr": "10.0.0.1:2377"},
        {"Addr": "10.0.0.2:2377"},
    ]
    assert document["Swarm"]["Cluster"]["Spec"]["Orchestration"] == {"TaskHistoryRetentionLimit": 3}
    assert "JoinTokens" not in document["Swarm"]["Cluster"]
