"""A lab that mixes runtimes: h1 runs dockerd, h2 runs Podman (`swarmlite lab up --podman 1`).

One global service of a stack puts a task on each host, on the stack's overlay and behind
the routing mesh; the test checks what a user would: that the nodes say which runtime they
run, that h2's task is a Podman container, and that the published port answers from every
host with both tasks (each task serves its own hostname, so an answer names the task that
gave it). Marked `integration` (tests/integration/conftest.py): it needs root, docker.io,
docker-registry, busybox-static, podman and catatonit (scripts/setup installs them), and
runs under the shared heavy-test lock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from swarmlite.api import Task, TaskState
from swarmlite.api.control import ListRequest, TaskFilter
from swarmlite.api.routes import NODE_LS, TASK_LS
from swarmlite.lab import LabState, in_netns
from swarmlite.rpc import ControlClient
from swarmlite.testing.dockerd import engine_json
from swarmlite.testing.labkit import Lab, lab_up
from swarmlite.testing.netprobe import http_bodies

TIMEOUT = 180.0
PORT = 8093
# Each task serves its own hostname (the container's short id, on dockerd as on Podman).
STACK = """\
services:
  web:
    image: ${REGISTRY}/swl/web:1
    command: ["sh", "-c", "mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"]
    stop_grace_period: 1s
    ports: ['8093:80']
    deploy: {mode: global}
"""  # noqa: E501


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with lab_up("--nodes", "2", "--podman", "1") as made:
        assert "h1 docker, h2 podman" in made.shown
        yield made


def test_each_node_says_which_runtime_runs_its_tasks(lab: Lab) -> None:
    views = lab.control().call(NODE_LS, ListRequest()).nodes
    runtimes = {v.node.status.hostname: v.node.status.runtime.split(" ")[0] for v in views}
    assert runtimes == {"h1": "docker", "h2": "podman"}
    version = engine_json(lab.state.host("h2").docker_socket, "GET", "/version")
    assert "Podman Engine" in [c["Name"] for c in version["Components"]]


def _get(netns: str, addr: str, count: int) -> list[str]:
    """``count`` HTTP requests to ``addr``:PORT from inside ``netns``; the bodies answered."""
    return in_netns(netns, lambda: http_bodies(addr, PORT, count))


def test_a_stack_runs_on_docker_and_podman_behind_the_routing_mesh(
    lab: Lab, tmp_path: Path
) -> None:
    compose = tmp_path / "mix.yml"
    compose.write_text(STACK)
    lab.cli("stack", "deploy", "-c", str(compose), "mix")
    try:
        _serves_from_both(lab.state, lab.control())
    finally:
        lab.cli("stack", "rm", "mix")


def _serves_from_both(lab: LabState, client: ControlClient) -> None:
    hostnames = {
        v.node.id: v.node.status.hostname for v in client.call(NODE_LS, ListRequest()).nodes
    }

    def running() -> list[Task]:
        tasks = client.call(TASK_LS, TaskFilter(service="mix_web")).tasks
        return [t for t in tasks if t.status.state is TaskState.RUNNING]

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and len(running()) < 2:
        time.sleep(0.5)
    tasks = running()
    assert sorted(hostnames[t.node_id] for t in tasks) == ["h1", "h2"], tasks

    # Each task is a container of its own host's runtime, and serves that container's
    # hostname (its short id).
    served: dict[str, str] = {}
    for task in tasks:
        host = lab.host(hostnames[task.node_id])
        found = engine_json(
            host.docker_socket,
            "GET",
            "/containers/json?filters="
            + quote(json.dumps({"label": [f"swarmlite.task={task.id}"]})),
        )
        assert len(found) == 1, (host.name, found)
        served[found[0]["Id"][:12]] = host.name
    assert sorted(served.values()) == ["h1", "h2"]

    # Through the mesh on each host's address, from outside the cluster (the registry's
    # namespace, on the same underlay): first until both tasks answer there, then 40
    # requests, all answered, by both (the mesh spreads new connections at random).
    outside = lab.registry_netns
    for entry in ("h1", "h2"):
        addr = lab.host(entry).addr
        deadline = time.monotonic() + TIMEOUT
        seen: set[str] = set()
        while time.monotonic() < deadline and seen != set(served):
            seen |= set(_get(outside, addr, 4))
            time.sleep(0.2)
        assert seen == set(served), f"through {entry}: answered by {seen}, tasks {served}"
        bodies = _get(outside, addr, 40)
        assert len(bodies) == 40, f"through {entry}: {len(bodies)} of 40 answered"
        assert set(bodies) == set(served), f"through {entry}: answered by {set(bodies)}"
