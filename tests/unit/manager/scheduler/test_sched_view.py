"""The scheduler's kept view equals the view built from the store, after every write.

Random sequences of store writes (nodes join, leave, drain, go down, are relabelled or
change what they advertise; services are created, change their published ports, are
removed; tasks are created, assigned, start, fail, are shut down, complete, are deleted;
time passes) interleaved with scheduler passes, some of which lose a race (a task changes
while the pass writes) or fail to write at all. After each step the scheduler is handed the
events, and the view its next pass would read must equal ``ClusterView.build`` of the
store. A failure names SWARMLITE_SEED.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import msgspec
import pytest

from swarmlite.api import (
    DiscreteResource,
    GenericResource,
    NamedResource,
    Node,
    NodeAvailability,
    NodeState,
    Object,
    PortConfig,
    Service,
    Task,
    TaskState,
)
from swarmlite.errors import Unavailable
from swarmlite.manager.scheduler import ClusterView, Scheduler
from swarmlite.store import Store, Tx

from .conftest import GIB, Cluster, Make

replace = msgspec.structs.replace
NODE_IDS = [f"n{i}" for i in range(6)]
SERVICE_IDS = ["web", "api", "db"]


def summary(view: ClusterView) -> dict[str, Any]:
    """What the filters and the ranking read, node by node, in the view's node order."""
    nodes = {}
    for info in view.nodes.values():
        services = set(info.failed) | set(info.by_service)
        nodes[info.id] = {
            "node": info.node,
            "tasks": dict(sorted(info.tasks.items())),
            "reserved": (info.reserved_nano_cpus, info.reserved_memory_bytes),
            "by_service": {k: v for k, v in info.by_service.items() if v},
            "ports": sorted(info.ports),
            "counted_used": {k: v for k, v in info.counted_used.items() if v},
            "named_used": sorted(info.named_used),
            "failed": info.failed,
            "recent_failures": {s: info.recent_failures(s) for s in sorted(services)},
            "backed_off": sorted(s for s in services if info.backed_off(s)),
        }
    return {"order": list(view.nodes), "nodes": nodes, "services": view.services}


