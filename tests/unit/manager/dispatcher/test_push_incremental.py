"""The dispatcher pushes each node only what an event can change for it, and that is enough:
after every round of randomised store writes (tasks with and without networks created,
assigned, moved, run, made unhealthy and shut down; nodes joining, leaving, changing mesh
keys or only heartbeating; services renamed or publishing ports; networks changed,
standalone containers attached; sessions opening), what each session last got equals what
``assigned``, ``mesh_state`` and ``network_state`` compute from scratch from the store;
and a change that concerns no node sends nothing. Sometimes the pusher acts while part of
the events is still unread (the store ahead of it), as the real loop can. A real store
(LocalProposer), fake session streams. A failure names SWARMLITE_SEED.
"""

from __future__ import annotations

import os
import random
from typing import Any

import msgspec
import pytest

from swarmlite.api import (
    Attachment,
    ContainerAttachment,
    Network,
    Node,
    Object,
    PortConfig,
    Secret,
    SecretSpec,
    Service,
    Task,
    TaskState,
)
from swarmlite.api.control import (
    AssignmentChanges,
    Assignments,
    ManagerMessage,
    MeshChanges,
    MeshState,
    NetworkState,
)
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.api.service import EndpointStatus, VirtualIP
from swarmlite.manager.dispatcher.dispatcher import assigned
from swarmlite.manager.netstate import mesh_state, network_state
from swarmlite.store import Tx
from swarmlite.testing.factories import (
    make_network,
    make_node,
    make_service,
    make_task,
    with_networks,
)
from swarmlite.testing.pusherrig import PusherRig

replace = msgspec.structs.replace
S = TaskState


class Stream:
    """A session's stream that records what it was sent."""

    def __init__(self) -> None:
        self.sent: list[ManagerMessage] = []

    async def send(self, frame: bytes) -> None:
        self.sent.append(msgspec.msgpack.decode(frame, type=ManagerMessage))

    def last(self, kind: type[Any]) -> Any:
        found = [m for m in self.sent if isinstance(m, kind)]
        return found[-1] if found else None

    def mesh(self) -> MeshState | None:
        """The mesh the node holds: its last MeshState, with the changes since."""
        held: MeshState | None = self._merged(MeshState, MeshChanges)
        return held

    def held(self) -> Assignments | None:
        """The whole set the node holds: its last Assignments, with the changes since."""
        held: Assignments | None = self._merged(Assignments, AssignmentChanges)
        return held

    def _merged(self, whole_kind: type[Any], changes_kind: type[Any]) -> Any:
        """The last whole message of its kind, with the changes sent after it applied."""
        whole = None
        for message in self.sent:
            if isinstance(message, whole_kind):
                whole = message
            elif isinstance(message, changes_kind):
                assert whole is not None, f"{changes_kind.__name__} before a whole state"
                whole = message.applied_to(whole)
        return whole


class Cluster(PusherRig[Stream]):
    """A store, a dispatcher with fake sessions, and its pusher driven by hand."""

    def new_stream(self) -> Stream:
        return Stream()

    def frames(self) -> int:
        return sum(len(s.sent) for s in self.streams.values())

    def check(self, seed: int) -> None:
        """What every session last got is what the store says now, computed from scratch."""
        memory = self.memory
        for node_id, stream in self.streams.items():
            if self.dispatcher.sessions.get(node_id) is None:
                continue
            where = f"SWARMLITE_SEED={seed} node={node_id}"
            tasks = [t for t in memory.list(Task) if t.node_id == node_id and assigned(t)]
            got = stream.held()
            assert got is not None, where
            assert {(t.id, t.desired_state) for t in got.tasks} == {
                (t.id, t.desired_state) for t in tasks
            }, where
            pulling = {t.service_id for t in tasks if not t.desired_state.terminal}
            auths = {
                s.id: s.registry_auth
                for s in memory.list(Service)
                if s.id in pulling and s.registry_auth is not None
            }
            assert got.registry_auth == auths, where
            wanted = {r.name for t in tasks for r in t.spec.container.secrets}
            assert sorted(s.spec.name for s in got.secrets) == sorted(wanted), where
            mesh = mesh_state(memory, node_id)
            if mesh is not None:
                assert stream.mesh() == mesh, where
            assert stream.last(NetworkState) == network_state(memory, node_id), where


