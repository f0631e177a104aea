import asyncio

import msgspec
import pytest

from swarmlite.api import Node, Object, Service, ServiceSpec, Task, TaskState
from swarmlite.errors import InternalError, InvalidArgument, Unavailable
from swarmlite.store import ApplyResult, Event, EventAction, MemoryStore, Tx

replace = msgspec.structs.replace


def commit(store: MemoryStore, tx: Tx) -> ApplyResult:
    return store.apply(store.applied_index + 1, tx.encode(now=1.0))


def drain(watch_events: list[Event]) -> list[tuple[EventAction, str, int]]:
    return [(e.action, e.object.id, e.index) for e in watch_events]


async def test_a_watch_gives_a_snapshot_then_every_change_in_commit_order() -> None:
    store = MemoryStore()
    commit(store, Tx().create(Service(id="a")))
    with store.watch() as watch:
        assert watch.index == 1
        assert [obj.id for obj in watch.snapshot] == ["a"]
        a = store.get(Service, "a")
        assert a is not None
        commit(store, Tx().create(Service(id="b")))
        commit(store, Tx().update(replace(a, spec=ServiceSpec(replicas=3))))
        a = store.get(Service, "a")
        assert a is not None
        commit(store, Tx().delete(a))
        events = [await anext(watch) for _ in range(3)]
    assert drain(events) == [
        (EventAction.CREATED, "b", 2),
        (EventAction.UPDATED, "a", 3),
        (EventAction.DELETED, "a", 4),
    ]
    created, updated, deleted = events
    assert created.old is None and created.new is not None and created.new.version == 2
    assert updated.old is not None and updated.old.version == 1
    assert isinstance(updated.new, Service) and updated.new.spec.replicas == 3
    assert deleted.new is None and deleted.old is not None and deleted.kind == "service"


async def test_every_watcher_sees_every_change() -> None:
    store = MemoryStore()
    first, second = store.watch(), store.watch()
    commit(store, Tx().create(Service(id="a")).create(Node(id="n")))
    for watch in (first, second):
        batch = await watch.next_batch()
        assert drain(batch) == [(EventAction.CREATED, "a", 1), (EventAction.CREATED, "n", 1)]
        watch.close()


async def test_a_watch_sees_only_its_kinds_and_filter() -> None:
    store = MemoryStore()
    commit(store, Tx().create(Task(id="t1", node_id="n1")).create(Task(id="t2", node_id="n2")))
    commit(store, Tx().create(Service(id="s")))

    def on_n1(obj: Object) -> bool:
        return isinstance(obj, Task) and obj.node_id == "n1"

    tasks_on_n1 = store.watch(kinds=[Task], filter=on_n1)
    services = store.watch(kinds=["service"])
    assert [obj.id for obj in tasks_on_n1.snapshot] == ["t1"]
    assert [obj.id for obj in services.snapshot] == ["s"]

    t1, t2 = store.get(Task, "t1"), store.get(Task, "t2")
    assert t1 is not None and t2 is not None
    commit(store, Tx().update(replace(t2, desired_state=TaskState.SHUTDOWN)))
    commit(store, Tx().update(replace(t1, node_id="n3")))  # leaves the filter: still seen
    commit(store, Tx().create(Service(id="s2")))

    assert drain(await tasks_on_n1.next_batch()) == [(EventAction.UPDATED, "t1", 4)]
    assert drain(await services.next_batch()) == [(EventAction.CREATED, "s2", 5)]
    assert tasks_on_n1.pending == 0 and services.pending == 0


async def test_a_watch_sees_nothing_of_a_rejected_transaction() -> None:
    store = MemoryStore()
    commit(store, Tx().create(Service(id="a")))
    watch = store.watch()
    stale = Service(id="a", version=0)
    result = commit(store, Tx().create(Service(id="b")).update(stale))
    assert not result.ok
    commit(store, Tx().create(Service(id="c")))
    assert drain(await watch.next_batch()) == [(EventAction.CREATED, "c", 3)]


async def test_a_slow_watcher_is_closed_with_a_relist_error_and_apply_goes_on() -> None:
    store = MemoryStore()
    slow = store.watch(max_pending=5)
    fast = store.watch(max_pending=100)
    for i in range(10):
        assert commit(store, Tx().create(Service(id=f"s{i}"))).ok
        if i < 9:
            assert len(await fast.next_batch()) == 1
    assert store.count(Service) == 10
    assert slow.closed and slow.pending == 0
    with pytest.raises(Unavailable, match="fell more than 5 events behind") as info:
        await anext(slow)
    assert info.value.hint is not None and "re-list" in info.value.hint
    assert info.value.details["reason"] == "watch_overflow"
    assert store.watch_count == 1  # the slow one was freed
    assert drain(await fast.next_batch()) == [(EventAction.CREATED, "s9", 10)]


async def test_a_waiting_consumer_wakes_on_commit() -> None:
    store = MemoryStore()
    watch = store.watch(kinds=[Service])
    got: list[Event] = []

    async def consume() -> None:
        async for event in watch:
            got.append(event)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    commit(store, Tx().create(Service(id="a")))
    commit(store, Tx().create(Node(id="n")))
    commit(store, Tx().create(Service(id="b")))
    await asyncio.sleep(0)
    watch.close()  # ends the async for
    await asyncio.wait_for(consumer, 1)
    assert drain(got) == [(EventAction.CREATED, "a", 1), (EventAction.CREATED, "b", 3)]


async def test_closing_a_watch_frees_it_and_ends_iteration() -> None:
    store = MemoryStore()
    async with store.watch() as watch:
        assert store.watch_count == 1
    assert store.watch_count == 0 and watch.closed
    commit(store, Tx().create(Service(id="a")))
    assert watch.pending == 0
    with pytest.raises(StopAsyncIteration):
        await watch.next_batch()


async def test_restore_closes_old_watches_and_new_ones_start_from_the_snapshot() -> None:
    source = MemoryStore()
    commit(source, Tx().create(Service(id="a")).create(Service(id="b")))
    snap = source.snapshot()

    store = MemoryStore()
    commit(store, Tx().create(Service(id="old")))
    old_watch = store.watch()
    store.restore(snap, 7)
    with pytest.raises(Unavailable, match="snapshot at index 7"):
        await old_watch.next_batch()

    watch = store.watch(kinds=[Service])
    assert watch.index == 7
    assert sorted(obj.id for obj in watch.snapshot) == ["a", "b"]
    commit(store, Tx().create(Service(id="c")))
    assert drain(await watch.next_batch()) == [(EventAction.CREATED, "c", 8)]


async def test_a_failing_filter_closes_only_its_watch() -> None:
    store = MemoryStore()

    def broken(obj: Object) -> bool:
        raise KeyError("oops")

    bad = store.watch(filter=broken)
    good = store.watch()
    assert commit(store, Tx().create(Service(id="a"))).ok
    with pytest.raises(InternalError, match="watch filter raised"):
        await bad.next_batch()
    assert len(await good.next_batch()) == 1


def test_watching_an_unknown_kind_is_an_error_at_once() -> None:
    store = MemoryStore()
    with pytest.raises(InvalidArgument, match="unknown object kind 'volume'"):
        store.watch(kinds=["volume"])
    assert store.watch_count == 0