class Sequence:
    """A store, a scheduler fed with its events by hand, and random writes to it."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.cluster = Cluster()
        self.memory = self.cluster.memory
        self.clock = self.cluster.clock
        self.store: Store = self.cluster.store
        self.watch = self.memory.watch(kinds=list(Scheduler.kinds))
        self.scheduler = Scheduler(self.store, self.clock)
        self.scheduler.start()
        self.serial = 0
        self.steps: list[str] = []

    # -- reading and checking

    def tasks(self, predicate: Any = None) -> list[Task]:
        return [t for t in self.memory.list(Task) if predicate is None or predicate(t)]

    async def catch_up(self) -> None:
        if self.watch.pending:
            self.scheduler.changed(await self.watch.next_batch())

    def check(self) -> None:
        now = self.clock.wall()
        kept = summary(self.scheduler.pass_view(now))
        built = summary(ClusterView.build(self.memory, now))
        assert kept == built, f"SWARMLITE_SEED={self.seed} after {self.steps[-8:]}"

    # -- writes

    async def write(self, *objects: Object, delete: Object | None = None) -> None:
        tx = Tx()
        for obj in objects:
            if self.memory.get(obj.KIND, obj.id) is None:
                tx.create(obj)
            else:
                tx.update(obj)
        if delete is not None:
            tx.delete(delete)
        (await self.store.propose(tx)).unwrap()

    def node(self, node_id: str) -> Node:
        rng = self.rng
        node = Make.node(
            node_id,
            labels={"zone": rng.choice("ab")} if rng.random() < 0.7 else {},
            memory=rng.choice([0, 2 * GIB, 8 * GIB]),
            cpus=rng.choice([0, 4]),
        )
        return replace(node, status=replace(node.status, generic_resources=self.generic()))

    def generic(self) -> list[GenericResource]:
        found: list[GenericResource] = []
        if self.rng.random() < 0.5:
            found += [NamedResource(kind="gpu", value=f"GPU-{i}") for i in range(2)]
        if self.rng.random() < 0.5:
            found.append(DiscreteResource(kind="fpga", value=4))
        return found

    def service(self, service_id: str) -> Service:
        svc = Make.service(service_id, memory=self.rng.choice([0, GIB]), cpus=0.5)
        return self.with_ports(svc)

    def with_ports(self, svc: Service) -> Service:
        ports = [
            PortConfig(target=80, published=published, protocol="tcp", mode=mode)
            for published, mode in [(8080, "host"), (9090, "host"), (7000, "ingress")]
            if self.rng.random() < 0.4
        ]
        return replace(
            svc, spec=replace(svc.spec, endpoint=replace(svc.spec.endpoint, ports=ports))
        )

    def new_task(self) -> Task:
        rng = self.rng
        service_id = rng.choice(SERVICE_IDS)
        svc = self.memory.get(Service, service_id) or Make.service(service_id)
        self.serial += 1
        node_id = rng.choice(NODE_IDS) if rng.random() < 0.2 else ""
        task = Make.task(svc, self.serial, node_id=node_id, id=f"t{self.serial}")
        if rng.random() < 0.3:
            reservations = replace(
                task.spec.resources.reservations,
                generic_resources=[DiscreteResource(kind=rng.choice(["gpu", "fpga"]), value=1)],
            )
            resources = replace(task.spec.resources, reservations=reservations)
            task = replace(task, spec=replace(task.spec, resources=resources))
        return task

    def assigned(self, task: Task, node_id: str) -> Task:
        """``task`` as some earlier leader assigned it (whatever the node had free)."""
        wanted = task.spec.resources.reservations.generic_resources
        given: list[GenericResource] = []
        for want in wanted:
            if want.kind == "gpu":
                given.append(NamedResource(kind="gpu", value=f"GPU-{self.rng.randint(0, 1)}"))
            else:
                given.append(DiscreteResource(kind=want.kind, value=want.value))
        status = replace(task.status, state=TaskState.ASSIGNED)
        return replace(task, node_id=node_id, assigned_generic_resources=given, status=status)

    async def step(self) -> None:
        rng = self.rng
        nodes = self.memory.list(Node)
        live = self.tasks(lambda t: t.status.state < TaskState.COMPLETE)
        choice = rng.randrange(17)
        if choice == 0 or not nodes:
            node_id = rng.choice(NODE_IDS)
            if self.memory.get(Node, node_id) is None:
                self.steps.append(f"join {node_id}")
                await self.write(self.node(node_id))
        elif choice == 1:
            node = rng.choice(nodes)
            self.steps.append(f"leave {node.id}")
            await self.write(delete=node)
        elif choice == 2:
            node = rng.choice(nodes)
            availability = rng.choice(list(NodeAvailability))
            self.steps.append(f"availability {node.id} {availability.value}")
            await self.write(replace(node, spec=replace(node.spec, availability=availability)))
        elif choice == 3:
            node = rng.choice(nodes)
            node_state = rng.choice([NodeState.READY, NodeState.DOWN])
            self.steps.append(f"state {node.id} {node_state.value}")
            await self.write(replace(node, status=replace(node.status, state=node_state)))
        elif choice == 4:
            node = rng.choice(nodes)
            labels = {"zone": rng.choice("abc")} if rng.random() < 0.8 else {}
            generic = self.generic() if rng.random() < 0.5 else node.status.generic_resources
            self.steps.append(f"relabel {node.id} {labels}")
            await self.write(
                replace(
                    node,
                    spec=replace(node.spec, labels=labels),
                    status=replace(node.status, generic_resources=generic),
                )
            )
        elif choice == 5:
            service_id = rng.choice(SERVICE_IDS)
            found = self.memory.get(Service, service_id)
            if found is None:
                self.steps.append(f"create service {service_id}")
                await self.write(self.service(service_id))
            elif rng.random() < 0.3:
                self.steps.append(f"remove service {service_id}")
                await self.write(delete=found)
            else:
                self.steps.append(f"ports of {service_id}")
                await self.write(self.with_ports(found))
        elif choice in (6, 7, 8):
            batch = [self.new_task() for _ in range(rng.randint(1, 4))]
            self.steps.append(f"create {[t.id for t in batch]}")
            await self.write(*batch)
        elif choice == 9 and live:
            task = rng.choice(live)
            node_id = task.node_id or rng.choice(NODE_IDS)
            self.steps.append(f"assign {task.id} to {node_id}")
            await self.write(self.assigned(task, node_id))
        elif choice == 10 and live:
            task = rng.choice([t for t in live if t.node_id] or live)
            state = rng.choice([TaskState.RUNNING, TaskState.STARTING])
            if task.status.state >= TaskState.ASSIGNED:
                self.steps.append(f"{state.value} {task.id}")
                await self.write(replace(task, status=replace(task.status, state=state)))
        elif choice == 11 and live:
            task = rng.choice(live)
            state = rng.choice([TaskState.FAILED, TaskState.REJECTED])
            when = self.clock.wall() - rng.choice([0, 30, 299, 301, 1000])
            node_id = task.node_id or rng.choice(NODE_IDS)
            self.steps.append(f"{state.value} {task.id} on {node_id}")
            status = replace(task.status, state=state, timestamp=when)
            await self.write(replace(task, node_id=node_id, status=status))
        elif choice == 12 and live:
            task = rng.choice(live)
            self.steps.append(f"shut down {task.id}")
            await self.write(replace(task, desired_state=TaskState.SHUTDOWN))
        elif choice == 13 and live:
            task = rng.choice(live)
            state = rng.choice([TaskState.SHUTDOWN, TaskState.COMPLETE, TaskState.ORPHANED])
            self.steps.append(f"{state.value} {task.id}")
            await self.write(replace(task, status=replace(task.status, state=state)))
        elif choice == 14:
            stored = self.tasks()
            if stored:
                task = rng.choice(stored)
                self.steps.append(f"delete {task.id}")
                await self.write(delete=task)
        elif choice == 15:
            seconds = rng.choice([1.0, 60.0, 250.0])
            self.steps.append(f"wait {seconds}")
            self.clock.advance(seconds)
        else:
            await self.scheduling_pass()
        await self.catch_up()

    async def scheduling_pass(self) -> None:
        rng = self.rng
        pending = self.tasks(lambda t: t.status.state == TaskState.PENDING)
        proposer = self.cluster.proposer
        if pending and rng.random() < 0.3:
            # Lose a race: a task of the pass is shut down just before the pass writes.
            task = rng.choice(pending)
            proposer.rivals.append(Tx().update(replace(task, desired_state=TaskState.SHUTDOWN)))
            self.steps.append(f"pass, losing {task.id}")
        elif rng.random() < 0.2:
            proposer.failures.append(Unavailable("leader moving"))
            self.steps.append("pass, failing")
        else:
            self.steps.append("pass")
        self.scheduler._all = self.scheduler._all or rng.random() < 0.5
        with contextlib.suppress(Unavailable):
            await self.scheduler.reconcile()
        proposer.rivals.clear()
        proposer.failures.clear()


@pytest.mark.parametrize("seed", range(40))
async def test_the_kept_view_equals_the_view_built_from_the_store(seed: int) -> None:
    sequence = Sequence(seed)
    sequence.check()
    for _ in range(150):
        await sequence.step()
        sequence.check()


async def test_the_sequences_exercise_what_the_view_must_follow() -> None:
    """Nodes leave and come back holding tasks, passes place tasks, writes are lost."""
    seen: dict[str, int] = {}
    for seed in range(40):
        sequence = Sequence(seed)
        for _ in range(150):
            await sequence.step()
        for step in sequence.steps:
            word = step.split()[0] if not step.startswith("pass") else step.split(",")[0]
            seen[word] = seen.get(word, 0) + 1
        placed = sequence.tasks(lambda t: t.status.state == TaskState.ASSIGNED)
        seen["assigned"] = seen.get("assigned", 0) + len(placed)
    for word in ("join", "leave", "relabel", "ports", "failed", "shut", "delete", "wait"):
        assert seen.get(word, 0) > 20, (word, seen)
    assert seen["pass"] > 100 and seen["assigned"] > 100, seen


async def test_a_second_start_rebuilds_the_view_from_scratch() -> None:
    sequence = Sequence(7)
    for _ in range(60):
        await sequence.step()
    # A resync: the loop opens a new watch and starts again on a view that has state.
    sequence.watch.close()
    sequence.watch = sequence.memory.watch(kinds=list(Scheduler.kinds))
    before = sequence.scheduler.view
    sequence.scheduler.start()
    assert sequence.scheduler.view is not before
    sequence.check()
    for _ in range(60):
        await sequence.step()
        sequence.check()