async def _write(cluster: Cluster, tx: Tx) -> None:
    if tx.ops:
        await cluster.store.propose(tx)


def _allocated(network: Network, vni: int) -> Network:
    status = replace(network.status, vni=vni, subnet=f"10.{vni}.0.0/16", gateway=f"10.{vni}.0.1")
    return replace(network, status=status)


async def _step(cluster: Cluster) -> None:
    """One random write (a commit) of the kinds the pusher watches."""
    rng, memory = cluster.rng, cluster.memory
    nodes = sorted(memory.list(Node), key=lambda n: n.id)
    services = sorted(memory.list(Service), key=lambda s: s.id)
    tasks = sorted(memory.list(Task), key=lambda t: t.id)
    networks = sorted(memory.list(Network), key=lambda n: n.id)
    choice = rng.randrange(100)
    tx = Tx()
    if choice < 22 and services:  # a new task, networked as its service is
        service = rng.choice(services)
        task = make_task(service, slot=cluster.next())
        attachments = []
        ids = {v.network_id for v in service.endpoint.vips}
        for net in service.spec.task.networks:
            named = memory.get_by_name(Network, net.target)
            if named is not None:
                ids.add(named.id)
        for network_id in sorted(ids):
            n = cluster.next()
            address = f"10.{memory.get(Network, network_id).status.vni}.{n // 200}.{n % 200 + 2}/16"  # type: ignore[union-attr]
            attachments.append(Attachment(network_id=network_id, address=address))
        tx.create(replace(task, networks=attachments))
    elif choice < 46 and tasks and nodes:  # assigned, or moved (the store allows it)
        task = rng.choice(tasks)
        status = replace(task.status, state=rng.choice([S.ASSIGNED, S.RUNNING]))
        tx.update(replace(task, node_id=rng.choice(nodes).id, status=status))
    elif choice < 60 and tasks:  # it runs, turns unhealthy, is told to stop, or stops
        task = rng.choice(tasks)
        pick = rng.randrange(5)
        if pick == 0:
            tx.update(replace(task, status=replace(task.status, state=S.RUNNING)))
        elif pick == 1:
            health = rng.choice(["", "healthy", "unhealthy"])
            tx.update(replace(task, status=replace(task.status, health=health)))
        elif pick == 2:
            tx.update(replace(task, desired_state=S.SHUTDOWN))
        elif pick == 3:
            tx.update(replace(task, status=replace(task.status, state=S.SHUTDOWN)))
        else:
            tx.delete(task)
    elif choice < 63:  # a node joins, with or without its mesh key
        n = cluster.next()
        node = make_node(f"n{n:03d}")
        if rng.random() < 0.7:
            # Addresses may repeat: two nodes then share a VTEP, which both still see.
            keyed = replace(
                node.status, mesh_public_key=f"key{n}", mesh_endpoint=f"192.168.0.{n}:51820"
            )
            node = replace(
                node,
                status=keyed,
                mesh_address=f"10.99.0.{n % 250 + 1}/16",
                ingress_address=f"10.1.250.{n % 250 + 1}/16",
            )
        tx.create(node)
    elif choice < 70 and nodes:  # a node changes: mesh keys, addresses, or heartbeats only
        node = rng.choice(nodes)
        pick = rng.randrange(4)
        if pick == 0:
            node = replace(node, status=replace(node.status, mesh_next_key=f"k{cluster.next()}"))
        elif pick == 1:
            n = cluster.next()
            node = replace(node, mesh_address=f"10.99.1.{n % 250}/16")
        elif pick == 2:
            node = replace(node, ingress_address=f"10.1.251.{cluster.next() % 250}/16")
        else:
            node = replace(
                node, status=replace(node.status, last_seen=float(cluster.next()), message="x")
            )
        tx.update(node)
    elif choice < 71 and nodes:  # a node leaves
        tx.delete(rng.choice(nodes))
    elif choice < 84 and services:  # a service changes
        service = rng.choice(services)
        pick = rng.randrange(5)
        if pick == 0:
            spec = replace(service.spec, name=f"{service.spec.name}x")
            tx.update(replace(service, spec=spec))
        elif pick == 1:  # publishes (or stops publishing) a port
            mode = rng.choice(["ingress", "host"])
            ports = [PortConfig(target=80, published=8000 + cluster.next() % 5, mode=mode)]
            ports = rng.choice([ports, []])
            endpoint = replace(service.endpoint, ports=ports)
            tx.update(replace(service, endpoint=endpoint))
        elif pick == 2:  # new credentials
            auth = RegistryAuth(server="reg", username="u", password=f"p{cluster.next()}")
            tx.update(replace(service, registry_auth=auth))
        elif pick == 3:  # new aliases on its networks
            nets = [replace(a, aliases=[f"al{cluster.next()}"]) for a in service.spec.task.networks]
            template = replace(service.spec.task, networks=nets)
            tx.update(replace(service, spec=replace(service.spec, task=template)))
        else:  # replicas only: no node's state
            tx.update(replace(service, spec=replace(service.spec, replicas=cluster.next())))
    elif choice < 96 and networks:  # a network changes
        network = rng.choice(networks)
        pick = rng.randrange(3)
        if pick == 0 and nodes:  # a standalone container joins it
            n = cluster.next()
            att = ContainerAttachment(
                node_id=rng.choice(nodes).id,
                container_id=f"c{n:063d}",
                name=f"box{n}",
                address=f"10.{network.status.vni}.9.{n % 250}/16",
            )
            joined = [*network.status.attachments, att]
            tx.update(replace(network, status=replace(network.status, attachments=joined)))
        elif pick == 1:  # the containers leave
            tx.update(replace(network, status=replace(network.status, attachments=[])))
        else:
            tx.update(replace(network, spec=replace(network.spec, internal=True)))
    elif choice < 98:  # a secret is made
        n = cluster.next()
        tx.create(Secret(id=f"sec{n}", spec=SecretSpec(name=f"s{n}", data=b"x")))
    elif nodes:  # a session opens, or opens again
        cluster.open(rng.choice(nodes).id)
    await _write(cluster, tx)


