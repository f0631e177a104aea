"""The dashboard's JSON: what the page gets from the control API's answers, shaped for it.

Owns the shapes of ``/api/state`` (nodes with their tasks, services with replicas and
update state), ``/api/events`` and ``/api/metrics``, which tasks the grid shows, and the
replica history behind the charts (``History``). Pure: no I/O, no clock (callers pass the
time), so every shape is tested without a cluster. Does not own fetching
(``dashboard.server``) nor drawing (``static/app.js``).

Which tasks the grid shows: for each slot (a replicated service's slot, or a global
service's node) its newest task, whatever its state (a slot that keeps failing shows its
failure), plus every other task that still lives (an update's old task until it stops, a
down node's tasks until they are replaced). Older, finished tasks are history and left out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from swarmlite.api import Task
from swarmlite.api.control import ClusterEvent, NodeView, ServiceView

Json = dict[str, Any]

MAX_ATTRIBUTE = 200  # characters of one event attribute the page gets
NO_NODE = ""  # the grid's column of tasks that no node holds yet


def task_json(task: Task) -> Json:
    status = task.status
    return {
        "id": task.id,
        "name": task.name,
        "service_id": task.service_id,
        "service": task.service_name,
        "slot": task.slot,
        "node_id": task.node_id,
        "state": status.state.value,
        "desired": task.desired_state.value,
        "since": status.timestamp,
        "message": status.message,
        "error": status.err,
        "health": status.health,
        "image": task.spec.container.image,
        "spec_version": task.spec_version,
    }


def _slot_key(task: Task) -> tuple[str, str]:
    return task.service_id, str(task.slot) if task.slot else f"node:{task.node_id}"


def visible_tasks(tasks: Iterable[Task]) -> list[Task]:
    """The tasks the grid shows (see the module docstring), in a stable order."""
    newest: dict[tuple[str, str], Task] = {}
    alive: list[Task] = []
    for task in tasks:
        key = _slot_key(task)
        kept = newest.get(key)
        if kept is None or (task.created_at, task.version) > (kept.created_at, kept.version):
            newest[key] = task
        if not task.status.state.terminal:
            alive.append(task)
    shown = {task.id: task for task in newest.values()}
    shown.update((task.id, task) for task in alive)
    return sorted(
        shown.values(), key=lambda t: (t.service_name, t.slot, t.node_id, t.created_at, t.id)
    )


def node_json(view: NodeView, tasks: Sequence[Task]) -> Json:
    node, manager = view.node, view.manager
    return {
        "id": node.id,
        "name": node.status.hostname or node.id[:12],
        "role": node.spec.role.value,
        "state": node.status.state.value,
        "availability": node.spec.availability.value,
        "addr": node.status.addr,
        "leader": bool(manager and manager.leader),
        "reachability": manager.reachability if manager else None,
        "self": view.self,
        "last_heartbeat": view.last_heartbeat,
        "tasks": [task_json(t) for t in tasks if t.node_id == node.id],
    }


def service_json(view: ServiceView) -> Json:
    service, spec = view.service, view.service.spec
    update = service.update_status
    return {
        "id": service.id,
        "name": spec.name,
        "stack": spec.stack or "",
        "mode": spec.mode.value,
        "image": spec.image,
        "running": view.running,
        "desired": view.desired,
        "spec_version": service.spec_version,
        "update": None
        if update is None
        else {
            "state": update.state.value,
            "message": update.message,
            "started_at": update.started_at,
            "completed_at": update.completed_at,
        },
        "ports": [
            f"{p.published}:{p.target}/{p.protocol}" if p.published else f"{p.target}/{p.protocol}"
            for p in service.endpoint.ports or spec.endpoint.ports
        ],
    }


def state_json(
    nodes: Sequence[NodeView],
    services: Sequence[ServiceView],
    tasks: Iterable[Task],
    *,
    now: float,
) -> Json:
    """``/api/state``: every node with the tasks it holds, every service, and the tasks no
    node holds yet."""
    shown = visible_tasks(tasks)
    known = {view.node.id for view in nodes}
    ordered = sorted(nodes, key=lambda v: (v.node.status.hostname, v.node.id))
    return {
        "time": now,
        "nodes": [node_json(view, shown) for view in ordered],
        "services": [service_json(v) for v in sorted(services, key=lambda v: v.service.spec.name)],
        "unassigned": [
            task_json(t) for t in shown if t.node_id == NO_NODE or t.node_id not in known
        ],
        "error": None,
    }


def event_json(n: int, event: ClusterEvent) -> Json:
    """One event as the page lists it; ``n`` is the dashboard's own count, which the page
    asks from (the manager's ``seq`` starts again on another leader)."""
    return {
        "n": n,
        "seq": event.seq,
        "time": event.time,
        "type": event.type,
        "action": event.action,
        "id": event.id,
        "name": event.attributes.get("name", ""),
        "actor": event.actor,
        "message": event.message,
        "attributes": {k: v[:MAX_ATTRIBUTE] for k, v in sorted(event.attributes.items())},
    }


def events_json(events: Iterable[Json], after: int, *, status: str, error: str) -> Json:
    """``/api/events?after=N``: the kept events after the page's last one, oldest first."""
    fresh = [e for e in events if e["n"] > after]
    last = fresh[-1]["n"] if fresh else after
    return {"events": fresh, "last": last, "status": status, "error": error}


class History:
    """Running and desired replicas of each service, one sample per ``record``: the
    numbers behind the charts (the dashboard's own: it keeps them in memory from when it
    starts). A service gone from a sample is forgotten."""

    def __init__(self, max_samples: int = 180) -> None:
        self.max_samples = max_samples
        self._names: dict[str, str] = {}
        self._samples: dict[str, deque[tuple[float, int, int]]] = {}

    def record(self, now: float, services: Iterable[ServiceView]) -> None:
        seen: set[str] = set()
        for view in services:
            sid = view.service.id
            seen.add(sid)
            self._names[sid] = view.service.spec.name
            samples = self._samples.setdefault(sid, deque(maxlen=self.max_samples))
            samples.append((now, view.running, view.desired))
        for gone in set(self._samples) - seen:
            del self._samples[gone]
            del self._names[gone]

    def to_json(self, period: float) -> Json:
        """``/api/metrics``: ``[time, running, desired]`` samples per service, oldest first."""
        return {
            "source": "replica counts sampled by the dashboard from the control API",
            "period": period,
            "services": {
                sid: {"name": self._names[sid], "samples": [list(s) for s in samples]}
                for sid, samples in sorted(self._samples.items(), key=lambda i: self._names[i[0]])
            },
        }
