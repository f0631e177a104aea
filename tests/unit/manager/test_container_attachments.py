"""Standalone containers on attachable overlays, manager side: what the control API records
(``NetworkAPI.attach``/``detach``), the address the allocator gives, and what netstate tells
each node (its network, the other nodes' FDB entries, the container's DNS names).

Two nodes; ``tools`` is attachable with the service ``web`` running on n2, ``solo`` is
attachable and unused; ``plain`` is not attachable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from ipaddress import IPv4Interface
from typing import Any

import msgspec
import pytest

from swarmlite.api import Network, Node, Service, Task, TaskState
from swarmlite.api.control import NameRef, NetworkAttach, NetworkDetach
from swarmlite.errors import FailedPrecondition, NotFound
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.networks import NetworkAPI
from swarmlite.manager.netstate import mac_of, network_state
from swarmlite.rpc import Identity, Peer
from swarmlite.store import LocalProposer, MemoryStore, ReadTx, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import (
    make_network,
    make_node,
    make_service,
    make_task,
    with_networks,
)
from swarmlite.testing.store import allocate

replace = msgspec.structs.replace
PROBE = "c0ffee" + "0" * 58  # a container id as the runtime gives it


def peer(node_id: str) -> Peer:
    return Peer(identity=Identity(node_id=node_id, role="worker", cluster_id="c1"), address="x")


@dataclass
class World:
    ctx: ManagerContext
    api: NetworkAPI
    task: Task

    @property
    def memory(self) -> MemoryStore:
        return self.ctx.store.memory

    async def allocate(self) -> None:
        await allocate(self.ctx.store, self.ctx.clock)

    def network(self, name: str) -> Network:
        found = self.memory.get_by_name(Network, name)
        assert found is not None
        return found

    def mesh(self, node_id: str) -> str:
        found = self.memory.get(Node, node_id)
        assert found is not None
        return found.mesh_address.split("/")[0]


def _node(name: str) -> Node:
    n = make_node(name, hostname=name)
    status = replace(n.status, mesh_public_key=f"key-{name}", mesh_endpoint=f"{name}:51820")
    return replace(n, status=status)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    memory = MemoryStore()
    clock = FakeClock()
    store = Store(memory, LocalProposer(memory), clock=clock)
    raft: Any = None  # the calls tested here need no raft member
    ctx = ManagerContext(
        node_id="n1",
        cluster_id="c1",
        addr="10.0.0.1:2377",
        store=store,
        raft=raft,
        clock=clock,
        client_ssl=lambda: pytest.fail("no call leaves this manager"),
    )
    tools = make_network("tools")
    tools = replace(tools, spec=replace(tools.spec, attachable=True))
    web = with_networks(make_service("web"), "tools")
    task = make_task(web)
    tx = Tx()
    solo = make_network("solo")
    solo = replace(solo, spec=replace(solo.spec, attachable=True))
    for obj in (_node("n1"), _node("n2"), tools, solo, make_network("plain"), web, task):
        tx.create(obj)
    await store.propose(tx)
    await allocate(store, clock)

    def run_on_n2(rt: ReadTx) -> Tx:
        stored = rt.get(Task, task.id)
        assert stored is not None and stored.networks
        status = replace(stored.status, state=TaskState.RUNNING)
        return Tx().update(replace(stored, node_id="n2", status=status))

    await store.update(run_on_n2)
    stored = memory.get(Task, task.id)
    assert stored is not None
    yield World(ctx, NetworkAPI(ctx, lambda state, network: ""), stored)


async def test_a_network_that_is_not_attachable_is_refused_with_the_reason(world: World) -> None:
    for check in (True, False):
        request = NetworkAttach(network="plain", container_id=PROBE, name="probe", check=check)
        with pytest.raises(FailedPrecondition) as refused:
            await world.api.attach(request, peer("n1"))
        assert refused.value.message == "network plain is not attachable: only services can use it"
        assert "--attachable" in (refused.value.hint or "")
    with pytest.raises(FailedPrecondition, match="routing mesh"):
        await world.api.attach(NetworkAttach(network="ingress", container_id=PROBE), peer("n1"))
    with pytest.raises(NotFound):
        await world.api.attach(NetworkAttach(network="nowhere", container_id=PROBE), peer("n1"))
    assert world.network("plain").status.attachments == []


async def test_a_check_records_nothing_and_names_the_gateway(world: World) -> None:
    reply = await world.api.attach(
        NetworkAttach(network="tools", container_id="-", check=True), peer("n1")
    )
    tools = world.network("tools")
    assert (reply.network_id, reply.name, reply.gateway) == (
        tools.id,
        "tools",
        tools.status.gateway,
    )
    assert reply.attachment is None
    assert tools.status.attachments == []


async def test_an_attached_container_gets_a_free_address_and_keeps_it(world: World) -> None:
    request = NetworkAttach(network="tools", container_id=PROBE, name="probe")
    first = await world.api.attach(request, peer("n1"))
    assert first.attachment is not None and first.attachment.address == ""
    await world.allocate()
    again = await world.api.attach(request, peer("n1"))
    assert again.attachment is not None
    address = IPv4Interface(again.attachment.address)
    tools = world.network("tools")
    assert str(address.network) == tools.status.subnet
    taken = {tools.status.gateway.split("/")[0], world.task.networks[0].address.split("/")[0]}
    taken |= {v.address.split("/")[0] for s in world.memory.list(Service) for v in s.endpoint.vips}
    assert str(address.ip) not in taken
    await world.allocate()
    assert world.network("tools").status.attachments == [again.attachment]


async def test_nodes_learn_the_container_and_it_learns_the_network(world: World) -> None:
    await world.api.attach(
        NetworkAttach(network="tools", container_id=PROBE, name="probe"), peer("n1")
    )
    await world.allocate()
    [att] = world.network("tools").status.attachments
    tools = world.network("tools")

    on_n1 = network_state(world.memory, "n1")
    info = next(n for n in on_n1.networks if n.network_id == tools.id)
    task_address = world.task.networks[0].address
    assert [(e.mac, e.vtep) for e in info.fdb] == [(mac_of(task_address), world.mesh("n2"))]
    assert {tuple(e.names) for e in on_n1.endpoints} >= {("web",)}

    on_n2 = network_state(world.memory, "n2")
    info = next(n for n in on_n2.networks if n.network_id == tools.id)
    assert [(e.mac, e.vtep) for e in info.fdb] == [(mac_of(att.address), world.mesh("n1"))]
    [probe] = [e for e in on_n2.endpoints if e.service_id == ""]
    assert probe.names == ["probe", PROBE[:12]]
    assert probe.backends == [att.address.split("/")[0]]


async def test_removing_the_container_frees_its_address(world: World) -> None:
    request = NetworkAttach(network="tools", container_id=PROBE, name="probe")
    await world.api.attach(request, peer("n1"))
    await world.allocate()
    [att] = world.network("tools").status.attachments
    solo = NetworkAttach(network="solo", container_id=PROBE, name="probe")
    await world.api.attach(solo, peer("n1"))
    with pytest.raises(FailedPrecondition, match="solo has active endpoints: containers probe"):
        await world.api.rm(NameRef(ref="solo"), peer("n1"))

    await world.api.detach(NetworkDetach(container_id=PROBE), peer("n1"))
    assert world.network("tools").status.attachments == []
    assert world.network("solo").status.attachments == []  # all of the container's networks
    await world.api.rm(NameRef(ref="solo"), peer("n1"))
    assert not [e for e in network_state(world.memory, "n2").endpoints if e.service_id == ""]
    assert "tools" not in {n.name for n in network_state(world.memory, "n1").networks}

    other = NetworkAttach(network="tools", container_id="b" * 64, name="next")
    await world.api.attach(other, peer("n1"))
    await world.allocate()
    [given] = world.network("tools").status.attachments
    assert given.address == att.address  # the lowest free one again


async def test_another_nodes_detach_leaves_the_container_alone(world: World) -> None:
    await world.api.attach(NetworkAttach(network="tools", container_id=PROBE), peer("n1"))
    await world.api.detach(NetworkDetach(container_id=PROBE), peer("n2"))
    assert [a.node_id for a in world.network("tools").status.attachments] == ["n1"]


async def test_a_removed_nodes_containers_lose_their_addresses(world: World) -> None:
    await world.api.attach(NetworkAttach(network="tools", container_id=PROBE), peer("n1"))
    await world.allocate()
    assert world.network("tools").status.attachments[0].address

    def remove_n1(rt: ReadTx) -> Tx:
        node = rt.get(Node, "n1")
        assert node is not None
        return Tx().delete(node)

    await world.ctx.store.update(remove_n1)
    await world.allocate()
    assert world.network("tools").status.attachments == []
