"""The state enums of api objects: task lifecycle, node role, availability and health.

Owns the states and their order. A task only ever moves forward through ``TaskState``
(compare with ``<``/``>``: the order is the lifecycle order, never the alphabet); the
values are lowercase words so that JSON and the CLI show names, not numbers.
"""

from __future__ import annotations

import enum
from typing import Any


class TaskState(enum.Enum):
    NEW = "new"
    PENDING = "pending"  # waiting for the scheduler
    ASSIGNED = "assigned"  # has a node; the agent has not seen it yet
    ACCEPTED = "accepted"  # the agent took it
    PREPARING = "preparing"  # pulling the image, creating the container
    STARTING = "starting"
    RUNNING = "running"
    COMPLETE = "complete"  # exited 0
    FAILED = "failed"
    SHUTDOWN = "shutdown"  # stopped because desired_state said so
    REJECTED = "rejected"  # the agent could not even try
    ORPHANED = "orphaned"  # its node went away for too long

    # Set once for every member below the class: plain attributes, because the control
    # loops compare states millions of times (a property and a dict lookup cost 4x more).
    rank: int  # position in the lifecycle; every terminal state ranks above RUNNING
    terminal: bool  # ranks above RUNNING: it will not move again

    def __lt__(self, other: Any) -> bool:
        if other.__class__ is not TaskState:
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: Any) -> bool:
        if other.__class__ is not TaskState:
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: Any) -> bool:
        if other.__class__ is not TaskState:
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: Any) -> bool:
        if other.__class__ is not TaskState:
            return NotImplemented
        return self.rank >= other.rank


_TASK_RANK = {state: rank for rank, state in enumerate(TaskState)}
for _state, _rank in _TASK_RANK.items():
    _state.rank = _rank
    _state.terminal = _rank > _TASK_RANK[TaskState.RUNNING]


class NodeRole(enum.Enum):
    WORKER = "worker"
    MANAGER = "manager"


class NodeAvailability(enum.Enum):
    ACTIVE = "active"  # takes new tasks
    PAUSE = "pause"  # keeps its tasks, takes no new ones
    DRAIN = "drain"  # its tasks are moved elsewhere


class NodeState(enum.Enum):
    UNKNOWN = "unknown"  # no session seen yet
    READY = "ready"
    DOWN = "down"  # missed its heartbeats
    DISCONNECTED = "disconnected"  # session closed cleanly
