import msgspec
import pytest

from swarmlite.api import (
    Config,
    ConfigSpec,
    Network,
    NetworkSpec,
    Node,
    Secret,
    SecretSpec,
    Service,
    ServiceSpec,
    Task,
)
from swarmlite.errors import AlreadyExists, Conflict, InternalError, InvalidArgument, NotFound
from swarmlite.store import ApplyResult, Delete, MemoryStore, Transaction, Tx, encode_transaction

replace = msgspec.structs.replace


def service(id: str, name: str = "", replicas: int = 1) -> Service:
    return Service(id=id, spec=ServiceSpec(name=name or f"svc-{id}", replicas=replicas))


def commit(store: MemoryStore, tx: Tx, now: float | None = None) -> ApplyResult:
    return store.apply(store.applied_index + 1, tx.encode(now=now))


def test_a_write_gives_each_object_the_index_as_version() -> None:
    store = MemoryStore()
    result = commit(store, Tx().create(service("a")).create(service("b")))
    assert result.ok and result.index == 1
    assert [obj.version for obj in result.objects] == [1, 1]
    svc = store.get(Service, "a")
    assert svc is not None and svc.version == 1
    result = commit(store, Tx().update(replace(svc, spec=ServiceSpec(name="svc-a", replicas=5))))
    assert result.index == 2
    svc = store.get(Service, "a")
    assert svc is not None and svc.version == 2 and svc.spec.replicas == 5
    b = store.get("service", "b")
    assert b is not None and b.version == 1
    assert store.applied_index == 2


def test_of_two_writers_that_read_the_same_version_only_the_first_wins() -> None:
    store = MemoryStore()
    commit(store, Tx().create(service("a", "web")))
    read = store.get(Service, "a")
    assert read is not None
    first = replace(read, spec=ServiceSpec(name="web", replicas=2))
    second = replace(read, spec=ServiceSpec(name="web", replicas=9))
    assert commit(store, Tx().update(first)).ok
    result = commit(store, Tx().update(second))
    assert isinstance(result.error, Conflict)
    assert result.error.details == {"kind": "service", "id": "a", "version": 2, "expected": 1}
    with pytest.raises(Conflict, match="at version 2"):
        result.unwrap()
    stored = store.get(Service, "a")
    assert stored is not None and stored.spec.replicas == 2 and stored.version == 2


def test_a_transaction_applies_whole_or_not_at_all() -> None:
    store = MemoryStore()
    commit(store, Tx().create(service("a")).create(service("b")))
    a, b = store.get(Service, "a"), store.get(Service, "b")
    assert a is not None and b is not None
    commit(store, Tx().update(replace(b, spec=ServiceSpec(name="b2"))))  # b moves on
    stale = Tx().update(replace(a, spec=ServiceSpec(name="a2"))).update(b).create(service("c"))
    result = commit(store, stale)
    assert isinstance(result.error, Conflict)
    assert store.get(Service, "a") == a
    assert store.get(Service, "c") is None
    assert store.get_by_name(Service, "a2") is None
    assert store.applied_index == 3  # the entry is applied, as a no-op


def test_update_or_delete_of_a_missing_object_is_not_found() -> None:
    store = MemoryStore()
    result = commit(store, Tx().update(service("ghost")))
    assert isinstance(result.error, NotFound)
    assert "service ghost not found" in result.error.message
    assert isinstance(commit(store, Tx().delete(service("ghost"))).error, NotFound)


def test_create_of_an_existing_id_is_already_exists() -> None:
    store = MemoryStore()
    commit(store, Tx().create(service("a")))
    result = commit(store, Tx().create(service("a", "other")))
    assert isinstance(result.error, AlreadyExists)


def test_delete_removes_the_object_and_frees_its_name() -> None:
    store = MemoryStore()
    commit(store, Tx().create(service("a", "web")))
    old = store.get(Service, "a")
    assert old is not None
    stale = replace(old, version=0)
    assert isinstance(commit(store, Tx().delete(stale)).error, Conflict)
    assert commit(store, Tx().delete(old)).ok
    assert store.get(Service, "a") is None and store.list(Service) == []
    assert commit(store, Tx().create(service("b", "web"))).ok


def test_names_are_unique_per_kind_ignoring_case() -> None:
    store = MemoryStore()
    commit(store, Tx().create(service("a", "web")))
    result = commit(store, Tx().create(service("b", "Web")))
    assert isinstance(result.error, AlreadyExists)
    assert "'Web' is already taken by service a" in result.error.message
    # another kind may use the same name
    assert commit(store, Tx().create(Network(id="n", spec=NetworkSpec(name="web")))).ok
    found = store.get_by_name(Service, "WEB")
    assert found is not None and found.id == "a"
    net = store.get_by_name("network", "web")
    assert net is not None and net.id == "n"


def test_renaming_frees_the_old_name_and_swaps_apply_in_one_transaction() -> None:
    store = MemoryStore()
    commit(store, Tx().create(service("a", "blue")).create(service("b", "green")))
    a, b = store.get(Service, "a"), store.get(Service, "b")
    assert a is not None and b is not None
    swap = Tx().update(replace(a, spec=ServiceSpec(name="green")))
    swap.update(replace(b, spec=ServiceSpec(name="blue")))
    assert commit(store, swap).ok
    green, blue = store.get_by_name(Service, "green"), store.get_by_name(Service, "blue")
    assert green is not None and green.id == "a"
    assert blue is not None and blue.id == "b"


def test_one_transaction_cannot_claim_a_name_twice() -> None:
    store = MemoryStore()
    result = commit(store, Tx().create(service("a", "web")).create(service("b", "web")))
    assert isinstance(result.error, AlreadyExists)
    assert store.list(Service) == []


