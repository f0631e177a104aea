"""What each node is told about the mesh and its networks: a 3-node cluster, two stacks.

shop (network shop_default): shop_web, 3 replicas publishing 8080 (ingress) — one task on
each node, the one on n3 being stopped — and shop_db (with a health check, unhealthy) on
n2. blog (network blog_default): blog_web on n3, publishing 9090 in host mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
import pytest

from swarmlite.api import (
    HealthCheck,
    Network,
    Node,
    PortConfig,
    Service,
    Task,
    TaskState,
)
from swarmlite.api.control import FdbEntry, PublishedPort
from swarmlite.manager.netstate import mac_of, mesh_state, network_state
from swarmlite.store import LocalProposer, MemoryStore, ReadTx, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import (
    make_network,
    make_node,
    make_service,
    make_task,
    with_networks,
    with_ports,
)
from swarmlite.testing.store import allocate

replace = msgspec.structs.replace


@dataclass
class World:
    memory: MemoryStore
    nodes: dict[str, Node]
    tasks: dict[str, Task]  # by a short name: web1 web2 web3 db1 blog1

    def mesh(self, node: str) -> str:
        found = self.memory.get(Node, self.nodes[node].id)
        assert found is not None
        return found.mesh_address.split("/")[0]

    def addr(self, task: str, network: str) -> str:
        net = self.memory.get_by_name(Network, network)
        stored = self.memory.get(Task, self.tasks[task].id)
        assert net is not None and stored is not None
        found = [a.address for a in stored.networks if a.network_id == net.id]
        assert len(found) == 1
        return found[0].split("/")[0]

    def net_id(self, name: str) -> str:
        net = self.memory.get_by_name(Network, name)
        assert net is not None
        return net.id


def node(name: str, *, key: bool = True) -> Node:
    n = make_node(name, hostname=name)
    if key:
        status = replace(n.status, mesh_public_key=f"key-{name}", mesh_endpoint=f"{name}:51820")
        n = replace(n, status=status)
    return n


@pytest.fixture
async def world() -> AsyncIterator[World]:
    memory = MemoryStore()
    clock = FakeClock()
    store = Store(memory, LocalProposer(memory), clock=clock)
    nodes = {n: node(n) for n in ("n1", "n2", "n3")}
    nodes["n4"] = node("n4", key=False)  # joined, no WireGuard key yet
    web = with_ports(
        with_networks(
            make_service("shop_web", replicas=3, labels={"com.docker.stack.namespace": "shop"}),
            "shop_default",
            aliases={"shop_default": ["www"]},
        ),
        PortConfig(target=80, published=8080),
    )
    db = with_networks(
        make_service(
            "shop_db",
            healthcheck=HealthCheck(test=["CMD", "true"]),
            labels={"com.docker.stack.namespace": "shop"},
        ),
        "shop_default",
    )
    blog = with_ports(
        with_networks(
            make_service("blog_web", labels={"com.docker.stack.namespace": "blog"}), "blog_default"
        ),
        PortConfig(target=80, published=9090, mode="host"),
    )
    tasks = {
        "web1": make_task(web, slot=1),
        "web2": make_task(web, slot=2),
        "web3": make_task(web, slot=3),
        "db1": make_task(db),
        "blog1": make_task(blog),
    }
    tx = Tx()
    for obj in (
        *nodes.values(),
        make_network("shop_default", stack="shop"),
        make_network("blog_default", stack="blog"),
        web,
        db,
        blog,
        *tasks.values(),
    ):
        tx.create(obj)
    await store.propose(tx)
    await allocate(store, clock)

    where = {"web1": "n1", "web2": "n2", "web3": "n3", "db1": "n2", "blog1": "n3"}

    def place(rt: ReadTx) -> Tx:
        out = Tx()
        for name, task in tasks.items():
            stored = rt.get(Task, task.id)
            assert stored is not None and stored.networks
            status = replace(stored.status, state=TaskState.RUNNING)
            desired = stored.desired_state
            if name == "db1":
                status = replace(status, health="unhealthy")
            if name == "web3":
                desired = TaskState.SHUTDOWN
            out.update(
                replace(stored, node_id=nodes[where[name]].id, status=status, desired_state=desired)
            )
        return out

    await store.update(place)
    yield World(memory, nodes, tasks)


def test_a_node_is_told_its_mesh_address_and_every_peer_with_a_key(world: World) -> None:
    state = mesh_state(world.memory, world.nodes["n1"].id)
    assert state is not None
    assert state.address == f"{world.mesh('n1')}/16"
    assert [p.node_id for p in state.peers] == ["n2", "n3"]  # n4 has no key yet
    assert [p.mesh_address for p in state.peers] == [world.mesh("n2"), world.mesh("n3")]
    assert state.peers[0].public_key == "key-n2"
    assert state.peers[0].endpoint == "n2:51820"
    assert mesh_state(world.memory, "unknown") is None


def test_a_node_gets_only_the_networks_of_its_tasks_and_ingress(world: World) -> None:
    n1 = network_state(world.memory, "n1")
    assert sorted(n.name for n in n1.networks) == ["ingress", "shop_default"]
    n3 = network_state(world.memory, "n3")
    assert sorted(n.name for n in n3.networks) == ["blog_default", "ingress", "shop_default"]
    n4 = network_state(world.memory, "n4")
    assert [n.name for n in n4.networks] == ["ingress"]
    shop = next(n for n in n1.networks if n.name == "shop_default")
    stored = world.memory.get_by_name(Network, "shop_default")
    assert stored is not None
    assert (shop.vni, shop.subnet, shop.gateway) == (
        stored.status.vni,
        stored.status.subnet,
        stored.status.gateway,
    )


def test_vteps_and_fdb_name_every_remote_task_on_the_network(world: World) -> None:
    n1 = network_state(world.memory, "n1")
    shop = next(n for n in n1.networks if n.name == "shop_default")
    assert set(shop.vteps) == {world.mesh("n2"), world.mesh("n3")}
    expected = {
        FdbEntry(mac=mac_of(world.addr(t, "shop_default")), vtep=world.mesh(where))
        for t, where in (("web2", "n2"), ("db1", "n2"), ("web3", "n3"))
    }
    assert set(shop.fdb) == expected  # web1 is local; the stopping web3 still has its MAC
    ingress = next(n for n in n1.networks if n.ingress)
    assert set(ingress.vteps) == {world.mesh(n) for n in ("n2", "n3", "n4")}
    assert mac_of("10.0.1.5/24") == "02:42:0a:00:01:05"


def test_ingress_fdb_names_remote_tasks_and_every_other_node_s_own_address(
    world: World,
) -> None:
    # Without the nodes' own addresses, replies to a node that masqueraded a routing-mesh
    # request would be flooded to every node of the cluster.
    n1 = network_state(world.memory, "n1")
    ingress = next(n for n in n1.networks if n.ingress)
    tasks = {
        FdbEntry(mac=mac_of(world.addr(t, "ingress")), vtep=world.mesh(where))
        for t, where in (("web2", "n2"), ("web3", "n3"))
    }
    nodes = set()
    for name in ("n2", "n3", "n4"):
        stored = world.memory.get(Node, world.nodes[name].id)
        assert stored is not None and stored.ingress_address
        nodes.add(FdbEntry(mac=mac_of(stored.ingress_address), vtep=world.mesh(name)))
    assert set(ingress.fdb) == tasks | nodes


def test_endpoints_of_the_two_stacks_never_mix_and_exclude_unhealthy_and_stopping_tasks(
    world: World,
) -> None:
    n1 = network_state(world.memory, "n1")
    assert [e.names for e in n1.endpoints] == [["db", "shop_db"], ["web", "shop_web", "www"]]
    assert {e.network_id for e in n1.endpoints} == {world.net_id("shop_default")}
    db, web = n1.endpoints
    assert db.backends == []  # unhealthy
    assert db.tasks == [world.addr("db1", "shop_default")]
    assert web.mode == "vip" and web.vip
    assert set(web.backends) == {world.addr(t, "shop_default") for t in ("web1", "web2")}
    assert set(web.tasks) == {world.addr(t, "shop_default") for t in ("web1", "web2", "web3")}
    n3 = network_state(world.memory, "n3")
    blog = [e for e in n3.endpoints if e.network_id == world.net_id("blog_default")]
    assert [e.names for e in blog] == [["web", "blog_web"]]
    assert blog[0].backends == [world.addr("blog1", "blog_default")]


def test_ingress_ports_are_everywhere_and_host_ports_only_where_a_task_runs(
    world: World,
) -> None:
    ingress_backends = sorted(
        (world.addr(t, "ingress") for t in ("web1", "web2")),
        key=lambda a: tuple(int(x) for x in a.split(".")),
    )
    web_port = PublishedPort(
        published=8080,
        protocol="tcp",
        target=80,
        mode="ingress",
        backends=ingress_backends,
        service_id=world.tasks["web1"].service_id,  # the routing mesh counts by service
    )
    assert network_state(world.memory, "n1").ports == [web_port]
    assert network_state(world.memory, "n4").ports == [web_port]
    blog_port = PublishedPort(
        published=9090,
        protocol="tcp",
        target=80,
        mode="host",
        backends=[world.addr("blog1", "blog_default")],
        service_id=world.tasks["blog1"].service_id,
    )
    assert network_state(world.memory, "n3").ports == [web_port, blog_port]


def test_equal_states_give_equal_messages_whatever_the_store_order(world: World) -> None:
    copy = MemoryStore()
    tx = Tx()
    for kind in (Task, Service, Network, Node):
        for obj in reversed(world.memory.list(kind)):
            tx.create(replace(obj, version=0))
    copy.apply(1, tx.encode()).unwrap()
    for name in ("n1", "n2", "n3", "n4"):
        assert network_state(copy, name) == network_state(world.memory, name)
        assert mesh_state(copy, name) == mesh_state(world.memory, name)


def test_each_node_is_told_its_own_address_on_ingress_only(world: World) -> None:
    seen = {}
    for name in ("n1", "n2", "n3"):
        state = network_state(world.memory, name)
        ingress = next(n for n in state.networks if n.ingress)
        stored = world.memory.get(Node, name)
        assert stored is not None
        assert ingress.address == stored.ingress_address != ""
        assert all(n.address == "" for n in state.networks if not n.ingress)
        seen[name] = ingress.address
    assert len(set(seen.values())) == 3
