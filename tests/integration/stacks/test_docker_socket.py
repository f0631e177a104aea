"""A service that binds /var/run/docker.sock sees the swarm through it, as on a swarm node.

One manager (m1) and two workers (w1, w2), each a real daemon with its own private dockerd
(the `stacks` fixture of this directory, module-scoped: this module's own cluster); no
dockerd of theirs is at /var/run/docker.sock. The stack is docker-socket.yml: `probe`
(busybox, on the manager) binds /var/run/docker.sock and the host's static docker CLI and
prints what `docker service ls` and `docker service ps` say through that socket; `web` has
two tasks. The test reads the probe's output with `swarmlite service logs`, and checks on
m1's dockerd that the container was given m1's Docker API socket while the stored spec
keeps the path the file names.

Marked `integration` (by tests/integration/conftest.py); needs root, docker.io,
busybox-static and /usr/local/bin/docker (a static docker CLI), as the other stack tests do.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from swarmlite.testing.dockerd import engine_json

HERE = Path(__file__).resolve().parent
COMPOSE = HERE / "docker-socket.yml"
DOCKER_CLI = "/usr/local/bin/docker"
STACK = "tools"
PROBE, WEB = f"{STACK}_probe", f"{STACK}_web"
LABEL_SERVICE = "swarmlite.service"
WAIT = 90.0

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which(DOCKER_CLI) is None, reason=f"{DOCKER_CLI} is not installed"),
]

StackCluster = Any  # conftest.StackCluster, reached through the `stacks` fixture


def _printed(stacks: StackCluster, prefix: str) -> set[str]:
    """The names the probe printed after `prefix` (service= or task=), so far."""
    out: str = stacks.ok("service", "logs", "--raw", PROBE)
    return {line.removeprefix(prefix) for line in out.splitlines() if line.startswith(prefix)}


def test_a_service_binding_the_docker_socket_lists_its_stack_through_it(
    stacks: StackCluster,
) -> None:
    done = stacks.deploy(STACK, COMPOSE)
    assert done.returncode == 0, f"stack deploy exited {done.returncode}: {done.stderr}"
    assert (
        "services.probe.volumes[1]: /var/run/docker.sock is given swarmlite's Docker API socket"
        in done.stderr
    ), done.stderr

    services = stacks.cluster.wait(
        "the probe to list the stack's services",
        lambda: _printed(stacks, "service=") >= {PROBE, WEB},
        WAIT,
    )
    assert services
    tasks = stacks.cluster.wait(
        "the probe to list the stack's tasks",
        lambda: _printed(stacks, "task=") >= {f"{PROBE}.1", f"{WEB}.1", f"{WEB}.2"},
        WAIT,
    )
    assert tasks

    # The container was given m1's Docker API socket; the stored spec names the file's path.
    m1 = stacks.cluster.nodes["m1"]
    (container,) = stacks.running(**{LABEL_SERVICE: stacks.inspect(PROBE)["id"]})
    assert container.node == "m1"
    mounts = engine_json(stacks.dockerds["m1"].socket, "GET", f"/containers/{container.id}/json")[
        "HostConfig"
    ]["Mounts"]
    sockets = [m["Source"] for m in mounts if m["Target"] == "/var/run/docker.sock"]
    assert sockets == [str(Path(m1.data_dir) / "docker.sock")], mounts
    stored = stacks.inspect(PROBE)["spec"]["task"]["container"]["mounts"]
    assert [m["source"] for m in stored if m["target"] == "/var/run/docker.sock"] == [
        "/var/run/docker.sock"
    ]
