"""The raft directory sealed at rest: nothing of what is written can be found in its files,
it reads back only with its keys, a locked directory needs the unlock key, a changed KEK
keeps old records readable, and a log written before sealing still reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlite.errors import InternalError, PermissionDenied
from swarmlite.raft.entries import (
    Entry,
    EntryKind,
    HardState,
    Member,
    Membership,
    Snapshot,
    SnapshotMeta,
)
from swarmlite.raft.sealing import (
    DEK_FILE,
    KEK_FILE,
    Locked,
    is_locked,
    load_keys,
    new_unlock_key,
    parse_unlock_key,
    save_keys,
)
from swarmlite.raft.storage import RaftStorage

CANARY = b"S3CRET-CANARY-42"


def entries(first: int, last: int) -> list[Entry]:
    return [
        Entry(1, index, EntryKind.NORMAL, CANARY + b"-%d" % index)
        for index in range(first, last + 1)
    ]


def snapshot(index: int) -> Snapshot:
    membership = Membership((Member("n1", "127.0.0.1:1", True),))
    return Snapshot(SnapshotMeta(index, 1, membership), CANARY + b"-state")


def every_byte(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


def write_some(directory: Path, first: int, last: int, **kw: object) -> None:
    with RaftStorage.open(directory, fsync=False, **kw) as storage:  # type: ignore[arg-type]
        storage.recover()
        storage.write(HardState(term=1, vote="n1"), entries(first, last))
        storage.sync()


def test_nothing_written_can_be_found_and_it_reads_back_with_its_keys(tmp_path: Path) -> None:
    raft = tmp_path / "raft"
    keys = load_keys(raft)
    write_some(raft, 1, 50, keys=keys)
    with RaftStorage.open(raft, fsync=False, keys=keys) as storage:
        storage.recover()
        storage.save_snapshot(snapshot(50))
    assert CANARY not in every_byte(raft)
    assert (raft / DEK_FILE).stat().st_mode & 0o777 == 0o600
    assert (raft / KEK_FILE).stat().st_mode & 0o777 == 0o600

    with RaftStorage.open(raft, fsync=False, keys=load_keys(raft)) as storage:
        got = storage.recover()
    assert got.snapshot is not None and got.snapshot.data == CANARY + b"-state"
    with RaftStorage.open(raft, fsync=False) as storage, pytest.raises(InternalError):
        storage.recover()  # no keys: the sealed segment cannot be replayed


def test_a_locked_directory_needs_the_unlock_key(tmp_path: Path) -> None:
    raft = tmp_path / "raft"
    keys = load_keys(raft)
    write_some(raft, 1, 10, keys=keys)
    unlock = new_unlock_key()
    save_keys(raft, keys.rotated(), unlock_key=parse_unlock_key(unlock))
    assert is_locked(raft) and not (raft / KEK_FILE).exists()
    with pytest.raises(Locked) as locked:
        load_keys(raft)
    assert "swarmlite swarm unlock" in (locked.value.hint or "")
    with pytest.raises(PermissionDenied, match="unlock key is wrong"):
        load_keys(raft, parse_unlock_key(new_unlock_key()))
    with pytest.raises(PermissionDenied, match="not an unlock key"):
        parse_unlock_key("SWLKEY-1-short")
    opened = load_keys(raft, parse_unlock_key(unlock))
    write_some(raft, 11, 20, keys=opened)  # new records under the rotated key
    with RaftStorage.open(raft, fsync=False, keys=opened) as storage:
        got = storage.recover()
    assert [e.index for e in got.entries] == list(range(1, 21))  # old records still read
    # Unlocked again: a KEK file comes back, and the same keys open the same log.
    save_keys(raft, opened, unlock_key=None)
    assert not is_locked(raft)
    with RaftStorage.open(raft, fsync=False, keys=load_keys(raft)) as storage:
        assert len(storage.recover().entries) == 20


def test_a_kek_set_aside_by_an_unfinished_save_still_opens_the_keys(tmp_path: Path) -> None:
    raft = tmp_path / "raft"
    keys = load_keys(raft)
    save_keys(raft, keys, unlock_key=None)
    # As if the process died after the key file was replaced and before the KEK moved.
    (raft / KEK_FILE).rename(raft / (KEK_FILE + ".next"))
    (raft / KEK_FILE).write_bytes(b"\0" * 32)
    assert load_keys(raft).current == keys.current


def test_a_log_written_before_sealing_still_reads_and_new_records_are_sealed(
    tmp_path: Path,
) -> None:
    raft = tmp_path / "raft"
    write_some(raft, 1, 5)  # an older daemon: no keys
    keys = load_keys(raft)
    write_some(raft, 6, 9, keys=keys)
    with RaftStorage.open(raft, fsync=False, keys=keys) as storage:
        assert [e.index for e in storage.recover().entries] == list(range(1, 10))
    newest = sorted(raft.glob("wal-*.log"))[-1]
    assert CANARY not in newest.read_bytes()
