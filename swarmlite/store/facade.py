"""``Store``: what control loops and the control API use to read and write objects.

Owns the read-modify-write cycle: ``update(fn)`` reads through ``fn``, proposes the
transaction ``fn`` built, and when a concurrent write made it stale, runs ``fn`` again on
the newer state (a bounded number of times); ``merge`` does the same for edits of one
object, combined and retried until they apply (``store.merge``). Does not own committing
(``Proposer``) nor the state (``MemoryStore``). Timestamps come from the injected Clock,
at proposal time.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Iterable
from typing import Any, overload

from swarmlite.api import Object, ObjectT
from swarmlite.api.actor import current as current_actor
from swarmlite.clock import Clock, SystemClock
from swarmlite.errors import AlreadyExists, Conflict, NotFound
from swarmlite.log import kv
from swarmlite.store.memory import ApplyResult, KindArg, MemoryStore, ReadTx
from swarmlite.store.merge import Edit, Merger
from swarmlite.store.proposer import Proposer
from swarmlite.store.tx import Tx
from swarmlite.store.watch import DEFAULT_MAX_PENDING, Predicate, Watch

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 10

UpdateFn = Callable[[ReadTx], Tx | None]


class Store:
    """Reads from the local ``MemoryStore``; writes through the ``Proposer``."""

    def __init__(
        self,
        memory: MemoryStore,
        proposer: Proposer,
        *,
        clock: Clock | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.memory = memory
        self._proposer = proposer
        self._clock: Clock = clock or SystemClock()
        self._max_attempts = max_attempts
        self._merger = Merger(memory.get, self._propose_raw, clock=self._clock)

    async def update(self, fn: UpdateFn) -> ApplyResult:
        """Run ``fn`` on the current state and commit the Tx it returns.

        ``fn`` must only read through its argument and must not have side effects: it runs
        again whenever the transaction lost a race (Conflict, or NotFound/AlreadyExists
        after another write slipped in between the read and the commit). Returning None or
        an empty Tx commits nothing. Raises the transaction's error when retrying cannot
        help, and Conflict after ``max_attempts`` lost races.
        """
        last: ApplyResult | None = None
        for attempt in range(1, self._max_attempts + 1):
            read_index = self.memory.applied_index
            tx = fn(self.memory)
            if not tx:
                return ApplyResult(read_index)
            result = await self._proposer.propose(
                tx.encode(now=self._clock.wall(), actor=current_actor())
            )
            error = result.error
            if error is None:
                return result
            # Another entry applied between our read and our commit: the state fn saw was
            # stale, so the error may be too.
            raced = result.index > read_index + 1
            if not (isinstance(error, Conflict) or (raced and _racy(error))):
                raise error
            log.debug("store update raced, retrying %s", kv(attempt=attempt, error=error.code))
            last = result
        assert last is not None and last.error is not None
        raise Conflict(
            f"gave up after {self._max_attempts} attempts: {last.error.message}",
            hint="the objects are changing too fast; try again",
            details=last.error.details,
        ) from last.error

    async def merge(self, kind: type[ObjectT], id: str, edit: Edit[ObjectT]) -> ObjectT:
        """Apply ``edit`` (object in, edited object out; None: no change) to the current
        object, combined with the concurrent edits of the same object and retried on
        Conflict until it applies (see ``store.merge``); returns the object as written."""
        return await self._merger.merge(kind, id, edit)

    async def _propose_raw(self, tx: Tx) -> ApplyResult:
        return await self._proposer.propose(self._encode(tx))

    async def propose(self, tx: Tx) -> ApplyResult:
        """Commit ``tx`` once, without retrying; raises the transaction's error if any."""
        result = await self._proposer.propose(
            tx.encode(now=self._clock.wall(), actor=current_actor())
        )
        result.unwrap()
        return result

    def _encode(self, tx: Tx) -> bytes:
        """``tx`` stamped with this writer's time and on behalf of its actor."""
        return tx.encode(now=self._clock.wall(), actor=current_actor())

    @overload
    async def get(
        self, kind: type[ObjectT], id: str, *, linearizable: bool = False
    ) -> ObjectT | None: ...
    @overload
    async def get(self, kind: str, id: str, *, linearizable: bool = False) -> Object | None: ...
    async def get(self, kind: KindArg, id: str, *, linearizable: bool = False) -> Any:
        if linearizable:
            await self._proposer.read_barrier()
        return self.memory.get(kind, id)

    @overload
    async def get_by_name(
        self, kind: type[ObjectT], name: str, *, linearizable: bool = False
    ) -> ObjectT | None: ...
    @overload
    async def get_by_name(
        self, kind: str, name: str, *, linearizable: bool = False
    ) -> Object | None: ...
    async def get_by_name(self, kind: KindArg, name: str, *, linearizable: bool = False) -> Any:
        if linearizable:
            await self._proposer.read_barrier()
        return self.memory.get_by_name(kind, name)

    @overload
    async def list(
        self, kind: type[ObjectT], *, linearizable: bool = False
    ) -> builtins.list[ObjectT]: ...
    @overload
    async def list(self, kind: str, *, linearizable: bool = False) -> builtins.list[Object]: ...
    async def list(self, kind: KindArg, *, linearizable: bool = False) -> Any:
        if linearizable:
            await self._proposer.read_barrier()
        return self.memory.list(kind)

    async def find(
        self, kind: KindArg, predicate: Callable[[Any], bool], *, linearizable: bool = False
    ) -> builtins.list[Any]:
        if linearizable:
            await self._proposer.read_barrier()
        return self.memory.find(kind, predicate)

    def watch(
        self,
        kinds: Iterable[KindArg] | None = None,
        filter: Predicate | None = None,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> Watch:
        """See ``MemoryStore.watch``."""
        return self.memory.watch(kinds, filter, max_pending=max_pending)


def _racy(error: Exception) -> bool:
    return isinstance(error, NotFound | AlreadyExists)