async def _seed_world(cluster: Cluster) -> None:
    """Three nodes, an ingress network, two overlays, four services (one on no network)."""
    tx = Tx()
    nodes = []
    for i in range(1, 4):
        node = make_node(f"n{i}")
        status = replace(node.status, mesh_public_key=f"key-n{i}", mesh_endpoint=f"n{i}:51820")
        nodes.append(
            replace(
                node,
                status=status,
                mesh_address=f"10.99.0.{i}/16",
                ingress_address=f"10.255.0.{i + 1}/16",
            )
        )
    ingress = _allocated(make_network("ingress", ingress=True), 255)
    front = _allocated(make_network("front"), 10)
    back = _allocated(make_network("back"), 11)
    back = replace(back, spec=replace(back.spec, attachable=True))
    web = with_networks(make_service("shop_web", replicas=3), "front", aliases={"front": ["www"]})
    web = replace(
        web,
        endpoint=EndpointStatus(
            vips=[
                VirtualIP(network_id=front.id, address="10.10.0.2/16"),
                VirtualIP(network_id=ingress.id, address="10.255.0.200/16"),
            ],
            ports=[PortConfig(target=80, published=8080)],
        ),
    )
    # In dnsrr mode, without VIPs: found on its networks by their names only.
    db = with_networks(make_service("shop_db"), "front", "back")
    db = replace(db, spec=replace(db.spec, endpoint=replace(db.spec.endpoint, mode="dnsrr")))
    plain = make_service("batch", replicas=5)  # no network, no port
    hosted = replace(  # no network, a host-mode port
        make_service("edge"),
        endpoint=EndpointStatus(ports=[PortConfig(target=80, published=9090, mode="host")]),
    )
    objects: list[Object] = [*nodes, ingress, front, back, web, db, plain, hosted]
    for obj in objects:
        tx.create(obj)
    await _write(cluster, tx)
    for node in nodes:
        cluster.open(node.id)


