"""The leader's control loops on one in-process store, for tests that run them twice.

Owns `LoopLeader`: a MemoryStore committed through a LocalProposer, a FakeClock, and the
real orchestrator loops, allocator and scheduler (seeded, so that two leaders given the
same writes make the same choices). A test writes (`write`), lets time pass (`advance`),
and compares two leaders by their tasks as rows (`rows`: service name, slot, node, state,
desired state). After each step the loops have settled (`swarmlite.testing.store.settle`)
and none of them has stopped. Used by tests that show a variant (overflowing watches,
partial planning) ends where the plain loops end.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence

from swarmlite.api import Service, Task
from swarmlite.manager.allocator import Allocator
from swarmlite.manager.loop import LoopStats, ReconcileLoop
from swarmlite.manager.orchestrator import orchestrator_loops
from swarmlite.manager.scheduler import Scheduler
from swarmlite.store import LocalProposer, MemoryStore, ReadTx, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.store import settle

Row = tuple[str, int, str, str, str]  # service, slot, node, state, desired


class LoopLeader:
    """``async with LoopLeader() as leader: await leader.write(fn); leader.rows()``."""

    def __init__(self, *, max_pending: int | None = None, seed: int = 7) -> None:
        self.clock = FakeClock()
        self.memory = MemoryStore()
        self.store = Store(self.memory, LocalProposer(self.memory), clock=self.clock)
        rng = random.Random(seed)
        self.loops: list[ReconcileLoop] = [
            *orchestrator_loops(self.store, self.clock, rng=rng),
            Allocator(self.store, self.clock, rng=rng),
            Scheduler(self.store, self.clock),
        ]
        self.stats = LoopStats()
        for loop in self.loops:
            loop.stats = self.stats
            if max_pending is not None:
                loop.max_pending = max_pending
        self._runs: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._runs = [asyncio.create_task(loop.run()) for loop in self.loops]
        await settle(self.memory, quiet_turns=40)

    async def stop(self) -> None:
        await stop_loops(self.loops, self._runs)
        for run in self._runs:
            assert run.cancelled(), f"a loop ended on its own: {run!r}"

    async def __aenter__(self) -> LoopLeader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def write(self, fn: Callable[[ReadTx], Tx | None]) -> None:
        """Commit what ``fn`` makes of the state, then let the loops settle."""
        await self.store.update(fn)
        await self._settled()

    async def advance(self, seconds: float) -> None:
        await self.clock.run_for(seconds)
        await self._settled()

    async def _settled(self) -> None:
        await settle(self.memory, quiet_turns=40)
        for run in self._runs:
            assert not run.done(), f"a loop stopped: {run!r}"

    def rows(self) -> list[Row]:
        """Every task as (service name, slot, node, state, desired), sorted."""
        names = {s.id: s.spec.name for s in self.memory.list(Service)}
        return sorted(
            (
                names.get(t.service_id, t.service_id),
                t.slot,
                t.node_id,
                t.status.state.value,
                t.desired_state.value,
            )
            for t in self.memory.list(Task)
        )


async def stop_loops(loops: Sequence[ReconcileLoop], runs: Sequence[asyncio.Task[None]]) -> None:
    """Stop each loop and cancel its run; return once every run has ended (how it ended is
    the caller's to check)."""
    for loop in loops:
        loop.stop()
    for run in runs:
        run.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
