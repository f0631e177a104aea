"""Encryption at rest of what a manager writes for Raft: its data keys and how they are kept.

Owns the data keys (DEKs) that seal every record of the raft directory (``storage.py``:
log segments, snapshots, and so the snapshots a follower receives and writes), and the two
files that keep them, both 0600 in the raft directory:

    dek   msgpack: the DEKs, each wrapped (AES-256-GCM) under the key-encryption key (KEK),
          the id of the one new records use, and whether the KEK is the cluster's unlock key
    kek   the KEK itself, 32 random bytes, present only while the cluster is not autolocked

Without autolock this is what Docker does with its raft keys: the KEK sits on the same disk,
so reading a manager's disk and knowing the format still reveals the data, but no secret,
config or CA key can be found by searching the files, and a copied raft log is useless
without the key file. With autolock the KEK is the cluster's unlock key
(``SWLKEY-1-<base64url>``), which is never written: a manager that restarts cannot read its
own log until someone gives it the key (``swarmlite swarm unlock``).

A record is sealed with AES-256-GCM: ``[key id u32][nonce 12][ciphertext + tag]``, the
record's type and key id as associated data, a random nonce each time (a DEK is replaced
long before 2**32 records). Changing the KEK (autolock on or off, a rotated unlock key)
also makes a new DEK for every later record; older DEKs stay in the key file, wrapped
under the new KEK, for the records written before. Data written before this module
existed stays readable (its records are not sealed) and is sealed again as the log turns
over. Errors: a wrong unlock key or a damaged key file is ``PermissionDenied`` /
``InternalError`` naming the file; a record that fails its tag is reported by storage as
corrupt.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import struct
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from swarmlite.errors import FailedPrecondition, InternalError, PermissionDenied

DEK_FILE = "dek"
KEK_FILE = "kek"
UNLOCK_PREFIX = "SWLKEY-1-"
KEY_BYTES = 32
_NONCE = 12
_TAG = 16
_ID = struct.Struct("<I")
# Older cryptography releases (the floor is 42) lack encrypt_into: copy the ciphertext in.
_ENCRYPT_INTO = hasattr(AESGCM, "encrypt_into")


class Locked(FailedPrecondition):
    """The raft directory's keys are wrapped under the unlock key, which this node lacks."""


def new_unlock_key() -> str:
    """A fresh unlock key, as ``swarm unlock-key`` shows it."""
    return UNLOCK_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip(
        "="
    )


def parse_unlock_key(text: str) -> bytes:
    """The 32 bytes of an unlock key; PermissionDenied for anything else (never echoed)."""
    text = text.strip()
    if text.startswith(UNLOCK_PREFIX):
        body = text[len(UNLOCK_PREFIX) :]
        with contextlib.suppress(ValueError):
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            if len(raw) == KEY_BYTES:
                return raw
    raise PermissionDenied(
        "that is not an unlock key of this cluster",
        hint=f"an unlock key looks like {UNLOCK_PREFIX}... (`swarmlite swarm unlock-key` "
        "on an unlocked manager shows it)",
    )


class _Wrapped(msgspec.Struct, frozen=True, array_like=True):
    id: int
    nonce: bytes
    sealed: bytes


class _KeyFile(msgspec.Struct, frozen=True, kw_only=True):
    version: int = 1
    locked: bool = False  # the KEK is the unlock key (not on disk)
    current: int
    keys: list[_Wrapped]


class DataKeys:
    """The unwrapped DEKs of one raft directory: seal new records, open any old one."""

    def __init__(self, keys: dict[int, bytes], current: int) -> None:
        if current not in keys:
            raise ValueError("the current key must be one of the keys")
        self._keys = dict(keys)
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = current

    @classmethod
    def fresh(cls) -> DataKeys:
        return cls({1: AESGCM.generate_key(bit_length=256)}, 1)

    def rotated(self) -> DataKeys:
        """These keys and a new current one."""
        new_id = max(self._keys) + 1
        return DataKeys({**self._keys, new_id: AESGCM.generate_key(bit_length=256)}, new_id)

    @staticmethod
    def sealed_size(payload_size: int) -> int:
        """How many bytes sealing a payload of ``payload_size`` bytes takes."""
        return _ID.size + _NONCE + payload_size + _TAG

    def seal(self, kind: int, payload: bytes) -> bytes:
        out = bytearray(self.sealed_size(len(payload)))
        self.seal_into(kind, payload, memoryview(out))
        return bytes(out)

    def seal_into(self, kind: int, payload: bytes, out: memoryview) -> None:
        """Write what ``seal`` returns into ``out``, exactly ``sealed_size(len(payload))``
        bytes. For a large batch, copying the ciphertext into a frame costs more than the
        cipher itself (each copy of a big buffer is a fresh allocation), so storage builds
        the record in place."""
        key_id = _ID.pack(self.current)
        nonce = os.urandom(_NONCE)
        out[: _ID.size] = key_id
        out[_ID.size : _ID.size + _NONCE] = nonce
        cipher = self._ciphers[self.current]
        body = out[_ID.size + _NONCE :]
        if _ENCRYPT_INTO:
            cipher.encrypt_into(nonce, payload, bytes((kind,)) + key_id, body)
        else:
            body[:] = cipher.encrypt(nonce, payload, bytes((kind,)) + key_id)

    def open(self, kind: int, data: bytes | memoryview) -> bytes:
        """The payload of a sealed record; ValueError when it does not open."""
        view = memoryview(data)
        if len(view) < _ID.size + _NONCE + _TAG:
            raise ValueError("sealed record too short")
        (key_id,) = _ID.unpack_from(view)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ValueError(f"sealed with data key {key_id}, which the key file does not hold")
        nonce = view[_ID.size : _ID.size + _NONCE]
        associated = bytes((kind,)) + view[: _ID.size].tobytes()
        try:
            return cipher.decrypt(nonce, view[_ID.size + _NONCE :], associated)
        except InvalidTag:
            raise ValueError("sealed record does not authenticate") from None

    def _wrap(self, kek: bytes) -> list[_Wrapped]:
        cipher = AESGCM(kek)
        wrapped = []
        for key_id, key in sorted(self._keys.items()):
            nonce = os.urandom(_NONCE)
            wrapped.append(_Wrapped(key_id, nonce, cipher.encrypt(nonce, key, _ID.pack(key_id))))
        return wrapped


