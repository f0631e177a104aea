"""The agent's network hooks: DNS servers in the container, attachment once it runs,
and the node's network state applied in order, a failed one again until it works or a
newer one replaces it."""

from __future__ import annotations

import asyncio

import msgspec

from swarmlite.agent.executor import Executor
from swarmlite.agent.worker import Worker
from swarmlite.api import Attachment, TaskState
from swarmlite.api.control import MeshChanges, MeshPeer, MeshState, NetworkInfo, NetworkState
from swarmlite.api.task import Task
from swarmlite.errors import NetworkSetupFailure


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

    async def mesh_requests(self) -> dict[str, int]:
        return {}

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


class FailingNetwork(RecordingNetwork):
    """Fails every network state it is given `failures[n]` times, by its number of networks."""

    def __init__(self, failures: dict[int, int]) -> None:
        super().__init__()
        self.failures = failures

    async def apply_networks(self, state: NetworkState) -> None:
        count = len(state.networks)
        self.calls.append(("networks", count))
        if self.failures.get(count, 0) > 0:
            self.failures[count] -= 1
            raise NetworkSetupFailure(f"bridge for state {count} not ready")


def networks(count: int) -> NetworkState:
    return NetworkState(networks=[_info(n) for n in range(count)], endpoints=[], ports=[])


def _info(n: int) -> NetworkInfo:
    return NetworkInfo(network_id=f"net{n}", name=f"n{n}", vni=4096 + n, subnet="", gateway="")


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def test_a_network_state_that_failed_is_applied_again_until_it_works(driver, clock) -> None:
    network = FailingNetwork({1: 2})
    worker = Worker("n1", "cl1", driver, clock, _nothing, network=network)
    running = asyncio.create_task(worker.run())
    await settle()
    await worker.on_message(networks(1))
    await settle()
    assert network.calls == [("networks", 1)]
    await clock.run_for(0.2)  # the first pause
    await settle()
    assert network.calls == [("networks", 1)] * 2
    await clock.run_for(0.4)  # twice as long, then it works and is not tried again
    await settle()
    await clock.run_for(10)
    worker.stop()
    await running
    assert network.calls == [("networks", 1)] * 3


async def test_a_failed_network_state_gives_way_to_a_newer_one(driver, clock) -> None:
    network = FailingNetwork({1: 100})
    worker = Worker("n1", "cl1", driver, clock, _nothing, network=network)
    running = asyncio.create_task(worker.run())
    await settle()
    await worker.on_message(networks(1))
    await settle()
    await worker.on_message(networks(2))
    await settle()
    await clock.run_for(10)
    worker.stop()
    await running
    assert network.calls == [("networks", 1), ("networks", 2)]


async def _nothing(message: object) -> None:
    return None


class PeerRecordingNetwork(RecordingNetwork):
    """Records the whole mesh states it is asked to apply."""

    def __init__(self) -> None:
        super().__init__()
        self.meshes: list[MeshState] = []

    async def apply_mesh(self, state: MeshState) -> None:
        self.meshes.append(state)


def _peer(n: int) -> MeshPeer:
    return MeshPeer(
        node_id=f"n{n}",
        public_key=f"key{n}",
        endpoint=f"198.18.0.{n}:51820",
        mesh_address=f"198.18.128.{n}",
    )


async def test_the_worker_applies_mesh_changes_merged_into_its_whole_mesh(driver, clock) -> None:
    network = PeerRecordingNetwork()

    async def send(message: object) -> None:
        return None

    worker = Worker("n1", "cl1", driver, clock, send, network=network)
    running = asyncio.create_task(worker.run())
    # Changes before any whole state have nothing to merge into: ignored.
    await worker.on_message(MeshChanges(peers=[_peer(9)]))
    await worker.on_message(MeshState(address="198.18.128.1/20", peers=[_peer(2), _peer(4)]))
    for _ in range(20):
        await asyncio.sleep(0)  # applied before the changes come
    changed = msgspec.structs.replace(_peer(4), endpoint="198.18.0.44:51820")
    await worker.on_message(MeshChanges(peers=[_peer(3), changed], removed=["n2"]))
    for _ in range(50):
        await asyncio.sleep(0)
    worker.stop()
    await running
    assert network.meshes == [
        MeshState(address="198.18.128.1/20", peers=[_peer(2), _peer(4)]),
        MeshState(address="198.18.128.1/20", peers=[_peer(3), changed]),
    ]
