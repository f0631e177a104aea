"""The shape every leader-only control loop shares: snapshot, watch, act once per commit.

Owns the mechanics only: a loop names the kinds it watches, gets the whole state once
(`start`), then each committed batch of events (`changed`), and after each of those acts
(`reconcile`) on what it marked dirty. A loop that also needs time to pass (a restart
delay, an update's monitor period) asks for a wake-up with `wake_at`. Errors: a
retryable one (the store was busy, leadership is moving) retries the round after a short
delay; any other is logged and the loop goes on with the next round, never silently.

Back-pressure: a loop that falls more than `max_pending` events behind its watch (or whose
store was replaced by a snapshot) loses that watch; it then opens a new one on a fresh
snapshot and calls `start` again, so `start` must rebuild whatever a loop keeps between
rounds. Only that loop resyncs; the others, and the manager, carry on.

Loops never call each other; they meet in the store. A loop given a `LoopStats` (one per
manager, shared by its loops) reports there what metrics read: the events its watch holds
and has not yet handed to `changed`, how many times it resynced, and how long each
`reconcile` took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from swarmlite.api.actor import set_for_task
from swarmlite.clock import Clock
from swarmlite.errors import SwarmliteError, Unavailable
from swarmlite.log import kv
from swarmlite.store import DEFAULT_MAX_PENDING, Event, MemoryStore, Store, Watch

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.2
# Why a store drops a watch that a loop recovers from by resyncing (store/watch.py, memory.py).
RESYNC_REASONS = frozenset({"watch_overflow", "store_restored"})


class LoopStats:
    """What a manager's running loops report, by loop name, for metrics."""

    def __init__(self) -> None:
        self._watches: dict[str, Watch] = {}
        self.resyncs: dict[str, int] = {}  # loop -> times it lost its watch and resynced
        self.on_round: Callable[[str, float], None] | None = None  # (loop, seconds)

    def watching(self, loop: str, watch: Watch) -> None:
        self._watches[loop] = watch

    def resynced(self, loop: str) -> None:
        self.resyncs[loop] = self.resyncs.get(loop, 0) + 1

    def pending(self) -> dict[str, int]:
        """Events queued for each running loop (a stopped loop's watch is closed: left out)."""
        return {name: w.pending for name, w in self._watches.items() if not w.closed}


class ReconcileLoop:
    name = "loop"
    kinds: Sequence[str] = ()
    stats: LoopStats | None = None
    # Events the watch may hold before the store drops it (and the loop resyncs).
    max_pending: int = DEFAULT_MAX_PENDING

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._wake_at: float | None = None
        self._stopped = False
        self._watch: Watch | None = None
        self.resyncs = 0  # times this loop lost its watch and started again from a snapshot

    @property
    def memory(self) -> MemoryStore:
        return self.store.memory

    # ------------------------------------------------------------------ to override

    def start(self) -> None:
        """Called with the store's state as of the watch's start: mark what is dirty.

        Called again after a resync, on a loop that already has state: drop or rebuild
        whatever is kept between rounds.
        """

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

    def take_pending(self) -> list[Event] | None:
        """The events the loop's watch holds now, taken at once, not handed to `changed`.

        For a loop that keeps an index exact inside a store update function: the store
        pushes to watches as it applies, so after this the caller has seen every commit
        the update function's state holds. None when there is no usable watch (the loop
        is not running, or its watch was dropped: rebuild from the state instead).
        """
        watch = self._watch
        if watch is None:
            return None
        try:
            return watch.take_nowait()
        except (Unavailable, StopAsyncIteration):
            return None

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        set_for_task(self.name)  # the store records this loop's writes as its own
        watch = self._open_watch()
        try:
            self.start()
            await self._round()
            while not self._stopped:
                try:
                    batch = await self._next(watch)
                except Unavailable as exc:
                    if exc.details.get("reason") not in RESYNC_REASONS:
                        raise
                    watch.close()
                    watch = self._resync(exc)
                    await self._round()
                    continue
                if batch:
                    self.changed(batch)
                await self._round()
        finally:
            watch.close()
            self._watch = None

    def _open_watch(self) -> Watch:
        watch = self.memory.watch(kinds=list(self.kinds) or None, max_pending=self.max_pending)
        self._watch = watch
        return watch

    def _resync(self, exc: Unavailable) -> Watch:
        """A new watch on a fresh snapshot, and `start` again: what the loop missed is in
        the snapshot, so it is reconciled as a new leader's loop would."""
        self.resyncs += 1
        if self.stats is not None:
            self.stats.resynced(self.name)
        log.warning(
            "%s lost its watch, resyncing from a snapshot %s",
            self.name,
            kv(reason=exc.details.get("reason"), resyncs=self.resyncs),
        )
        watch = self._open_watch()
        self.start()
        return watch

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
