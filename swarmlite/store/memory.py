"""The replicated state machine: every object by kind and id, written only by ``apply``.

Owns the object tables, the unique-name indexes (service, network, secret and config names,
compared case-insensitively), the task indexes (tasks by service and by node, so that a
control loop reads the tasks it is about without scanning them all), one stored copy of
what many tasks hold equal (memory: a service's spec, its id, name and labels, the node's
id, and the status and times of the tasks of one write), version assignment,
snapshots, fan-out of changes to watches, and the count of transactions applied and
rejected here (for metrics; not part of the state, so not in snapshots). Does not own how
entries get committed (``proposer``) nor their wire shape (``tx``).

Invariants:
- Deterministic: replicas that apply the same entries in the same order hold the same
  state and produce byte-equal snapshots; ``apply`` reads no clock and no randomness.
- A transaction applies whole or not at all. Its result, success or error, is *returned*
  (every replica computes the same one); ``apply`` raises only on a caller bug.
- After a successful write, every object it wrote has ``version == index``.
- Reads hand out the stored frozen structs themselves: never mutate a dict inside one.
"""

from __future__ import annotations

import builtins
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, overload

import msgspec

from swarmlite.api import KINDS, Meta, Object, ObjectT, Service, Task, TaskTemplate, kind_type
from swarmlite.errors import (
    AlreadyExists,
    Conflict,
    InternalError,
    InvalidArgument,
    NotFound,
    SwarmliteError,
    Unavailable,
)
from swarmlite.log import kv
from swarmlite.store.tx import (
    UNPATCHABLE,
    Create,
    Delete,
    Patch,
    Update,
    decode_transaction,
)
from swarmlite.store.watch import DEFAULT_MAX_PENDING, Event, EventAction, Predicate, Watch

log = logging.getLogger(__name__)

KindArg = str | type[Meta]
Whole = Create | Update | Delete  # an op as applied: a patch becomes the update it stands for


