"""A bind of the runtime's socket is given the node's Docker API socket, unless opted out."""

from __future__ import annotations

import msgspec
import pytest

from swarmlite.agent.dockersocket import DockerSocketSwap
from swarmlite.agent.executor import Executor
from swarmlite.api import Mount, TaskState
from swarmlite.api.dockersocket import DOCKER_SOCKET_LABEL, binds_runtime_socket

API = "/run/swarmlite/docker.sock"
NODE_RUNTIME = "/tmp/lab/h1/dockerd.sock"  # a node's --docker-host, as in the test harness
SWAP = DockerSocketSwap.for_node(API, [NODE_RUNTIME, "tcp://10.0.0.1:2375", ""])


def bind(
    source: str,
    target: str = "/var/run/docker.sock",
    *,
    read_only: bool = False,
    propagation: str = "",
) -> Mount:
    return Mount(
        type="bind",
        source=source,
        target=target,
        read_only=read_only,
        bind_propagation=propagation,
    )


@pytest.mark.parametrize(
    ("mount_type", "source", "matches"),
    [
        ("bind", "/var/run/docker.sock", True),
        ("bind", "/run/docker.sock", True),
        ("bind", "//var/run/./docker.sock", True),  # the same path, spelled otherwise
        ("bind", NODE_RUNTIME, True),  # the node's own runtime socket
        ("bind", "/var/run/docker.sock.bak", False),
        ("bind", "/var/run", False),  # the directory: left alone
        ("bind", "/srv/docker.sock", False),
        ("volume", "/var/run/docker.sock", False),  # a volume's source is a name
        ("tmpfs", "", False),
        ("bind", "var/run/docker.sock", False),  # relative: not a host path
    ],
)
def test_which_mounts_bind_the_runtime_socket(mount_type: str, source: str, matches: bool) -> None:
    assert binds_runtime_socket(mount_type, source, SWAP.runtime_sockets) is matches


def test_the_node_paths_are_only_its_unix_paths_and_never_the_api_socket() -> None:
    assert SWAP.runtime_sockets == {NODE_RUNTIME}
    assert DockerSocketSwap.for_node(API, [API]).runtime_sockets == frozenset()


def test_only_the_socket_binds_change_and_keep_their_target_and_options(task_factory) -> None:
    mounts = [
        bind("/var/run/docker.sock", read_only=True),
        bind("/usr/local/bin/docker", "/usr/local/bin/docker", read_only=True),
        bind(NODE_RUNTIME, "/run/docker.sock", propagation="rprivate"),
        Mount(type="volume", source="data", target="/data"),
    ]
    task = task_factory(mounts=mounts)
    made = SWAP.apply(task).spec.container.mounts
    assert made == [
        bind(API, read_only=True),
        mounts[1],
        bind(API, "/run/docker.sock", propagation="rprivate"),
        mounts[3],
    ]
    assert task.spec.container.mounts == mounts  # the task given is left as it was


def test_a_task_without_such_a_bind_is_the_same_object(task_factory) -> None:
    task = task_factory(mounts=[bind("/srv/app", "/app")])
    assert SWAP.apply(task) is task


@pytest.mark.parametrize("where", ["service", "container"])
def test_the_label_runtime_keeps_the_runtime_socket(task_factory, where: str) -> None:
    label = {DOCKER_SOCKET_LABEL: "runtime"}
    task = task_factory(
        mounts=[bind("/var/run/docker.sock")], labels=label if where == "container" else {}
    )
    if where == "service":
        task = msgspec.structs.replace(task, service_labels=label)
    assert SWAP.apply(task) is task


@pytest.mark.parametrize("value", ["swarmlite", "", "Runtime"])
def test_any_other_label_value_gives_the_api_socket(task_factory, value: str) -> None:
    task = task_factory(mounts=[bind("/var/run/docker.sock")], labels={DOCKER_SOCKET_LABEL: value})
    assert SWAP.apply(task).spec.container.mounts[0].source == API


async def test_the_executor_makes_the_container_with_it_and_reports_the_spec_as_stored(
    driver, clock, task_factory
) -> None:
    task = task_factory(state=TaskState.PREPARING, mounts=[bind("/var/run/docker.sock")])
    ex = Executor(task, driver, clock, cluster_id="cl1", node_id="n1", docker_socket=SWAP)
    starting = await ex.step()
    assert starting is not None and starting.state is TaskState.STARTING
    request = driver.container(ex.container_id).request
    assert request.task.spec.container.mounts == [bind(API)]
    assert ex.task.spec.container.mounts == [bind("/var/run/docker.sock")]


async def test_without_a_swap_the_executor_keeps_the_mount(driver, clock, task_factory) -> None:
    task = task_factory(state=TaskState.PREPARING, mounts=[bind("/var/run/docker.sock")])
    ex = Executor(task, driver, clock, cluster_id="cl1", node_id="n1")
    await ex.step()
    request = driver.container(ex.container_id).request
    assert request.task.spec.container.mounts == [bind("/var/run/docker.sock")]
