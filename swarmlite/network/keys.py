"""WireGuard key pairs (X25519) of this node, on disk and in the encodings WireGuard uses.

Owns generating, saving and loading a node's private keys: one file per key in the node's
data dir, readable by root alone (0600), holding the base64 of the 32 raw bytes (the format
of `wg genkey`, so an operator can inspect it with `wg pubkey`). Does not own how a key is
used or rotated (mesh.py does), nor when (rotation.py).

Invariant: a key file is either absent or complete: it is written under a temporary name,
fsynced, then renamed over the old one. OS errors become NetworkSetupFailure naming the file;
a file that does not hold a key is an InvalidArgument.

Encodings: WireGuard configs, Node objects and logs use base64 (44 characters); the UAPI of
wireguard-go uses lowercase hex (64 characters).
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from swarmlite.errors import InvalidArgument, NetworkSetupFailure

KEY_LEN = 32


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An X25519 key pair as raw bytes."""

    private: bytes
    public: bytes

    def __repr__(self) -> str:  # never print the private key
        return f"KeyPair(public={self.public_b64})"

    @property
    def public_b64(self) -> str:
        return to_b64(self.public)

    @property
    def private_b64(self) -> str:
        return to_b64(self.private)

    @property
    def public_hex(self) -> str:
        return self.public.hex()

    @property
    def private_hex(self) -> str:
        return self.private.hex()


def generate() -> KeyPair:
    """A fresh key pair."""
    return from_private(
        X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    )


def from_private(private: bytes) -> KeyPair:
    """The key pair of a 32-byte private key."""
    if len(private) != KEY_LEN:
        raise InvalidArgument(f"a WireGuard private key has {KEY_LEN} bytes, got {len(private)}")
    public = (
        X25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return KeyPair(private=private, public=public)


def to_b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def from_b64(text: str) -> bytes:
    """The 32 raw bytes of a base64 key; InvalidArgument if it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument(f"not a base64 WireGuard key: {text!r}") from exc
    if len(raw) != KEY_LEN:
        raise InvalidArgument(f"a WireGuard key has {KEY_LEN} bytes, {text!r} has {len(raw)}")
    return raw


def b64_to_hex(text: str) -> str:
    """A base64 key as the UAPI spells it."""
    return from_b64(text).hex()


def hex_to_b64(text: str) -> str:
    """A UAPI (hex) key as base64."""
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise InvalidArgument(f"not a hex WireGuard key: {text!r}") from exc
    if len(raw) != KEY_LEN:
        raise InvalidArgument(f"a WireGuard key has {KEY_LEN} bytes, {text!r} has {len(raw)}")
    return to_b64(raw)


def load(path: Path) -> KeyPair | None:
    """The key pair stored at `path`, or None when there is no such file."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise NetworkSetupFailure(f"cannot read WireGuard key {path}: {exc}") from exc
    try:
        return from_private(from_b64(text))
    except InvalidArgument as exc:
        raise InvalidArgument(
            f"{path} does not hold a WireGuard private key",
            hint="remove the file to make a new key (peers learn it from the node object)",
        ) from exc


def save(path: Path, pair: KeyPair) -> None:
    """Write the private key to `path` (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to an existing file
            os.write(fd, (pair.private_b64 + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise NetworkSetupFailure(f"cannot write WireGuard key {path}: {exc}") from exc


def load_or_create(path: Path) -> KeyPair:
    """The key pair at `path`, made and saved first if there is none."""
    pair = load(path)
    if pair is None:
        pair = generate()
        save(path, pair)
    return pair


def remove(path: Path) -> None:
    """Delete a key file (absent is fine)."""
    try:
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise NetworkSetupFailure(f"cannot remove WireGuard key {path}: {exc}") from exc


def replace(src: Path, dst: Path) -> None:
    """Move the key at `src` over `dst` in one step (the end of a rotation)."""
    try:
        os.replace(src, dst)
        _fsync_dir(dst.parent)
    except OSError as exc:
        raise NetworkSetupFailure(f"cannot move WireGuard key {src} to {dst}: {exc}") from exc


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
