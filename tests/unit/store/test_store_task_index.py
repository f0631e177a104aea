"""The store's task indexes (by service, by node) agree with a full scan after every write,
over random sequences of creates, moves, updates and deletes, and after a restore."""

import random

import msgspec
import pytest

from swarmlite.api import Node, Service, Task
from swarmlite.store import MemoryStore, Tx
from swarmlite.testing.factories import make_node, make_service, make_task

replace = msgspec.structs.replace

SERVICES = ["s1", "s2", "s3"]
NODES = ["", "n1", "n2", "n3"]


def commit(store: MemoryStore, tx: Tx) -> None:
    assert store.apply(store.applied_index + 1, tx.encode()).ok


def assert_indexes_agree(store: MemoryStore) -> None:
    tasks = store.list(Task)
    for service_id in [*SERVICES, "nope"]:
        expected = {t.id: t for t in tasks if t.service_id == service_id}
        assert {t.id: t for t in store.tasks_of_service(service_id)} == expected
    for node_id in [*NODES[1:], "nope"]:
        expected = {t.id: t for t in tasks if t.node_id == node_id}
        assert {t.id: t for t in store.tasks_on_node(node_id)} == expected
    assert store.tasks_on_node("") == []  # a task on no node is on none


@pytest.mark.parametrize("seed", range(20))
def test_the_task_indexes_agree_with_a_full_scan_after_every_write(seed: int) -> None:
    rng = random.Random(seed)
    store = MemoryStore()
    made = 0
    for _ in range(150):
        tasks = store.list(Task)
        tx = Tx()
        touched: set[str] = set()
        for _ in range(rng.randint(1, 4)):
            choice = rng.random()
            if not tasks or choice < 0.35:
                made += 1
                task = make_task(id=f"t{made}", node_id=rng.choice(NODES))
                tx.create(replace(task, service_id=rng.choice(SERVICES)))
                continue
            task = rng.choice(tasks)
            if task.id in touched:
                continue
            touched.add(task.id)
            if choice < 0.6:
                tx.update(replace(task, node_id=rng.choice(NODES)))
            elif choice < 0.85:
                tx.update(replace(task, slot=task.slot + 1))  # stays where it is
            else:
                tx.delete(task)
        commit(store, tx)
        assert_indexes_agree(store)
    restored = MemoryStore()
    restored.restore(store.snapshot(), store.applied_index)
    assert_indexes_agree(restored)
    assert restored.snapshot() == store.snapshot()


def test_a_rejected_transaction_leaves_the_indexes_as_they_were() -> None:
    store = MemoryStore()
    task = make_task(id="t1", node_id="n1")
    commit(store, Tx().create(replace(task, service_id="s1")))
    stale = replace(store.list(Task)[0], node_id="n2", version=0)
    result = store.apply(store.applied_index + 1, Tx().update(stale).encode())
    assert not result.ok
    assert [t.id for t in store.tasks_on_node("n1")] == ["t1"]
    assert store.tasks_on_node("n2") == []


def test_tasks_of_one_service_share_one_stored_spec_and_the_state_is_unchanged() -> None:
    store = MemoryStore()
    first = replace(make_task(id="t1"), service_id="s1")
    commit(store, Tx().create(first))
    commit(store, Tx().create(replace(first, id="t2")))
    other = replace(first, id="t3", spec=replace(first.spec, force_update=1))
    commit(store, Tx().create(other))
    t1, t2, t3 = (store.get(Task, id) for id in ("t1", "t2", "t3"))
    assert t1 is not None and t2 is not None and t3 is not None
    assert t1.spec is t2.spec  # decoded from two entries, stored once
    assert t3.spec == other.spec and t3.spec is not t1.spec
    restored = MemoryStore()
    restored.restore(store.snapshot(), store.applied_index)
    assert restored.snapshot() == store.snapshot()
    r1, r2 = restored.get(Task, "t1"), restored.get(Task, "t2")
    assert r1 is not None and r2 is not None and r1.spec is r2.spec


def test_tasks_hold_their_service_node_status_and_times_once() -> None:
    """A task keeps its service's id, name and labels and its node's id as the objects the
    store holds already, and the tasks of one write share one equal status and time; the
    values, and so the snapshot, are what was written."""
    store = MemoryStore()
    svc = make_service("web", replicas=2, labels={"team": "a"})
    node = make_node("n1")
    commit(store, Tx().create(svc).create(node))
    tx = Tx()
    for slot in (1, 2):
        tx.create(replace(make_task(svc, slot=slot), node_id="n1"))
    commit(store, tx)
    stored_svc, stored_node = store.get(Service, svc.id), store.get(Node, "n1")
    assert stored_svc is not None and stored_node is not None
    t1, t2 = sorted(store.list(Task), key=lambda t: t.slot)
    assert t1.service_id is stored_svc.id and t1.node_id is stored_node.id
    assert t1.service_name is stored_svc.spec.name and t1.service_labels is stored_svc.spec.labels
    assert t1.status is t2.status and t1.created_at is t2.created_at
    assert (t1.service_name, t1.service_labels, t1.node_id) == ("web", {"team": "a"}, "n1")
    # A patch of the status in a later write: both share the patched one, still equal.
    status = replace(t1.status, message="assigned")
    commit(store, Tx().patch(t1, replace(t1, status=status)).patch(t2, replace(t2, status=status)))
    p1, p2 = sorted(store.list(Task), key=lambda t: t.slot)
    assert p1.status is p2.status and p1.status == status
    restored = MemoryStore()
    restored.restore(store.snapshot(), store.applied_index)
    assert restored.snapshot() == store.snapshot()
