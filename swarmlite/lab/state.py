"""The record of one lab: its names, its addresses and ``<dir>/lab.json``.

Owns what a lab is called (an id derived from its directory, so that the names of a lab
whose record was lost can still be found: every namespace and cgroup starts with
``swl-<id>``), where each host's files and sockets live under the lab directory, and the
journal of everything ``up`` made. Does not make anything itself (``lab.netns``,
``lab.procs``, ``lab.lab``).

Invariant: lab.json is rewritten atomically each time something is recorded. A thing
that can be found by name (a namespace, a cgroup, a file) is recorded *before* it is made,
a process right after its pid is known, so that a crash of ``up`` at any point leaves a
record that covers everything ``down`` must remove (processes started but not yet recorded
are found through the lab's cgroups and namespaces).
A malformed lab.json (msgspec's decode errors) becomes InvalidArgument.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import msgspec

from swarmlite.errors import InvalidArgument

LAB_FILE = "lab.json"
DIR_ENV = "SWARMLITE_LAB_DIR"
DEFAULT_DIR = "/var/lib/swarmlite-lab"
SOCKET_LIMIT = 100  # sun_path holds 108 bytes; keep a margin
CLUSTER_PORT = 2377
REGISTRY_PORT = 5000
METRICS_PORT = 9323  # each host's daemon's metrics, with `lab up --metrics`
REGISTRY_HOST_OCTET = 250  # the registry's address in the lab's /24
MAX_NODES = 200


def lab_id(directory: Path) -> str:
    """Six hex digits naming the lab kept in ``directory`` (stable for that path)."""
    return hashlib.sha256(os.fsencode(str(directory))).hexdigest()[:6]


def name_prefix(ident: str) -> str:
    """What every namespace and cgroup of the lab is called: ``swl-<id>-...``."""
    return f"swl-{ident}-"


class Host(msgspec.Struct, kw_only=True):
    """One simulated host: a network namespace with its dockerd and swarmlite daemon."""

    name: str  # h1, h2, ...
    netns: str  # swl-<id>-h1
    addr: str  # its underlay address, 198.18.X.i
    role: str  # manager or worker
    dir: str  # <lab>/h1
    cgroup_parent: str  # dockerd's --cgroup-parent (containers), without the leading /
    metrics_addr: str = ""  # where its daemon serves Prometheus metrics ("": it does not)
    # What serves its Engine API on `docker_socket`: "docker" (dockerd) or "podman"
    # (`podman system service`, configured and stored under `podman_dir`).
    runtime: str = "docker"

    @property
    def podman_dir(self) -> Path:
        """A Podman host's containers.conf, storage.conf, registries.conf and storage."""
        return Path(self.dir) / "podman"

    @property
    def runtime_log(self) -> Path:
        return Path(self.dir) / ("podman.log" if self.runtime == "podman" else "dockerd.log")

    @property
    def docker_socket(self) -> Path:
        """The host's own dockerd (its container runtime). Not `docker.sock`: that name,
        beside the swarmlite socket, is the swarmlite daemon's Docker Engine API."""
        return Path(self.dir) / "dockerd.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_socket}"

    @property
    def docker_etc(self) -> Path:
        """What the host's dockerd sees as /etc/docker (bind-mounted in its own mount
        namespace), so that the machine's never applies and a test can make it trust a
        registry's CA: ``certs.d/<host:port>/ca.crt``, read by dockerd at each pull."""
        return Path(self.dir) / "etc-docker"

    @property
    def docker_certs_dir(self) -> Path:
        return self.docker_etc / "certs.d"

    @property
    def swarmlite_dir(self) -> Path:
        return Path(self.dir) / "swarmlite"

    @property
    def swarmlite_socket(self) -> Path:
        return Path(self.dir) / "swarmlite.sock"

    @property
    def swarmlite_host(self) -> str:
        return f"unix://{self.swarmlite_socket}"

    @property
    def cluster_addr(self) -> str:
        return f"{self.addr}:{CLUSTER_PORT}"


class Proc(msgspec.Struct, kw_only=True):
    """A process the lab started, named by pid and start time (so a reused pid is not it)."""

    what: str  # dockerd, registry, swarmlite
    host: str  # h1..hN, or "registry"
    pid: int
    start: int  # field 22 of /proc/<pid>/stat, clock ticks since boot


class Link(msgspec.Struct, kw_only=True):
    netns: str
    ifname: str


class LabState(msgspec.Struct, kw_only=True):
    """lab.json."""

    version: int = 1
    dir: str
    lab_id: str
    subnet: str  # 198.18.X.0/24
    registry: str  # 198.18.X.250:5000
    nodes: int
    managers: int
    phase: str = "starting"  # starting, up, stopping
    created_dir: bool = False
    hosts: list[Host] = msgspec.field(default_factory=list)
    namespaces: list[str] = msgspec.field(default_factory=list)
    links: list[Link] = msgspec.field(default_factory=list)
    processes: list[Proc] = msgspec.field(default_factory=list)
    cgroups: list[str] = msgspec.field(default_factory=list)  # relative to each hierarchy
    paths: list[str] = msgspec.field(default_factory=list)  # relative to dir, creation order

    @property
    def prefix(self) -> str:
        return name_prefix(self.lab_id)

    @property
    def switch_netns(self) -> str:
        return self.prefix + "sw"

    @property
    def registry_netns(self) -> str:
        return self.prefix + "reg"

    @property
    def registry_addr(self) -> str:
        return self.registry.rpartition(":")[0]

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise InvalidArgument(
            f"the lab in {self.dir} has no host {name!r}",
            hint="its hosts are " + ", ".join(h.name for h in self.hosts),
        )


def state_path(directory: Path) -> Path:
    return directory / LAB_FILE


def load(directory: Path) -> LabState | None:
    """The lab recorded in ``directory``, or None when there is no lab.json."""
    path = state_path(directory)
    try:
        return msgspec.json.decode(path.read_bytes(), type=LabState)
    except FileNotFoundError:
        return None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidArgument(
            f"{path} is malformed: {exc}",
            hint="`swarmlite lab down` still removes what it finds by the lab's names",
        ) from exc


class Journal:
    """The lab's record, saved to lab.json after every change."""

    def __init__(self, state: LabState) -> None:
        self.state = state
        self.file = state_path(Path(state.dir))

    def save(self) -> None:
        tmp = self.file.with_name(LAB_FILE + ".tmp")
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(self.state)))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        tmp.replace(self.file)

    def phase(self, phase: str) -> None:
        self.state.phase = phase
        self.save()

    def namespace(self, name: str) -> None:
        if name not in self.state.namespaces:
            self.state.namespaces.append(name)
            self.save()

    def link(self, netns: str, ifname: str) -> None:
        self.state.links.append(Link(netns=netns, ifname=ifname))
        self.save()

    def process(self, proc: Proc) -> None:
        self.state.processes.append(proc)
        self.save()

    def cgroup(self, name: str) -> None:
        if name not in self.state.cgroups:
            self.state.cgroups.append(name)
            self.save()

    def path(self, path: Path) -> Path:
        """Record a file or directory under the lab dir that is about to be made."""
        rel = str(path.relative_to(self.state.dir))
        if rel not in self.state.paths:
            self.state.paths.append(rel)
            self.save()
        return path

    def mkdir(self, path: Path) -> Path:
        self.path(path)
        path.mkdir(parents=True, exist_ok=True)
        return path


def remove_state(directory: Path) -> None:
    for name in (LAB_FILE, LAB_FILE + ".tmp"):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
