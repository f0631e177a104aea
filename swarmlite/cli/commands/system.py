"""`swarmlite version` and `swarmlite info`, as `docker version` and `docker info` show them.

Owns both commands' words and the data their ``--format`` templates see, in docker's shape
where docker has the field (``{{.Server.Version}}``, ``{{.Swarm.LocalNodeState}}``,
``{{.Swarm.Cluster.Spec.Dispatcher.HeartbeatPeriod}}``) and in plain words where swarmlite
differs (``PythonVersion`` for Go's, ``Runtime``, ``DataDir``). ``info`` asks the node
answering (INFO) and, on a manager, the cluster (SWARM_INSPECT); a worker shows what INFO
gives. ``version`` prints the client's half even when the daemon cannot be reached, then
the error.
"""

from __future__ import annotations

import platform
from typing import Any

import click

from swarmlite import __version__
from swarmlite.api import NodeRole, dockerjson
from swarmlite.api.cluster import Cluster, RootCAMaterial
from swarmlite.api.control import CONTROL, Empty, Info, SwarmView, VersionInfo
from swarmlite.api.routes import INFO, SWARM_INSPECT, VERSION
from swarmlite.cli import format
from swarmlite.cli.commands import client, format_option
from swarmlite.cli.render import human_duration
from swarmlite.errors import SwarmliteError

API_VERSION = CONTROL.rsplit("/", 1)[-1]
_LABEL_WIDTH = 20  # docker's tabwriter for `version`: cells at least 20 wide


# --------------------------------------------------------------------------- version


def client_version() -> dict[str, Any]:
    return {
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "PythonVersion": platform.python_version(),
        "Os": platform.system().lower(),
        "Arch": platform.machine(),
    }


def server_version(reply: VersionInfo) -> dict[str, Any]:
    return {
        "Version": reply.version,
        "ApiVersion": reply.api_version,
        "PythonVersion": reply.python,
        "Os": reply.os,
        "Arch": reply.arch,
        "Runtime": reply.runtime,
    }


def _section(title: str, part: dict[str, Any]) -> list[str]:
    lines = [
        title,
        *(
            f"{' ' + label + ':':<{_LABEL_WIDTH}}{value}"
            for label, value in (
                ("Version", part["Version"]),
                ("API version", part["ApiVersion"]),
                ("Python version", part["PythonVersion"]),
                ("OS/Arch", f"{part['Os']}/{part['Arch']}"),
            )
        ),
    ]
    if part.get("Runtime"):
        lines.append(f"{' Runtime:':<{_LABEL_WIDTH}}{part['Runtime']}")
    return lines


@click.command("version")
@format_option(default=None)
def version(output: str | None) -> None:
    """Show the swarmlite version of this client and of the daemon."""
    data: dict[str, Any] = {"Client": client_version(), "Server": None}
    try:
        data["Server"] = server_version(client().call(VERSION, Empty()))
    except SwarmliteError:
        if not output:  # as docker: the client's half, then the error
            click.echo("\n".join(_section("Client:", data["Client"])))
        raise

    def pretty() -> str:
        lines = [*_section("Client:", data["Client"]), ""]
        return "\n".join(lines + _section("Server:", data["Server"]))

    click.echo(format.render_object(output, data, pretty), nl=False)


# --------------------------------------------------------------------------- info


def _host(addr: str) -> str:
    """``10.0.0.1:2377`` -> ``10.0.0.1``: docker's Node Address has no port."""
    host, sep, _port = addr.rpartition(":")
    return host.strip("[]") if sep else addr


def _cluster(view: SwarmView) -> dict[str, Any]:
    cluster = Cluster(
        id=view.id,
        version=view.version,
        created_at=view.created_at,
        updated_at=view.updated_at,
        spec=view.spec,
        root_ca=RootCAMaterial(cert_pem=view.ca_cert_pem),
    )
    return dockerjson.swarm_json(
        cluster, node_cert_expiry=view.spec.settings.cert_expiry, root_rotation=view.ca_rotation
    )


def info_data(info: Info, swarm: SwarmView | None, error: str = "") -> dict[str, Any]:
    """`docker info`'s shape, as far as swarmlite has its fields."""
    manager = info.role is NodeRole.MANAGER
    part: dict[str, Any] = {
        "NodeID": info.node_id,
        "NodeAddr": _host(info.addr),
        "LocalNodeState": info.state,
        "ControlAvailable": manager,
        "Error": error,
        "RemoteManagers": [{"Addr": addr} for addr in sorted(info.managers)],
        "Nodes": swarm.nodes if swarm is not None else 0,
        "Managers": swarm.managers if swarm is not None else 0,
    }
    if swarm is not None:
        part["Cluster"] = _cluster(swarm)
    return {
        "Name": info.hostname,
        "ServerVersion": info.version,
        "Runtime": info.runtime,
        "DataDir": info.data_dir,
        "Swarm": part,
    }


def info_text(info: Info, swarm: SwarmView | None, error: str = "") -> str:
    """`docker info`'s words: the client, then the server with its Swarm section."""
    lines = ["Client:", f" Version:    {__version__}", "", "Server:"]
    lines.append(f" Server Version: {info.version}")
    lines.append(f" Swarm: {info.state}")
    if info.state not in ("inactive", "locked"):
        lines.append(f"  NodeID: {info.node_id}")
        if error:
            lines.append(f"  Error: {error}")
        lines.append(f"  Is Manager: {str(info.role is NodeRole.MANAGER).lower()}")
        if swarm is not None:
            settings = swarm.spec.settings
            lines += [
                f"  ClusterID: {swarm.id}",
                f"  Managers: {swarm.managers}",
                f"  Nodes: {swarm.nodes}",
                "  Orchestration:",
                f"   Task History Retention Limit: {settings.task_history_limit}",
                "  Dispatcher:",
                f"   Heartbeat Period: {human_duration(settings.heartbeat_period)}",
                "  CA Configuration:",
                f"   Expiry Duration: {human_duration(settings.cert_expiry)}",
            ]
        lines.append(f"  Node Address: {_host(info.addr)}")
        if info.managers:
            lines.append("  Manager Addresses:")
            lines += [f"   {addr}" for addr in sorted(info.managers)]
    if info.runtime:
        lines.append(f" Runtime: {info.runtime}")
    lines.append(f" Name: {info.hostname}")
    if info.data_dir:
        lines.append(f" Data Dir: {info.data_dir}")
    return "\n".join(lines)


@click.command("info")
@format_option(default=None)
def info(output: str | None) -> None:
    """Display this node's and its cluster's information."""
    rpc = client()
    reply = rpc.call(INFO, Empty())
    swarm: SwarmView | None = None
    error = ""
    if reply.role is NodeRole.MANAGER:  # a worker is refused the cluster's view
        try:
            swarm = rpc.call(SWARM_INSPECT, Empty())
        except SwarmliteError as exc:  # no leader, say: docker shows it as the Swarm's Error
            error = exc.message
    text = format.render_object(
        output, info_data(reply, swarm, error), lambda: info_text(reply, swarm, error)
    )
    click.echo(text, nl=False)
