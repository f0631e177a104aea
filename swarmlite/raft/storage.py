"""The durable Raft log and snapshots of one node, on its local disk.

Owns the files in the node's raft directory: write-ahead segments holding entries and the
hard state, snapshot files, and the lock that keeps a second process out. It does not decide
what to write (``raft.core`` does) nor when to sync (``raft.node`` does: write, sync once,
then send). Invariant: once ``sync()`` or ``save_snapshot()`` has returned, ``recover()`` in
any later process returns that hard state and those entries (or a snapshot covering them),
and never an entry the caller has since overwritten. It talks to the disk, so it translates
``OSError`` here: a full, read-only or forbidden disk (or a path that is not a directory)
becomes ``FailedPrecondition``, anything else ``InternalError``; both carry the path in
``details``. A corrupt file becomes ``InternalError`` naming the file and the offset. After a
failed write or fsync the page cache is in an unknown state, so the storage refuses all
further work until the process restarts and recovers. Not thread-safe: one caller at a time.

Files (one directory, created 0700)::

    LOCK                     flock'ed while a RaftStorage is open on the directory
    wal-<seq:020d>.log       append-only segments; seq counts up by one, oldest deleted first
    snap-<index:020d>.bin    one snapshot each; the newest two are kept
    *.tmp                    a snapshot being written; removed by recover()
    *.corrupt                a snapshot that failed its checksum, set aside by recover()

Every file is a sequence of records, little-endian::

    [length u32][crc u32][type u8][payload: `length` bytes]     crc = zlib.crc32(type + payload)

    type 1 HARDSTATE  msgpack HardState; the last one read wins
    type 2 ENTRIES    msgpack array of Entry with contiguous indexes: one record per write().
                      If its first index is <= the last index already in the log, the log is
                      cut from that index first: conflicting entries are replaced without
                      rewriting any file
    type 3 SNAPSHOT   msgpack [Snapshot, wal_seq, keep_log]: the only record of a snap file

Segments. A new one is started by ``recover()``, by ``save_snapshot()`` and by a write that
would grow the active one past ``segment_bytes``; it opens with the current hard state, so
deleting older segments never loses it. The old segment is fsynced before the first byte goes
to the new one, so only the last segment can end in a torn record: ``recover()`` cuts such a
tail off (and reports how many bytes), while damage in any earlier segment is an error.

Snapshots. ``save_snapshot()`` starts a new segment, whose seq it records as ``wal_seq``, and
records ``keep_log``: whether the log held the snapshot's last entry with the same term. If
it did, the entries after that index stay (Raft's rule for a snapshot that matches the log);
if not, the snapshot replaces the whole log, and recovery ignores the entries of segments
before ``wal_seq``. Recovery loads the newest snapshot whose checksum holds. So that the older
of the two kept snapshots remains a usable fallback, compaction deletes only the oldest run of
segments whose entries all lie at or below the *older* kept snapshot's index, and never the
active segment.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import itertools
import logging
import os
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import msgspec

from swarmlite.errors import FailedPrecondition, InternalError, InvalidArgument, SwarmliteError
from swarmlite.log import kv
from swarmlite.raft.entries import Entry, HardState, Snapshot
from swarmlite.raft.sealing import DataKeys

__all__ = ["RaftStorage", "Recovered"]

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_SEGMENT_BYTES = 64 * MiB

_HEADER = struct.Struct("<IIB")
_HARDSTATE = 1
_ENTRIES = 2
_SNAPSHOT = 3
_SEALED = 0x80  # or'ed into the type of a record sealed with a data key (sealing.py)
_MAX_PAYLOAD = 0xFFFF_FFFF
_KEEP_SNAPSHOTS = 2

_WAL_NAME = re.compile(r"^wal-(\d{20})\.log$")
_SNAP_NAME = re.compile(r"^snap-(\d{20})\.bin$")

# Errors the operator can fix (free space, permissions, a wrong path); the rest are bugs.
_PRECONDITION_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
}


class Recovered(msgspec.Struct, frozen=True, kw_only=True):
    """Everything durable in a raft directory, as ``RaftStorage.recover()`` found it."""

    hard_state: HardState
    snapshot: Snapshot | None  # the newest valid snapshot
    entries: list[Entry]  # every entry after the snapshot (or from 1), contiguous, in order
    truncated_bytes: int  # bytes cut from a torn tail of the last segment (0 if clean)


class _SnapshotRecord(msgspec.Struct, frozen=True, array_like=True):
    snapshot: Snapshot
    wal_seq: int  # the first segment written after this snapshot
    keep_log: bool  # False: entries in segments before wal_seq are not part of the log


class _Record(NamedTuple):
    kind: int
    offset: int
    payload: memoryview


@dataclass(slots=True)
class _Segment:
    seq: int
    path: Path
    max_index: int  # highest entry index in any record of the file, 0 if none
    size: int


_encoder = msgspec.msgpack.Encoder()
_hard_state_decoder = msgspec.msgpack.Decoder(HardState)
_entries_decoder = msgspec.msgpack.Decoder(list[Entry])
_snapshot_decoder = msgspec.msgpack.Decoder(_SnapshotRecord)


def _frame(kind: int, payload: bytes) -> bytes:
    if len(payload) > _MAX_PAYLOAD:
        raise InvalidArgument(f"raft record of {len(payload)} bytes exceeds the 4 GiB limit")
    crc = zlib.crc32(payload, zlib.crc32(bytes((kind,))))
    return _HEADER.pack(len(payload), crc, kind) + payload


def _parse(data: bytes) -> tuple[list[_Record], int, str | None]:
    """Split ``data`` into records up to the first damaged one.

    Returns the records, the offset where the valid part ends, and what was wrong there
    (None when the whole buffer is valid).
    """
    records: list[_Record] = []
    view = memoryview(data)
    offset, size = 0, len(data)
    while offset < size:
        if size - offset < _HEADER.size:
            return records, offset, "short record header"
        length, crc, kind = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        end = start + length
        if end > size:
            return records, offset, "short record payload"
        payload = view[start:end]
        if zlib.crc32(payload, zlib.crc32(bytes((kind,)))) != crc:
            return records, offset, "record checksum mismatch"
        records.append(_Record(kind, offset, payload))
        offset = end
    return records, offset, None


def _os_error(exc: OSError, action: str, path: Path) -> SwarmliteError:
    reason = exc.strerror or str(exc)
    message = f"cannot {action} {path}: {reason}"
    details = {"path": str(path), "errno": exc.errno}
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free disk space on that file system: the node starts again by itself"
        return FailedPrecondition(message, hint=hint, details=details)
    if exc.errno in _PRECONDITION_ERRNOS:
        hint = "check that the raft data directory is a writable directory"
        return FailedPrecondition(message, hint=hint, details=details)
    return InternalError(message, details=details)


def _corrupt(path: Path, offset: int, problem: str) -> InternalError:
    return InternalError(
        f"raft file {path.name} is corrupt at offset {offset}: {problem}",
        hint="restore this manager from a healthy peer (remove it and join it again)",
        details={"path": str(path), "offset": offset},
    )


def _apply(entries: list[Entry], batch: list[Entry], snap_index: int) -> bool:
    """Replay one ENTRIES record onto ``entries`` (the log after ``snap_index``).

    Returns False when the batch would leave a gap in the log.
    """
    first = batch[0].index
    if entries and first <= entries[-1].index:
        # entries[k] has index snap_index + 1 + k: keep those below `first`.
        del entries[max(0, first - snap_index - 1) :]
    start = max(0, snap_index + 1 - first)
    if start >= len(batch):
        return True
    expected = entries[-1].index + 1 if entries else snap_index + 1
    if batch[start].index != expected:
        return False
    entries.extend(batch[start:] if start else batch)
    return True


class RaftStorage:
    """The raft directory of one node. Create with ``open()``, then call ``recover()`` once."""

    def __init__(
        self,
        directory: Path,
        lock_fd: int,
        *,
        fsync: bool,
        segment_bytes: int,
        keys: DataKeys | None = None,
    ) -> None:
        self._dir = directory
        self._keys = keys
        self._lock_fd: int | None = lock_fd
        self._fsync = fsync
        self._segment_bytes = segment_bytes
        self._recover_started = False
        self._recovered = False
        self._failed: SwarmliteError | None = None
        self._hard_state = HardState()
        self._snap_index = 0
        self._snap_term = 0
        self._last_index = 0
        # Terms of the entries after the snapshot, as runs: _run_terms[k] from _run_starts[k].
        self._run_starts: list[int] = []
        self._run_terms: list[int] = []
        self._segments: list[_Segment] = []
        self._fd: int | None = None  # the active (last) segment, opened for appending
        self._dirty = False  # bytes written to the active segment since its last fsync
        self._dir_dirty = False  # a file was created in the directory since its last fsync

    @classmethod
    def open(
        cls,
        directory: str | Path,
        *,
        fsync: bool = True,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        keys: DataKeys | None = None,
    ) -> RaftStorage:
        """Lock ``directory`` (created 0700 if missing) for this process. With ``keys``
        every record written is sealed (``sealing.py``); sealed records need them to be read.

        ``fsync=False`` is for unit tests and the simulator only.
        """
        if segment_bytes <= 0:
            raise InvalidArgument(f"segment_bytes must be positive, got {segment_bytes}")
        path = Path(directory)
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error(exc, "create raft directory", path) from exc
        lock_path = path / "LOCK"
        try:
            lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _os_error(exc, "open", lock_path) from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(lock_fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise FailedPrecondition(
                    f"raft directory {path} is in use by another process",
                    hint="stop the other swarmlite daemon using this data directory",
                    details={"path": str(path)},
                ) from exc
            raise _os_error(exc, "lock", lock_path) from exc
        return cls(path, lock_fd, fsync=fsync, segment_bytes=segment_bytes, keys=keys)

    def __enter__(self) -> RaftStorage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- recovery ---------------------------------------------------------------------------

    def recover(self) -> Recovered:
        """Read everything back, cut a torn tail off the last segment, start a new segment."""
        self._check_open()
        if self._recover_started:
            raise FailedPrecondition(
                f"recover() was already called on the raft storage at {self._dir}",
                hint="open the directory again to recover it again",
                details={"path": str(self._dir)},
            )
        self._recover_started = True
        try:
            return self._recover()
        except OSError as exc:
            raise self._fail(exc, "recover raft directory", self._dir) from exc

    def _recover(self) -> Recovered:
        names = sorted(os.listdir(self._dir))
        for name in names:
            if name.endswith(".tmp"):
                os.unlink(self._dir / name)
        snaps = [(int(m[1]), self._dir / n) for n in names if (m := _SNAP_NAME.match(n))]
        segments = [(int(m[1]), self._dir / n) for n in names if (m := _WAL_NAME.match(n))]
        for (seq, _), (next_seq, path) in itertools.pairwise(segments):
            if next_seq != seq + 1:
                raise InternalError(
                    f"raft segment {seq + 1} is missing before {path.name}",
                    details={"path": str(path)},
                )

        chosen: _SnapshotRecord | None = None
        rejected: list[Path] = []
        for index, path in reversed(snaps):
            chosen = self._load_snapshot(path, index)
            if chosen is not None:
                break
            rejected.append(path)

        hard_state, entries, truncated = self._replay(segments, chosen)

        for path in rejected:
            os.replace(path, path.with_name(path.name + ".corrupt"))
        if chosen is not None:
            self._snap_index = chosen.snapshot.meta.index
            self._snap_term = chosen.snapshot.meta.term
        self._hard_state = hard_state
        self._last_index = entries[-1].index if entries else self._snap_index
        for entry in entries:
            self._note_term(entry)
        next_seq = self._segments[-1].seq + 1 if self._segments else 1
        self._start_segment(next_seq)
        self._sync_now()
        self._recovered = True
        logger.info(
            "raft storage recovered %s",
            kv(
                dir=self._dir,
                snapshot_index=self._snap_index,
                entries=len(entries),
                last_index=self._last_index,
                term=hard_state.term,
                segments=len(self._segments),
                truncated_bytes=truncated,
            ),
        )
        return Recovered(
            hard_state=hard_state,
            snapshot=chosen.snapshot if chosen is not None else None,
            entries=entries,
            truncated_bytes=truncated,
        )

    def _load_snapshot(self, path: Path, index: int) -> _SnapshotRecord | None:
        data = path.read_bytes()
        records, end, problem = _parse(data)
        if problem is None and len(records) == 1 and records[0].kind & ~_SEALED == _SNAPSHOT:
            try:
                record = _snapshot_decoder.decode(self._open(records[0]))
            except (msgspec.DecodeError, ValueError, SwarmliteError) as exc:
                problem = f"undecodable snapshot: {getattr(exc, 'message', exc)}"
            else:
                if record.snapshot.meta.index == index:
                    return record
                problem = f"holds index {record.snapshot.meta.index}"
        logger.warning(
            "raft snapshot unusable, trying an older one %s",
            kv(path=path, offset=end, problem=problem or "not a single snapshot record"),
        )
        return None

    def _replay(
        self, segments: list[tuple[int, Path]], chosen: _SnapshotRecord | None
    ) -> tuple[HardState, list[Entry], int]:
        snap_index = chosen.snapshot.meta.index if chosen is not None else 0
        ignore_before = chosen.wal_seq if chosen is not None and not chosen.keep_log else 0
        hard_state = HardState()
        entries: list[Entry] = []
        truncated = 0
        for position, (seq, path) in enumerate(segments):
            data = path.read_bytes()
            records, end, problem = _parse(data)
            if problem is not None:
                if position != len(segments) - 1:
                    raise _corrupt(path, end, problem)
                truncated = len(data) - end
                logger.warning(
                    "raft log has a torn tail, cutting it off %s",
                    kv(path=path, offset=end, bytes=truncated, problem=problem),
                )
                with path.open("r+b") as file:
                    file.truncate(end)
                    if self._fsync:
                        os.fsync(file.fileno())
            max_index = 0
            for record in records:
                kind = record.kind & ~_SEALED
                try:
                    payload = self._open(record)
                    if kind == _HARDSTATE:
                        hard_state = _hard_state_decoder.decode(payload)
                        continue
                    if kind != _ENTRIES:
                        raise _corrupt(path, record.offset, f"unknown record type {record.kind}")
                    batch = _entries_decoder.decode(payload)
                except (msgspec.DecodeError, ValueError) as exc:
                    raise _corrupt(path, record.offset, f"undecodable record: {exc}") from exc
                if not batch or batch[-1].index - batch[0].index != len(batch) - 1:
                    raise _corrupt(path, record.offset, "entries are not contiguous")
                max_index = max(max_index, batch[-1].index)
                if seq < ignore_before:
                    continue  # replaced as a whole by the snapshot
                if not _apply(entries, batch, snap_index):
                    raise _corrupt(path, record.offset, f"gap before entry {batch[0].index}")
            self._segments.append(_Segment(seq, path, max_index, end))
        return hard_state, entries, truncated

    # -- writing ----------------------------------------------------------------------------

    def write(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """Append a hard state and/or entries with one os.write; durable after ``sync()``.

        An entry index at or below the last one cuts the log there and replaces the rest.
        """
        self._check_ready()
        if hard_state is None and not entries:
            return
        parts: list[bytes | bytearray] = []
        if hard_state is not None:
            parts.append(self._frame(_HARDSTATE, _encoder.encode(hard_state)))
        if entries:
            self._check_entries(entries)
            batch = entries if isinstance(entries, list | tuple) else list(entries)
            parts.append(self._frame(_ENTRIES, _encoder.encode(batch)))
        buffer = b"".join(parts)
        active = self._segments[-1]
        try:
            if entries and active.max_index and active.size + len(buffer) > self._segment_bytes:
                self._rotate()
                active = self._segments[-1]
            assert self._fd is not None, "a recovered storage has an active segment"
            self._write_fd(self._fd, buffer)
        except OSError as exc:
            raise self._fail(exc, "write", active.path) from exc
        active.size += len(buffer)
        self._dirty = True
        if hard_state is not None:
            self._hard_state = hard_state
        if entries:
            active.max_index = max(active.max_index, entries[-1].index)
            self._truncate_terms(entries[0].index)
            for entry in entries:
                self._note_term(entry)
            self._last_index = entries[-1].index

    def sync(self) -> None:
        """Make every write so far durable: fsync the active segment, and the directory when
        a segment was created since the last sync."""
        self._check_ready()
        try:
            self._sync_now()
        except OSError as exc:
            raise self._fail(exc, "fsync", self._segments[-1].path) from exc

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` durably, then delete what it makes unnecessary.

        Entries after its index stay when the log holds its last entry with the same term;
        otherwise the snapshot replaces the whole log (Raft's InstallSnapshot rule).
        """
        self._check_ready()
        meta = snapshot.meta
        if meta.index < self._snap_index:
            raise FailedPrecondition(
                f"snapshot at index {meta.index} is older than the stored one at "
                f"{self._snap_index}",
                details={"path": str(self._dir)},
            )
        keep_log = self._term_at(meta.index) == meta.term
        path = self._dir / f"snap-{meta.index:020d}.bin"
        temp = path.with_name(path.name + ".tmp")
        try:
            self._rotate()
            self._sync_now()
            record = _SnapshotRecord(snapshot, self._segments[-1].seq, keep_log)
            data = self._frame(_SNAPSHOT, _encoder.encode(record))
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                self._write_fd(fd, data)
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
            self._sync_dir()
        except OSError as exc:
            raise self._fail(exc, "save snapshot", path) from exc

        self._snap_index, self._snap_term = meta.index, meta.term
        if keep_log:
            self._drop_terms_through(meta.index)
        else:
            self._run_starts, self._run_terms = [], []
            self._last_index = meta.index
        try:
            self._compact()
        except OSError as exc:
            # The snapshot is durable; leftover files only cost space and are retried later.
            logger.warning("raft compaction failed %s", kv(dir=self._dir, error=exc))
        logger.info(
            "raft snapshot saved %s",
            kv(index=meta.index, term=meta.term, keep_log=keep_log, bytes=len(data)),
        )

    def close(self) -> None:
        """Sync what was written, then release the files and the directory lock."""
        try:
            if self._fd is not None and self._failed is None:
                self.sync()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- helpers ----------------------------------------------------------------------------

    def rekey(self, keys: DataKeys) -> None:
        """Seal the records written from now on with ``keys`` (which must still hold every
        key the directory's records were sealed with)."""
        self._keys = keys

    def _frame(self, kind: int, payload: bytes) -> bytes | bytearray:
        """One record, sealed when this storage has data keys. A sealed record is built in
        one buffer: copies of a large batch cost more than sealing it (``seal_into``)."""
        if self._keys is None:
            return _frame(kind, payload)
        sealed_kind = kind | _SEALED
        size = self._keys.sealed_size(len(payload))
        if size > _MAX_PAYLOAD:
            raise InvalidArgument(f"raft record of {size} bytes exceeds the 4 GiB limit")
        frame = bytearray(_HEADER.size + size)
        body = memoryview(frame)[_HEADER.size :]
        self._keys.seal_into(kind, payload, body)
        crc = zlib.crc32(body, zlib.crc32(bytes((sealed_kind,))))
        _HEADER.pack_into(frame, 0, size, crc, sealed_kind)
        return frame

    def _open(self, record: _Record) -> bytes | memoryview:
        """A record's payload, opened if it was sealed (ValueError if it does not open)."""
        if not record.kind & _SEALED:
            return record.payload
        if self._keys is None:
            raise ValueError("the record is sealed and this storage has no data keys")
        return self._keys.open(record.kind & ~_SEALED, record.payload)

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise FailedPrecondition(
                f"raft storage at {self._dir} is closed", details={"path": str(self._dir)}
            )

    def _check_ready(self) -> None:
        self._check_open()
        if self._failed is not None:
            raise FailedPrecondition(
                f"raft storage at {self._dir} failed earlier and must be recovered by a "
                f"restart: {self._failed.message}",
                details={"path": str(self._dir)},
            ) from self._failed
        if not self._recovered:
            raise FailedPrecondition(
                f"raft storage at {self._dir} must be recovered before use",
                hint="call recover() once after open()",
                details={"path": str(self._dir)},
            )

    def _check_entries(self, entries: Sequence[Entry]) -> None:
        first = entries[0].index
        if first <= self._snap_index or first > self._last_index + 1:
            raise InvalidArgument(
                f"entry index {first} must lie after the snapshot ({self._snap_index}) and "
                f"at most one past the last entry ({self._last_index})"
            )
        if entries[-1].index - first != len(entries) - 1 or any(
            entry.index != first + offset for offset, entry in enumerate(entries)
        ):
            raise InvalidArgument(f"entries written from index {first} are not contiguous")

    def _fail(self, exc: OSError, action: str, path: Path) -> SwarmliteError:
        error = _os_error(exc, action, path)
        self._failed = error
        logger.error("raft storage failed %s", kv(path=path, action=action, error=exc))
        return error

    @staticmethod
    def _write_fd(fd: int, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def _start_segment(self, seq: int) -> None:
        """Create segment ``seq`` as the active one; it opens with the current hard state."""
        path = self._dir / f"wal-{seq:020d}.log"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        self._fd = os.open(path, flags, 0o600)
        self._dir_dirty = True
        segment = _Segment(seq, path, 0, 0)
        self._segments.append(segment)
        if self._hard_state != HardState():
            data = self._frame(_HARDSTATE, _encoder.encode(self._hard_state))
            self._write_fd(self._fd, data)
            segment.size = len(data)
            self._dirty = True

    def _rotate(self) -> None:
        """Close the active segment durably, then start the next one."""
        assert self._fd is not None, "rotating without an active segment"
        if self._fsync and self._dirty:
            os.fsync(self._fd)
        self._dirty = False
        os.close(self._fd)
        self._fd = None
        self._start_segment(self._segments[-1].seq + 1)

    def _sync_now(self) -> None:
        if self._fsync:
            if self._dirty and self._fd is not None:
                os.fsync(self._fd)
            if self._dir_dirty:
                self._sync_dir()
        self._dirty = self._dir_dirty = False

    def _sync_dir(self) -> None:
        if not self._fsync:
            return
        fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _compact(self) -> None:
        """Keep the newest snapshots; delete the oldest segments the older one covers."""
        snaps = sorted(int(m[1]) for n in os.listdir(self._dir) if (m := _SNAP_NAME.match(n)))
        for index in snaps[:-_KEEP_SNAPSHOTS]:
            os.unlink(self._dir / f"snap-{index:020d}.bin")
        kept = snaps[-_KEEP_SNAPSHOTS:]
        floor = kept[0] if kept else 0
        removed = 0
        # Only a prefix: a later segment may cut entries that an earlier one holds.
        while len(self._segments) > 1 and self._segments[0].max_index <= floor:
            os.unlink(self._segments[0].path)
            self._segments.pop(0)
            removed += 1
        if removed or snaps[:-_KEEP_SNAPSHOTS]:
            self._sync_dir()
        logger.debug(
            "raft log compacted %s",
            kv(floor=floor, segments_removed=removed, segments=len(self._segments)),
        )

    def _note_term(self, entry: Entry) -> None:
        if not self._run_terms or self._run_terms[-1] != entry.term:
            self._run_starts.append(entry.index)
            self._run_terms.append(entry.term)

    def _truncate_terms(self, first: int) -> None:
        """Forget the terms of entries at ``first`` and above."""
        while self._run_starts and self._run_starts[-1] >= first:
            self._run_starts.pop()
            self._run_terms.pop()

    def _drop_terms_through(self, index: int) -> None:
        """Forget the terms of entries at ``index`` and below (now in the snapshot)."""
        while len(self._run_starts) > 1 and self._run_starts[1] <= index + 1:
            self._run_starts.pop(0)
            self._run_terms.pop(0)
        if self._run_starts and self._run_starts[0] <= index:
            if self._last_index > index:
                self._run_starts[0] = index + 1
            else:
                self._run_starts, self._run_terms = [], []

    def _term_at(self, index: int) -> int | None:
        if index == self._snap_index:
            return self._snap_term
        if index < self._snap_index or index > self._last_index or not self._run_starts:
            return None
        return self._run_terms[bisect.bisect_right(self._run_starts, index) - 1]
