"""The orchestrator: the leader-only loops that turn services into tasks.

``ReplicatedOrchestrator`` (replicated services: slots, scaling, restarts, rolling
updates), ``GlobalOrchestrator`` (one task per eligible node), ``JobsOrchestrator``
(replicated and global jobs) and ``TaskReaper`` (task history, tasks of removed
services). Each is a ``ReconcileLoop`` over the store; none imports another (shared words
live in ``common``, ``restart`` and ``update``). ``orchestrator_loops`` builds all four.
"""

from __future__ import annotations

import random

from swarmlite.clock import Clock
from swarmlite.manager.loop import ReconcileLoop
from swarmlite.manager.orchestrator.global_mode import GlobalOrchestrator
from swarmlite.manager.orchestrator.jobs import JobsOrchestrator
from swarmlite.manager.orchestrator.reaper import TaskReaper
from swarmlite.manager.orchestrator.replicated import ReplicatedOrchestrator
from swarmlite.store import Store


def orchestrator_loops(
    store: Store, clock: Clock, *, rng: random.Random | None = None
) -> list[ReconcileLoop]:
    """Every orchestrator loop, ready to ``run()`` side by side on the leader."""
    return [
        ReplicatedOrchestrator(store, clock, rng=rng),
        GlobalOrchestrator(store, clock, rng=rng),
        JobsOrchestrator(store, clock, rng=rng),
        TaskReaper(store, clock, rng=rng),
    ]


__all__ = [
    "GlobalOrchestrator",
    "JobsOrchestrator",
    "ReplicatedOrchestrator",
    "TaskReaper",
    "orchestrator_loops",
]
