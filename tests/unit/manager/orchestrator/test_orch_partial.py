"""Partial planning ends where whole-service planning ends.

The real orchestrator loops, allocator and scheduler run twice, side by side, over one
random sequence of writes (nodes down, up, drained; tasks running, failing, completing,
stopping; scale, spec updates that start rolling updates, services created and removed;
time passing for restart delays and update delays): once with partial planning (a service
dirty in some slots or nodes plans only those) and task changes no plan reads skipped, once
with every dirty service planned whole, again for every change of its tasks. After every
step both hold the same tasks by (service, slot, node, state, desired). A failure names the
seed and the step.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import msgspec
import pytest

from swarmlite.api import Node, NodeAvailability, NodeState, Service, Task, TaskState
from swarmlite.manager.allocator import Allocator
from swarmlite.manager.allocator.taskindex import TaskIndex
from swarmlite.manager.orchestrator.common import Key, Plan, ServiceLoop
from swarmlite.store import ReadTx, Tx
from swarmlite.testing.factories import make_network, make_node, make_service, with_networks
from swarmlite.testing.leaderloops import LoopLeader

replace = msgspec.structs.replace

NODES = [f"node{i}" for i in range(6)]
STARTED = (TaskState.ASSIGNED, TaskState.ACCEPTED, TaskState.PREPARING, TaskState.STARTING)
Write = Callable[[ReadTx, float], Tx | None]  # the state, the wall time


class Leader(LoopLeader):
    """The plain loops, with partial planning on or off, counting plans that stayed partial.
    Off, every task event also dirties its key, even one that changes nothing a plan reads
    (``skip_unread``): the reference both shortcuts must end equal to."""

    def __init__(self, *, partial: bool) -> None:
        super().__init__()
        self.partial_plans = 0  # plans of only some keys that stayed partial
        for loop in self.loops:
            if isinstance(loop, ServiceLoop):
                loop.partial = partial
                loop.skip_unread = partial
                self._count(loop)

    def _count(self, loop: ServiceLoop) -> None:
        plan_keys = loop.plan_keys
        plan_service = loop.plan_service
        whole_calls = [0]

        def counted_whole(rt: ReadTx, service_id: str, now: float) -> Plan | None:
            whole_calls[0] += 1
            return plan_service(rt, service_id, now)

        def counted(rt: ReadTx, service_id: str, keys: frozenset[Key], now: float) -> Plan | None:
            before = whole_calls[0]
            plan = plan_keys(rt, service_id, keys, now)
            if whole_calls[0] == before and plan is not None:
                self.partial_plans += 1
            return plan

        loop.plan_keys = counted  # type: ignore[method-assign]
        loop.plan_service = counted_whole  # type: ignore[method-assign]

    async def write_at(self, fn: Write) -> None:
        """Commit what ``fn`` makes of the state at the leader's wall time."""
        now = self.clock.wall()
        await self.write(lambda rt: fn(rt, now))


# -- the writes: each picks its objects from the state it is given, by what both runs share


def _ordered(rt: ReadTx) -> list[Task]:
    return sorted(
        rt.list(Task),
        key=lambda t: (t.service_name, t.slot, t.node_id, t.created_at, t.status.state.rank),
    )


def _ready(rt: ReadTx, task: Task) -> bool:
    node = rt.get(Node, task.node_id) if task.node_id else None
    return node is not None and node.status.state is NodeState.READY


def agents_act() -> Write:
    """Every agent does what it was told: tasks given to it run, tasks told to stop stop."""

    def fn(rt: ReadTx, now: float) -> Tx | None:
        tx = Tx()
        for task in _ordered(rt):
            if not _ready(rt, task):
                continue
            state = None
            if task.desired_state is TaskState.RUNNING and task.status.state in STARTED:
                state = TaskState.RUNNING
            elif (
                task.desired_state is TaskState.SHUTDOWN
                and TaskState.ASSIGNED <= task.status.state <= TaskState.RUNNING
            ):
                state = TaskState.SHUTDOWN
            if state is not None:
                status = replace(task.status, state=state, timestamp=now)
                tx.update(replace(task, status=status))
        return tx or None

    return fn


