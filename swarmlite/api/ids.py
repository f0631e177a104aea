"""Object ids: 25 lowercase base-36 characters drawn from 128 random bits, as Swarm's are.

Owns id generation only. Randomness comes from an injected ``random.Random`` when given
(tests and simulations get repeatable ids), else from ``secrets``.
"""

from __future__ import annotations

import random
import secrets

ID_LENGTH = 25
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# 36**25 > 2**128, so every 128-bit number fits in 25 base-36 digits.
_BITS = 128


def new_id(rng: random.Random | None = None) -> str:
    """A fresh id such as ``"3k9x0c1m7q2w8e5r4t6y1u0io"``."""
    number = rng.getrandbits(_BITS) if rng is not None else secrets.randbits(_BITS)
    digits = []
    for _ in range(ID_LENGTH):
        number, digit = divmod(number, 36)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def is_id(text: str) -> bool:
    """Whether ``text`` has the shape of an id made by ``new_id``."""
    return len(text) == ID_LENGTH and all(c in _ALPHABET for c in text)
