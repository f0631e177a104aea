"""Carry the node's task status changes to the dispatcher, batched, and again after a break.

Owns the queue between the executors and the session: updates wait about `window`
seconds so that the states a task passes through quickly travel in one StatusReport;
every update of a task keeps its order. When sending fails (no session right now, or it
broke), the reporter keeps only the latest status of each task and sends those once the
session is back; the dispatcher ignores a state older than the one it stored, so sending
again is always safe. Does not own the session (it is given `send`), nor what the
statuses are.

Invariants: a task's updates leave in the order they were reported; at most
`max_pending` updates wait, past that only each task's latest is kept (so memory is
bounded by the number of tasks); a forgotten task's waiting updates are dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from swarmlite.api.control import AgentMessage, StatusReport, TaskUpdate
from swarmlite.api.task import TaskStatus
from swarmlite.clock import Clock
from swarmlite.errors import SwarmliteError
from swarmlite.log import kv

log = logging.getLogger(__name__)

WINDOW_SECONDS = 0.05
RETRY_MIN, RETRY_MAX = 0.1, 2.0
MAX_BATCH = 500
MAX_PENDING = 10_000


class Reporter:
    def __init__(
        self,
        send: Callable[[AgentMessage], Awaitable[None]],
        clock: Clock,
        *,
        window: float = WINDOW_SECONDS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._send = send
        self._clock = clock
        self._window = window
        self._max_pending = max_pending
        self._pending: list[TaskUpdate] = []
        self._ready = asyncio.Event()  # something is pending
        self._wake = asyncio.Event()  # the session may be back: retry now
        self._stopped = asyncio.Event()

    @property
    def pending(self) -> list[TaskUpdate]:
        """What has not been sent yet, oldest first."""
        return list(self._pending)

    def report(self, task_id: str, status: TaskStatus) -> None:
        """Queue a status change of `task_id`; it leaves within about `window` seconds."""
        self._pending.append(TaskUpdate(task_id=task_id, status=status))
        if len(self._pending) > self._max_pending:
            self._pending = _latest_per_task(self._pending)
        self._ready.set()

    def forget(self, task_id: str) -> None:
        """The task is no longer this node's: drop what waits for it."""
        self._pending = [u for u in self._pending if u.task_id != task_id]

    def wake(self) -> None:
        """The session is (probably) back: retry a failed send now instead of later."""
        self._wake.set()

    def stop(self) -> None:
        """Make `run` return soon; what is still pending is dropped."""
        self._stopped.set()
        self._ready.set()

    async def run(self) -> None:
        """Send until stopped; returns when `stop` is called."""
        backoff = RETRY_MIN
        while not self._stopped.is_set():
            if not self._pending:
                self._ready.clear()
                await self._ready.wait()
                continue
            await self._pause(self._window, self._stopped)
            if self._stopped.is_set():
                return
            if await self.flush():
                backoff = RETRY_MIN
                continue
            self._wake.clear()
            await self._pause(backoff, self._wake, self._stopped)
            backoff = min(RETRY_MAX, backoff * 2)

    async def flush(self) -> bool:
        """Send everything pending now, in batches; False (and kept for later) on failure."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await self._send(StatusReport(updates=batch))
            except SwarmliteError as exc:
                # Keep only each task's latest: the older states are past anyway.
                self._pending = _latest_per_task(batch + self._pending)
                log.info(
                    "status report not sent; kept for later %s",
                    kv(tasks=len(self._pending), error=exc.message),
                )
                return False
        return True

    async def _pause(self, seconds: float, *events: asyncio.Event) -> None:
        """Sleep `seconds` on the clock, or less if one of `events` is set meanwhile."""
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._clock.sleep(seconds))]
        waiters += [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)


def _latest_per_task(updates: list[TaskUpdate]) -> list[TaskUpdate]:
    latest: dict[str, TaskUpdate] = {}
    for update in updates:
        latest.pop(update.task_id, None)  # re-insert: order of each task's last change
        latest[update.task_id] = update
    return list(latest.values())
