"""Services get VIPs and published ports; tasks get one address per network; conflicts and
exhaustion are explained on the waiting tasks; finished tasks give their addresses back."""

from __future__ import annotations

from ipaddress import IPv4Interface
from typing import Any

from msgspec.structs import replace

from swarmlite.api import PortConfig, Service, Task, TaskState
from swarmlite.manager.allocator import PORT_FIRST
from swarmlite.store import ReadTx, Tx
from swarmlite.testing.factories import (
    make_network,
    make_service,
    make_task,
    with_networks,
    with_ports,
)


async def test_each_task_gets_one_address_per_network_never_the_gateway_nor_a_vip(
    net: Any,
) -> None:
    svc = with_networks(make_service("shop_web", replicas=3), "shop_front", "shop_back")
    tasks = [make_task(svc, slot=i) for i in (1, 2, 3)]
    await net.put(make_network("shop_front"), make_network("shop_back"), svc, *tasks)
    for name in ("shop_front", "shop_back"):
        network = net.network(name)
        gateway = IPv4Interface(f"{network.status.gateway}/24")
        vips = [v.address for v in net.service(svc.id).endpoint.vips if v.network_id == network.id]
        assert len(vips) == 1
        addresses = [net.address(t.id, name) for t in tasks]
        assert len({*addresses, gateway, IPv4Interface(vips[0])}) == 5
        for address in addresses:
            assert str(address.network) == network.status.subnet
    assert all(len(net.task(t.id).networks) == 2 for t in tasks)


async def test_aliases_travel_with_the_attachment(net: Any) -> None:
    svc = with_networks(make_service("shop_db"), "shop_back", aliases={"shop_back": ["db", "pg"]})
    task = make_task(svc)
    await net.put(make_network("shop_back"), svc, task)
    assert net.task(task.id).networks[0].aliases == ["db", "pg"]


async def test_a_dnsrr_service_gets_no_vip(net: Any) -> None:
    svc = with_ports(with_networks(make_service("db"), "back"), endpoint_mode="dnsrr")
    await net.put(make_network("back"), svc)
    assert net.service(svc.id).endpoint.vips == []


async def test_ingress_ports_get_an_ingress_address_and_a_port_from_30000(net: Any) -> None:
    web = with_ports(with_networks(make_service("web"), "front"), 80, 443)
    api = with_ports(make_service("api"), 8000)
    task = make_task(web)
    await net.put(make_network("front"), web)
    await net.put(api)
    await net.put(task)
    web_ports = net.service(web.id).endpoint.ports
    api_ports = net.service(api.id).endpoint.ports
    assert [p.published for p in web_ports] == [PORT_FIRST, PORT_FIRST + 1]
    assert [p.published for p in api_ports] == [PORT_FIRST + 2]
    assert [(p.target, p.mode) for p in web_ports] == [(80, "ingress"), (443, "ingress")]
    # The task is on its network and on the ingress network.
    ids = {a.network_id for a in net.task(task.id).networks}
    assert ids == {net.network("front").id, net.ingress().id}
    # A service never gets a VIP on the ingress network.
    assert [v.network_id for v in net.service(web.id).endpoint.vips] == [net.network("front").id]


async def test_a_published_port_is_kept_across_updates_and_restarts(net: Any) -> None:
    api = with_ports(make_service("api"), 8000)
    await net.put(api)
    given = net.service(api.id).endpoint.ports[0].published
    other = with_ports(make_service("other"), 9000)
    await net.put(other)

    def rescale(rt: ReadTx) -> Tx:
        current = rt.get(Service, api.id)
        assert current is not None
        return Tx().update(replace(current, spec=replace(current.spec, replicas=5)))

    await net.write(rescale)
    await net.restart()
    assert net.service(api.id).endpoint.ports[0].published == given
    assert net.service(other.id).endpoint.ports[0].published != given


