"""``/_ping``, ``/version``, ``/info`` and ``/swarm``: what every Docker client asks first.

Owns the shapes of ``docker version``, ``docker info`` (with its Swarm section) and
``docker swarm inspect`` as the Docker Engine API returns them, from the control API's
VERSION, INFO, SWARM_INSPECT, NODE_LS and JOIN_TOKEN calls. ``/info`` carries every
capability field whose absence makes ``docker info`` print WARNING lines (the CLI falls back
to them when ``Warnings`` is empty). A worker answers ``/info`` with ``ControlAvailable:
false`` and no ``Cluster``, as dockerd does; ``/swarm`` on a worker is the control API's
refusal (503). ``/swarm/update`` changes what swarmlite keeps of Docker's swarm spec (task
history, dispatcher heartbeat, certificate expiry, autolock), rotates join tokens and the
unlock key, and refuses a change to any other field by name; ``/swarm/unlockkey`` shows
the unlock key. ``/events`` is ``events.py``'s.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from aiohttp import web

from swarmlite.api import Cluster, NodeRole, RootCAMaterial, dockerjson
from swarmlite.api.control import (
    Empty,
    Info,
    JoinTokenRequest,
    ListRequest,
    SwarmUpdate,
    SwarmView,
    UnlockKeyRequest,
)
from swarmlite.api.routes import (
    INFO,
    JOIN_TOKEN,
    NODE_LS,
    SWARM_INSPECT,
    SWARM_UPDATE,
    UNLOCK_KEY,
    VERSION,
)
from swarmlite.dockerapi.http import (
    API_VERSION,
    MIN_API_VERSION,
    Body,
    Control,
    add_route,
    control,
    empty_response,
    json_response,
    query_bool,
    query_version,
    read_object,
)
from swarmlite.errors import Conflict, InvalidArgument, SwarmliteError

# The allocator's defaults (manager/allocator/ipam.py), shown when the cluster's labels do
# not name other ones.
_POOL_LABEL, _DEFAULT_POOL = "swarmlite.default-addr-pool", "10.0.0.0/8"
_SIZE_LABEL, _DEFAULT_SUBNET_SIZE = "swarmlite.default-addr-size", 24
_DATA_PATH_PORT = 4789  # VXLAN's UDP port (network/ip.py), inside the WireGuard mesh
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def add_routes(router: web.UrlDispatcher) -> None:
    add_route(router, "GET", "/_ping", ping)
    add_route(router, "GET", "/version", version)
    add_route(router, "GET", "/info", info)
    add_route(router, "GET", "/swarm", swarm)
    add_route(router, "POST", "/swarm/update", swarm_update)
    add_route(router, "GET", "/swarm/unlockkey", unlock_key)


def swarm_state(info: Info) -> str:
    """The ``Swarm`` header of ``/_ping``: ``active/manager``, ``active/worker``, or the
    node's state alone when it is not active (``locked``, ``pending``)."""
    if info.state != "active":
        return info.state
    return f"active/{info.role.value}"


async def ping(request: web.Request) -> web.Response:
    try:
        state = swarm_state(await control(request).call(INFO, Empty()))
    except SwarmliteError:
        state = "error"
    return web.Response(
        text="OK",
        headers={
            "Swarm": state,
            "Docker-Experimental": "false",
            "Builder-Version": "1",
            "Cache-Control": "no-cache, no-store, must-revalidate",
            "Pragma": "no-cache",
        },
    )


async def version(request: web.Request) -> web.Response:
    reply = await control(request).call(VERSION, Empty())
    arch = _GOARCH.get(reply.arch, reply.arch)
    details = {
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": f"python{reply.python}",
        "Os": reply.os,
        "Arch": arch,
        "KernelVersion": platform.release(),
        "BuildTime": "",
        "Experimental": "false",
    }
    components: list[dict[str, Any]] = [
        {"Name": "Engine", "Version": reply.version, "Details": details}
    ]
    runtime_name, _, runtime_version = reply.runtime.partition(" ")
    if runtime_name:
        components.append({"Name": runtime_name, "Version": runtime_version, "Details": {}})
    return json_response(
        {
            "Platform": {"Name": "swarmlite"},
            "Components": components,
            "Version": reply.version,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": details["GoVersion"],
            "Os": reply.os,
            "Arch": arch,
            "KernelVersion": details["KernelVersion"],
            "BuildTime": "",
        }
    )