def task_ends(pick: int, state: TaskState) -> Write:
    """The ``pick``-th running task (in an order both runs share) fails or completes."""

    def fn(rt: ReadTx, now: float) -> Tx | None:
        running = [t for t in _ordered(rt) if t.status.state is TaskState.RUNNING and _ready(rt, t)]
        if not running:
            return None
        task = running[pick % len(running)]
        code = 0 if state is TaskState.COMPLETE else 1
        status = replace(task.status, state=state, timestamp=now, exit_code=code, err="boom")
        return Tx().update(replace(task, status=status))

    return fn


def node_change(node_id: str, **changes: object) -> Write:
    def fn(rt: ReadTx, now: float) -> Tx:
        node = rt.get(Node, node_id)
        assert node is not None
        spec = replace(node.spec, **{k: v for k, v in changes.items() if k == "availability"})
        status = replace(node.status, **{k: v for k, v in changes.items() if k == "state"})
        return Tx().update(replace(node, spec=spec, status=status))

    return fn


def service_change(pick: int, what: str, value: object) -> Write:
    """What `service scale` / `service update --image` / `service rm` write."""

    def fn(rt: ReadTx, now: float) -> Tx | None:
        services = sorted(rt.list(Service), key=lambda s: s.spec.name)
        if not services:
            return None
        service = services[pick % len(services)]
        if what == "remove":
            return Tx().delete(service)
        spec = service.spec
        if what == "replicas":
            if spec.mode.is_global:
                return None
            spec = replace(spec, replicas=value)
        else:
            container = replace(spec.task.container, image=value)
            spec = replace(spec, task=replace(spec.task, container=container))
        changed = replace(
            service,
            spec=spec,
            # As the control API does: a scale is not a new version of the tasks' spec.
            spec_version=service.spec_version + (what != "replicas"),
            previous_spec=service.spec,
            update_status=None,
        )
        return Tx().update(changed)

    return fn


def create(*objects: object) -> Write:
    def fn(rt: ReadTx, now: float) -> Tx:
        tx = Tx()
        for obj in objects:
            tx.create(obj)  # type: ignore[arg-type]
        return tx

    return fn


def new_service(rng: random.Random, number: int) -> Service:
    name = f"svc{number:03d}"
    mode = rng.choice(["replicated", "replicated", "replicated", "global"])
    service = make_service(
        name,
        id=f"id-{name}",
        mode=mode,
        replicas=rng.randint(1, 8),
        image=f"img:{rng.randint(1, 3)}",
        restart_delay=rng.choice([0.0, 0.0, 3.0]),
        max_attempts=rng.choice([0, 0, 2]),
        parallelism=rng.choice([0, 1, 2]),
        order=rng.choice(["stop-first", "start-first"]),
        failure_action=rng.choice(["pause", "continue", "rollback"]),
        monitor=rng.choice([0.0, 2.0]),
        constraints=rng.choice([[], [], ["node.hostname != node0"]]),
    )
    if rng.random() < 0.3:
        service = with_networks(service, "back")
    return service


def next_step(rng: random.Random, number: int) -> tuple[str, Write | float]:
    roll = rng.random()
    if roll < 0.25:
        return "agents", agents_act()
    if roll < 0.40:
        state = rng.choice([TaskState.FAILED, TaskState.COMPLETE])
        return f"task {state.value}", task_ends(rng.randrange(1000), state)
    if roll < 0.55:
        node = rng.choice(NODES)
        change: dict[str, object] = rng.choice(
            [
                {"state": NodeState.DOWN},
                {"state": NodeState.READY},
                {"availability": NodeAvailability.DRAIN},
                {"availability": NodeAvailability.ACTIVE},
            ]
        )
        return f"{node} {change}", node_change(node, **change)
    if roll < 0.63:
        replicas = rng.randint(0, 9)
        return f"scale to {replicas}", service_change(rng.randrange(100), "replicas", replicas)
    if roll < 0.72:
        image = f"img:{rng.randint(1, 3)}"
        return f"update to {image}", service_change(rng.randrange(100), "image", image)
    if roll < 0.75:
        return "remove a service", service_change(rng.randrange(100), "remove", None)
    if roll < 0.80:
        return f"create svc{number:03d}", create(new_service(rng, number))
    return "time passes", rng.choice([0.5, 1.0, 3.0, 10.0])


