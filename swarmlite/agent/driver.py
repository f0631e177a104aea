"""The contract between the agent and a container runtime (and, later, the network).

Owns the Protocols the node side programs against; `runtime/docker` implements them over
the Engine API, `testing.fakeruntime` in memory, and one contract suite runs against both.
Only `daemon.py` picks the implementation. Every method translates its runtime's errors
into swarmlite's (ImageNotFound, ContainerFailed, RuntimeUnavailable, ...).

Containers are found again after an agent restart by their labels
(``swarmlite.cluster``, ``swarmlite.task``, ``swarmlite.service``, ``swarmlite.slot``,
``swarmlite.node``): `list_containers` returns them, so the agent adopts what runs
instead of starting duplicates, and removes what is no longer assigned.

Secrets and configs (`ContainerRequest.files`) follow one rule in every runtime: their
content lives only in memory-backed files (a tmpfs, never a disk), readable only inside the
task's container (with the uid, gid and mode of the reference; on the host only by the
agent's user), and never in the runtime's data root: no archive upload into the container,
which would land in its writable layer. They exist on the host from `create` until the
container starts (then only the container's own mount holds them, until it ends), and are
removed when a create or start fails, at `remove`, and at agent start by
`remove_stale_files`. No log line or error message carries their content.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from swarmlite.api import Task
from swarmlite.api.control import MeshState, NetworkState
from swarmlite.api.registryauth import RegistryAuth

LABEL_CLUSTER = "swarmlite.cluster"
LABEL_TASK = "swarmlite.task"
LABEL_SERVICE = "swarmlite.service"
LABEL_SLOT = "swarmlite.slot"
LABEL_NODE = "swarmlite.node"


@dataclass(frozen=True)
class ContainerState:
    id: str
    task_id: str
    labels: dict[str, str]
    status: str  # created | running | exited | dead | ...
    exit_code: int | None = None
    health: str = ""  # "" (no healthcheck) | starting | healthy | unhealthy
    error: str = ""  # the runtime's own error message, when it has one
    started_at: float = 0.0
    finished_at: float = 0.0
    pid: int = 0  # the container's init process while it runs (its network namespace)


@dataclass(frozen=True)
class ContainerStats:
    """One reading of a container's resource use (cumulative counters since it started)."""

    cpu_seconds: float  # CPU time used, user + system
    memory_bytes: int  # memory in use, less the page cache the kernel can drop (as `docker stats`)
    memory_limit_bytes: int  # 0: no limit below the host's memory
    rx_bytes: int  # received on every interface of its network namespace but loopback
    tx_bytes: int


@dataclass(frozen=True)
class LogEntry:
    stream: str  # stdout | stderr
    timestamp: float
    line: str


@dataclass(frozen=True)
class RuntimeInfo:
    name: str  # "docker"
    version: str
    os: str
    arch: str
    nano_cpus: int
    memory_bytes: int


@dataclass(frozen=True)
class FileData:
    """A secret or config to place in the container at `target` (see the module's rule)."""

    target: str
    data: bytes = field(repr=False)  # never in a log line or a traceback's message
    uid: int = 0
    gid: int = 0
    mode: int = 0o444


@dataclass(frozen=True)
class ContainerRequest:
    """Everything a runtime needs to create a task's container."""

    task: Task
    name: str  # container name, unique on the node
    labels: dict[str, str]
    files: list[FileData] = field(default_factory=list)  # secrets and configs


class RuntimeDriver(Protocol):
    async def info(self) -> RuntimeInfo: ...

    async def pull(
        self,
        image: str,
        progress: Callable[[str], None] | None = None,
        *,
        auth: RegistryAuth | None = None,
    ) -> None:
        """Make `image` present (a no-op when it is); ImageNotFound when no one has it.
        `auth`: the service's credentials for the image's registry (never logged); a pull
        its registry refuses for want of them, or refuses them, says so and names it."""
        ...

    async def create(self, request: ContainerRequest) -> str:
        """Create (not start) the container; returns its id. Its files are placed in memory
        for it, readable inside it only; they are removed again if the create fails."""
        ...

    async def start(self, container_id: str) -> None:
        """Start it. Its files leave the host once it started (or could not start; a
        retryable error keeps them for the next try): only the container still sees them."""
        ...

    async def inspect(self, container_id: str) -> ContainerState:
        """NotFound if it is gone."""
        ...

    async def wait(self, container_id: str) -> int:
        """Until the container exits; its exit code."""
        ...

    async def stop(self, container_id: str, *, signal: str = "", grace: float = 10.0) -> None:
        """The stop signal, then SIGKILL after `grace` seconds; no error if it already exited."""
        ...

    async def remove(self, container_id: str) -> None:
        """Remove it (and its anonymous volumes, and any of its files still on the host);
        no error if it is already gone."""
        ...

    async def remove_stale_files(self) -> None:
        """Remove the secret and config files an earlier run of the agent left on this
        node, but those of containers still waiting to start ("created"). The agent calls
        it once at start, before it adopts containers."""
        ...

    async def list_containers(self, labels: dict[str, str]) -> list[ContainerState]:
        """Every container (running or not) carrying all of `labels`."""
        ...

    def logs(
        self, container_id: str, *, follow: bool = False, tail: int = -1, since: float = 0.0
    ) -> AsyncIterator[LogEntry]: ...

    async def stats(self, container_id: str) -> ContainerStats:
        """One reading of a running container's CPU, memory and network counters, at once
        (no waiting for a second sample); NotFound if it is gone or not running."""
        ...

    async def close(self) -> None: ...


class NetworkDriver(Protocol):
    """The node's networking: the WireGuard mesh, overlay networks, DNS, VIPs and the
    routing mesh. `network/` implements it; the agent calls it with what the dispatcher
    sends, and around each task's life."""

    async def apply_mesh(self, state: MeshState) -> None:
        """Make the WireGuard mesh match `state` (this node's address, its peers)."""
        ...

    async def apply_networks(self, state: NetworkState) -> None:
        """Make overlays, FDB entries, DNS records, VIPs and published ports match `state`."""
        ...

    async def attach(self, task: Task, pid: int) -> None:
        """Give the running container (its init process `pid`) an interface on each of
        the task's networks (task.networks), addresses, routes and MTU."""
        ...

    async def detach(self, task: Task) -> None:
        """Forget the task's interfaces (the kernel removes them with the container)."""
        ...

    async def prepare(self, task: Task) -> list[str]:
        """Before the task's container is created: wait until this node serves the task's
        networks, and return the addresses its resolv.conf must name (this node's DNS)."""
        ...

    async def mesh_requests(self) -> dict[str, int]:
        """Cumulative new connections the routing mesh of this node passed to each service
        (by service id; the connections to all its published ports, ingress and host mode)
        since its rules were made. A count goes down (to 0 for a service with one published
        port) when a port's rules are made again: read a decrease as a restart. Keep-alive
        requests on one connection count once. NetworkSetupFailure if it cannot be read."""
        ...

    async def close(self) -> None: ...