def test_an_object_written_twice_in_one_transaction_is_invalid() -> None:
    store = MemoryStore()
    svc = service("a")
    result = commit(store, Tx().create(svc).update(svc))
    assert isinstance(result.error, InvalidArgument)
    assert store.get(Service, "a") is None


def test_reads_by_kind_name_predicate() -> None:
    store = MemoryStore()
    tx = Tx().create(Task(id="t1", service_id="s", slot=1))
    tx.create(Task(id="t2", service_id="s", slot=2)).create(Task(id="t3", service_id="x"))
    commit(store, tx)
    assert [t.id for t in store.find(Task, lambda t: t.service_id == "s")] == ["t1", "t2"]
    assert {t.id for t in store.list("task")} == {"t1", "t2", "t3"}
    assert store.count(Task) == 3 and store.count(Node) == 0
    with pytest.raises(InvalidArgument, match="unknown object kind 'volume'"):
        store.list("volume")
    with pytest.raises(InvalidArgument, match="no unique name"):
        store.get_by_name(Task, "t1")


def test_update_keeps_created_at_and_stamps_updated_at() -> None:
    store = MemoryStore()
    commit(store, Tx().create(service("a")), now=100.0)
    svc = store.get(Service, "a")
    assert svc is not None and (svc.created_at, svc.updated_at) == (100.0, 100.0)
    commit(store, Tx().update(replace(svc, created_at=0.0)), now=150.0)
    svc = store.get(Service, "a")
    assert svc is not None and (svc.created_at, svc.updated_at) == (100.0, 150.0)


def test_malformed_entries_are_rejected_results_not_exceptions() -> None:
    store = MemoryStore()
    result = store.apply(1, b"\xc1garbage")
    assert isinstance(result.error, InvalidArgument)
    assert "malformed store transaction" in result.error.message
    unknown = encode_transaction(Transaction([Delete("volume", "v", 1)]))
    result = store.apply(2, unknown)
    assert isinstance(result.error, InvalidArgument)
    assert "unknown object kind 'volume'" in result.error.message
    assert store.applied_index == 2


def test_entries_out_of_order_are_a_bug() -> None:
    store = MemoryStore()
    commit(store, Tx().create(service("a")))
    with pytest.raises(InternalError, match="out of order"):
        store.apply(1, Tx().create(service("b")).encode())
    store.skip(5)
    assert store.applied_index == 5
    assert commit(store, Tx().create(service("b"))).index == 6


def _history() -> list[bytes]:
    entries = [
        Tx().create(service("a", "web")).create(Node(id="n1")).encode(now=1.0),
        Tx().create(service("b", "web")).encode(now=2.0),  # rejected: name taken
        Tx().update(replace(service("a", "web", replicas=4), version=1)).encode(now=3.0),
        b"not msgpack",
        Tx().create(Task(id="t1", service_id="a", slot=1)).encode(now=4.0),
        Tx().delete(replace(Node(id="n1"), version=1)).encode(now=5.0),
    ]
    return entries


def test_replicas_applying_the_same_entries_have_equal_snapshots() -> None:
    one, two = MemoryStore(), MemoryStore()
    results = [
        [store.apply(i, data).error for i, data in enumerate(_history(), start=1)]
        for store in (one, two)
    ]
    assert [type(e) for e in results[0]] == [type(e) for e in results[1]]
    assert one.snapshot() == two.snapshot()
    assert one.get(Service, "a") == two.get(Service, "a")


def test_snapshot_restore_round_trip_keeps_objects_names_and_index() -> None:
    source = MemoryStore()
    for i, data in enumerate(_history(), start=1):
        source.apply(i, data)
    copy = MemoryStore()
    copy.restore(source.snapshot(), source.applied_index)
    assert copy.applied_index == source.applied_index == 6
    assert copy.list(Service) == source.list(Service)
    assert copy.get(Task, "t1") == source.get(Task, "t1")
    assert copy.snapshot() == source.snapshot()
    # both go on in step
    nxt = Tx().create(service("d", "api")).encode(now=9.0)
    source.apply(7, nxt)
    copy.apply(7, nxt)
    assert copy.snapshot() == source.snapshot()
    # and the name index came back too
    result = commit(copy, Tx().create(service("c", "WEB")))
    assert isinstance(result.error, AlreadyExists)


def test_restore_of_garbage_leaves_the_state_alone() -> None:
    store = MemoryStore()
    commit(store, Tx().create(service("a")))
    with pytest.raises(InvalidArgument, match="malformed store snapshot"):
        store.restore(b"\x00\x01", 10)
    assert store.get(Service, "a") is not None and store.applied_index == 1


def test_secret_and_config_names_are_unique_each_in_their_own_kind() -> None:
    store = MemoryStore()
    tx = Tx().create(Secret(id="s1", spec=SecretSpec(name="db")))
    assert commit(store, tx.create(Config(id="c1", spec=ConfigSpec(name="db")))).ok
    clash = commit(store, Tx().create(Secret(id="s2", spec=SecretSpec(name="DB"))))
    assert isinstance(clash.error, AlreadyExists)
    assert isinstance(
        commit(store, Tx().create(Config(id="c2", spec=ConfigSpec(name="db")))).error,
        AlreadyExists,
    )


def test_a_name_deleted_and_reused_in_one_transaction_moves_to_the_new_object() -> None:
    store = MemoryStore()
    commit(store, Tx().create(service("a", "web")))
    a = store.get(Service, "a")
    assert a is not None
    assert commit(store, Tx().delete(a).create(service("b", "web"))).ok
    web = store.get_by_name(Service, "web")
    assert web is not None and web.id == "b"
