"""Patches: a write that carries only the fields it changes lands exactly as the whole
object would, and is refused for the same reasons."""

import msgspec
import pytest

from swarmlite.api import Node, Task, TaskState, TaskStatus
from swarmlite.errors import Conflict, InvalidArgument, NotFound
from swarmlite.store import MemoryStore, Patch, Transaction, Tx, encode_transaction
from swarmlite.testing.factories import make_service, make_task

replace = msgspec.structs.replace


def commit(store: MemoryStore, tx: Tx, now: float | None = None) -> None:
    result = store.apply(store.applied_index + 1, tx.encode(now=now))
    assert result.ok, result.error


def stored_task(store: MemoryStore, id: str) -> Task:
    task = store.get(Task, id)
    assert task is not None
    return task


def test_a_patch_lands_as_the_whole_update_would_and_carries_only_what_changed() -> None:
    task = make_task(make_service(env=["A=" + "x" * 2000]), id="t1")
    by_patch, by_update = MemoryStore(), MemoryStore()
    for store in (by_patch, by_update):
        commit(store, Tx().create(task), now=5.0)
    old = stored_task(by_patch, "t1")
    status = TaskStatus(state=TaskState.ASSIGNED, message="scheduler assigned task to node")
    new = replace(old, node_id="n1", status=status)
    patch_tx, update_tx = Tx().patch(old, new), Tx().update(new)
    assert len(patch_tx.encode(now=9.0)) < len(update_tx.encode(now=9.0)) / 5  # no spec
    commit(by_patch, patch_tx, now=9.0)
    commit(by_update, update_tx, now=9.0)
    assert by_patch.snapshot() == by_update.snapshot()
    landed = stored_task(by_patch, "t1")
    assert (landed.node_id, landed.status, landed.updated_at) == ("n1", status, 9.0)
    assert landed.spec is old.spec  # the unchanged spec is the stored object itself
    assert [t.id for t in by_patch.tasks_on_node("n1")] == ["t1"]


def test_a_patch_of_a_changed_or_missing_object_is_refused_as_an_update_is() -> None:
    store = MemoryStore()
    commit(store, Tx().create(make_task(id="t1")))
    old = stored_task(store, "t1")
    commit(store, Tx().patch(old, replace(old, node_id="n1")))
    stale = store.apply(store.applied_index + 1, Tx().patch(old, replace(old, slot=9)).encode())
    assert isinstance(stale.error, Conflict)
    gone = replace(old, id="nope")
    missing = store.apply(store.applied_index + 1, Tx().patch(gone, replace(gone, slot=9)).encode())
    assert isinstance(missing.error, NotFound)
    assert stored_task(store, "t1").slot == old.slot


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"id": msgspec.msgpack.encode("t2")}, "sets field 'id'"),
        ({"version": msgspec.msgpack.encode(7)}, "sets field 'version'"),
        ({"nonsense": msgspec.msgpack.encode(1)}, "sets field 'nonsense'"),
        ({"slot": msgspec.msgpack.encode("three")}, "bad 'slot'"),
        ({"desired_state": msgspec.msgpack.encode("sleeping")}, "bad 'desired_state'"),
    ],
)
def test_a_malformed_patch_is_refused_whole_with_what_and_where(
    fields: dict[str, bytes], error: str
) -> None:
    store = MemoryStore()
    commit(store, Tx().create(make_task(id="t1")))
    before = store.snapshot()
    raw = {name: msgspec.Raw(value) for name, value in fields.items()}
    other = Tx().create(Node(id="n1"))  # the valid op beside it does not land either
    txn = Transaction([*other.ops, Patch("task", "t1", 1, raw)])
    result = store.apply(store.applied_index + 1, encode_transaction(txn))
    assert isinstance(result.error, InvalidArgument)
    assert error in result.error.message and "task t1" in result.error.message
    assert store.snapshot() == before


def test_a_patch_with_nothing_changed_only_moves_the_version() -> None:
    store = MemoryStore()
    commit(store, Tx().create(make_task(id="t1")))
    old = stored_task(store, "t1")
    commit(store, Tx().patch(old, old))
    assert stored_task(store, "t1") == replace(old, version=2)


def test_a_patch_must_change_one_object() -> None:
    a, b = make_task(id="a"), make_task(id="b")
    with pytest.raises(InvalidArgument, match="one object"):
        Tx().patch(a, b)
