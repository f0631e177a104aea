"""Merge writes: concurrent edits of one object combined, retried until they apply."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
import pytest

from swarmlite.api import Service, ServiceSpec
from swarmlite.errors import Conflict, InvalidArgument, NotFound
from swarmlite.store import ApplyResult, LocalProposer, MemoryStore, Store, Tx

replace = msgspec.structs.replace


class CountingProposer:
    """A LocalProposer that counts commits, yields to other tasks first (as raft would),
    and lets a rival writer commit before the next ``races`` proposals."""

    def __init__(self, memory: MemoryStore) -> None:
        self.memory = memory
        self.local = LocalProposer(memory)
        self.proposals = 0
        self.races = 0

    async def propose(self, data: bytes) -> ApplyResult:
        await asyncio.sleep(0)
        self.proposals += 1
        if self.races > 0:
            self.races -= 1
            svc = self.memory.get(Service, "a")
            assert svc is not None
            rival = replace(svc, spec=replace(svc.spec, labels={**svc.spec.labels, "rival": "1"}))
            assert (await self.local.propose(Tx().update(rival).encode())).ok
        return await self.local.propose(data)

    async def read_barrier(self) -> None:
        return None


async def make_store() -> tuple[Store, CountingProposer]:
    memory = MemoryStore()
    proposer = CountingProposer(memory)
    store = Store(memory, proposer)
    await store.propose(Tx().create(Service(id="a", spec=ServiceSpec(name="web"))))
    proposer.proposals = 0
    return store, proposer


def add_label(key: str) -> Callable[[Service], Service]:
    def edit(svc: Service) -> Service:
        return replace(svc, spec=replace(svc.spec, labels={**svc.spec.labels, key: "1"}))

    return edit


async def test_a_thousand_concurrent_edits_all_land_in_few_commits() -> None:
    store, proposer = await make_store()

    edits = [store.merge(Service, "a", add_label(f"k{i}")) for i in range(1000)]
    results = await asyncio.gather(*edits)

    svc = store.memory.get(Service, "a")
    assert svc is not None
    assert {f"k{i}" for i in range(1000)} <= set(svc.spec.labels)
    assert proposer.proposals < 20
    assert all(r.version <= svc.version for r in results)


async def test_an_edit_that_lost_a_race_is_applied_again_to_the_newer_object() -> None:
    store, proposer = await make_store()
    proposer.races = 3

    await store.merge(Service, "a", add_label("mine"))

    svc = store.memory.get(Service, "a")
    assert svc is not None
    assert {"mine", "rival"} <= set(svc.spec.labels)


async def test_an_edit_that_raises_fails_alone() -> None:
    store, _ = await make_store()

    def refuse(svc: Service) -> Service:
        raise InvalidArgument("no")

    results = await asyncio.gather(
        store.merge(Service, "a", add_label("x")),
        store.merge(Service, "a", refuse),
        store.merge(Service, "a", add_label("y")),
        return_exceptions=True,
    )

    assert isinstance(results[1], InvalidArgument)
    svc = store.memory.get(Service, "a")
    assert svc is not None and {"x", "y"} <= set(svc.spec.labels)


async def test_an_edit_that_changes_nothing_commits_nothing() -> None:
    store, proposer = await make_store()

    await store.merge(Service, "a", lambda svc: None)

    assert proposer.proposals == 0


async def test_an_edit_of_a_missing_object_is_not_found() -> None:
    store, _ = await make_store()

    with pytest.raises(NotFound):
        await store.merge(Service, "nope", add_label("x"))


async def test_an_object_that_keeps_changing_ends_in_conflict() -> None:
    store, proposer = await make_store()
    store._merger._timeout = 0.0  # give up after the first lost race
    proposer.races = 1000

    with pytest.raises(Conflict):
        await store.merge(Service, "a", add_label("x"))