def _kind_name(kind: KindArg) -> str:
    return kind if isinstance(kind, str) else kind.KIND


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What applying one entry did: the objects written (as stored) or the error."""

    index: int
    objects: tuple[Object, ...] = ()  # created and updated objects, in op order
    error: SwarmliteError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> tuple[Object, ...]:
        """The written objects; raises the error if the transaction was rejected."""
        if self.error is not None:
            raise self.error
        return self.objects


class _State(msgspec.Struct, frozen=True, array_like=True):
    objects: list[Object]  # sorted by (kind, id), so that equal states encode equally


_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(_State)


class ReadTx:
    """The read side of the store: what update functions and control loops see."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Object]] = {kind: {} for kind in KINDS}
        # kind -> lowercased name -> id, for kinds whose spec.name is unique.
        self._names: dict[str, dict[str, str]] = {
            kind: {} for kind, cls in KINDS.items() if cls.NAMED
        }
        self._tasks_by_service: dict[str, dict[str, Task]] = {}
        self._tasks_by_node: dict[str, dict[str, Task]] = {}
        self._specs: dict[str, TaskTemplate] = {}  # service id -> a spec its tasks share
        self._applied = 0

    @property
    def applied_index(self) -> int:
        """Index of the last entry applied (or restored); the state is as of this index."""
        return self._applied

    def _table(self, kind: KindArg) -> dict[str, Object]:
        name = _kind_name(kind)
        table = self._tables.get(name)
        if table is None:
            kind_type(name)  # raises InvalidArgument naming the known kinds
            raise AssertionError(name)  # unreachable: every known kind has a table
        return table

    @overload
    def get(self, kind: type[ObjectT], id: str) -> ObjectT | None: ...
    @overload
    def get(self, kind: str, id: str) -> Object | None: ...
    def get(self, kind: KindArg, id: str) -> Any:
        return self._table(kind).get(id)

    @overload
    def get_by_name(self, kind: type[ObjectT], name: str) -> ObjectT | None: ...
    @overload
    def get_by_name(self, kind: str, name: str) -> Object | None: ...
    def get_by_name(self, kind: KindArg, name: str) -> Any:
        """The object of ``kind`` named ``name`` (case-insensitive), for named kinds."""
        kind_name = _kind_name(kind)
        names = self._names.get(kind_name)
        if names is None:
            raise InvalidArgument(f"objects of kind {kind_name!r} have no unique name")
        id = names.get(name.lower())
        return None if id is None else self._tables[kind_name][id]

    @overload
    def find(
        self, kind: type[ObjectT], predicate: Callable[[ObjectT], bool]
    ) -> builtins.list[ObjectT]: ...
    @overload
    def find(self, kind: str, predicate: Callable[[Any], bool]) -> builtins.list[Object]: ...
    def find(self, kind: KindArg, predicate: Callable[[Any], bool]) -> Any:
        """Every object of ``kind`` for which ``predicate`` holds, in store order."""
        return [obj for obj in self._table(kind).values() if predicate(obj)]

    @overload
    def list(self, kind: type[ObjectT]) -> builtins.list[ObjectT]: ...
    @overload
    def list(self, kind: str) -> builtins.list[Object]: ...
    def list(self, kind: KindArg) -> Any:
        """Every object of ``kind``, in store order."""
        return builtins.list(self._table(kind).values())

    def count(self, kind: KindArg) -> int:
        return len(self._table(kind))

    def tasks_of_service(self, service_id: str) -> builtins.list[Task]:
        """Every task of ``service_id`` (in the order they joined the index)."""
        return builtins.list(self._tasks_by_service.get(service_id, {}).values())

    def tasks_on_node(self, node_id: str) -> builtins.list[Task]:
        """Every task whose ``node_id`` is ``node_id`` (in the order they joined the index)."""
        return builtins.list(self._tasks_by_node.get(node_id, {}).values()) if node_id else []

    def _shared(self, obj: Object, seen: dict[Any, Any]) -> dict[str, Any]:
        """For a task, the fields to store as objects the store holds already: its spec
        when it equals the last one seen for its service (tasks of a service mostly share
        one spec, and each decoded copy costs about half of a task's memory), and its
        service's id, name and labels and its node's id as those objects' own (each decoded
        string costs 50 bytes and more); and its status and times as those of a task
        written before it in the same write (``seen``): a write of many tasks gives most
        of them one status and one time. Equal values, so the state and its snapshots are
        the same either way."""
        if not isinstance(obj, Task):
            return {}
        shared: dict[str, Any] = {}
        spec = self._specs.get(obj.service_id)
        if spec is None:
            self._specs[obj.service_id] = obj.spec
        elif spec is not obj.spec:
            if spec == obj.spec:
                shared["spec"] = spec
            else:
                self._specs[obj.service_id] = obj.spec
        tables = self._tables
        node = tables["node"].get(obj.node_id) if obj.node_id else None
        if node is not None and node.id is not obj.node_id:
            shared["node_id"] = node.id
        service = tables["service"].get(obj.service_id)
        if isinstance(service, Service):
            if service.id is not obj.service_id:
                shared["service_id"] = service.id
            for name, held, own in (
                ("service_name", service.spec.name, obj.service_name),
                ("service_labels", service.spec.labels, obj.service_labels),
            ):
                if held is not own and held == own:
                    shared[name] = held
        for name, value in (
            ("status", obj.status),
            ("created_at", obj.created_at),
            ("updated_at", obj.updated_at),
        ):
            first = seen.setdefault((name, value), value)
            if first is not value:
                shared[name] = first
        return shared

    def _index_task(self, old: Task | None, new: Task | None) -> None:
        """Keep the task indexes true across one write of a task (``old`` -> ``new``)."""
        for index, key in (
            (self._tasks_by_service, _service_of),
            (self._tasks_by_node, _node_of),
        ):
            if old is not None:
                bucket = index[key(old)]
                if new is None or key(new) != key(old):
                    del bucket[old.id]
                    if not bucket:
                        del index[key(old)]
                        if key is _service_of:
                            self._specs.pop(old.service_id, None)
            if new is not None:
                index.setdefault(key(new), {})[new.id] = new


