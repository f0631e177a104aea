"""Waiting for a store in tests: until the loops that write to it have nothing left to do."""

from __future__ import annotations

import asyncio
import contextlib

from swarmlite.clock import Clock
from swarmlite.manager.allocator import Allocator
from swarmlite.store import MemoryStore, Store


async def settle(memory: MemoryStore, *, quiet_turns: int = 30, max_turns: int = 20_000) -> None:
    """Return once `memory` applied nothing new for `quiet_turns` event-loop turns in a row
    (the allocator and friends are done); fail after `max_turns` turns of changes."""
    last, quiet = -1, 0
    for _ in range(max_turns):
        await asyncio.sleep(0)
        quiet = quiet + 1 if memory.applied_index == last else 0
        last = memory.applied_index
        if quiet >= quiet_turns:
            return
    raise AssertionError("the store kept changing")


async def allocate(store: Store, clock: Clock) -> None:
    """Run the allocator on `store` until it has nothing left to write, then stop it."""
    allocator = Allocator(store, clock)
    run = asyncio.create_task(allocator.run())
    await settle(store.memory)
    allocator.stop()
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
