"""The shape every leader-only control loop shares: snapshot, watch, act once per commit.

Owns the mechanics only: a loop names the kinds it watches, gets the whole state once
(`start`), then each committed batch of events (`changed`), and after each of those acts
(`reconcile`) on what it marked dirty. A loop that also needs time to pass (a restart
delay, an update's monitor period) asks for a wake-up with `wake_at`. Errors: a
retryable one (the store was busy, leadership is moving) retries the round after a short
delay; any other is logged and the loop goes on with the next round, never silently.

Loops never call each other; they meet in the store. A loop given a `LoopStats` (one per
manager, shared by its loops) reports there what metrics read: the events its watch holds
and has not yet handed to `changed`, and how long each `reconcile` took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from swarmlite.api.actor import set_for_task
from swarmlite.clock import Clock
from swarmlite.errors import SwarmliteError
from swarmlite.log import kv
from swarmlite.store import Event, MemoryStore, Store, Watch

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.2


class LoopStats:
    """What a manager's running loops report, by loop name, for metrics."""

    def __init__(self) -> None:
        self._watches: dict[str, Watch] = {}
        self.on_round: Callable[[str, float], None] | None = None  # (loop, seconds)

    def watching(self, loop: str, watch: Watch) -> None:
        self._watches[loop] = watch

    def pending(self) -> dict[str, int]:
        """Events queued for each running loop (a stopped loop's watch is closed: left out)."""
        return {name: w.pending for name, w in self._watches.items() if not w.closed}


class ReconcileLoop:
    name = "loop"
    kinds: Sequence[str] = ()
    stats: LoopStats | None = None

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._wake_at: float | None = None
        self._stopped = False

    @property
    def memory(self) -> MemoryStore:
        return self.store.memory

    # ------------------------------------------------------------------ to override

    def start(self) -> None:
        """Called once with the store's state as of the watch's start: mark what is dirty."""

    def changed(self, events: list[Event]) -> None:
        """One committed batch of events: mark what is dirty."""

    async def reconcile(self) -> None:
        """Act on what is dirty (read the store, write transactions)."""

    # ------------------------------------------------------------------ helpers

    def wake_at(self, when: float) -> None:
        """Run `reconcile` again at monotonic time `when` even if nothing changes."""
        if self._wake_at is None or when < self._wake_at:
            self._wake_at = when

    def stop(self) -> None:
        self._stopped = True

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        set_for_task(self.name)  # the store records this loop's writes as its own
        watch = self.memory.watch(kinds=list(self.kinds) or None)
        try:
            self.start()
            await self._round()
            while not self._stopped:
                batch = await self._next(watch)
                if batch:
                    self.changed(batch)
                await self._round()
        finally:
            watch.close()

    async def _next(self, watch: Watch) -> list[Event]:
        if self.stats is not None:
            self.stats.watching(self.name, watch)
        timeout = None
        if self._wake_at is not None:
            timeout = max(0.0, self._wake_at - self.clock.monotonic())
        if timeout is None:
            return await watch.next_batch()
        sleeper = asyncio.ensure_future(self.clock.sleep(timeout))
        getter = asyncio.ensure_future(watch.next_batch())
        try:
            done, _ = await asyncio.wait({sleeper, getter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            if not getter.done():
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
        if getter in done:
            return getter.result()
        return []

    async def _timed_reconcile(self) -> None:
        on_round = self.stats.on_round if self.stats is not None else None
        if on_round is None:
            await self.reconcile()
            return
        started = self.clock.monotonic()
        try:
            await self.reconcile()
        finally:
            on_round(self.name, self.clock.monotonic() - started)

    async def _round(self) -> None:
        if self._wake_at is not None and self.clock.monotonic() >= self._wake_at:
            self._wake_at = None
        while True:
            try:
                await self._timed_reconcile()
                return
            except SwarmliteError as exc:
                if not exc.retryable:
                    log.warning("%s round failed %s", self.name, kv(error=exc.message))
                    return
                log.info("%s round will be retried %s", self.name, kv(error=exc.message))
                await self.clock.sleep(RETRY_SECONDS)
