"""The backup file: a `Backup` (the whole store at one raft index) sealed under a passphrase.

Owns the file's format and nothing else: what `swarm backup` writes and `init --restore`
reads. Does not own what a backup holds (``api.control.Backup``) nor how a cluster starts
from one (``bootstrap``). Translates `cryptography`'s and msgspec's errors into ours.

Layout, version 1 (all integers big-endian)::

    magic    7 bytes   b"SWLBKUP"
    version  1 byte    1
    log2_n   1 byte    scrypt cost: N = 2**log2_n
    r        1 byte    scrypt block size
    p        1 byte    scrypt parallelism
    salt     16 bytes  random, per file
    check    32 bytes  the second half of scrypt's output: tells a wrong passphrase apart
                       from a damaged file (it costs an attacker one scrypt per guess, as
                       the key itself does)
    nonce    12 bytes  random, per file
    sealed   the rest  AES-256-GCM(key = first half of scrypt's output, nonce,
                       msgpack(Backup), associated data = every byte of the header above)

Invariants: the header is authenticated (a changed byte anywhere fails the open); a file
of an unknown version, a damaged file and a wrong passphrase are three different errors;
nothing decrypted is returned unless the whole file authenticated.
"""

from __future__ import annotations

import hmac
import os
import struct

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from swarmlite.api.control import Backup
from swarmlite.errors import InvalidArgument, PermissionDenied

MAGIC = b"SWLBKUP"
VERSION = 1
LOG2_N = 15  # scrypt N = 32768, r = 8: 32 MiB and some 100 ms per derivation
R = 8
P = 1
_HEADER = struct.Struct(">7sBBBB16s32s12s")
HEADER_SIZE = _HEADER.size
# Bounds on what a header may ask of scrypt, so a forged file cannot ask for gigabytes.
_LOG2_N_RANGE = range(10, 21)
_R_RANGE = range(1, 33)
_P_RANGE = range(1, 17)
MIN_PASSPHRASE = 8  # characters a new backup's passphrase needs at least

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Backup)


def _derive(passphrase: bytes, salt: bytes, log2_n: int, r: int, p: int) -> tuple[bytes, bytes]:
    """(key, check): the two halves of scrypt's output."""
    out = Scrypt(salt=salt, length=64, n=2**log2_n, r=r, p=p).derive(passphrase)
    return out[:32], out[32:]


def seal_backup(backup: Backup, passphrase: bytes, *, log2_n: int = LOG2_N) -> bytes:
    """The backup file's bytes for ``backup`` under ``passphrase``."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise InvalidArgument(
            f"the backup passphrase must have at least {MIN_PASSPHRASE} characters",
            hint="a backup holds the cluster's CA key and every secret: choose a long one",
        )
    if log2_n not in _LOG2_N_RANGE:
        raise InvalidArgument(f"scrypt cost 2**{log2_n} is out of range")
    salt, nonce = os.urandom(16), os.urandom(12)
    key, check = _derive(passphrase, salt, log2_n, R, P)
    header = _HEADER.pack(MAGIC, VERSION, log2_n, R, P, salt, check, nonce)
    return header + AESGCM(key).encrypt(nonce, _encoder.encode(backup), header)


def unseal_backup(data: bytes, passphrase: bytes, *, source: str = "the backup") -> Backup:
    """The Backup in a backup file's bytes; ``source`` names the file in errors."""
    if len(data) < len(MAGIC) + 1 or not data.startswith(MAGIC):
        raise InvalidArgument(
            f"{source} is not a swarmlite backup",
            hint="give the file that `swarmlite swarm backup FILE` wrote",
        )
    version = data[len(MAGIC)]
    if version != VERSION:
        raise InvalidArgument(
            f"{source} is a swarmlite backup of format version {version}; this swarmlite "
            f"reads version {VERSION}",
            hint="restore it with the swarmlite version that wrote it (or a newer one)",
            details={"version": version, "supported": [VERSION]},
        )
    if len(data) < HEADER_SIZE + 16:  # 16: the GCM tag
        raise InvalidArgument(f"{source} is damaged: it is cut short ({len(data)} bytes)")
    _, _, log2_n, r, p, salt, check, nonce = _HEADER.unpack_from(data)
    if log2_n not in _LOG2_N_RANGE or r not in _R_RANGE or p not in _P_RANGE:
        raise InvalidArgument(f"{source} is damaged: its header is malformed")
    key, expected = _derive(passphrase, salt, log2_n, r, p)
    if not hmac.compare_digest(check, expected):
        raise PermissionDenied(
            f"wrong passphrase for {source}",
            hint="give the passphrase the backup was written with",
        )
    header = data[:HEADER_SIZE]
    try:
        plain = AESGCM(key).decrypt(nonce, data[HEADER_SIZE:], header)
    except InvalidTag as exc:
        raise InvalidArgument(
            f"{source} is damaged: it does not authenticate (changed or truncated)",
            hint="use another copy of the backup",
        ) from exc
    try:
        return _decoder.decode(plain)
    except msgspec.DecodeError as exc:  # authenticated, so written by a different program
        raise InvalidArgument(f"{source} holds no backup this swarmlite can read: {exc}") from exc