# 19: an update that started and ended in one plan wrote its service unchanged, which
# planned it again, forever ("the store kept changing").
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 19])
async def test_partial_planning_ends_as_whole_service_planning(seed: int) -> None:
    rng = random.Random(seed)
    partial, whole = Leader(partial=True), Leader(partial=False)
    leaders = (partial, whole)
    for leader in leaders:
        await leader.start()
    try:
        nodes = [make_node(id=n, hostname=n) for n in NODES]
        first = [new_service(rng, i) for i in range(4)]
        for leader in leaders:
            await leader.write_at(create(*nodes, make_network("back", id="net-back")))
            await leader.write_at(create(*first))
        assert partial.rows() == whole.rows()
        steps = []
        for number in range(4, 204):
            what, action = next_step(rng, number)
            steps.append(what)
            for leader in leaders:
                if isinstance(action, float):
                    await leader.advance(action)
                else:
                    await leader.write_at(action)
            assert partial.rows() == whole.rows(), (
                f"seed {seed}: partial and whole planning differ after step {len(steps)} "
                f"({what}); steps so far: {steps}"
            )
        rows = partial.rows()
        # The allocator's kept index of waiting tasks says what a fresh scan says.
        allocator = next(loop for loop in partial.loops if isinstance(loop, Allocator))
        kept, fresh = allocator._tasks(partial.memory), TaskIndex.build(partial.memory)
        assert (kept.waiting, kept.networked) == (fresh.waiting, fresh.networked)
        assert any(t.networks for t in partial.memory.list(Task)), "no task got an address"
    finally:
        for leader in leaders:
            await leader.stop()

    # The runs did what they are about: slots were refilled, and plans stayed partial.
    assert partial.partial_plans > 20, partial.partial_plans
    assert whole.partial_plans == 0
    states = Counter(state for *_, state, _ in rows)
    assert states[TaskState.RUNNING.value] > 0 and states[TaskState.FAILED.value] > 0, states


async def test_a_deploy_is_planned_once_and_reaped_never() -> None:
    """The scheduler putting tasks on up nodes changes no plan, and tasks that are wanted
    drop nothing from history: a fresh service is planned once, by its own orchestrator."""
    leader = Leader(partial=True)
    plans: Counter[str] = Counter()
    for loop in leader.loops:
        if isinstance(loop, ServiceLoop):
            loop.plan_keys = _counted(loop.plan_keys, plans, loop.name)  # type: ignore[method-assign,assignment]
            loop.plan_service = _counted(loop.plan_service, plans, loop.name)  # type: ignore[method-assign,assignment]
    async with leader:
        nodes = [make_node(id=n, hostname=n) for n in NODES]
        await leader.write_at(create(*nodes))
        await leader.write_at(create(make_service("web", id="id-web", replicas=12)))
        rows = leader.rows()
        assert len(rows) == 12 and {row[3] for row in rows} == {"assigned"}
        assert plans == {"orchestrator.replicated": 1}
        # Running is what a rolling update waits for: the orchestrator reads it.
        await leader.write_at(agents_act())
        assert plans == {"orchestrator.replicated": 2}
        # A task fails: its slot is planned (told to stop, replaced), and planned again for
        # the stop it wrote; the reaper plans once, for the task it may now drop.
        await leader.write_at(task_ends(0, TaskState.FAILED))
        assert plans == {"orchestrator.replicated": 4, "orchestrator.reaper": 1}


def _counted(plan: Callable[..., object], plans: Counter[str], name: str) -> Callable[..., object]:
    def counted(*args: object) -> object:
        result = plan(*args)
        if result is not None:
            plans[name] += 1
        return result

    return counted
