"""Generic resources on a real cluster: a GPU job lands only where GPUs are advertised, each
task gets its own GPU in its environment, and a job asking more than any node has stays
pending with the reason in `service ps`.

A cluster of this module's own: m1 (manager, no GPU) and w1 (worker, started with
`swarmlite join --node-generic-resource gpu=GPU-aaa --node-generic-resource gpu=GPU-bbb`),
each a real daemon on its own private dockerd (this directory's StackCluster). The stack
is gpu.yml: `train`, two replicas, each reserving one gpu through compose's
`deploy.resources.reservations.generic_resources`. What a user would check is checked:
`node inspect` shows what w1 advertises, the containers run only on w1's dockerd, and
`docker inspect` of each (on w1's dockerd) shows DOCKER_RESOURCE_GPU with one GPU id,
the two tasks holding different ones.

Marked `integration` (by tests/integration/conftest.py); needs root, docker.io and
busybox-static, as the other stack tests do. Run it under the shared lock:
`flock /tmp/swarmlite-heavy.lock python -m pytest -q -m "" <this file>`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from swarmlite.testing.dockerd import engine_json
from swarmlite.testing.loadfile import load_file

HERE = Path(__file__).resolve().parent
COMPOSE = HERE / "gpu.yml"
STACK = "ml"
TRAIN = f"{STACK}_train"
GPUS = ("GPU-aaa", "GPU-bbb")
WAIT = 90.0

pytestmark = pytest.mark.timeout(300)


def _stack_harness() -> ModuleType:
    """This directory's conftest.py as a module of its own (as test_metrics.py loads it),
    for a cluster of our own with more flags on join."""
    return load_file("swarmlite_stack_harness", HERE / "conftest.py")


@pytest.fixture(scope="module")
def gpu_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """m1 (manager, no GPU) and w1 (worker with two named GPUs), each on its own dockerd."""
    stacks = _stack_harness()
    made = stacks.StackCluster(stacks.harness.Cluster(tmp_path_factory.mktemp("gpu").resolve()))
    try:
        m1 = made.init("m1")
        gpu_flags = [arg for gpu in GPUS for arg in ("--node-generic-resource", f"gpu={gpu}")]
        made.join("w1", "worker", m1, *gpu_flags)
        made.cluster.heal()
        yield made
    finally:
        made.close()


def _env(cluster: Any, container: Any) -> list[str]:
    data = engine_json(
        cluster.dockerds[container.node].socket, "GET", f"/containers/{container.id}/json"
    )
    env: list[str] = data["Config"]["Env"]
    return env


def test_nodes_show_what_they_advertise(gpu_cluster: Any) -> None:
    shown = json.loads(gpu_cluster.ok("node", "inspect", "w1"))
    assert shown[0]["Description"]["Resources"]["GenericResources"] == [
        {"NamedResourceSpec": {"Kind": "gpu", "Value": gpu}} for gpu in GPUS
    ]
    plain = json.loads(gpu_cluster.ok("node", "inspect", "m1"))
    assert "GenericResources" not in plain[0]["Description"]["Resources"]


def test_gpu_tasks_run_only_where_gpus_are_each_with_its_own(gpu_cluster: Any) -> None:
    done = gpu_cluster.deploy(STACK, COMPOSE)
    assert done.returncode == 0, f"stack deploy exited {done.returncode}: {done.stderr}"
    service_id = gpu_cluster.inspect(TRAIN)["id"]

    def both_running() -> list[Any] | None:
        found: list[Any] = gpu_cluster.running(**{"swarmlite.service": service_id})
        return found if len(found) == 2 else None

    running = gpu_cluster.cluster.wait("both train tasks running", both_running, WAIT)
    assert {c.node for c in running} == {"w1"}
    given = []
    for container in running:
        gpu_vars = [e for e in _env(gpu_cluster, container) if e.startswith("DOCKER_RESOURCE_")]
        assert len(gpu_vars) == 1, gpu_vars
        name, _, value = gpu_vars[0].partition("=")
        assert name == "DOCKER_RESOURCE_GPU"
        given.append(value)
    assert sorted(given) == list(GPUS)  # one GPU each, never the same one

    # The stored tasks say the same: assigned on w1, the GPU each container was given.
    names = gpu_cluster.node_names()
    tasks = [t for t in gpu_cluster.tasks(TRAIN) if t["status"]["state"] == "running"]
    assert {names[t["node_id"]] for t in tasks} == {"w1"}
    by_task = {t["id"]: t["assigned_generic_resources"] for t in tasks}
    for container in running:
        (assigned,) = by_task[container.task]
        env = _env(gpu_cluster, container)
        assert f"DOCKER_RESOURCE_GPU={assigned['value']}" in env


def test_a_job_asking_more_than_any_node_has_stays_pending_saying_why(
    gpu_cluster: Any,
) -> None:
    gpu_cluster.ok(
        "service", "create", "-d", "--name", "greedy", "--generic-resource", "gpu=3",
        "swl/web:1",
    )  # fmt: skip
    reason = "no suitable node (insufficient resources on 2 nodes (gpu))"
    gpu_cluster.cluster.wait(
        "greedy's task to be pending with the reason",
        lambda: [
            t
            for t in gpu_cluster.tasks("greedy")
            if t["status"]["state"] == "pending" and t["status"]["pending_reason"] == reason
        ],
        WAIT,
    )
    shown = gpu_cluster.ok("service", "ps", "--no-trunc", "greedy")
    (row,) = [line for line in shown.splitlines()[1:] if line.strip()]
    assert "Pending" in row and f'"{reason}"' in row, shown
    assert (
        gpu_cluster.all_containers(**{"swarmlite.service": gpu_cluster.inspect("greedy")["id"]})
        == []
    )