_decoder = msgspec.msgpack.Decoder(_KeyFile)


def is_locked(raft_dir: Path) -> bool:
    """Whether this raft directory needs the unlock key before it can be read."""
    path = raft_dir / DEK_FILE
    if not path.exists():
        return False
    return _read(path).locked


def load_keys(raft_dir: Path, unlock_key: bytes | None = None) -> DataKeys:
    """The raft directory's data keys, made on first use (with a KEK file: not locked).

    A locked directory needs ``unlock_key`` (Locked without it, PermissionDenied when it is
    the wrong one)."""
    path = raft_dir / DEK_FILE
    if not path.exists():
        fresh = DataKeys.fresh()
        save_keys(raft_dir, fresh, unlock_key=None)
        return fresh
    stored = _read(path)
    if stored.locked:
        if unlock_key is None:
            raise Locked(
                "this manager is locked: its raft data is sealed with the cluster's unlock key",
                hint="run `swarmlite swarm unlock` and give the key",
            )
        candidates = [unlock_key]
    else:
        candidates = _keks(raft_dir)
    for kek in candidates:
        keys = _unwrap(stored, kek)
        if keys is not None:
            if stored.current not in keys:
                raise InternalError(f"raft key file {path} names a data key it does not hold")
            return DataKeys(keys, stored.current)
    if stored.locked:
        raise PermissionDenied(
            "the unlock key is wrong: it does not open this manager's raft data",
            hint="give the key `swarmlite swarm unlock-key` showed last",
        )
    raise InternalError(
        f"raft key file {path} does not match {raft_dir / KEK_FILE}",
        hint="restore this manager from a healthy peer (remove it and join it again)",
    )


def _unwrap(stored: _KeyFile, kek: bytes) -> dict[int, bytes] | None:
    cipher = AESGCM(kek)
    keys: dict[int, bytes] = {}
    for wrapped in stored.keys:
        try:
            keys[wrapped.id] = cipher.decrypt(wrapped.nonce, wrapped.sealed, _ID.pack(wrapped.id))
        except InvalidTag:
            return None
    return keys


def save_keys(raft_dir: Path, keys: DataKeys, *, unlock_key: bytes | None) -> None:
    """Keep ``keys`` wrapped: under ``unlock_key`` (locked; the KEK file goes) or under a
    new random KEK kept beside them. Crash-safe: the new KEK is written aside first, then
    the key file is replaced, then the KEK is moved into place; ``load_keys`` tries the KEK
    set aside when the one in place does not open the key file."""
    raft_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    aside = raft_dir / (KEK_FILE + ".next")
    kek = unlock_key if unlock_key is not None else secrets.token_bytes(KEY_BYTES)
    if unlock_key is None:
        _write(aside, kek)
    stored = _KeyFile(locked=unlock_key is not None, current=keys.current, keys=keys._wrap(kek))
    _write(raft_dir / DEK_FILE, msgspec.msgpack.encode(stored))
    if unlock_key is None:
        os.replace(aside, raft_dir / KEK_FILE)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(raft_dir / KEK_FILE)
    _sync_dir(raft_dir)


def _read(path: Path) -> _KeyFile:
    try:
        return _decoder.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InternalError(f"cannot read raft key file {path}: {exc}") from exc


def _keks(raft_dir: Path) -> list[bytes]:
    """The KEK in place, then one set aside by a save that did not finish."""
    found = []
    for name in (KEK_FILE, KEK_FILE + ".next"):
        with contextlib.suppress(FileNotFoundError):
            kek = (raft_dir / name).read_bytes()
            if len(kek) == KEY_BYTES:
                found.append(kek)
    if not found:
        raise InternalError(
            f"{raft_dir / KEK_FILE} is missing: the raft data cannot be read without it",
            hint="restore this manager from a healthy peer (remove it and join it again)",
        )
    return found


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
