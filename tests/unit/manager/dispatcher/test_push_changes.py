"""A node is sent its whole set once per session and then only what changed, and holds
exactly the whole set: after every round of randomised store writes (tasks created,
placed, moved, run, told to stop, ended and deleted; services' credentials set, changed,
dropped, services removed; secrets and configs removed and made again under the same name;
sessions opening again; the loop resyncing from a fresh start; the pusher sometimes behind
the store), applying every message a session got, in order, gives the `Assignments`
computed from scratch from the store (tasks and their desired states, secrets, configs,
registry credentials); each session starts with a whole set; and each change names only
what the node did not hold. A real store (LocalProposer), fake session streams. A failure
names SWARMLITE_SEED.
"""

from __future__ import annotations

import os
import random

import msgspec
import pytest

from swarmlite.api import Config, ConfigSpec, FileRef, Node, Secret, SecretSpec, Service, Task
from swarmlite.api import TaskState as S
from swarmlite.api.control import AssignmentChanges, Assignments, ManagerMessage
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.manager.dispatcher.dispatcher import assigned
from swarmlite.store import Tx
from swarmlite.testing.factories import make_node, make_service, make_task
from swarmlite.testing.pusherrig import PusherRig

replace = msgspec.structs.replace


class Stream:
    """A session's stream: what it was sent, checked message by message as a node would
    apply it."""

    def __init__(self) -> None:
        self.whole: Assignments | None = None
        self.changes = 0

    async def send(self, frame: bytes) -> None:
        message = msgspec.msgpack.decode(frame, type=ManagerMessage)
        if isinstance(message, Assignments):
            self.whole = message
        elif isinstance(message, AssignmentChanges):
            held = self.whole
            assert held is not None, "a change before the session's whole set"
            told = {t.id: t.desired_state for t in held.tasks}
            assert message.tasks or message.removed or message.registry_auth is not None
            for task in message.tasks:  # only what the node did not hold
                assert told.get(task.id) != task.desired_state, task.id
            assert set(message.removed) <= told.keys()
            assert message.registry_auth != held.registry_auth
            self.changes += 1
            self.whole = message.applied_to(held)


class Cluster(PusherRig[Stream]):
    def new_stream(self) -> Stream:
        return Stream()

    def check(self, seed: int) -> None:
        """What each node holds is the whole set computed from scratch."""
        memory = self.memory
        for node_id, stream in self.streams.items():
            if self.dispatcher.sessions.get(node_id) is None:
                continue
            where = f"SWARMLITE_SEED={seed} node={node_id}"
            tasks = [t for t in memory.list(Task) if t.node_id == node_id and assigned(t)]
            got = stream.whole
            assert got is not None, where
            assert len(got.tasks) == len({t.id for t in got.tasks}), where
            assert {t.id: t.desired_state for t in got.tasks} == {
                t.id: t.desired_state for t in tasks
            }, where
            specs = {t.id: t.spec for t in tasks}
            assert all(t.spec == specs[t.id] for t in got.tasks), where
            secrets = {r.name for t in tasks for r in t.spec.container.secrets}
            configs = {r.name for t in tasks for r in t.spec.container.configs}
            assert sorted((s.spec.name, s.id, s.spec.data) for s in got.secrets) == sorted(
                (s.spec.name, s.id, s.spec.data)
                for s in memory.list(Secret)
                if s.spec.name in secrets
            ), where
            assert sorted((c.spec.name, c.id) for c in got.configs) == sorted(
                (c.spec.name, c.id) for c in memory.list(Config) if c.spec.name in configs
            ), where
            pulling = {t.service_id for t in tasks if not t.desired_state.terminal}
            auths = {
                s.id: s.registry_auth
                for s in memory.list(Service)
                if s.id in pulling and s.registry_auth is not None
            }
            assert got.registry_auth == auths, where


NAMES = ["a", "b", "c"]


async def _seed_world(cluster: Cluster) -> None:
    tx = Tx()
    for i in range(1, 5):
        tx.create(make_node(f"n{i}"))
    for name in NAMES:
        tx.create(Secret(id=f"sec-{name}", spec=SecretSpec(name=name, data=b"0")))
        tx.create(Config(id=f"cfg-{name}", spec=ConfigSpec(name=name, data=b"0")))
    for i in range(6):  # some with secrets and configs, some with credentials
        service = make_service(f"svc{i}", id=f"s{i}")
        container = service.spec.task.container
        container = replace(
            container,
            secrets=[FileRef(name=n, target=n) for n in NAMES[: i % 3]],
            configs=[FileRef(name=n, target=f"/{n}") for n in NAMES[(i + 1) % 3 :][:1]],
        )
        spec = replace(service.spec, task=replace(service.spec.task, container=container))
        auth = RegistryAuth(server="reg", username=f"u{i}", password="p") if i % 2 else None
        tx.create(replace(service, spec=spec, registry_auth=auth))
    await cluster.store.propose(tx)
    for i in range(1, 5):
        cluster.open(f"n{i}")


