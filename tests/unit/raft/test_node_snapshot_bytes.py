"""A raft member snapshots when the log since its last snapshot is long in bytes, not only
in entries (issue 13: 1,000 updates of one node made a 25 MB log)."""

from __future__ import annotations

from swarmlite.raft.core import RaftCore
from swarmlite.raft.entries import Entry, EntryKind, HardState, Member
from swarmlite.raft.node import NodeConfig, RaftNode
from swarmlite.raft.storage import Recovered


class FakeStorage:
    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries

    def recover(self) -> Recovered:
        return Recovered(
            hard_state=HardState(term=1), snapshot=None, entries=self.entries, truncated_bytes=0
        )


class Machine:
    def apply(self, index: int, data: bytes) -> object:
        return None

    def snapshot(self) -> bytes:
        return b""

    def restore(self, data: bytes, index: int) -> None:
        return None


def node(snapshot_bytes: int, entries: list[Entry] | None = None) -> RaftNode:
    _, first = RaftCore.bootstrap([Member("n1", "127.0.0.1:1", True)])
    config = NodeConfig(node_id="n1", snapshot_every=10_000, snapshot_bytes=snapshot_bytes)
    return RaftNode(config, FakeStorage([*first, *(entries or [])]), Machine())  # type: ignore[arg-type]


def test_large_entries_make_a_snapshot_due_before_many_entries_do() -> None:
    member = node(snapshot_bytes=1000)
    for index in range(2, 6):
        member._apply(Entry(1, index, EntryKind.NORMAL, b"x" * 300))
        due = member._snapshot_due()
        assert due is (index >= 5), index


def test_the_bytes_of_the_log_recovered_after_a_restart_count() -> None:
    entries = [Entry(1, i, EntryKind.NORMAL, b"x" * 600) for i in range(2, 4)]
    member = node(snapshot_bytes=1000, entries=entries)
    member._apply(entries[0])
    member._apply(entries[1])

    assert member._snapshot_due()


def test_a_state_larger_than_the_byte_threshold_raises_it() -> None:
    member = node(snapshot_bytes=1000)
    member._snapshot_size = 5000
    for index in range(2, 12):
        member._apply(Entry(1, index, EntryKind.NORMAL, b"x" * 300))

    assert 3000 <= member._log_bytes < 5000
    assert not member._snapshot_due()