SEEDS = [int(os.environ["SWARMLITE_SEED"])] if "SWARMLITE_SEED" in os.environ else range(8)


@pytest.mark.parametrize("seed", SEEDS)
async def test_what_each_node_last_got_is_what_the_store_says(seed: int) -> None:
    cluster = Cluster(random.Random(seed))
    await _seed_world(cluster)
    await cluster.random_rounds(seed, 150, _step, most=4)


async def test_a_change_that_concerns_no_node_sends_nothing() -> None:
    cluster = Cluster(random.Random(0))
    await _seed_world(cluster)
    await cluster.start()
    memory = cluster.memory
    n1 = memory.get(Node, "n1")
    batch = memory.get_by_name(Service, "batch")
    assert n1 is not None and batch is not None
    tx = Tx()
    for slot in range(1, 3):  # tasks without networks or ports, placed on n1
        tx.create(make_task(batch, slot=slot, node_id="n1", state=S.ASSIGNED))
    await _write(cluster, tx)
    await cluster.round()
    got = cluster.streams["n1"].held()
    assert got is not None
    assert len(got.tasks) == 2  # n1 is told its tasks...
    before = cluster.frames()
    await cluster.round()
    assert cluster.frames() == before  # ... once
    # A heartbeat, tasks moving on without a change of footprint, a new replica count:
    # nobody is told anything.
    await _write(
        cluster, Tx().update(replace(n1, status=replace(n1.status, last_seen=5.0, message="ok")))
    )
    tx = Tx()
    for task in memory.tasks_on_node("n1"):
        tx.update(replace(task, status=replace(task.status, state=S.ACCEPTED)))
    await _write(cluster, tx)
    spec = replace(batch.spec, replicas=9)
    await _write(cluster, Tx().update(replace(batch, spec=spec)))
    await cluster.round()
    assert cluster.frames() == before
    assert cluster.pusher.networks.take(memory) == (set(), set())
    cluster.check(0)


async def test_a_resync_from_a_fresh_start_gives_the_same_state() -> None:
    cluster = Cluster(random.Random(7))
    await _seed_world(cluster)
    await cluster.start()
    for _ in range(60):
        await _step(cluster)
    # Events were lost (a watch overflow): the loop starts again on what the store holds.
    assert cluster.watch is not None
    await cluster.start()
    cluster.check(7)


async def test_a_node_joining_costs_the_others_one_peer() -> None:
    """Nodes that hold the whole mesh are told only the peer that joined (MeshChanges),
    and a session opened afterwards gets its mesh whole."""
    cluster = Cluster(random.Random(1))
    await _seed_world(cluster)
    await cluster.start()
    await cluster.round()
    sent_before = {node_id: len(stream.sent) for node_id, stream in cluster.streams.items()}
    node = make_node("n9")
    status = replace(node.status, mesh_public_key="key-n9", mesh_endpoint="n9:51820")
    await _write(cluster, Tx().create(replace(node, status=status, mesh_address="10.99.0.9/16")))
    await cluster.round()
    for node_id, stream in cluster.streams.items():
        meshes = [m for m in stream.sent[sent_before[node_id] :] if isinstance(m, MeshChanges)]
        assert [[p.node_id for p in m.peers] for m in meshes] == [["n9"]], node_id
        assert not any(isinstance(m, MeshState) for m in stream.sent[sent_before[node_id] :])
    cluster.open("n9")
    await cluster.round()
    joined = cluster.streams["n9"].sent
    assert [type(m) for m in joined if isinstance(m, MeshState | MeshChanges)] == [MeshState]
    cluster.check(1)
