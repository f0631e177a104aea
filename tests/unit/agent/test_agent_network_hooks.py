"""The agent's network hooks: DNS servers in the container, attachment once it runs,
and the node's network state applied in order."""

from __future__ import annotations

import asyncio

import msgspec

from swarmlite.agent.executor import Executor
from swarmlite.agent.worker import Worker
from swarmlite.api import Attachment, TaskState
from swarmlite.api.control import MeshState, NetworkState
from swarmlite.api.task import Task


class RecordingNetwork:
    """A NetworkDriver that records what the agent asked of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def apply_mesh(self, state: MeshState) -> None:
        self.calls.append(("mesh", state.address))

    async def apply_networks(self, state: NetworkState) -> None:
        await asyncio.sleep(0)  # an apply that yields must still not be overtaken
        self.calls.append(("networks", len(state.networks)))

    async def attach(self, task: Task, pid: int) -> None:
        self.calls.append(("attach", (task.id, pid)))

    async def detach(self, task: Task) -> None:
        self.calls.append(("detach", task.id))

    async def prepare(self, task: Task) -> list[str]:
        return ["10.0.1.1"]

    async def close(self) -> None:
        return None


def on_network(task: Task) -> Task:
    return msgspec.structs.replace(
        task, networks=[Attachment(network_id="net1", address="10.0.1.5/24")]
    )


async def test_a_task_on_a_network_gets_the_node_dns_and_is_attached_once_it_runs(
    driver, clock, task_factory
) -> None:
    network = RecordingNetwork()
    task = on_network(task_factory())
    ex = Executor(task, driver, clock, cluster_id="cl1", node_id="n1", network=network)
    while ex.status.state is not TaskState.RUNNING:
        assert await ex.step() is not None
    request = driver.container(ex.container_id).request
    assert request.task.spec.container.dns[0] == "10.0.1.1"
    state = await driver.inspect(ex.container_id)
    assert network.calls == [("attach", (task.id, state.pid))]
    assert state.pid > 0


async def test_a_task_without_networks_is_left_alone(driver, clock, task_factory) -> None:
    network = RecordingNetwork()
    ex = Executor(task_factory(), driver, clock, cluster_id="cl1", node_id="n1", network=network)
    while ex.status.state is not TaskState.RUNNING:
        assert await ex.step() is not None
    assert network.calls == []
    assert driver.container(ex.container_id).request.task.spec.container.dns == []


async def test_the_worker_applies_mesh_and_network_state_in_the_order_they_came(
    driver, clock
) -> None:
    network = RecordingNetwork()

    async def send(message: object) -> None:
        return None

    worker = Worker("n1", "cl1", driver, clock, send, network=network)
    # Before run(): kept, then applied first thing.
    await worker.on_message(MeshState(address="198.18.128.1/20", peers=[]))
    running = asyncio.create_task(worker.run())
    for _ in range(20):
        await asyncio.sleep(0)
    await worker.on_message(NetworkState(networks=[], endpoints=[], ports=[]))
    await worker.on_message(MeshState(address="198.18.128.9/20", peers=[]))
    for _ in range(50):
        await asyncio.sleep(0)
    worker.stop()
    await running
    assert network.calls == [
        ("mesh", "198.18.128.1/20"),
        ("networks", 0),
        ("mesh", "198.18.128.9/20"),
    ]