async def _step(cluster: Cluster) -> None:
    rng, memory = cluster.rng, cluster.memory
    nodes = sorted(n.id for n in memory.list(Node))
    services = sorted(memory.list(Service), key=lambda s: s.id)
    tasks = sorted(memory.list(Task), key=lambda t: t.id)
    choice = rng.randrange(100)
    tx = Tx()
    if choice < 25 and services:  # a new task: placed already, or not yet
        service = rng.choice(services)
        n = cluster.next()
        node, state = rng.choice([("", S.PENDING), (rng.choice(nodes), S.ASSIGNED)])
        tx.create(make_task(service, id=f"t{n:04d}", slot=n, node_id=node, state=state))
    elif choice < 45 and tasks:  # placed, or moved (the store allows it)
        task = rng.choice(tasks)
        status = replace(task.status, state=rng.choice([S.ASSIGNED, S.RUNNING]))
        tx.update(replace(task, node_id=rng.choice(nodes), status=status))
    elif choice < 70 and tasks:  # it runs, is told to stop or complete, ends, or goes
        task = rng.choice(tasks)
        pick = rng.randrange(6)
        if pick == 0:
            tx.update(replace(task, status=replace(task.status, state=S.RUNNING, health="ok")))
        elif pick == 1:
            tx.update(replace(task, desired_state=rng.choice([S.SHUTDOWN, S.COMPLETE])))
        elif pick == 2:
            tx.update(replace(task, desired_state=S.RUNNING))  # not allowed in life: a test
        elif pick == 3:
            tx.update(replace(task, status=replace(task.status, state=S.SHUTDOWN)))
        elif pick == 4:
            tx.update(replace(task, status=replace(task.status, state=S.FAILED)))
        else:
            tx.delete(task)
    elif choice < 80 and services:  # credentials set, changed or dropped
        service = rng.choice(services)
        n = cluster.next()
        auth = RegistryAuth(server="reg", username="u", password=f"p{n}")
        tx.update(replace(service, registry_auth=rng.choice([auth, None])))
    elif choice < 82 and services:  # a service goes (its tasks stay, for a while)
        tx.delete(rng.choice(services))
    elif choice < 84:  # a service comes
        n = cluster.next()
        auth = RegistryAuth(server="reg", username="u", password=f"p{n}")
        container = replace(
            make_service().spec.task.container, secrets=[FileRef(name="a", target="a")]
        )
        service = make_service(f"new{n}", id=f"snew{n}")
        spec = replace(service.spec, task=replace(service.spec.task, container=container))
        tx.create(replace(service, spec=spec, registry_auth=rng.choice([auth, None])))
    elif choice < 92:  # a secret or config removed, or made again under its name
        is_secret = rng.random() < 0.5
        name = rng.choice(NAMES)
        existing = memory.get_by_name(Secret if is_secret else Config, name)
        n = cluster.next()
        if existing is not None:
            tx.delete(existing)
        elif is_secret:
            tx.create(Secret(id=f"{name}{n}", spec=SecretSpec(name=name, data=b"%d" % n)))
        else:
            tx.create(Config(id=f"{name}{n}", spec=ConfigSpec(name=name, data=b"%d" % n)))
    elif choice < 97:  # a session opens again (or for the first time)
        cluster.open(rng.choice(nodes))
    else:
        await cluster.start()  # the loop resyncs
    if tx.ops:
        await cluster.store.propose(tx)


SEEDS = [int(os.environ["SWARMLITE_SEED"])] if "SWARMLITE_SEED" in os.environ else range(10)


@pytest.mark.parametrize("seed", SEEDS)
async def test_what_each_node_holds_is_its_whole_set_after_every_round(seed: int) -> None:
    cluster = Cluster(random.Random(seed))
    await _seed_world(cluster)
    await cluster.random_rounds(seed, 200, _step, most=5)
    assert sum(s.changes for s in cluster.streams.values()) > 0  # changes were exercised


async def test_one_new_task_on_a_busy_node_sends_that_task_only() -> None:
    cluster = Cluster(random.Random(0))
    await _seed_world(cluster)
    await cluster.start()
    service = cluster.memory.get(Service, "s1")
    assert service is not None
    tx = Tx()
    for slot in range(1, 51):
        tx.create(make_task(service, id=f"t{slot:03d}", slot=slot, node_id="n1", state=S.ASSIGNED))
    await cluster.store.propose(tx)
    await cluster.round()
    sent: list[ManagerMessage] = []
    stream = cluster.streams["n1"]
    original = stream.send

    async def keep(frame: bytes) -> None:
        sent.append(msgspec.msgpack.decode(frame, type=ManagerMessage))
        await original(frame)

    stream.send = keep  # type: ignore[method-assign]
    one = make_task(service, id="t999", slot=999, node_id="n1", state=S.ASSIGNED)
    await cluster.store.propose(Tx().create(one))
    await cluster.round()
    (message,) = sent
    assert isinstance(message, AssignmentChanges)
    assert [t.id for t in message.tasks] == ["t999"] and message.removed == []
    assert message.registry_auth is None  # s1's credentials: the node has them already
    assert message.secrets == []  # and s1's secret too
    cluster.check(0)
