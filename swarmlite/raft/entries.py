"""What the Raft log holds: entries, membership, snapshot metadata and the hard state.

Owns the shapes that the core, the storage and the wire share; no behaviour beyond
encoding. Every struct is frozen and array-like, so that the log on disk and the messages
on the wire stay small.
"""

from __future__ import annotations

import enum

import msgspec


class EntryKind(enum.IntEnum):
    NORMAL = 0  # data for the state machine
    CONFIG = 1  # data is an encoded Membership: the new configuration, in force once appended
    NOOP = 2  # written by each new leader so that it can commit entries of its term


class Entry(msgspec.Struct, frozen=True, array_like=True):
    term: int
    index: int
    kind: EntryKind
    data: bytes = b""


class Member(msgspec.Struct, frozen=True, array_like=True):
    id: str
    address: str  # where its raft transport listens, "host:port"
    voter: bool


class Membership(msgspec.Struct, frozen=True, array_like=True):
    members: tuple[Member, ...] = ()

    @property
    def voters(self) -> frozenset[str]:
        return frozenset(m.id for m in self.members if m.voter)

    @property
    def learners(self) -> frozenset[str]:
        return frozenset(m.id for m in self.members if not m.voter)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(m.id for m in self.members)

    def get(self, node_id: str) -> Member | None:
        for m in self.members:
            if m.id == node_id:
                return m
        return None

    def with_member(self, member: Member) -> Membership:
        kept = tuple(m for m in self.members if m.id != member.id)
        return Membership(tuple(sorted((*kept, member), key=lambda m: m.id)))

    def without(self, node_id: str) -> Membership:
        return Membership(tuple(m for m in self.members if m.id != node_id))


class SnapshotMeta(msgspec.Struct, frozen=True, array_like=True):
    index: int  # last entry the snapshot covers
    term: int  # that entry's term
    membership: Membership  # configuration in force at `index`


class Snapshot(msgspec.Struct, frozen=True, array_like=True):
    meta: SnapshotMeta
    data: bytes  # the state machine's own encoding


class HardState(msgspec.Struct, frozen=True, array_like=True):
    term: int = 0
    vote: str | None = None  # whom this node voted for in `term`


_membership_encoder = msgspec.msgpack.Encoder()
_membership_decoder = msgspec.msgpack.Decoder(Membership)


def encode_membership(membership: Membership) -> bytes:
    return _membership_encoder.encode(membership)


def decode_membership(data: bytes) -> Membership:
    return _membership_decoder.decode(data)
