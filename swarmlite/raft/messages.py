"""Messages between Raft peers, and their msgpack encoding.

Owns the wire shapes only. Every message names its term, sender and receiver; the core
decides what they mean. Decoding checks every field's type, so a malformed frame from the
network raises ``InvalidArgument`` instead of reaching the core.
"""

from __future__ import annotations

import msgspec

from swarmlite.errors import InvalidArgument
from swarmlite.raft.entries import Entry, Snapshot


class PreVote(msgspec.Struct, frozen=True, array_like=True, tag=1):
    """Would you vote for me in `term` (my term + 1)? Changes no one's term."""

    term: int
    src: str
    dst: str
    last_index: int
    last_term: int


class PreVoteResp(msgspec.Struct, frozen=True, array_like=True, tag=2):
    term: int
    src: str
    dst: str
    granted: bool


class Vote(msgspec.Struct, frozen=True, array_like=True, tag=3):
    term: int
    src: str
    dst: str
    last_index: int
    last_term: int
    transfer: bool = False  # leadership transfer: voters ignore their leader lease


class VoteResp(msgspec.Struct, frozen=True, array_like=True, tag=4):
    term: int
    src: str
    dst: str
    granted: bool


class Append(msgspec.Struct, frozen=True, array_like=True, tag=5):
    """Entries after (prev_index, prev_term); none makes it a heartbeat."""

    term: int
    src: str
    dst: str
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    commit: int
    ctx: int = 0  # read-index round this message belongs to (0: none)


class AppendResp(msgspec.Struct, frozen=True, array_like=True, tag=6):
    """success: the follower's log matches the leader's up to `index`.
    not success: it did not hold prev_index=`index`; `last_index` is where its log ends."""

    term: int
    src: str
    dst: str
    success: bool
    index: int
    last_index: int
    ctx: int = 0


class InstallSnapshot(msgspec.Struct, frozen=True, array_like=True, tag=7):
    term: int
    src: str
    dst: str
    snapshot: Snapshot
    commit: int


class Heartbeat(msgspec.Struct, frozen=True, array_like=True, tag=9):
    """I am still the leader; `commit` never exceeds what the receiver is known to hold."""

    term: int
    src: str
    dst: str
    commit: int
    ctx: int = 0  # read-index round this message confirms (0: none)


class HeartbeatResp(msgspec.Struct, frozen=True, array_like=True, tag=10):
    term: int
    src: str
    dst: str
    ctx: int = 0


class TimeoutNow(msgspec.Struct, frozen=True, array_like=True, tag=8):
    """Leadership transfer: start an election now, without pre-vote."""

    term: int
    src: str
    dst: str


Message = (
    PreVote
    | PreVoteResp
    | Vote
    | VoteResp
    | Append
    | AppendResp
    | Heartbeat
    | HeartbeatResp
    | InstallSnapshot
    | TimeoutNow
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)
_batch_decoder = msgspec.msgpack.Decoder(list[Message])


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def encode_batch(messages: list[Message]) -> bytes:
    return _encoder.encode(messages)


def decode(data: bytes) -> Message:
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"malformed raft message: {exc}") from exc


def decode_batch(data: bytes) -> list[Message]:
    try:
        return _batch_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"malformed raft message batch: {exc}") from exc
