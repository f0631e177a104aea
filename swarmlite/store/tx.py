"""Transactions: the wire format of a store write, and the ``Tx`` builder loops use.

Owns the shape of a committed store entry: a ``Transaction`` is a list of ops, each a
create, an update, a patch or a delete. An update carries the object as the writer read it
and then changed it, so its ``version`` is the version the writer expects to replace; a
patch carries only the top-level fields the writer changed (encoded), with kind, id and
expected version, so that a task's status change does not carry its spec (most of its
bytes) through Raft and every replica's decoder; a delete names kind, id and expected
version. The store applies all ops or none (see ``memory``).

A transaction also names its actor (who asked; ``api/actor.py``), which the store hands
to the watchers of its changes. ``Tx.encode(now=...)`` stamps timestamps (``created_at``
on create, ``updated_at`` on create and update) from the writer's clock, so that every
replica stores the same values.
"""

from __future__ import annotations

import msgspec

from swarmlite.api import Object
from swarmlite.errors import InvalidArgument


class Create(msgspec.Struct, frozen=True, array_like=True, tag=0):
    obj: Object


class Update(msgspec.Struct, frozen=True, array_like=True, tag=1):
    obj: Object  # obj.version is the version the writer read


class Delete(msgspec.Struct, frozen=True, array_like=True, tag=2):
    kind: str
    id: str
    expected_version: int


class Patch(msgspec.Struct, frozen=True, array_like=True, tag=3):
    kind: str
    id: str
    expected_version: int
    fields: dict[str, msgspec.Raw]  # field name -> its new value, msgpack


Op = Create | Update | Patch | Delete

# Fields a patch may not set: who the object is, and what only the store sets.
UNPATCHABLE = frozenset({"id", "version", "created_at"})


class Transaction(msgspec.Struct, frozen=True, array_like=True):
    ops: list[Op]
    actor: str = ""  # who asked (api/actor.py); entries written before it decode as ""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Transaction)


def encode_transaction(txn: Transaction) -> bytes:
    return _encoder.encode(txn)


def decode_transaction(data: bytes) -> Transaction:
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"malformed store transaction: {exc}") from exc


class Tx:
    """Collects the writes of one transaction; methods return the Tx for chaining."""

    __slots__ = ("_ops",)

    def __init__(self) -> None:
        self._ops: list[Op] = []

    def create(self, obj: Object) -> Tx:
        """Create ``obj``; fails with AlreadyExists if its id (or unique name) is taken."""
        self._ops.append(Create(obj))
        return self

    def update(self, obj: Object) -> Tx:
        """Replace the stored object with ``obj`` if it is still at ``obj.version``."""
        self._ops.append(Update(obj))
        return self

    def patch(self, old: Object, new: Object) -> Tx:
        """Replace ``old`` (if the store still has it at ``old.version``) by ``new``, sending
        only the fields that differ. ``new`` is ``old`` with some fields replaced
        (``msgspec.structs.replace``), so an unchanged field is the same object."""
        if type(new) is not type(old) or new.id != old.id:
            raise InvalidArgument(f"a patch must change one object, not {old.id} to {new.id}")
        fields = {
            name: msgspec.Raw(_encoder.encode(value))
            for name in new.__struct_fields__
            if name not in UNPATCHABLE
            and (value := getattr(new, name)) is not (before := getattr(old, name))
            and value != before
        }
        self._ops.append(Patch(old.KIND, old.id, old.version, fields))
        return self

    def delete(self, obj: Object) -> Tx:
        """Delete ``obj`` if it is still at ``obj.version``."""
        self._ops.append(Delete(obj.KIND, obj.id, obj.version))
        return self

    @property
    def ops(self) -> tuple[Op, ...]:
        return tuple(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def __bool__(self) -> bool:
        return bool(self._ops)

    def transaction(self, *, now: float | None = None, actor: str = "") -> Transaction:
        """The Transaction to propose, on behalf of ``actor``; with ``now``, timestamps are
        stamped from it."""
        if now is None:
            return Transaction(list(self._ops), actor)
        replace = msgspec.structs.replace
        ops: list[Op] = []
        for op in self._ops:
            if isinstance(op, Create):
                ops.append(Create(replace(op.obj, created_at=now, updated_at=now)))
            elif isinstance(op, Update):
                ops.append(Update(replace(op.obj, updated_at=now)))
            elif isinstance(op, Patch):
                stamped = {**op.fields, "updated_at": msgspec.Raw(_encoder.encode(now))}
                ops.append(replace(op, fields=stamped))
            else:
                ops.append(op)
        return Transaction(ops, actor)

    def encode(self, *, now: float | None = None, actor: str = "") -> bytes:
        """The bytes to propose (see ``transaction``)."""
        return encode_transaction(self.transaction(now=now, actor=actor))
