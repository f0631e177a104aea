"""Object ids: 25 lowercase base-36 characters drawn from 128 random bits, as Swarm's are.

Owns id generation only. Randomness comes from an injected ``random.Random`` when given
(tests and simulations get repeatable ids), else from the operating system's (os.urandom),
read 4 KiB at a time: a leader makes ids by the hundred thousand, one system call each
would be most of their cost. A forked child drops what its parent had read, so that the
two never hand out the same ids.
"""

from __future__ import annotations

import os
import random
import threading

ID_LENGTH = 25
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# 36**25 > 2**128, so every 128-bit number fits in 25 base-36 digits.
_BITS = 128
_BYTES = _BITS // 8
_POOL_BYTES = 4096
_PAIR = 36**2
_CHUNK = 36**8
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # "00" .. "zz", by value


def new_id(rng: random.Random | None = None) -> str:
    """A fresh id such as ``"3k9x0c1m7q2w8e5r4t6y1u0io"``."""
    number = rng.getrandbits(_BITS) if rng is not None else _random_bits()
    # Three 8-digit chunks below one leading digit, each written two digits at a time:
    # small numbers and a table, for what the leader does 100,000 times in a deploy.
    number, low = divmod(number, _CHUNK)
    number, middle = divmod(number, _CHUNK)
    top, high = divmod(number, _CHUNK)
    out = [_ALPHABET[top]]
    for chunk in (high, middle, low):
        rest, d4 = divmod(chunk, _PAIR)
        rest, d3 = divmod(rest, _PAIR)
        d1, d2 = divmod(rest, _PAIR)
        out += (_PAIRS[d1], _PAIRS[d2], _PAIRS[d3], _PAIRS[d4])
    return "".join(out)


class _Pool:
    """Random bytes read ahead from the operating system, handed out 16 at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data = b""
        self.at = 0

    def drop(self) -> None:
        self.data, self.at = b"", 0


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.drop)


def _random_bits() -> int:
    with _pool.lock:
        at = _pool.at
        if at + _BYTES > len(_pool.data):
            _pool.data, at = os.urandom(_POOL_BYTES), 0
        _pool.at = at + _BYTES
        return int.from_bytes(_pool.data[at : at + _BYTES])


def is_id(text: str) -> bool:
    """Whether ``text`` has the shape of an id made by ``new_id``."""
    return len(text) == ID_LENGTH and all(c in _ALPHABET for c in text)
