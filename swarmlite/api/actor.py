"""Who asked: the actor a store write is recorded under, carried by a context variable.

Whoever starts work on someone's behalf names them with ``acting_as``: the control API's
router for each call (the local admin, the Docker API front end, a manager forwarding a
call it got), each leader loop for its own rounds, the dispatcher for what a node reports.
The store stamps the name on every transaction it proposes, so the write's events (and
``swarmlite events``) say who asked; the RPC client passes it on when a follower forwards
a call, so the leader records the original caller, not the follower.

Imports nothing of ours.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

ACTOR: ContextVar[str] = ContextVar("swarmlite_actor", default="")
HEADER = "X-Swarmlite-Actor"  # how an RPC call carries it
MAX_LENGTH = 128  # a longer name from the wire is cut to this


def current() -> str:
    """The actor of the running task ("" when nobody was named)."""
    return ACTOR.get()


@contextlib.contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Run the block on behalf of ``name``."""
    token = ACTOR.set(name[:MAX_LENGTH])
    try:
        yield
    finally:
        ACTOR.reset(token)


def set_for_task(name: str) -> None:
    """Name the actor of the rest of this task (a loop that runs for its whole life)."""
    ACTOR.set(name[:MAX_LENGTH])
