"""The runtime of a node that has none: every task it is given is refused, with the reason.

Owns nothing but the refusal, so that a node without a reachable dockerd still takes part
in the cluster (as a manager, say) and its tasks end REJECTED with a message that says
what to fix, instead of hanging.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from swarmlite.agent.driver import (
    ContainerRequest,
    ContainerState,
    ContainerStats,
    LogEntry,
    RuntimeInfo,
)
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.errors import NotFound, RuntimeFailure


class NoRuntime:
    def __init__(self, docker_host: str) -> None:
        self.docker_host = docker_host

    def _refuse(self) -> RuntimeFailure:
        return RuntimeFailure(
            f"this node has no container runtime (nothing answers at {self.docker_host})",
            hint="start dockerd (or give the node --docker-host), then restart swarmlite",
        )

    async def info(self) -> RuntimeInfo:
        raise self._refuse()

    async def pull(
        self,
        image: str,
        progress: Callable[[str], None] | None = None,
        *,
        auth: RegistryAuth | None = None,
    ) -> None:
        raise self._refuse()

    async def create(self, request: ContainerRequest) -> str:
        raise self._refuse()

    async def start(self, container_id: str) -> None:
        raise self._refuse()

    async def inspect(self, container_id: str) -> ContainerState:
        raise NotFound(f"container {container_id} not found")

    async def wait(self, container_id: str) -> int:
        raise self._refuse()

    async def stop(self, container_id: str, *, signal: str = "", grace: float = 10.0) -> None:
        return None

    async def remove(self, container_id: str) -> None:
        return None

    async def remove_stale_files(self) -> None:
        return None  # it never placed a file

    async def list_containers(self, labels: dict[str, str]) -> list[ContainerState]:
        return []

    def logs(
        self, container_id: str, *, follow: bool = False, tail: int = -1, since: float = 0.0
    ) -> AsyncIterator[LogEntry]:
        return self._no_logs()

    async def _no_logs(self) -> AsyncIterator[LogEntry]:
        nothing: tuple[LogEntry, ...] = ()  # no container ever ran here
        for entry in nothing:
            yield entry

    async def stats(self, container_id: str) -> ContainerStats:
        raise NotFound(f"container {container_id} not found")

    async def close(self) -> None:
        return None
