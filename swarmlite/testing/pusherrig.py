"""The dispatcher's pusher driven by hand, for tests of what nodes are sent.

Owns `PusherRig`: a store (LocalProposer, FakeClock), a dispatcher whose sessions write to
streams the test makes (`open`), and its pusher loop, stepped by the test: `start` (a
fresh watch and a start, also again as after an overflow) and `round` (the pusher reads
what was committed, all of it or with ``lag`` only part, as the real loop can be behind
the store, and acts), or `random_rounds` of both with a check after each round the pusher
read whole. Node-down checks are off. Subclasses say what a stream is (`new_stream`) and
what to check (`check`).
"""

from __future__ import annotations

import abc
import random
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from swarmlite.manager.context import ManagerContext
from swarmlite.manager.dispatcher.dispatcher import Dispatcher, _Pusher, _Session
from swarmlite.store import Event, LocalProposer, MemoryStore, Store, Watch
from swarmlite.testing.clock import FakeClock

StreamT = TypeVar("StreamT")


class PusherRig(abc.ABC, Generic[StreamT]):
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.memory = MemoryStore()
        clock = FakeClock()
        self.store = Store(self.memory, LocalProposer(self.memory), clock=clock)
        raft: Any = None  # the pusher needs no raft member

        def no_calls() -> Any:
            raise AssertionError("no call leaves this manager")

        self.ctx = ManagerContext(
            node_id="m1",
            cluster_id="c1",
            addr="10.0.0.1:2377",
            store=self.store,
            raft=raft,
            clock=clock,
            client_ssl=no_calls,
        )
        self.dispatcher = Dispatcher(self.ctx, logs=None, heartbeats=None)  # type: ignore[arg-type]
        self.streams: dict[str, StreamT] = {}
        self.pusher = _Pusher(self.dispatcher)
        self.pusher.next_check = float("inf")  # node-down checks are not tested here
        self.watch: Watch | None = None
        self.held: list[Event] = []  # read from the watch, not yet given to the pusher
        self.counter = 0

    @abc.abstractmethod
    def new_stream(self) -> StreamT:
        """The stream a newly opened session writes to."""

    @abc.abstractmethod
    def check(self, seed: int) -> None:
        """Assert what every open session was sent (``seed`` names the run)."""

    def next(self) -> int:
        """A fresh number, for names."""
        self.counter += 1
        return self.counter

    def open(self, node_id: str) -> None:
        """A node opens a session (again: a new one replaces the old)."""
        self.streams[node_id] = self.new_stream()
        session = _Session(node_id, self.streams[node_id])  # type: ignore[arg-type]
        self.dispatcher.sessions[node_id] = session

    async def start(self) -> None:
        """(Again:) a fresh watch and a start, as after a watch overflowed."""
        if self.watch is not None:
            self.watch.close()
        self.held = []
        self.watch = self.memory.watch(kinds=list(self.pusher.kinds))
        self.pusher.start()
        await self.pusher.reconcile()

    async def round(self, *, lag: bool = False) -> None:
        """The pusher reads what was committed (all, or with ``lag`` only part) and acts."""
        assert self.watch is not None
        self.held.extend(self.watch.take_nowait())
        cut = self.rng.randrange(len(self.held) + 1) if lag else len(self.held)
        given, self.held = self.held[:cut], self.held[cut:]
        if given:
            self.pusher.changed(given)
        await self.pusher.reconcile()

    async def random_rounds(
        self, seed: int, rounds: int, step: Callable[[Any], Awaitable[None]], *, most: int
    ) -> None:
        """Start, then ``rounds`` rounds of 1 to ``most - 1`` random ``step``s each, the
        pusher behind the store in about a third of them; ``check`` after the start, after
        every round the pusher read whole, and after a last round that reads it all."""
        await self.start()
        self.check(seed)
        for _ in range(rounds):
            for _ in range(self.rng.randrange(1, most)):
                await step(self)
            await self.round(lag=self.rng.random() < 0.3)
            if not self.held:
                self.check(seed)
        await self.round()
        self.check(seed)
