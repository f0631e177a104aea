"""RaftStorage on real files: round trips, replaced suffixes, torn tails, corruption,
snapshots with compaction, and a writer killed with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import stat
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

import swarmlite
from swarmlite.errors import FailedPrecondition, InternalError, InvalidArgument
from swarmlite.raft.entries import (
    Entry,
    EntryKind,
    HardState,
    Member,
    Membership,
    Snapshot,
    SnapshotMeta,
)
from swarmlite.raft.storage import RaftStorage, Recovered

# The record layout documented in swarmlite/raft/storage.py, read independently here.
HEADER = struct.Struct("<IIB")
ENTRIES = 2


def make_entries(first: int, last: int, term: int = 1, size: int = 8) -> list[Entry]:
    return [
        Entry(term, index, EntryKind.NORMAL, index.to_bytes(size, "big"))
        for index in range(first, last + 1)
    ]


def make_snapshot(index: int, term: int = 1) -> Snapshot:
    membership = Membership((Member("n1", "127.0.0.1:1", True),))
    return Snapshot(SnapshotMeta(index, term, membership), b"state-at-%d" % index)


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("wal-*.log"))


def entry_indexes(path: Path) -> list[int]:
    data, offset, found = path.read_bytes(), 0, []
    while offset < len(data):
        length, _crc, kind = HEADER.unpack_from(data, offset)
        payload = data[offset + HEADER.size : offset + HEADER.size + length]
        if kind == ENTRIES:
            found.extend(e.index for e in msgspec.msgpack.decode(payload, type=list[Entry]))
        offset += HEADER.size + length
    return found


def reopen(directory: Path, **options: int) -> Recovered:
    with RaftStorage.open(directory, **options) as storage:
        return storage.recover()


@pytest.fixture
def raft_dir(tmp_path: Path) -> Path:
    return tmp_path / "raft"


@pytest.fixture
def storage(raft_dir: Path) -> Iterator[RaftStorage]:
    opened = RaftStorage.open(raft_dir)
    opened.recover()
    yield opened
    opened.close()


def test_fresh_directory_is_created_private_and_recovers_empty(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "raft"
    recovered = reopen(directory)

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert recovered == Recovered(
        hard_state=HardState(), snapshot=None, entries=[], truncated_bytes=0
    )


def test_hard_state_and_10000_entries_round_trip(raft_dir: Path, storage: RaftStorage) -> None:
    written = make_entries(1, 10_000, term=3, size=40)
    storage.write(HardState(term=3, vote="n2"), written[:1000])
    for start in range(1000, 10_000, 1000):
        storage.write(None, written[start : start + 1000])
    storage.sync()
    storage.close()

    recovered = reopen(raft_dir)

    assert recovered.hard_state == HardState(term=3, vote="n2")
    assert recovered.snapshot is None
    assert recovered.entries == written
    assert recovered.truncated_bytes == 0


@pytest.mark.parametrize("segment_bytes", [64 * 1024 * 1024, 1], ids=["one-segment", "rotating"])
def test_rewritten_suffix_replaces_conflicting_entries(raft_dir: Path, segment_bytes: int) -> None:
    with RaftStorage.open(raft_dir, segment_bytes=segment_bytes) as storage:
        storage.recover()
        storage.write(HardState(term=1), make_entries(1, 10, term=1))
        storage.write(HardState(term=2, vote="n3"), make_entries(6, 8, term=2))
        storage.write(None, make_entries(9, 9, term=2))
        storage.sync()

    recovered = reopen(raft_dir, segment_bytes=segment_bytes)

    assert recovered.entries == make_entries(1, 5, term=1) + make_entries(6, 9, term=2)
    assert recovered.hard_state == HardState(term=2, vote="n3")


def test_a_1000_entry_write_is_one_os_write_and_sync_one_fsync(
    storage: RaftStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_write, real_fsync = os.write, os.fsync

    def counting_write(fd: int, data: bytes) -> int:
        calls.append("write")
        return real_write(fd, data)

    def counting_fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(os, "write", counting_write)
    monkeypatch.setattr(os, "fsync", counting_fsync)
    storage.write(HardState(term=1, vote="n1"), make_entries(1, 1000))
    storage.sync()

    assert calls == ["write", "fsync"]


def write_batches(raft_dir: Path, batches: int) -> tuple[Path, int]:
    """Write `batches` syncs of 10 entries; return the segment and where its last record starts."""
    last_start = 0
    with RaftStorage.open(raft_dir) as storage:
        storage.recover()
        for batch in range(batches):
            if batch == batches - 1:
                last_start = segments(raft_dir)[-1].stat().st_size
            hard_state = HardState(term=1) if batch == 0 else None
            storage.write(hard_state, make_entries(batch * 10 + 1, batch * 10 + 10))
            storage.sync()
    return segments(raft_dir)[-1], last_start


@pytest.mark.parametrize("cut", [1, 4, 8, 9, 30, -1])
def test_torn_last_record_is_cut_off_and_writing_resumes(raft_dir: Path, cut: int) -> None:
    segment, last_start = write_batches(raft_dir, 10)
    size = segment.stat().st_size
    keep = last_start + cut if cut > 0 else size + cut
    os.truncate(segment, keep)

    recovered = reopen(raft_dir)

    assert recovered.entries == make_entries(1, 90)
    assert recovered.truncated_bytes == keep - last_start
    assert segment.stat().st_size == last_start

    with RaftStorage.open(raft_dir) as storage:
        storage.recover()
        storage.write(None, make_entries(91, 95, term=2))
    again = reopen(raft_dir)
    assert again.entries == make_entries(1, 90) + make_entries(91, 95, term=2)
    assert again.truncated_bytes == 0


@pytest.mark.parametrize(
    "garbage",
    [random.Random(7).randbytes(100), bytes(4096), b"\x05"],
    ids=["random", "zeros", "one-byte"],
)
def test_garbage_after_the_last_record_is_cut_off(raft_dir: Path, garbage: bytes) -> None:
    segment, _ = write_batches(raft_dir, 5)
    with segment.open("ab") as file:
        file.write(garbage)

    recovered = reopen(raft_dir)

    assert recovered.entries == make_entries(1, 50)
    assert recovered.hard_state == HardState(term=1)
    assert recovered.truncated_bytes == len(garbage)


def test_corruption_in_an_earlier_segment_is_reported_with_file_and_offset(
    raft_dir: Path,
) -> None:
    with RaftStorage.open(raft_dir, segment_bytes=2000) as storage:
        storage.recover()
        for batch in range(30):
            storage.write(None, make_entries(batch * 10 + 1, batch * 10 + 10, size=20))
    first = segments(raft_dir)[0]
    assert len(segments(raft_dir)) > 3
    data = bytearray(first.read_bytes())
    flipped = len(data) // 2
    data[flipped] ^= 0x40
    first.write_bytes(bytes(data))

    with pytest.raises(InternalError) as caught, RaftStorage.open(raft_dir) as storage:
        storage.recover()

    error = caught.value
    assert first.name in error.message
    assert error.details["path"] == str(first)
    assert 0 <= error.details["offset"] <= flipped
    assert f"offset {error.details['offset']}" in error.message
    assert first.stat().st_size == len(data)  # nothing was cut away


def fill_log(raft_dir: Path, last: int, segment_bytes: int = 1000) -> RaftStorage:
    storage = RaftStorage.open(raft_dir, segment_bytes=segment_bytes)
    storage.recover()
    storage.write(HardState(term=3, vote="n1"), make_entries(1, 10))
    for start in range(11, last + 1, 10):
        storage.write(None, make_entries(start, start + 9))
    storage.sync()
    return storage


def test_snapshot_compacts_segments_and_keeps_the_hard_state(raft_dir: Path) -> None:
    storage = fill_log(raft_dir, 1000)
    first_segment = segments(raft_dir)[0]
    before = len(segments(raft_dir))

    storage.save_snapshot(make_snapshot(600))
    storage.close()

    remaining = segments(raft_dir)
    assert not first_segment.exists()  # it held the only HARDSTATE record written by us
    assert len(remaining) < before
    for segment in remaining[:-1]:  # the active one may hold no entries at all
        assert max(entry_indexes(segment), default=0) > 600
    held = {index for segment in remaining for index in entry_indexes(segment)}
    assert set(range(601, 1001)) <= held
    assert [p.name for p in raft_dir.glob("snap-*")] == [f"snap-{600:020d}.bin"]

    recovered = reopen(raft_dir)
    assert recovered.snapshot == make_snapshot(600)
    assert recovered.entries == make_entries(601, 1000)
    assert recovered.hard_state == HardState(term=3, vote="n1")


def test_two_newest_snapshots_are_kept_and_the_older_one_bounds_compaction(
    raft_dir: Path,
) -> None:
    with fill_log(raft_dir, 1000) as storage:
        for index in (300, 600, 900):
            storage.save_snapshot(make_snapshot(index))

    assert sorted(p.name for p in raft_dir.glob("snap-*")) == [
        f"snap-{600:020d}.bin",
        f"snap-{900:020d}.bin",
    ]
    held = {index for segment in segments(raft_dir) for index in entry_indexes(segment)}
    assert min(held) <= 601
    assert min(held) > 300


def test_corrupt_newest_snapshot_falls_back_to_the_previous_one(raft_dir: Path) -> None:
    with fill_log(raft_dir, 1000) as storage:
        storage.save_snapshot(make_snapshot(300))
        storage.save_snapshot(make_snapshot(600))
    newest = raft_dir / f"snap-{600:020d}.bin"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x01
    newest.write_bytes(bytes(data))

    recovered = reopen(raft_dir)

    assert recovered.snapshot == make_snapshot(300)
    assert recovered.entries == make_entries(301, 1000)
    assert recovered.hard_state == HardState(term=3, vote="n1")
    assert not newest.exists()
    assert newest.with_name(newest.name + ".corrupt").exists()


def test_snapshot_matching_the_log_keeps_later_entries(
    raft_dir: Path, storage: RaftStorage
) -> None:
    storage.write(HardState(term=1), make_entries(1, 10))
    storage.save_snapshot(make_snapshot(5, term=1))
    storage.write(None, make_entries(11, 12))
    storage.close()

    recovered = reopen(raft_dir)

    assert recovered.snapshot == make_snapshot(5, term=1)
    assert recovered.entries == make_entries(6, 12)


@pytest.mark.parametrize(
    ("index", "appended"),
    [(8, 0), (8, 3), (50, 3)],
    ids=["conflicting-term", "conflicting-term-then-append", "beyond-the-log"],
)
def test_snapshot_not_matching_the_log_replaces_it(
    raft_dir: Path, storage: RaftStorage, index: int, appended: int
) -> None:
    storage.write(HardState(term=2), make_entries(1, 10, term=1))
    storage.save_snapshot(make_snapshot(index, term=2))
    storage.write(None, make_entries(index + 1, index + appended, term=2))
    storage.close()

    recovered = reopen(raft_dir)

    assert recovered.snapshot == make_snapshot(index, term=2)
    assert recovered.entries == make_entries(index + 1, index + appended, term=2)


def test_successive_snapshots_across_terms_keep_the_matching_suffix(
    raft_dir: Path, storage: RaftStorage
) -> None:
    for term in (1, 2, 3):
        storage.write(HardState(term=term), make_entries(term * 10 - 9, term * 10, term=term))
    storage.save_snapshot(make_snapshot(15, term=2))
    storage.save_snapshot(make_snapshot(25, term=3))
    storage.close()

    recovered = reopen(raft_dir)

    assert recovered.snapshot == make_snapshot(25, term=3)
    assert recovered.entries == make_entries(26, 30, term=3)


def test_snapshot_after_a_shortened_log_does_not_revive_cut_entries(
    raft_dir: Path, storage: RaftStorage
) -> None:
    storage.write(HardState(term=1), make_entries(1, 100, term=1))
    storage.write(HardState(term=2), make_entries(90, 91, term=2))
    storage.save_snapshot(make_snapshot(91, term=2))
    storage.close()

    recovered = reopen(raft_dir)

    assert recovered.snapshot == make_snapshot(91, term=2)
    assert recovered.entries == []


def test_snapshot_older_than_the_stored_one_is_refused(storage: RaftStorage) -> None:
    storage.write(None, make_entries(1, 10))
    storage.save_snapshot(make_snapshot(8))

    with pytest.raises(FailedPrecondition, match="older"):
        storage.save_snapshot(make_snapshot(5))


@pytest.mark.parametrize(
    ("make_batch", "problem"),
    [
        (lambda: make_entries(12, 13), "at most one past"),
        (lambda: make_entries(3, 4), "after the snapshot"),
        (lambda: [*make_entries(6, 7), *make_entries(9, 9)], "not contiguous"),
    ],
    ids=["gap", "below-snapshot", "holes"],
)
def test_writes_that_would_break_the_log_are_refused(
    raft_dir: Path, storage: RaftStorage, make_batch: Callable[[], list[Entry]], problem: str
) -> None:
    storage.write(None, make_entries(1, 10))
    storage.save_snapshot(make_snapshot(5))

    with pytest.raises(InvalidArgument, match=problem):
        storage.write(None, make_batch())
    storage.close()
    assert reopen(raft_dir).entries == make_entries(6, 10)


def test_write_before_recover_is_refused(raft_dir: Path) -> None:
    with (
        RaftStorage.open(raft_dir) as storage,
        pytest.raises(FailedPrecondition, match="recovered before use"),
    ):
        storage.write(HardState(term=1), [])


def test_a_directory_in_use_cannot_be_opened_again(raft_dir: Path, storage: RaftStorage) -> None:
    with pytest.raises(FailedPrecondition, match="in use by another process"):
        RaftStorage.open(raft_dir)


def test_a_file_in_place_of_the_directory_is_reported_with_its_path(tmp_path: Path) -> None:
    blocker = tmp_path / "raft"
    blocker.write_text("not a directory")

    with pytest.raises(FailedPrecondition) as caught:
        RaftStorage.open(blocker / "inner")

    assert caught.value.details["path"] == str(blocker / "inner")


CHILD = """
import sys
from swarmlite.raft.entries import Entry, EntryKind, HardState
from swarmlite.raft.storage import RaftStorage

