"""Networks get a VNI, a subnet and a gateway; the ingress network exists; nodes get mesh
addresses; all of it is freed with its object and survives a change of leader."""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network
from typing import Any

import msgspec

from swarmlite.api import STACK_LABEL, Network, Node
from swarmlite.manager.allocator import VNI_FIRST, Pools
from swarmlite.testing.factories import (
    make_network,
    make_node,
    make_service,
    make_task,
    with_networks,
)

replace = msgspec.structs.replace


def subnet(network: Network) -> IPv4Network:
    return IPv4Network(network.status.subnet)


async def test_the_ingress_network_is_created_and_allocated_like_dockers(net: Any) -> None:
    ingress = net.ingress()
    assert ingress.spec.name == "ingress"
    assert ingress.spec.ingress
    assert STACK_LABEL not in ingress.spec.labels
    assert ingress.status.vni >= VNI_FIRST
    assert subnet(ingress).subnet_of(IPv4Network("10.0.0.0/8"))
    assert ingress.status.gateway == str(subnet(ingress).network_address + 1)
    await net.restart()
    assert [n.id for n in net.memory.list(Network)] == [ingress.id]


async def test_networks_get_unique_vnis_and_subnets_that_never_overlap(net: Any) -> None:
    await net.put(*(make_network(f"shop_{i}", stack="shop") for i in range(5)))
    networks = net.memory.list(Network)
    assert len(networks) == 6  # and ingress
    vnis = [n.status.vni for n in networks]
    assert len(set(vnis)) == 6 and min(vnis) >= VNI_FIRST
    subnets = [subnet(n) for n in networks]
    for i, a in enumerate(subnets):
        assert a.prefixlen == 24 and a.subnet_of(IPv4Network("10.0.0.0/8"))
        assert not any(a.overlaps(b) for b in subnets[i + 1 :])
    for network in networks:
        assert network.status.gateway == str(subnet(network).network_address + 1)


async def test_a_users_subnet_and_gateway_are_honoured(net: Any) -> None:
    await net.put(make_network("back", subnet="172.28.5.0/24", gateway="172.28.5.254"))
    back = net.network("back")
    assert back.status.subnet == "172.28.5.0/24"
    assert back.status.gateway == "172.28.5.254"
    # A network that names its subnet keeps it from one created alongside that does not.
    assert net.ingress().status.subnet == "10.0.0.0/24"
    await net.put(make_network("auto"), make_network("mine", subnet="10.0.1.0/24"))
    assert net.network("mine").status.subnet == "10.0.1.0/24"
    assert net.network("auto").status.subnet == "10.0.2.0/24"


async def test_an_overlapping_subnet_is_refused_and_its_tasks_say_why(net: Any) -> None:
    await net.put(make_network("front", subnet="172.28.0.0/16"))
    svc = with_networks(make_service("shop_back"), "back")
    task = make_task(svc)
    await net.put(make_network("back", subnet="172.28.5.0/24"), svc, task)
    assert net.network("back").status.vni == 0
    reason = net.task(task.id).status.pending_reason
    assert reason == "network back: subnet 172.28.5.0/24 overlaps network front (172.28.0.0/16)"
    assert net.task(task.id).networks == []


async def test_subnets_stay_clear_of_the_mesh_pool_and_of_node_addresses(new_net: Any) -> None:
    pools = Pools(default_pool=IPv4Network("10.9.0.0/22"), mesh_pool=IPv4Network("10.9.0.0/24"))
    harness = new_net(pools)
    await harness.put(make_node(addr="10.9.1.20:2377"))
    await harness.start()
    try:
        await harness.put(make_network("a"))
        assert harness.ingress().status.subnet == "10.9.2.0/24"
        assert harness.network("a").status.subnet == "10.9.3.0/24"
        await harness.put(make_network("b"))
        assert harness.network("b").status.vni == 0  # the pool is full
        await harness.put(make_network("mine", subnet="10.9.0.128/25"))
        assert harness.network("mine").status.vni == 0  # inside the mesh pool
    finally:
        await harness.stop()


async def test_a_removed_networks_subnet_and_vni_are_free_again(net: Any) -> None:
    await net.put(make_network("old"))
    old = net.network("old")
    await net.delete(Network, old.id)
    await net.put(make_network("new"))
    new = net.network("new")
    assert (new.status.vni, new.status.subnet) == (old.status.vni, old.status.subnet)


async def test_nodes_get_unique_mesh_addresses_with_the_pools_prefix(net: Any) -> None:
    nodes = [make_node(f"n{i}") for i in range(3)]
    await net.put(*nodes)
    addresses = [IPv4Interface(net.node(n.id).mesh_address) for n in nodes]
    assert [str(a) for a in addresses] == ["100.96.0.1/16", "100.96.0.2/16", "100.96.0.3/16"]
    await net.delete(Node, nodes[1].id)
    late = make_node("n9")
    await net.put(late)
    assert net.node(late.id).mesh_address == "100.96.0.2/16"


async def test_a_new_leader_writes_nothing_when_all_is_allocated(net: Any) -> None:
    svc = with_networks(make_service("web", replicas=2), "front")
    await net.put(make_node("n1"), make_network("front"), svc, make_task(svc), make_task(svc))
    before = {obj.id: obj for kind in (Network, Node) for obj in net.memory.list(kind)}
    index = net.memory.applied_index
    await net.restart()
    assert net.memory.applied_index == index
    after = {obj.id: obj for kind in (Network, Node) for obj in net.memory.list(kind)}
    assert after == before


async def test_every_node_gets_its_own_address_on_the_ingress_network(net: Any) -> None:
    nodes = [make_node(f"n{i}") for i in range(3)]
    await net.put(*nodes)
    ingress = net.ingress()
    subnet = IPv4Interface(f"{ingress.status.gateway}/24").network
    addresses = [IPv4Interface(net.node(n.id).ingress_address) for n in nodes]
    assert len({a.ip for a in addresses}) == 3
    assert all(a.network == subnet for a in addresses)
    assert all(str(a.ip) != ingress.status.gateway for a in addresses)
