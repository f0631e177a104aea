"""The autoscaler: labels read and refused in words; replicas follow the readings up at
once and down after the cool-down; a user's scale is respected; updates are left alone."""

from __future__ import annotations

import msgspec
import pytest

from swarmlite.api import Resources, Service, TaskState, UpdateState, UpdateStatus
from swarmlite.api.autoscale import PREFIX, AutoscaleSpec, autoscale_spec
from swarmlite.api.control import TaskUsage, UsageReport
from swarmlite.errors import InvalidArgument
from swarmlite.manager.controlapi.checks import autoscaled_replicas, check_scale, check_service
from swarmlite.manager.orchestrator.autoscaler import Autoscaler, Observation, ask
from swarmlite.manager.usage import Usage
from swarmlite.store import LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_service, make_task

replace = msgspec.structs.replace


def labels(**values: object) -> dict[str, str]:
    return {PREFIX + key: str(value) for key, value in values.items()}


# --------------------------------------------------------------------------- the labels


def test_labels_read_with_their_defaults() -> None:
    assert autoscale_spec({"other": "x"}) is None
    assert autoscale_spec(labels(max=4, cpu=70)) == AutoscaleSpec(
        min=1, max=4, cpu=70.0, cooldown_up=10.0, cooldown_down=30.0
    )
    spec = autoscale_spec(labels(min=2, max=5, memory="80%", rps=100, cooldown="1m"))
    assert spec == AutoscaleSpec(
        min=2, max=5, memory=80.0, rps=100.0, cooldown_up=60.0, cooldown_down=60.0
    )
    assert autoscale_spec(labels(max=2, cpu=50, cooldown_down="2m")) == AutoscaleSpec(
        min=1, max=2, cpu=50.0, cooldown_up=10.0, cooldown_down=120.0
    )


