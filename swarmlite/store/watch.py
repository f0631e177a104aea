"""Watch streams: a consistent snapshot of some objects, then every change after it.

Owns the event shape and the per-watcher queue. A ``Watch`` is made by
``MemoryStore.watch``: its ``snapshot`` holds the matching objects as of ``index``, and
iterating it (``async for event in watch``) yields every later change to a matching object
in commit order, each event carrying the index of its write.

Invariants: the store pushes into a watch without ever blocking or awaiting (apply is
synchronous and shared by every replica); a watch whose queue grows past ``max_pending``
is closed, its queue dropped, and its consumer gets ``Unavailable`` telling it to re-list
and watch again (as etcd does for a compacted watch). Events of one transaction are pushed
together, so ``next_batch`` never splits a commit.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Callable
from types import TracebackType

import msgspec

from swarmlite.api import Object
from swarmlite.errors import InternalError, SwarmliteError, Unavailable
from swarmlite.log import kv

log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING = 10_000

Predicate = Callable[[Object], bool]


class EventAction(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class Event(msgspec.Struct, frozen=True, gc=False):
    """One committed change: ``old`` is None for CREATED, ``new`` is None for DELETED.

    A struct, not a dataclass: the store makes one per object written (200,000 in a deploy
    of 100,000 tasks), and a frozen dataclass takes 20 times as long to make. Untracked by
    the cycle collector: an event refers only to objects that never refer back to it."""

    action: EventAction
    index: int
    old: Object | None
    new: Object | None
    actor: str = ""  # who asked for the write (api/actor.py)

    @property
    def object(self) -> Object:
        """The object after the change, or the deleted object."""
        obj = self.new if self.new is not None else self.old
        assert obj is not None  # an event always has one side
        return obj

    @property
    def kind(self) -> str:
        return self.object.KIND


class Watch:
    """A snapshot plus the stream of changes after it; close it (or use ``with``) when done."""

    def __init__(
        self,
        *,
        index: int,
        snapshot: list[Object],
        kinds: frozenset[str] | None,
        predicate: Predicate | None,
        max_pending: int,
        detach: Callable[[Watch], None],
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.index = index
        self.snapshot = snapshot
        self.kinds = kinds
        self._predicate = predicate
        self._max_pending = max_pending
        self._detach = detach
        self._queue: collections.deque[Event] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: SwarmliteError | None = None
        self._closed = False

    # -- consumer side --------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Events queued and not yet consumed."""
        return len(self._queue)

    def close(self) -> None:
        """Stop the stream and free it; iteration then ends. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._detach(self)
        self._wake()

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._queue:
                return self._queue.popleft()
            self._raise_if_done()
            await self._wait()

    async def next_batch(self) -> list[Event]:
        """Wait for at least one event, then take every event queued (whole commits).

        Raises ``StopAsyncIteration`` once closed by the consumer, ``Unavailable`` once the
        store dropped this watch.
        """
        while not self._queue:
            self._raise_if_done()
            await self._wait()
        batch = list(self._queue)
        self._queue.clear()
        return batch

    def take_nowait(self) -> list[Event]:
        """Every event queued now (possibly none), without waiting; the store pushes
        synchronously, so after this the consumer has seen every commit applied so far.

        Raises ``Unavailable`` once the store dropped this watch, ``StopAsyncIteration``
        once closed by the consumer.
        """
        if not self._queue:
            self._raise_if_done()
            return []
        batch = list(self._queue)
        self._queue.clear()
        return batch

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _raise_if_done(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StopAsyncIteration

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- store side (synchronous, never blocks) -------------------------------------

    def matches(self, obj: Object) -> bool:
        """Whether ``obj`` belongs in this watch (kind and filter)."""
        if self.kinds is not None and obj.KIND not in self.kinds:
            return False
        return self._predicate is None or self._predicate(obj)

    def offer(self, events: list[Event]) -> None:
        """Queue the events of one commit that concern this watch (called by the store)."""
        if self._closed:
            return
        kinds, predicate = self.kinds, self._predicate
        queue = self._queue
        added = False
        for event in events:
            if kinds is not None and event.object.KIND not in kinds:
                continue
            if predicate is not None:
                # An update is seen if the object matched before or after it, so that a
                # consumer also learns when an object stops matching.
                try:
                    wanted = (event.old is not None and predicate(event.old)) or (
                        event.new is not None and predicate(event.new)
                    )
                except Exception as exc:  # a buggy filter must not break apply
                    log.exception("watch filter failed %s", kv(index=event.index))
                    self.fail(InternalError(f"watch filter raised {exc!r}"))
                    return
                if not wanted:
                    continue
            queue.append(event)
            added = True
        if len(queue) > self._max_pending:
            log.warning(
                "watch fell behind, closing it %s",
                kv(pending=len(queue), max_pending=self._max_pending, index=events[-1].index),
            )
            self.fail(
                Unavailable(
                    f"watch fell more than {self._max_pending} events behind and was closed",
                    hint="re-list the objects and start a new watch",
                    details={"reason": "watch_overflow", "index": events[-1].index},
                )
            )
        elif added:
            self._wake()

    def fail(self, error: SwarmliteError) -> None:
        """Close this watch with ``error``, which its consumer gets on its next read."""
        if self._closed:
            return
        self._error = error
        self._closed = True
        self._queue.clear()
        self._detach(self)
        self._wake()
