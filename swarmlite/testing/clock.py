"""A virtual clock for tests: time moves only when the test says so.

Owns `FakeClock`, an implementation of `swarmlite.clock.Clock` whose `sleep` parks the
caller until the test advances time past its deadline. Does not own the event loop: a
sleeper woken by `advance` runs the next time the test yields to the loop (`run_for`
does that for you).

Invariants: `monotonic()` never goes back; a sleeper never wakes before its deadline;
sleepers whose deadlines pass in one advance wake in deadline order (ties in the order they
went to sleep).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from swarmlite.errors import InvalidArgument

DEFAULT_WALL_START = 1_700_000_000.0
"""Where `wall()` starts unless told otherwise: a fixed date, so that tests are repeatable."""


class FakeClock:
    def __init__(self, start: float = 0.0, *, wall_start: float = DEFAULT_WALL_START) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._order = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        """Park until time reaches now + ``seconds``; zero or less just yields once."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), waiter))
        await waiter

    @property
    def sleepers(self) -> int:
        """How many callers are parked in `sleep` (cancelled ones excluded)."""
        return sum(1 for _, _, waiter in self._sleepers if not waiter.done())

    def next_deadline(self) -> float | None:
        """The earliest deadline of a parked sleeper, or None when nobody sleeps."""
        self._discard_done()
        return self._sleepers[0][0] if self._sleepers else None

    def advance(self, seconds: float) -> int:
        """Move time forward and wake every sleeper now due, in deadline order.

        Returns how many were woken. They run once the caller yields to the event loop;
        a sleeper that sleeps again then counts from the new time.
        """
        if seconds < 0:
            raise InvalidArgument(f"cannot move a clock back (advance by {seconds})")
        self._now += seconds
        return self._wake_due()

    async def run_for(self, seconds: float) -> None:
        """Advance by ``seconds`` one deadline at a time, letting each woken sleeper run.

        At each deadline inside the window time stands at exactly that deadline while the
        sleepers due then run up to their next await, so a loop that sleeps again inside
        the window wakes again inside it.
        """
        if seconds < 0:
            raise InvalidArgument(f"cannot move a clock back (run for {seconds})")
        end = self._now + seconds
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > end:
                break
            self._now = max(self._now, deadline)
            self._wake_due()
            # One yield lets every task woken above run up to its next suspension point,
            # because the loop runs ready callbacks in the order they were scheduled.
            await asyncio.sleep(0)
        self._now = max(self._now, end)
        await asyncio.sleep(0)

    def _wake_due(self) -> int:
        woken = 0
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, waiter = heapq.heappop(self._sleepers)
            if not waiter.done():  # a cancelled sleeper is already done
                waiter.set_result(None)
                woken += 1
        return woken

    def _discard_done(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
