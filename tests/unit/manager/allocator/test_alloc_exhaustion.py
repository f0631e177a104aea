"""A full network is known without a search and is not searched again until an address is
freed; nodes that wait for an ingress address say why; the kept holdings always equal a
fresh build of the store, whatever happened before."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv4Network
from typing import Any

import msgspec
import pytest

from swarmlite.api import Network, Node, Service, Task, TaskState
from swarmlite.manager.allocator import Allocator, Pools, find_ingress
from swarmlite.manager.allocator.holdings import Holdings
from swarmlite.manager.allocator.ipam import AddressPool
from swarmlite.manager.allocator.taskindex import TaskIndex
from swarmlite.store import ReadTx, Tx
from swarmlite.testing.factories import (
    make_network,
    make_node,
    make_service,
    make_task,
    with_networks,
    with_ports,
)

replace = msgspec.structs.replace

# Every network a /29: 6 hosts, the gateway and 5 more. The ingress network is one of them.
SMALL = Pools(subnet_size=29)
FULL = "no free address left in network ingress (10.0.0.0/29)"


@pytest.fixture
def searches(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """How many times any pool was searched for a free address."""
    calls: Counter[str] = Counter()
    search = AddressPool.lowest_free

    def counted(self: AddressPool, *args: Any, **kwargs: Any) -> int | None:
        calls["lowest_free"] += 1
        return search(self, *args, **kwargs)

    monkeypatch.setattr(AddressPool, "lowest_free", counted)
    yield calls


@pytest.fixture
async def small(new_net: Any) -> Any:
    harness = new_net(SMALL)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


def ingress_addresses(net: Any) -> dict[str, str]:
    return {n.id: n.ingress_address for n in net.memory.list(Node)}


async def test_nodes_beyond_a_full_ingress_network_wait_and_say_why(
    small: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="swarmlite.manager.allocator")
    await small.put(*(make_node(f"n{i}") for i in range(8)))
    got = ingress_addresses(small)
    assert small.ingress().status.subnet == "10.0.0.0/29"
    # The oldest five (ties: by id) have one each; the gateway is no one's.
    assert sorted(got.values()) == ["", "", ""] + [f"10.0.0.{i}/29" for i in range(2, 7)]
    assert [n for n, address in got.items() if not address] == ["n5", "n6", "n7"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for node_id in ("n5", "n6", "n7"):
        assert sum(f"object={node_id} " in w and FULL in w for w in warnings) == 1
    ingress_id = small.ingress().id
    about_pool = [w for w in warnings if f"object={ingress_id} " in w]
    assert len(about_pool) == 1, warnings
    assert "does not answer on ingress ports" in about_pool[0]
    assert "--default-addr-pool-mask-length" in about_pool[0]


async def test_a_removed_node_gives_its_ingress_address_to_the_oldest_waiting_node(
    small: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="swarmlite.manager.allocator")
    await small.put(*(make_node(f"n{i}") for i in range(8)))
    freed = small.node("n2").ingress_address
    await small.delete(Node, "n2")
    got = ingress_addresses(small)
    assert got["n5"] == freed
    assert (got["n6"], got["n7"]) == ("", "")
    assert len(set(got.values())) == len(got) - 1  # no address twice; two still wait
    cleared = [r.getMessage() for r in caplog.records if "problem cleared" in r.getMessage()]
    assert any("object=n5" in c for c in cleared)
    assert not any(f"object={small.ingress().id}" in c for c in cleared)  # still full


async def test_rounds_while_the_ingress_network_is_full_search_nothing(
    small: Any, searches: Counter[str]
) -> None:
    await small.put(*(make_node(f"n{i}") for i in range(8)))
    assert searches["lowest_free"] == 5  # one per address given, none for the others
    searches.clear()
    # A node joins: it gets a mesh address, but the full ingress network is not searched.
    await small.put(make_node("n8"))
    assert small.node("n8").mesh_address
    assert small.node("n8").ingress_address == ""
    # A change that gives nothing back (a service on no network): a round writes nothing.
    index = small.memory.applied_index
    await small.put(make_service("quiet"))
    assert small.memory.applied_index == index + 1  # the write itself, nothing more
    # A node that reports a new address is a node change that matters: a round, no search.
    await small.write(
        lambda rt: Tx().update(
            replace(rt.get(Node, "n7"), status=replace(rt.get(Node, "n7").status, addr="1.2.3.4"))
        )
    )
    assert searches["lowest_free"] == 0
    assert small.node("n7").ingress_address == ""
    # Freed: searched once, for the one address there is.
    await small.delete(Node, "n0")
    assert searches["lowest_free"] == 1
    assert small.node("n5").ingress_address == "10.0.0.2/29"


async def test_a_task_that_publishes_a_port_waits_too_when_the_ingress_network_is_full(
    small: Any,
) -> None:
    await small.put(*(make_node(f"n{i}") for i in range(5)))
    svc = with_ports(make_service("web"), 80)
    task = make_task(svc)
    await small.put(svc, task)
    assert small.task(task.id).networks == []
    assert small.task(task.id).status.pending_reason == FULL
    await small.delete(Node, "n4")
    assert small.task(task.id).status.pending_reason == ""
    assert small.address(task.id, "ingress") == IPv4Interface("10.0.0.6/29")


def test_a_pool_counts_free_addresses_as_holders_come_and_go() -> None:
    pool = AddressPool(IPv4Network("10.9.0.0/29"))
    assert pool.free == 6
    pool.hold(int(IPv4Network("10.9.0.0/29").network_address) + 1)
    pool.hold(int(IPv4Network("10.9.0.0/29").network_address) + 1)  # held twice: one address
    pool.hold(int(IPv4Network("10.9.9.0/29").network_address) + 1)  # outside: not counted
    assert pool.free == 5
    assert pool.lowest_free() == int(IPv4Network("10.9.0.0/29").network_address) + 2
    pool.release(int(IPv4Network("10.9.0.0/29").network_address) + 1)
    assert pool.free == 5  # one holder left
    pool.release(int(IPv4Network("10.9.0.0/29").network_address) + 1)
    assert pool.free == 6
    assert pool.lowest_free() == int(IPv4Network("10.9.0.0/29").network_address) + 1


# ----------------------------------------------------------------------- randomised


def holder_addresses(read: ReadTx) -> Counter[tuple[str, str]]:
    """(network id, address) of everything that holds one, counted: each must be 1."""
    held: Counter[tuple[str, str]] = Counter()
    ingress = find_ingress(read)
    for node in read.list(Node):
        if node.ingress_address and ingress is not None:
            held[(ingress.id, node.ingress_address.split("/")[0])] += 1
    for task in read.list(Task):
        if not task.status.state.terminal:
            for att in task.networks:
                held[(att.network_id, att.address.split("/")[0])] += 1
    for service in read.list(Service):
        for vip in service.endpoint.vips:
            held[(vip.network_id, vip.address.split("/")[0])] += 1
    for network in read.list(Network):
        if network.status.gateway:
            held[(network.id, network.status.gateway)] += 1
    return held


def check_kept_equals_fresh(net: Any) -> None:
    allocator: Allocator = net.allocator
    tasks = allocator._tasks(net.memory)  # takes what the watch still holds
    kept = allocator._holdings
    assert kept is not None and not kept.stale
    fresh = Holdings.build(net.memory, find_ingress(net.memory))
    assert kept.state() == fresh.state()
    again = TaskIndex.build(net.memory)
    assert (tasks.used, tasks.subnets, tasks.waiting) == (again.used, again.subnets, again.waiting)
    doubled = [k for k, n in holder_addresses(net.memory).items() if n > 1]
    assert doubled == []


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_kept_holdings_equal_a_fresh_build_after_every_random_step(
    new_net: Any, seed: int
) -> None:
    rng = random.Random(seed)
    net = new_net(SMALL)
    await net.start()
    try:
        nodes: list[str] = []
        networks: list[str] = []
        counter = 0

        async def join() -> None:
            nonlocal counter
            counter += 1
            nodes.append(f"n{counter}")
            await net.put(make_node(f"n{counter}"))

        async def leave() -> None:
            if nodes:
                await net.delete(Node, nodes.pop(rng.randrange(len(nodes))))

        async def add_network() -> None:
            nonlocal counter
            counter += 1
            name = f"net{counter}"
            svc = with_networks(make_service(f"s{counter}", replicas=3), name)
            if rng.random() < 0.5:
                svc = with_ports(svc, 80)
            tasks = [make_task(svc, slot=i) for i in range(1, rng.randrange(2, 8))]
            networks.append(name)
            await net.put(make_network(name), svc, *tasks)

        async def finish_tasks() -> None:
            live = [t for t in net.memory.list(Task) if not t.status.state.terminal]
            for task in rng.sample(live, min(len(live), rng.randrange(1, 4))):
                await net.set_task(task.id, state=TaskState.FAILED, desired=TaskState.SHUTDOWN)

        async def remove_service() -> None:
            services = net.memory.list(Service)
            if services:
                service = rng.choice(services)

                def drop(rt: ReadTx) -> Tx:
                    current = rt.get(Service, service.id)
                    assert current is not None
                    tx = Tx().delete(current)
                    for task in rt.tasks_of_service(service.id):
                        tx.delete(task)
                    return tx

                await net.write(drop)

        async def remove_network() -> None:
            if networks:
                name = networks.pop(rng.randrange(len(networks)))
                await net.delete(Network, net.network(name).id)

        async def new_leader() -> None:
            await net.restart()

        steps = [join] * 5 + [leave] * 3 + [add_network] * 2 + [finish_tasks] * 2
        steps += [remove_service, remove_network]
        for _ in range(40):
            await rng.choice(steps)()
            check_kept_equals_fresh(net)
        await new_leader()
        check_kept_equals_fresh(net)
    finally:
        await net.stop()