@pytest.mark.parametrize(
    ("given", "words"),
    [
        (labels(cpu=50), "needs swarmlite.autoscale.max"),
        (labels(max=2), "needs a target"),
        (labels(min=3, max=2, cpu=5), "min (3) is above swarmlite.autoscale.max (2)"),
        (labels(max=0, cpu=5), "max must be a whole number of replicas"),
        (labels(max=2, cpu="lots"), "cpu must be a number above 0"),
        (labels(max=2, cpu=50, cooldown="soon"), "cooldown must be a duration"),
        (labels(max=2, cpu=50, colour="red"), "unknown autoscale label swarmlite.autoscale.colour"),
    ],
)
def test_wrong_labels_are_refused_in_words(given: dict[str, str], words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        autoscale_spec(given)
    assert words in caught.value.message


def test_the_control_api_refuses_what_cannot_autoscale() -> None:
    with pytest.raises(InvalidArgument, match="only replicated services autoscale"):
        check_service(make_service("a", mode="global", labels=labels(max=2, cpu=5)).spec)
    with pytest.raises(InvalidArgument, match="a memory target needs a memory limit"):
        check_service(make_service("b", labels=labels(max=2, memory=50)).spec)
    with pytest.raises(InvalidArgument, match=r"service c: swarmlite\.autoscale\.rps must be"):
        check_service(make_service("c", labels=labels(max=2, rps=-1)).spec)
    old = make_service("d", replicas=2, labels=labels(min=1, max=3, cpu=50)).spec
    with pytest.raises(InvalidArgument, match="autoscaled between 1 and 3 replicas; 5 is outside"):
        check_scale(replace(old, replicas=5), old)
    check_scale(replace(old, replicas=3), old)  # within bounds: fine


def test_new_and_redeployed_services_keep_replicas_within_bounds() -> None:
    spec = make_service("e", replicas=1, labels=labels(min=2, max=4, cpu=50)).spec
    assert autoscaled_replicas(spec, None).replicas == 2  # a new one starts at min
    running = replace(spec, replicas=4)
    assert autoscaled_replicas(spec, running).replicas == 4  # a redeploy keeps the choice
    assert autoscaled_replicas(replace(spec, labels=labels(max=3, cpu=5)), running).replicas == 3


# --------------------------------------------------------------------------- the decision


def test_ask_is_the_hpa_rule_clamped() -> None:
    spec = AutoscaleSpec(min=1, max=6, cpu=50.0, rps=10.0)
    assert ask(spec, 2, Observation(cpu=100.0)) == (4, "cpu 100% per task, target 50%")
    assert ask(spec, 2, Observation(cpu=53.0))[0] == 2  # within 10%: no change
    assert ask(spec, 4, Observation(cpu=10.0))[0] == 1
    # The larger ask wins; the bound says so.
    wanted, why = ask(spec, 2, Observation(cpu=60.0, rps=50.0))
    assert (wanted, why) == (6, "rps 50 req/s per task, target 10 req/s (at most 6)")
    assert ask(spec, 3, Observation()) == (3, "no readings yet")


class Cluster:
    def __init__(self, **autoscale: object) -> None:
        self.memory = MemoryStore()
        self.clock = FakeClock()
        self.store = Store(self.memory, LocalProposer(self.memory), clock=self.clock)
        self.usage = Usage(self.clock)
        self.loop = Autoscaler(self.store, self.clock, self.usage)
        limits = Resources(nano_cpus=500_000_000)  # half a core: 0.5 cores is 100%
        service = make_service("web", replicas=2, labels=labels(**autoscale))
        task_template = replace(
            service.spec.task, resources=replace(service.spec.task.resources, limits=limits)
        )
        self.service_id = service.id
        self.initial = replace(service, spec=replace(service.spec, task=task_template))

    async def start(self) -> None:
        await self.store.propose(Tx().create(self.initial))
        await self.tasks_for(2)

    @property
    def service(self) -> Service:
        found = self.memory.get(Service, self.service_id)
        assert found is not None
        return found

    async def tasks_for(self, replicas: int) -> None:
        have = {t.slot for t in self.memory.list(type(make_task()))}
        tx = Tx()
        for slot in range(1, replicas + 1):
            if slot not in have:
                tx.create(make_task(self.service, slot=slot, state=TaskState.RUNNING))
        if tx:
            await self.store.propose(tx)

    def report(self, cores: float) -> None:
        tasks = self.memory.list(type(make_task()))
        usage = [TaskUsage(task_id=t.id, cpu=cores, memory_bytes=0) for t in tasks]
        self.usage.take("n1", UsageReport(interval=2.0, tasks=usage))

    async def round(self, seconds: float, cores: float) -> None:
        self.clock.advance(seconds)
        self.report(cores)
        await self.loop.reconcile()
        await self.tasks_for(self.service.spec.replicas)


async def test_up_at_once_down_after_the_cool_down_and_every_change_says_why() -> None:
    cluster = Cluster(min=1, max=4, cpu=50, cooldown_up="5s", cooldown_down="20s")
    await cluster.start()
    await cluster.round(1, cores=0.5)  # 100% of the limit: twice the target
    assert cluster.service.spec.replicas == 4
    status = cluster.service.autoscale
    assert status is not None and not status.by_hand
    assert status.reason == "cpu 100% per task, target 50%: 2 -> 4 replicas"
    # The load stops: nothing changes until the last change is 20 s old ...
    for _ in range(9):
        await cluster.round(2, cores=0.0)
        assert cluster.service.spec.replicas == 4
    await cluster.round(3, cores=0.0)
    assert cluster.service.spec.replicas == 1
    status = cluster.service.autoscale
    assert status is not None
    assert status.reason == "cpu 0% per task, target 50% (at least 1): 4 -> 1 replicas"


async def test_a_short_dip_does_not_shrink_the_service() -> None:
    cluster = Cluster(min=1, max=4, cpu=50, cooldown="10s")
    await cluster.start()
    await cluster.round(1, cores=0.25)  # on target: the baseline is recorded
    assert cluster.service.spec.replicas == 2
    for _ in range(4):
        await cluster.round(2, cores=0.25)
    await cluster.round(2, cores=0.0)  # one low reading after 11 s
    assert cluster.service.spec.replicas == 2  # the window still holds asks for 2


async def test_a_scale_by_hand_is_kept_for_a_cool_down() -> None:
    cluster = Cluster(min=1, max=4, cpu=50, cooldown="10s")
    await cluster.start()
    await cluster.round(1, cores=0.25)
    by_hand = replace(cluster.service, spec=replace(cluster.service.spec, replicas=3))
    await cluster.store.propose(Tx().update(by_hand))
    await cluster.round(1, cores=0.5)  # the load would ask for 4 ...
    status = cluster.service.autoscale
    assert status is not None and status.by_hand
    assert status.reason == "scaled by hand from 2 to 3 replicas"
    assert cluster.service.spec.replicas == 3
    await cluster.round(5, cores=0.5)
    assert cluster.service.spec.replicas == 3  # ... but waits the cool-down
    await cluster.round(6, cores=0.5)
    assert cluster.service.spec.replicas == 4


async def test_a_rolling_update_is_left_alone() -> None:
    cluster = Cluster(min=1, max=4, cpu=50)
    await cluster.start()
    updating = replace(cluster.service, update_status=UpdateStatus(state=UpdateState.UPDATING))
    await cluster.store.propose(Tx().update(updating))
    await cluster.round(30, cores=0.5)
    assert cluster.service.spec.replicas == 2
    assert cluster.service.autoscale is None


async def test_replicas_outside_the_bounds_move_in_at_once() -> None:
    cluster = Cluster(min=3, max=4, cpu=50)
    await cluster.start()
    await cluster.round(0, cores=0.25)
    assert cluster.service.spec.replicas == 3
    status = cluster.service.autoscale
    assert status is not None
    assert status.reason == "2 replicas is outside 3..4: 2 -> 3 replicas"


async def test_stale_readings_are_no_readings() -> None:
    cluster = Cluster(min=1, max=4, cpu=50)
    await cluster.start()
    cluster.report(0.5)
    cluster.clock.advance(60)  # the node went quiet
    await cluster.loop.reconcile()
    assert cluster.service.spec.replicas == 2