def _host(addr: str) -> str:
    """``10.0.0.1:2377`` -> ``10.0.0.1``."""
    host, sep, _port = addr.rpartition(":")
    return host.strip("[]") if sep else addr


def cluster_json(view: SwarmView, **extra: Any) -> dict[str, Any]:
    """The swarm as Docker shows it, from the control API's view of it."""
    cluster = Cluster(
        id=view.id,
        version=view.version,
        created_at=view.created_at,
        updated_at=view.updated_at,
        spec=view.spec,
        root_ca=RootCAMaterial(cert_pem=view.ca_cert_pem),
    )
    labels = view.spec.labels
    try:
        subnet_size = int(labels.get(_SIZE_LABEL, _DEFAULT_SUBNET_SIZE))
    except ValueError:
        subnet_size = _DEFAULT_SUBNET_SIZE
    return dockerjson.swarm_json(
        cluster,
        default_addr_pool=[labels.get(_POOL_LABEL, _DEFAULT_POOL)],
        subnet_size=subnet_size,
        data_path_port=_DATA_PATH_PORT,
        node_cert_expiry=view.spec.settings.cert_expiry,
        root_rotation=view.ca_rotation,
        autolock=view.spec.settings.autolock,
        **extra,
    )


async def _swarm_section(api: Control, info: Info) -> dict[str, Any]:
    manager = info.role is NodeRole.MANAGER
    remote = [{"NodeID": "", "Addr": addr} for addr in sorted(info.managers)]
    section: dict[str, Any] = {
        "NodeID": info.node_id,
        "NodeAddr": _host(info.addr),
        "LocalNodeState": info.state,
        "ControlAvailable": manager,
        "Error": "",
        "RemoteManagers": remote,
    }
    if not manager:
        return section
    try:
        view = await api.call(SWARM_INSPECT, Empty())
        nodes = await api.call(NODE_LS, ListRequest())
    except SwarmliteError as exc:  # no leader, say: docker shows it as the Swarm's Error
        section["Error"] = exc.message
        return section
    by_addr = {
        n.manager.addr: n.node.id for n in nodes.nodes if n.manager is not None and n.manager.addr
    }
    section["RemoteManagers"] = [
        {"NodeID": by_addr.get(addr, ""), "Addr": addr} for addr in sorted(info.managers)
    ]
    section["Nodes"] = view.nodes
    section["Managers"] = view.managers
    section["Cluster"] = cluster_json(view)
    return section


async def info(request: web.Request) -> web.Response:
    api = control(request)
    node = await api.call(INFO, Empty())
    about = await api.call(VERSION, Empty())
    swarm_part = await _swarm_section(api, node)
    uname = platform.uname()
    return json_response(
        {
            "ID": node.node_id,
            "Name": node.hostname,
            "ServerVersion": node.version,
            "OperatingSystem": f"swarmlite on {uname.system}",
            "OSType": "linux",
            "OSVersion": "",
            "Architecture": about.arch or uname.machine,
            "KernelVersion": uname.release,
            "NCPU": _cpus(),
            "MemTotal": _memory_bytes(),
            "DockerRootDir": node.data_dir,
            "Containers": 0,
            "ContainersRunning": 0,
            "ContainersPaused": 0,
            "ContainersStopped": 0,
            "Images": 0,
            "Driver": "swarmlite",
            "DriverStatus": [],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["overlay"],
                "Authorization": None,
                "Log": ["json-file"],
            },
            "MemoryLimit": True,
            "SwapLimit": True,
            "CpuCfsPeriod": True,
            "CpuCfsQuota": True,
            "CPUShares": True,
            "CPUSet": True,
            "PidsLimit": True,
            "IPv4Forwarding": True,
            "BridgeNfIptables": True,
            "BridgeNfIp6tables": True,
            "OomKillDisable": False,
            "CgroupVersion": "2",
            "CgroupDriver": "systemd",
            "LoggingDriver": "json-file",
            "SystemTime": dockerjson.rfc3339(time.time()),
            "Labels": [],
            "SecurityOptions": [],
            "CDISpecDirs": [],
            "Runtimes": {},
            "DefaultRuntime": node.runtime.partition(" ")[0] or "none",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""},
            "ExperimentalBuild": False,
            "LiveRestoreEnabled": False,
            "Debug": False,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "Warnings": [],
            "Swarm": swarm_part,
        }
    )