async def test_a_port_published_twice_leaves_the_second_services_tasks_waiting_with_a_reason(
    net: Any,
) -> None:
    first = with_ports(make_service("shop_web"), PortConfig(target=80, published=8080))
    await net.put(first)
    second = with_ports(make_service("blog_web"), PortConfig(target=80, published=8080))
    task = make_task(second)
    await net.put(second, task)
    waiting = net.task(task.id)
    assert waiting.networks == []
    assert waiting.status.pending_reason == (
        "port 8080/tcp is already published by service shop_web"
    )
    assert net.service(second.id).endpoint.ports == []
    # Once the first service is gone, the second gets the port and its task its address.
    await net.delete(Service, first.id)
    assert net.service(second.id).endpoint.ports[0].published == 8080
    assert net.task(task.id).status.pending_reason == ""
    assert len(net.task(task.id).networks) == 1


async def test_host_mode_ports_are_left_to_the_scheduler(net: Any) -> None:
    svc = with_ports(make_service("edge"), PortConfig(target=80, published=80, mode="host"))
    task = make_task(svc)
    await net.put(svc, task)
    assert net.service(svc.id).endpoint.ports == [svc.spec.endpoint.ports[0]]
    assert net.task(task.id).networks == []  # no ingress for host-mode ports


async def test_a_full_subnet_leaves_the_rest_pending_until_a_task_finishes(net: Any) -> None:
    # A /29 holds 6 hosts: the gateway, the VIP and 4 tasks.
    svc = with_networks(make_service("web", replicas=5), "tiny")
    tasks = [make_task(svc, slot=i) for i in range(1, 6)]
    await net.put(make_network("tiny", subnet="10.50.0.0/29"), svc, *tasks)
    waiting = [net.task(t.id) for t in tasks if not net.task(t.id).networks]
    assert len(waiting) == 1
    reason = "no free address left in network tiny (10.50.0.0/29)"
    assert waiting[0].status.pending_reason == reason
    done = next(t for t in tasks if t.id != waiting[0].id)
    freed = net.address(done.id, "tiny")
    await net.set_task(done.id, state=TaskState.FAILED, desired=TaskState.SHUTDOWN)
    assert net.address(waiting[0].id, "tiny") == freed
    assert net.task(waiting[0].id).status.pending_reason == ""


async def test_a_deleted_task_gives_its_address_back(net: Any) -> None:
    svc = with_networks(make_service("web"), "front")
    first = make_task(svc)
    await net.put(make_network("front"), svc, first)
    address = net.address(first.id, "front")
    await net.delete(Task, first.id)
    second = make_task(svc)
    await net.put(second)
    assert net.address(second.id, "front") == address


async def test_a_stopping_task_keeps_its_address(net: Any) -> None:
    svc = with_networks(make_service("web"), "front")
    first = make_task(svc)
    await net.put(make_network("front"), svc, first)
    await net.run_task(first.id, "n1")
    await net.set_task(first.id, desired=TaskState.SHUTDOWN)
    second = make_task(svc, slot=1)
    await net.put(second)
    assert net.address(second.id, "front") != net.address(first.id, "front")


async def test_tasks_wait_silently_for_a_network_being_created_and_name_a_missing_one(
    net: Any,
) -> None:
    svc = with_networks(make_service("web"), "later")
    task = make_task(svc)
    await net.put(svc, task)
    assert net.task(task.id).status.pending_reason == "network later not found"
    await net.put(make_network("later"))
    assert net.task(task.id).status.pending_reason == ""
    assert net.task(task.id).status.message == "pending"
    assert len(net.task(task.id).networks) == 1


async def test_many_tasks_are_allocated_in_several_batches_without_a_duplicate(net: Any) -> None:
    svc = with_networks(make_service("web", replicas=450), "big")
    tasks = [make_task(svc, slot=i) for i in range(1, 451)]
    await net.put(make_network("big", subnet="10.60.0.0/22"), svc, *tasks)
    addresses = [net.address(t.id, "big") for t in tasks]
    assert len(set(addresses)) == 450
    index = net.memory.applied_index
    await net.restart()
    assert net.memory.applied_index == index
