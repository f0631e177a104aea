"""The rule that gives services the node's Docker API socket where they bind the runtime's.

Swarm tools (Traefik, Portainer's agent, visualizers, auto-updaters) run as services that
bind-mount ``/var/run/docker.sock`` and expect to see the swarm through it. On a swarmlite
node that socket is a plain dockerd, so the node gives such a mount the source of its own
Docker Engine API socket instead (the cluster's services and tasks, and the node's
containers), unless the service carries the label ``com.swarmlite.docker-socket=runtime``
(as a service label, ``deploy.labels`` or ``service create --label``, or as a container
label, ``labels`` or ``--container-label``). Tasks carry their service's labels from when
they were made (``Task.service_labels``), and a change of service labels alone replaces no
task, as in swarm: such a change takes effect with the next task (``service update
--force``); a container label is part of the task template, so changing it rolls the tasks.

Owns which mounts match and what opts out, so that the agent (which swaps the source when
it makes the container) and compose (which says so in ``stack config``) agree. Owns no
paths of a node: the agent adds its runtime's socket path to ``RUNTIME_SOCKETS``. The
stored spec never changes; only the container's mount does.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Mapping

DOCKER_SOCKET_LABEL = "com.swarmlite.docker-socket"
KEEP_RUNTIME = "runtime"  # the runtime's own socket, as the service wrote it
GIVE_SWARMLITE = "swarmlite"  # the default: the node's Docker API socket
DOCKER_SOCKET_VALUES = (GIVE_SWARMLITE, KEEP_RUNTIME)
# Where Docker's socket is on every distribution (/var/run links to /run on most).
RUNTIME_SOCKETS = frozenset({"/var/run/docker.sock", "/run/docker.sock"})


def keeps_runtime_socket(*labels: Mapping[str, str]) -> bool:
    """Whether any of these label sets (service, container) opts out of the swap."""
    return any(found.get(DOCKER_SOCKET_LABEL) == KEEP_RUNTIME for found in labels)


def binds_runtime_socket(mount_type: str, source: str, node_sockets: Collection[str] = ()) -> bool:
    """Whether a mount binds the runtime's socket: a bind mount from one of
    `RUNTIME_SOCKETS` or of `node_sockets` (the node's own runtime socket paths)."""
    if mount_type != "bind" or not source.startswith("/"):
        return False
    path = posixpath.normpath(source)
    if path.startswith("//"):  # POSIX keeps a leading "//"; a bind source means "/"
        path = "/" + path.lstrip("/")
    return path in RUNTIME_SOCKETS or path in node_sockets