_MISSING = object()


def _not_found(kind: str, id: str) -> NotFound:
    return NotFound(f"{kind} {id} not found", details={"kind": kind, "id": id})


def _conflict(kind: str, id: str, version: int, expected: int) -> Conflict:
    return Conflict(
        f"{kind} {id} changed: it is at version {version}, the write expected version {expected}",
        hint="re-read the object and try again",
        details={"kind": kind, "id": id, "version": version, "expected": expected},
    )


@functools.cache
def _field_types(kind: str) -> dict[str, Any]:
    """The top-level fields of ``kind``'s objects and their types."""
    return {field.name: field.type for field in msgspec.structs.fields(kind_type(kind))}


@functools.cache
def _field_decoder(kind: str, name: str, field_type: Any) -> msgspec.msgpack.Decoder[Any]:
    return msgspec.msgpack.Decoder(field_type)


def _service_of(task: Task) -> str:
    return task.service_id


def _node_of(task: Task) -> str:
    return task.node_id


class MemoryStore(ReadTx):
    """The store's state machine; feed it committed entries in index order."""

    def __init__(self) -> None:
        super().__init__()
        self._watches: dict[Watch, None] = {}  # insertion-ordered set
        self.transactions_applied = 0
        self.transactions_rejected = 0

    # -- writes ---------------------------------------------------------------------

    def apply(self, index: int, data: bytes) -> ApplyResult:
        """Apply the encoded transaction committed at ``index``; see the module invariants."""
        self._advance(index)
        try:
            txn = decode_transaction(data)
            decoded: dict[tuple[str, str, bytes], Any] = {}  # see ``_expand``
            ops = [self._expand(op, decoded) if isinstance(op, Patch) else op for op in txn.ops]
            self._check(ops)
        except (InvalidArgument, NotFound, AlreadyExists, Conflict) as exc:
            log.debug("transaction rejected %s", kv(index=index, error=exc.code))
            self.transactions_rejected += 1
            return ApplyResult(index, error=exc)
        self.transactions_applied += 1
        return self._write(index, ops, txn.actor)

    def skip(self, index: int) -> None:
        """Mark ``index`` applied without data (Raft no-op and configuration entries)."""
        self._advance(index)

    def _advance(self, index: int) -> None:
        if index <= self._applied:
            raise InternalError(
                f"store entries out of order: index {index} after {self._applied}",
                details={"index": index, "applied": self._applied},
            )
        self._applied = index

    def _expand(self, patch: Patch, decoded: dict[tuple[str, str, bytes], Any]) -> Update:
        """The update a patch stands for: the stored object with the patch's fields.

        A value that is the same bytes as one already decoded in this transaction (the
        scheduler gives a write's 200 tasks one status) is decoded once, and shared when it
        cannot be changed in place (not a list or dict)."""
        table = self._table(patch.kind)
        current = table.get(patch.id)
        if current is None:
            raise _not_found(patch.kind, patch.id)
        if current.version != patch.expected_version:
            raise _conflict(patch.kind, patch.id, current.version, patch.expected_version)
        types = _field_types(patch.kind)
        values: dict[str, Any] = {}
        for name, raw in patch.fields.items():
            field_type = types.get(name)
            if field_type is None or name in UNPATCHABLE:
                raise InvalidArgument(f"a patch of {patch.kind} {patch.id} sets field {name!r}")
            key = (patch.kind, name, bytes(raw))
            value = decoded.get(key, _MISSING)
            if value is _MISSING:
                try:
                    value = _field_decoder(patch.kind, name, field_type).decode(raw)
                except msgspec.DecodeError as exc:
                    raise InvalidArgument(
                        f"a patch of {patch.kind} {patch.id} has a bad {name!r}: {exc}"
                    ) from exc
                if not isinstance(value, list | dict):
                    decoded[key] = value
            values[name] = value
        return Update(msgspec.structs.replace(current, **values))

    def _check(self, ops: builtins.list[Whole]) -> None:
        """Raise the error the transaction fails with, or return if it can apply whole."""
        tables = self._tables
        touched: dict[tuple[str, str], Whole] = {}
        claims: builtins.list[tuple[str, str, str, str]] = []  # kind, lowered, name, id
        for op in ops:
            if isinstance(op, Delete):
                kind, id, expected = op.kind, op.id, op.expected_version
                table = tables.get(kind)
                if table is None:
                    kind_type(kind)  # raises InvalidArgument
                    raise AssertionError(kind)
            else:
                obj = op.obj
                kind, id, expected = obj.KIND, obj.id, obj.version
                table = tables[kind]
            key = (kind, id)
            if key in touched:
                raise InvalidArgument(f"transaction writes {kind} {id} more than once")
            touched[key] = op
            current = table.get(id)
            if isinstance(op, Create):
                if current is not None:
                    raise AlreadyExists(
                        f"{kind} {id} already exists", details={"kind": kind, "id": id}
                    )
            elif current is None:
                raise _not_found(kind, id)
            elif current.version != expected:
                raise _conflict(kind, id, current.version, expected)
            if not isinstance(op, Delete) and kind in self._names:
                name = op.obj.unique_name()
                if name:
                    claims.append((kind, name.lower(), name, id))
        if claims:
            self._check_names(claims, touched)

    def _check_names(
        self,
        claims: builtins.list[tuple[str, str, str, str]],
        touched: dict[tuple[str, str], Whole],
    ) -> None:
        """Every name claimed must be free once the whole transaction has applied."""
        seen: dict[tuple[str, str], str] = {}
        for kind, lowered, name, id in claims:
            other = seen.setdefault((kind, lowered), id)
            if other != id:
                raise AlreadyExists(
                    f"{kind} name {name!r} is used twice in one transaction",
                    details={"kind": kind, "name": name},
                )
            owner = self._names[kind].get(lowered)
            if owner is None or owner == id:
                continue
            # The owner may give the name up in this same transaction.
            op = touched.get((kind, owner))
            if isinstance(op, Delete):
                continue
            if op is not None:
                new_name = op.obj.unique_name()
                if not new_name or new_name.lower() != lowered:
                    continue
            raise AlreadyExists(
                f"{kind} name {name!r} is already taken by {kind} {owner}",
                hint=f"choose another name or remove that {kind} first",
                details={"kind": kind, "name": name, "id": owner},
            )

    def _write(self, index: int, ops: builtins.list[Whole], actor: str = "") -> ApplyResult:
        tables, names = self._tables, self._names
        replace = msgspec.structs.replace
        written: builtins.list[Object] = []
        events: builtins.list[Event] = []
        renamed: builtins.list[tuple[Object | None, Object | None]] = []
        seen: dict[Any, Any] = {}  # values of this write's tasks: see ``_shared``
        for op in ops:
            if isinstance(op, Create):
                new = replace(op.obj, version=index, **self._shared(op.obj, seen))
                tables[new.KIND][new.id] = new
                written.append(new)
                events.append(Event(EventAction.CREATED, index, None, new, actor))
                if isinstance(new, Task):
                    self._index_task(None, new)
                if new.KIND in names:
                    renamed.append((None, new))
            elif isinstance(op, Update):
                table = tables[op.obj.KIND]
                old = table[op.obj.id]
                shared = self._shared(op.obj, seen)
                shared["created_at"] = old.created_at
                new = replace(op.obj, version=index, **shared)
                table[new.id] = new
                written.append(new)
                events.append(Event(EventAction.UPDATED, index, old, new, actor))
                if isinstance(new, Task) and isinstance(old, Task):
                    self._index_task(old, new)
                if new.KIND in names:
                    renamed.append((old, new))
            else:
                old = tables[op.kind].pop(op.id)
                events.append(Event(EventAction.DELETED, index, old, None, actor))
                if isinstance(old, Task):
                    self._index_task(old, None)
                if op.kind in names:
                    renamed.append((old, None))
        # Release every old name before claiming new ones, so that swaps apply.
        for old_obj, _ in renamed:
            old_name = old_obj.unique_name() if old_obj is not None else None
            if old_obj is not None and old_name:
                del names[old_obj.KIND][old_name.lower()]
        for _, new_obj in renamed:
            new_name = new_obj.unique_name() if new_obj is not None else None
            if new_obj is not None and new_name:
                names[new_obj.KIND][new_name.lower()] = new_obj.id
        if self._watches:
            for watch in tuple(self._watches):  # a watch may detach while offered
                watch.offer(events)
        return ApplyResult(index, tuple(written))

    # -- snapshots ------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state, msgpack; equal states give equal bytes."""
        objects: builtins.list[Object] = []
        for kind in sorted(self._tables):
            table = self._tables[kind]
            objects.extend(table[id] for id in sorted(table))
        return _state_encoder.encode(_State(objects))

    def restore(self, data: bytes, index: int) -> None:
        """Replace the whole state by a snapshot taken at ``index``.

        Open watches are closed with ``Unavailable`` (their consumers must re-list).
        Raises InvalidArgument if ``data`` is not a valid snapshot (the state is unchanged).
        """
        try:
            state = _state_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise InvalidArgument(f"malformed store snapshot: {exc}") from exc
        tables: dict[str, dict[str, Object]] = {kind: {} for kind in KINDS}
        names: dict[str, dict[str, str]] = {kind: {} for kind in self._names}
        for obj in state.objects:
            tables[obj.KIND][obj.id] = obj
            name = obj.unique_name()
            if (
                name
                and obj.KIND in names
                and names[obj.KIND].setdefault(name.lower(), obj.id) != obj.id
            ):
                raise InvalidArgument(f"store snapshot holds {obj.KIND} {name!r} twice")
        self._tables, self._names, self._applied = tables, names, index
        self._tasks_by_service, self._tasks_by_node, self._specs = {}, {}, {}
        task_table = tables[Task.KIND]
        seen: dict[Any, Any] = {}
        for id, task in task_table.items():
            shared = self._shared(task, seen)
            if shared:
                task = task_table[id] = msgspec.structs.replace(task, **shared)
            self._index_task(None, task)  # type: ignore[arg-type]
        log.info("store restored %s", kv(index=index, objects=len(state.objects)))
        for watch in tuple(self._watches):
            watch.fail(
                Unavailable(
                    f"the store was replaced by a snapshot at index {index}",
                    hint="re-list the objects and start a new watch",
                    details={"reason": "store_restored", "index": index},
                )
            )

    # -- watches --------------------------------------------------------------------

    def watch(
        self,
        kinds: Iterable[KindArg] | None = None,
        filter: Predicate | None = None,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> Watch:
        """The objects of ``kinds`` (all if None) passing ``filter`` as of now, then every
        change to them. An update passes the filter if the object did before or after it."""
        names = None if kinds is None else frozenset(_kind_name(k) for k in kinds)
        for name in names or ():
            kind_type(name)  # unknown kinds are a caller error, said now
        watch = Watch(
            index=self._applied,
            snapshot=[],
            kinds=names,
            predicate=filter,
            max_pending=max_pending,
            detach=self._detach,
        )
        for kind, table in self._tables.items():
            if names is None or kind in names:
                watch.snapshot.extend(obj for obj in table.values() if watch.matches(obj))
        self._watches[watch] = None
        return watch

    @property
    def watch_count(self) -> int:
        return len(self._watches)

    def _detach(self, watch: Watch) -> None:
        self._watches.pop(watch, None)  # None: already detached
