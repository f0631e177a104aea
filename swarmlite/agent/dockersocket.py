"""This node's side of `api.dockersocket`: the Docker API socket where a task binds the runtime's.

Owns the node's two paths (its container runtime's socket, its own Docker Engine API
socket) and the change to a task's mounts, made on the copy of the task that becomes the
container (the executor's), never on the stored spec. Does not own the rule of which mounts
match and what opts out (`api.dockersocket`, shared with compose's notice), nor where the
paths come from (daemon.py knows them).
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from swarmlite.api import Task
from swarmlite.api.dockersocket import binds_runtime_socket, keeps_runtime_socket
from swarmlite.log import kv

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DockerSocketSwap:
    api_socket: str  # this node's Docker Engine API socket: the source given instead
    runtime_sockets: frozenset[str] = frozenset()  # this node's runtime socket path(s)

    @classmethod
    def for_node(cls, api_socket: str, runtime_sockets: Iterable[str]) -> DockerSocketSwap:
        """From the node's paths; relative or empty ones (not unix sockets) are left out."""
        paths = frozenset(posixpath.normpath(p) for p in runtime_sockets if p.startswith("/"))
        return cls(api_socket=api_socket, runtime_sockets=paths - {api_socket})

    def apply(self, task: Task) -> Task:
        """`task` with every bind of the runtime's socket sourced from the API socket; the
        same object when none matches or the service keeps the runtime's socket."""
        container = task.spec.container
        if keeps_runtime_socket(task.service_labels, container.labels):
            return task
        mounts = list(container.mounts)
        swapped = []
        for i, mount in enumerate(mounts):
            if binds_runtime_socket(mount.type, mount.source, self.runtime_sockets):
                mounts[i] = msgspec.structs.replace(mount, source=self.api_socket)
                swapped.append(mount.target)
        if not swapped:
            return task
        log.info(
            "task binds the runtime's socket: given this node's Docker API socket %s",
            kv(task=task.id, targets=",".join(swapped), source=self.api_socket),
        )
        container = msgspec.structs.replace(container, mounts=mounts)
        spec = msgspec.structs.replace(task.spec, container=container)
        return msgspec.structs.replace(task, spec=spec)
