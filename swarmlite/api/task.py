"""Task: one container of a service, in one slot, on one node, for its whole life.

Owns the Task object's shape. ``desired_state`` is written only by managers, ``status``
only from what the node's agent reports; a task never moves back through ``TaskState``
and never changes node (a replacement is a new task in the same slot).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from swarmlite.api.meta import Meta
from swarmlite.api.states import TaskState


class TaskSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to run, copied from the service when the task was made."""

    image: str = ""
    labels: dict[str, str] = {}


class TaskStatus(msgspec.Struct, frozen=True, kw_only=True):
    state: TaskState = TaskState.NEW
    message: str = ""  # why it is in this state, in words
    timestamp: float = 0.0  # when it entered this state (seconds since the epoch)


class Task(Meta, frozen=True, kw_only=True, tag="task"):
    KIND: ClassVar[str] = "task"

    service_id: str = ""
    slot: int = 0  # 1..replicas for replicated services; 0 for global ones
    node_id: str = ""  # "" until the scheduler assigns one
    desired_state: TaskState = TaskState.RUNNING
    spec: TaskSpec = msgspec.field(default_factory=TaskSpec)
    status: TaskStatus = msgspec.field(default_factory=TaskStatus)
