"""Merge writes: many concurrent edits of one object, combined into few transactions.

Owns ``Merger``: an edit is a pure function of one object (add these labels, set the
replicas to 3) rather than a whole new object read at some version, so edits that arrive
together can all be applied, in arrival order, to the object as it is now, and committed as
one transaction. The first caller of a batch commits it for everyone queued behind it (flat
combining: no background task), re-applies the batch to the newer object when another
writer got in first (Conflict), and keeps at it until ``timeout``. Does not own what an
edit means (the control API's handlers) nor committing (``Proposer``).

Invariant: an edit is acknowledged only once a transaction that contains it has committed;
an edit that raises fails alone, the rest of its batch goes on. Edits of one object on one
manager never race each other, so a thousand concurrent writers need a handful of commits
rather than a thousand rounds of conflicts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, cast

from swarmlite.api import Object, ObjectT
from swarmlite.clock import Clock, SystemClock
from swarmlite.errors import Conflict, NotFound, SwarmliteError
from swarmlite.store.memory import ApplyResult
from swarmlite.store.tx import Tx

DEFAULT_TIMEOUT = 30.0

Edit = Callable[[ObjectT], ObjectT | None]  # the edited object; None: nothing to change


@dataclass
class _Pending(Generic[ObjectT]):
    edit: Edit[ObjectT]
    done: asyncio.Future[ObjectT]


@dataclass
class _Queue:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: list[_Pending[Any]] = field(default_factory=list)
    users: int = 0  # callers between entering and leaving merge(); the queue dies at 0


class Merger:
    """Combines the concurrent edits of each object (see the module's docstring)."""

    def __init__(
        self,
        read: Callable[[Any, str], Object | None],
        commit: Callable[[Tx], Awaitable[ApplyResult]],
        *,
        clock: Clock | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._read = read
        self._commit = commit
        self._clock: Clock = clock or SystemClock()
        self._timeout = timeout
        self._queues: dict[tuple[str, str], _Queue] = {}

    async def merge(self, kind: type[ObjectT], id: str, edit: Edit[ObjectT]) -> ObjectT:
        """Apply ``edit`` to the object ``kind``/``id`` as committed; returns the object as
        the transaction that carried the edit wrote it. Raises what ``edit`` raised,
        NotFound if the object is gone, Conflict if it kept changing for ``timeout``."""
        key = (kind.KIND, id)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        mine: _Pending[ObjectT] = _Pending(edit, asyncio.get_running_loop().create_future())
        queue.pending.append(mine)
        queue.users += 1
        try:
            async with queue.lock:
                if not mine.done.done():  # nobody committed it meanwhile: commit the batch
                    batch, queue.pending = queue.pending, []
                    try:
                        await self._run(kind, id, batch)
                    except SwarmliteError as exc:  # the proposer's: the whole batch failed
                        _fail(batch, exc)
                    except BaseException:
                        # Cancelled (or a bug): whoever takes the lock next commits the rest.
                        queue.pending[:0] = [
                            p for p in batch if p is not mine and not p.done.done()
                        ]
                        mine.done.cancel()
                        raise
            return await mine.done
        finally:
            queue.users -= 1
            if queue.users == 0 and self._queues.get(key) is queue:
                del self._queues[key]

    async def _run(self, kind: type[ObjectT], id: str, batch: list[_Pending[ObjectT]]) -> None:
        deadline = self._clock.monotonic() + self._timeout
        while batch:
            current = self._read(kind, id)
            if current is None:
                _fail(batch, NotFound(f"{kind.KIND} {id} not found", details={"id": id}))
                return
            obj: ObjectT = current  # type: ignore[assignment]
            applied: list[_Pending[ObjectT]] = []
            for pending in batch:
                try:
                    edited = pending.edit(obj)
                except SwarmliteError as exc:
                    _fail([pending], exc)
                    continue
                if edited is not None:
                    obj = edited
                applied.append(pending)
            if obj is current:  # nothing to change: every edit holds already
                _succeed(applied, obj)
                return
            result = await self._commit(Tx().update(cast(Object, obj)))
            if result.error is None:
                written = next((o for o in result.objects if o.id == id), None)
                _succeed(applied, obj if written is None else cast(ObjectT, written))
                return
            if not isinstance(result.error, Conflict):
                _fail(applied, result.error)
                return
            if self._clock.monotonic() >= deadline:
                _fail(
                    applied,
                    Conflict(
                        f"{kind.KIND} {id} kept changing for {self._timeout:g}s; "
                        "the edit was not applied",
                        hint="try again",
                    ),
                )
                return
            batch = applied  # someone else wrote it first: again, on the newer object


def _succeed(batch: list[_Pending[ObjectT]], obj: ObjectT) -> None:
    for pending in batch:
        if not pending.done.done():
            pending.done.set_result(obj)


def _fail(batch: list[_Pending[Any]], error: SwarmliteError) -> None:
    for pending in batch:
        if not pending.done.done():
            pending.done.set_exception(error)
