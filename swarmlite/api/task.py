"""Task: one container of a service, in one slot, on one node, for its whole life.

Owns the Task object's shape. ``desired_state`` is written only by managers, ``status``
only from what the node's agent reports; a task never moves back through ``TaskState``
and never changes node (a replacement is a new task in the same slot).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from swarmlite.api.meta import Meta
from swarmlite.api.resources import GenericResource
from swarmlite.api.service import TaskTemplate
from swarmlite.api.states import TaskState

# Kept as a name for older callers: a task's spec is the service's task template.
TaskSpec = TaskTemplate


class TaskStatus(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    state: TaskState = TaskState.NEW
    message: str = ""  # why it is in this state, in words
    timestamp: float = 0.0  # when it entered this state (seconds since the epoch)
    err: str = ""  # what went wrong, for FAILED and REJECTED
    exit_code: int | None = None
    container_id: str = ""
    health: str = ""  # "" (no healthcheck) | starting | healthy | unhealthy
    pending_reason: str = ""  # why the scheduler could not place it yet


class Attachment(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The task's place on one network, chosen by the allocator."""

    network_id: str
    address: str  # "10.0.1.5/24"
    mac: str = ""  # "" : derived from the address (02:42 + the 4 IPv4 bytes)
    aliases: list[str] = []


class Task(Meta, frozen=True, kw_only=True, tag="task"):
    KIND: ClassVar[str] = "task"

    service_id: str = ""
    service_name: str = ""
    # The service's labels when the task was made (swarm's ServiceAnnotations): what the
    # node may act on without the service, e.g. api.dockersocket's opt-out.
    service_labels: dict[str, str] = {}
    slot: int = 0  # 1..replicas for replicated services; 0 for global ones (see node_id)
    node_id: str = ""  # "" until the scheduler assigns one
    desired_state: TaskState = TaskState.RUNNING
    spec: TaskTemplate = msgspec.field(default_factory=TaskTemplate)
    spec_version: int = 0  # the service's spec_version this task was made from
    job_iteration: int = 0
    networks: list[Attachment] = []  # set by the allocator before the task is scheduled
    # Which of its node's generic resources the scheduler gave it (named ones, or a count),
    # with ASSIGNED; its node counts them as taken while the task occupies it.
    assigned_generic_resources: list[GenericResource] = []
    status: TaskStatus = msgspec.field(default_factory=TaskStatus)

    @property
    def name(self) -> str:
        """As `docker service ps` shows it: service.slot, or service.node for global tasks."""
        return f"{self.service_name}.{self.slot or self.node_id}"
