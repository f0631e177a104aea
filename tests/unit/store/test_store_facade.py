from collections.abc import Callable

import msgspec
import pytest

from swarmlite.api import Service, ServiceSpec
from swarmlite.errors import AlreadyExists, Conflict, NotFound, NotLeader
from swarmlite.store import (
    ApplyResult,
    LocalProposer,
    MemoryStore,
    ReadTx,
    Store,
    Tx,
)

replace = msgspec.structs.replace


class FixedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class RacingProposer:
    """A LocalProposer that lets another writer commit first, `races` times."""

    def __init__(self, memory: MemoryStore, races: int) -> None:
        self.memory = memory
        self.local = LocalProposer(memory)
        self.races = races
        self.proposals = 0
        self.barriers = 0

    async def propose(self, data: bytes) -> ApplyResult:
        self.proposals += 1
        if self.races > 0:
            self.races -= 1
            svc = self.memory.get(Service, "a")
            assert svc is not None
            rival = replace(svc, spec=ServiceSpec(name="web", replicas=svc.spec.replicas + 100))
            assert (await self.local.propose(Tx().update(rival).encode())).ok
        return await self.local.propose(data)

    async def read_barrier(self) -> None:
        self.barriers += 1


def scale_to(replicas: int) -> Callable[[ReadTx], Tx]:
    def fn(rt: ReadTx) -> Tx:
        svc = rt.get(Service, "a")
        assert svc is not None
        return Tx().update(replace(svc, spec=ServiceSpec(name="web", replicas=replicas)))

    return fn


async def make_store(races: int = 0) -> tuple[Store, RacingProposer]:
    memory = MemoryStore()
    proposer = RacingProposer(memory, races=0)
    store = Store(memory, proposer, clock=FixedClock(50.0))
    await store.propose(Tx().create(Service(id="a", spec=ServiceSpec(name="web"))))
    proposer.races = races
    return store, proposer


async def test_update_commits_what_fn_built_with_the_index_as_version() -> None:
    store, _ = await make_store()
    result = await store.update(scale_to(3))
    assert result.ok and result.index == 2
    svc = await store.get(Service, "a")
    assert svc is not None and svc.version == 2 and svc.spec.replicas == 3
    assert svc.created_at == 50.0 and svc.updated_at == 50.0


async def test_update_that_lost_a_race_rereads_and_succeeds_on_the_new_version() -> None:
    store, proposer = await make_store(races=1)
    calls: list[int] = []

    def fn(rt: ReadTx) -> Tx:
        svc = rt.get(Service, "a")
        assert svc is not None
        calls.append(svc.version)
        return Tx().update(
            replace(svc, spec=ServiceSpec(name="web", replicas=svc.spec.replicas * 2))
        )

    result = await store.update(fn)
    # read v1; the rival committed v2 first; ours conflicted at 3, re-read v2, committed at 4
    assert calls == [1, 2]
    assert result.ok and result.index == 4
    svc = await store.get(Service, "a")
    assert svc is not None and svc.version == 4
    assert svc.spec.replicas == (1 + 100) * 2  # built on the rival's write, not lost
    assert proposer.proposals == 3  # the first create + two attempts


async def test_update_gives_up_with_conflict_after_max_attempts() -> None:
    memory = MemoryStore()
    proposer = RacingProposer(memory, races=0)
    store = Store(memory, proposer, max_attempts=3)
    await store.propose(Tx().create(Service(id="a", spec=ServiceSpec(name="web"))))
    proposer.races = 100
    with pytest.raises(Conflict, match="gave up after 3 attempts"):
        await store.update(scale_to(2))
    assert proposer.proposals == 1 + 3


async def test_a_genuine_error_is_raised_without_retrying() -> None:
    store, _ = await make_store()
    calls = 0

    def create_clash(rt: ReadTx) -> Tx:
        nonlocal calls
        calls += 1
        return Tx().create(Service(id="b", spec=ServiceSpec(name="WEB")))

    with pytest.raises(AlreadyExists, match="already taken"):
        await store.update(create_clash)
    assert calls == 1

    def update_missing(rt: ReadTx) -> Tx:
        return Tx().update(Service(id="ghost", version=1))

    with pytest.raises(NotFound):
        await store.update(update_missing)


async def test_not_found_after_a_concurrent_write_is_retried_and_fn_sees_the_change() -> None:
    memory = MemoryStore()
    local = LocalProposer(memory)
    store = Store(memory, local)
    await store.propose(Tx().create(Service(id="a", spec=ServiceSpec(name="web"))))
    seen: list[bool] = []

    def fn(rt: ReadTx) -> Tx | None:
        svc = rt.get(Service, "a")
        seen.append(svc is not None)
        if svc is None:
            return None
        # someone deletes it between our read and our commit, once
        if len(seen) == 1:
            memory.apply(memory.applied_index + 1, Tx().delete(svc).encode())
        return Tx().update(svc)

    result = await store.update(fn)
    assert seen == [True, False]
    assert result.objects == ()


async def test_an_empty_update_commits_nothing() -> None:
    store, proposer = await make_store()
    result = await store.update(lambda rt: None)
    assert result.ok and result.index == 1
    assert proposer.proposals == 1 and store.memory.applied_index == 1


async def test_linearizable_reads_wait_for_the_barrier_first() -> None:
    store, proposer = await make_store()
    assert await store.get(Service, "a") is not None
    assert proposer.barriers == 0
    assert await store.get_by_name(Service, "web", linearizable=True) is not None
    assert [s.id for s in await store.list(Service, linearizable=True)] == ["a"]
    assert await store.find(Service, lambda s: True, linearizable=True) != []
    assert proposer.barriers == 3


async def test_errors_from_the_proposer_reach_the_caller() -> None:
    class Follower:
        async def propose(self, data: bytes) -> ApplyResult:
            raise NotLeader("not the leader", details={"leader": "10.0.0.2:2377"})

        async def read_barrier(self) -> None:
            raise NotLeader("not the leader")

    store = Store(MemoryStore(), Follower())
    with pytest.raises(NotLeader) as info:
        await store.update(lambda rt: Tx().create(Service(id="a")))
    assert info.value.leader == "10.0.0.2:2377"
    with pytest.raises(NotLeader):
        await store.list(Service, linearizable=True)


async def test_local_proposer_assigns_increasing_indexes() -> None:
    memory = MemoryStore()
    proposer = LocalProposer(memory)
    first = await proposer.propose(Tx().create(Service(id="a")).encode())
    second = await proposer.propose(Tx().create(Service(id="b")).encode())
    assert (first.index, second.index) == (1, 2)
    assert memory.applied_index == 2
