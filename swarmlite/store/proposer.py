"""The seam between the store and consensus: how a transaction gets committed.

Owns the ``Proposer`` protocol and ``LocalProposer``, which commits by applying at once
(one node, no Raft: unit tests of control loops, single-process tools). The Raft-backed
proposer lives with Raft and implements the same protocol; the store never imports Raft.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from swarmlite.store.memory import ApplyResult, MemoryStore


class Proposer(Protocol):
    async def propose(self, data: bytes) -> ApplyResult:
        """Commit ``data`` (an encoded Transaction) and return its result once the entry is
        committed *and* applied to the local store. A rejected transaction is a result with
        an error, not an exception. Raises ``NotLeader``/``Unavailable`` when this node
        cannot commit (the entry may or may not commit later)."""
        ...

    async def read_barrier(self) -> None:
        """Return once the local store has applied every entry committed before the call,
        so that a read after it is linearizable. Raises ``NotLeader``/``Unavailable``."""
        ...


class LocalProposer:
    """Commits each proposal at the next index, straight into ``memory``."""

    def __init__(self, memory: MemoryStore) -> None:
        self._memory = memory

    async def propose(self, data: bytes) -> ApplyResult:
        # Yield once, as a real commit would, so that a loop writing in a tight loop
        # still lets other tasks (watch consumers) run.
        await asyncio.sleep(0)
        return self._memory.apply(self._memory.applied_index + 1, data)

    async def read_barrier(self) -> None:
        return None  # everything committed is already applied