storage = RaftStorage.open(sys.argv[1], segment_bytes=int(sys.argv[2]))
recovered = storage.recover()
index = recovered.entries[-1].index if recovered.entries else 0
term = recovered.hard_state.term + 1
while True:
    batch = [Entry(term, index + k, EntryKind.NORMAL, b"x" * 100) for k in range(1, 201)]
    storage.write(HardState(term, "child"), batch)
    storage.sync()
    index += len(batch)
    print(index, flush=True)
"""


def run_child_until_killed(raft_dir: Path, syncs: int) -> int:
    """Start a writer, SIGKILL it after `syncs` reported syncs; return the last index reported."""
    env = dict(os.environ, PYTHONPATH=str(Path(swarmlite.__file__).resolve().parent.parent))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(raft_dir), str(64 * 1024)],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None
    reported = 0
    try:
        for _ in range(syncs):
            line = child.stdout.readline()
            assert line, f"writer exited early with {child.wait()}"
            reported = int(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=10)
    for line in rest.split():  # synced and reported before the kill landed
        reported = int(line)
    assert child.returncode == -signal.SIGKILL
    return reported


def test_everything_reported_synced_survives_sigkill(raft_dir: Path) -> None:
    for round_number in (1, 2):
        reported = run_child_until_killed(raft_dir, syncs=40)

        recovered = reopen(raft_dir)

        assert recovered.hard_state == HardState(term=round_number, vote="child")
        indexes = [entry.index for entry in recovered.entries]
        assert indexes == list(range(1, len(indexes) + 1))
        assert indexes[-1] >= reported
