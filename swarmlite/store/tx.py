"""Transactions: the wire format of a store write, and the ``Tx`` builder loops use.

Owns the shape of a committed store entry: a ``Transaction`` is a list of ops, each a
create, an update or a delete. An update carries the object as the writer read it and then
changed it, so its ``version`` is the version the writer expects to replace; a delete names
kind, id and expected version. The store applies all ops or none (see ``memory``).

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


Op = Create | Update | Delete


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
            else:
                ops.append(op)
        return Transaction(ops, actor)

    def encode(self, *, now: float | None = None, actor: str = "") -> bytes:
        """The bytes to propose (see ``transaction``)."""
        return encode_transaction(self.transaction(now=now, actor=actor))
