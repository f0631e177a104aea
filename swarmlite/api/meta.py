"""What every stored object has: id, version, timestamps, and the kind tag.

Owns the common base of the object kinds; owns no kind. Invariant: ``version`` is the
Raft index of the object's last write (0 before its first write) and is set only by the
store when it applies a write; ``created_at``/``updated_at`` are stamped by the writer
when it proposes (seconds since the epoch), so every replica stores the same values.

Objects are frozen: change one with ``msgspec.structs.replace`` (and a new dict for any
dict field: never mutate a dict or list reachable from an object the store returned).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec


class Meta(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="kind"):
    """Base of every object kind. On the wire and in JSON an object carries ``"kind"``."""

    KIND: ClassVar[str] = ""
    # Whether spec.name must be unique among objects of this kind (the store enforces it).
    NAMED: ClassVar[bool] = False

    id: str
    version: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0

    def unique_name(self) -> str | None:
        """The name the store keeps unique for this kind, or None if the kind has none."""
        return None