def _cpus() -> int:
    return os.cpu_count() or 1


def _memory_bytes() -> int:
    """The host's memory, from /proc/meminfo (0 where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


async def swarm(request: web.Request) -> web.Response:
    api = control(request)
    view = await api.call(SWARM_INSPECT, Empty())
    worker = await api.call(JOIN_TOKEN, JoinTokenRequest(role=NodeRole.WORKER))
    manager = await api.call(JOIN_TOKEN, JoinTokenRequest(role=NodeRole.MANAGER))
    return json_response(cluster_json(view, worker_token=worker.token, manager_token=manager.token))


# What `docker swarm update` may change: Docker's spec fields swarmlite keeps. Any other
# field must come back as `GET /swarm` showed it; a change there is refused by name.
_UPDATABLE = {
    ("Orchestration", "TaskHistoryRetentionLimit"),
    ("Dispatcher", "HeartbeatPeriod"),
    ("CAConfig", "NodeCertExpiry"),
    ("EncryptionConfig", "AutoLockManagers"),
}


async def swarm_update(request: web.Request) -> web.Response:
    """``POST /swarm/update?version=N``: the settings `docker swarm update` changes (task
    history, dispatcher heartbeat, certificate expiry, autolock), the join tokens and the
    unlock key to rotate; a change of any other field is refused naming it."""
    api = control(request)
    version = query_version(request, "swarm")
    body = await read_object(request, "swarm.Spec")
    view = await api.call(SWARM_INSPECT, Empty())
    if version != view.version:
        raise Conflict(
            f"update out of sequence: the swarm is at version {view.version}, not {version}"
        )
    shown = cluster_json(view)["Spec"]
    _refuse_other_changes(body, shown)
    task = body.get_obj("Orchestration")
    dispatcher = body.get_obj("Dispatcher")
    ca = body.get_obj("CAConfig")
    encryption = body.get_obj("EncryptionConfig")
    await api.call(
        SWARM_UPDATE,
        SwarmUpdate(
            task_history_limit=task.get_int("TaskHistoryRetentionLimit") if task else None,
            heartbeat_period=_seconds(dispatcher, "HeartbeatPeriod"),
            cert_expiry=_seconds(ca, "NodeCertExpiry"),
            autolock=encryption.get_bool("AutoLockManagers") if encryption else None,
        ),
    )
    for role, flag in (
        (NodeRole.WORKER, "rotateWorkerToken"),
        (NodeRole.MANAGER, "rotateManagerToken"),
    ):
        if query_bool(request, flag):
            await api.call(JOIN_TOKEN, JoinTokenRequest(role=role, rotate=True))
    if query_bool(request, "rotateManagerUnlockKey"):
        await api.call(UNLOCK_KEY, UnlockKeyRequest(rotate=True))
    return empty_response()


async def unlock_key(request: web.Request) -> web.Response:
    """``GET /swarm/unlockkey``: what `docker swarm unlock-key` prints."""
    reply = await control(request).call(UNLOCK_KEY, UnlockKeyRequest())
    return json_response({"UnlockKey": reply.key})


def _refuse_other_changes(body: Body, shown: dict[str, Any]) -> None:
    for section, current in shown.items():
        given = body.get(section)
        if given is None or not isinstance(current, dict) or not isinstance(given, dict):
            if given is not None and given != current and section not in ("Name", "Labels"):
                raise InvalidArgument(f"Spec.{section} cannot be changed by swarmlite")
            continue
        for field, value in given.items():
            if (section, field) in _UPDATABLE:
                continue
            if value != current.get(field, _zero(value)):
                raise InvalidArgument(
                    f"Spec.{section}.{field} cannot be changed by swarmlite",
                    hint="swarmlite changes the task history limit, dispatcher heartbeat, "
                    "certificate expiry and autolock",
                )
    known = {name.lower() for name in shown}
    for given_name in body.keys():  # noqa: SIM118 - Body is not a dict
        if given_name.lower() not in known:
            raise InvalidArgument(f"Spec.{given_name} is not supported by swarmlite")


def _zero(value: Any) -> Any:
    """What Go leaves out of the JSON it shows: a zero of the value's kind."""
    return type(value)() if isinstance(value, bool | int | float | str | list | dict) else None


def _seconds(section: Body | None, name: str) -> float | None:
    if section is None:
        return None
    nanos = section.get_int(name)
    return nanos / 1e9 if section.get(name) is not None else None
