"""The event log: every committed change to the cluster's objects, in Docker's words.

Owns turning the store's changes into ``ClusterEvent``s, keeping them for a bounded time,
and serving them (``swarmlite events``, the Docker API's ``/events``). Every manager keeps
its own log: it watches its own store, which applies the same committed entries as the
leader's, so the logs agree on what happened; the control API asks the leader's log (a
follower relays it), so every client sees one history.

What an event says:
- ``type`` and ``action`` as dockerd names them (``service``/``node``/``network``/
  ``secret``/``config`` with ``create``/``update``/``remove``), plus ``task`` for a task's
  life, which dockerd shows only as container events of one host;
- ``attributes``: the object's ``name`` and, for an update, ``<field>.old``/``<field>.new``
  for the fields a reader acts on (a service's image, replicas and update state; a node's
  state, availability and role; a task's state, desired state and node);
- ``actor``: who asked (``api/actor.py``): ``admin@<node>``, ``docker-api@<node>``, a
  leader loop (``orchestrator.replicated``, ``scheduler``...), ``agent@<node>`` for what a
  node reported, ``dispatcher`` for a node's session coming or going;
- ``message``: why, when the change says (a task's error, a node's "heartbeat failure",
  an update's pause, the autoscaler's reason for new replicas).

A task update that changes none of those fields (a health probe's result, a heartbeat's
timestamp) is not an event. An event's ``time`` is the write's ``updated_at`` (stamped
once by the writer, the same on every manager), or this manager's clock for a removal.

Bounds: events older than ``retention`` (an hour) or past ``max_events`` are dropped; a
reader that falls ``max_pending`` events behind a live stream is cut off with Unavailable
rather than holding the log back. A log starts empty when its manager starts; if the
store is replaced by a snapshot, the log goes on from there (what the snapshot skipped
has no events).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Iterator

from swarmlite.api import Config, Network, Node, Object, Secret, Service, Task
from swarmlite.api.control import ClusterEvent, EventsRequest
from swarmlite.api.filters import EVENT, match_event
from swarmlite.api.service import UpdateState
from swarmlite.clock import Clock
from swarmlite.errors import InvalidArgument, Unavailable
from swarmlite.log import kv
from swarmlite.store import Event, EventAction, MemoryStore

log = logging.getLogger(__name__)

RETENTION_SECONDS = 3600.0
MAX_EVENTS = 100_000
MAX_PENDING = 10_000
KINDS = ("service", "task", "node", "network", "secret", "config")
_ACTIONS = {
    EventAction.CREATED: "create",
    EventAction.UPDATED: "update",
    EventAction.DELETED: "remove",
}


def describe(event: Event) -> tuple[dict[str, str], str] | None:
    """The attributes and message of a store change, or None when it is not an event."""
    old, new = event.old, event.new
    obj = new if new is not None else old
    assert obj is not None
    fields = _fields(obj)
    if fields is None:
        return None
    attributes, message = fields
    if event.action is EventAction.UPDATED:
        assert old is not None
        before = _fields(old)
        assert before is not None
        changed = _changes(before[0], attributes)
        if obj.KIND == "task" and not changed:
            return None  # a probe's result or a timestamp: nothing a reader acts on
        if obj.KIND == "service" and "updatestate.new" not in changed:
            message = ""  # an update's message is news only when its state moves
        if isinstance(new, Service) and isinstance(old, Service):
            decided = new.autoscale  # the autoscaler's decision, or a scale by hand it saw
            if decided is not None and decided != old.autoscale:
                message = decided.reason
        attributes = {k: v for k, v in attributes.items() if k in _ALWAYS} | changed
    else:
        attributes = {k: v for k, v in attributes.items() if k in _ALWAYS or v}
    return attributes, message


_ALWAYS = ("name", "service", "node", "slot")  # kept on every event of the object


def _changes(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    changed: dict[str, str] = {}
    for key, value in after.items():
        if key in ("service", "slot"):  # a task keeps these for life
            continue
        if before.get(key, "") != value:
            changed[f"{key}.old"] = before.get(key, "")
            changed[f"{key}.new"] = value
    return changed


def _fields(obj: Object) -> tuple[dict[str, str], str] | None:
    """What an event shows of ``obj`` (name first), and the message it carries."""
    if isinstance(obj, Service):
        spec = obj.spec
        update = obj.update_status
        state = update.state.value if update is not None else ""
        return {
            "name": spec.name,
            "image": spec.task.container.image,
            "replicas": str(spec.replicas) if spec.mode.value == "replicated" else "",
            "updatestate": state,
        }, "" if update is None or update.state is UpdateState.COMPLETED else update.message
    if isinstance(obj, Task):
        task_status = obj.status
        return {
            "name": f"{obj.service_name}.{obj.slot or obj.node_id}",
            "service": obj.service_name,
            "node": obj.node_id,
            "slot": str(obj.slot) if obj.slot else "",
            "state": task_status.state.value,
            "desiredstate": obj.desired_state.value,
        }, task_status.err or task_status.pending_reason or task_status.message
    if isinstance(obj, Node):
        return {
            "name": obj.status.hostname,
            "state": obj.status.state.value,
            "availability": obj.spec.availability.value,
            "role": obj.spec.role.value,
        }, obj.status.message
    if isinstance(obj, Network | Secret | Config):
        return {"name": obj.spec.name}, ""
    return None


class _Reader:
    """One live stream's queue; the log pushes into it without ever waiting."""

    def __init__(self, max_pending: int) -> None:
        self.queue: collections.deque[ClusterEvent] = collections.deque()
        self.ready = asyncio.Event()
        self.error: Unavailable | None = None
        self._max = max_pending

    def push(self, event: ClusterEvent) -> None:
        if self.error is not None:
            return
        if len(self.queue) >= self._max:
            self.queue.clear()
            self.error = Unavailable(
                f"the event stream fell more than {self._max} events behind and was closed",
                hint="read the stream faster, or ask for fewer events with --filter",
            )
        else:
            self.queue.append(event)
        self.ready.set()


class EventLog:
    def __init__(
        self,
        memory: MemoryStore,
        clock: Clock,
        *,
        retention: float = RETENTION_SECONDS,
        max_events: int = MAX_EVENTS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.memory = memory
        self.clock = clock
        self.retention = retention
        self._events: collections.deque[ClusterEvent] = collections.deque(maxlen=max_events)
        self._readers: set[_Reader] = set()
        self._max_pending = max_pending
        self._seq = 0

    def __iter__(self) -> Iterator[ClusterEvent]:
        return iter(tuple(self._events))

    async def run(self) -> None:
        """Follow the store for ever (a watch the store closes is opened again)."""
        while True:
            watch = self.memory.watch(kinds=KINDS)
            try:
                while True:
                    for event in await watch.next_batch():
                        self.add(event)
            except Unavailable as exc:
                log.info("event log watch reopened %s", kv(reason=exc.message))
            finally:
                watch.close()

    def add(self, event: Event) -> ClusterEvent | None:
        """Record one store change (if it is an event) and hand it to the live readers."""
        described = describe(event)
        if described is None:
            return None
        attributes, message = described
        obj = event.object
        now = self.clock.wall()
        self._seq += 1
        recorded = ClusterEvent(
            seq=self._seq,
            time=obj.updated_at if event.new is not None and obj.updated_at else now,
            index=event.index,
            type=obj.KIND,
            action=_ACTIONS[event.action],
            id=obj.id,
            attributes=attributes,
            actor=event.actor,
            message=message,
        )
        events = self._events
        events.append(recorded)
        while events and events[0].time < now - self.retention:
            events.popleft()
        for reader in self._readers:
            reader.push(recorded)
        return recorded

    async def stream(self, request: EventsRequest) -> AsyncIterator[ClusterEvent]:
        """The kept events from ``since`` on, then the new ones until ``until`` passes."""
        EVENT.check(request.filters)
        since, until, filters = request.since, request.until, request.filters
        if since is None and until is not None:
            since = 0.0  # as dockerd: an end alone also shows what was kept before it
        if since is not None and until is not None and until < since:
            raise InvalidArgument("--until must not be before --since")
        reader = _Reader(self._max_pending)
        self._readers.add(reader)  # before reading the log: nothing falls in between
        try:
            seen = self._seq
            if since is not None:
                for event in self:
                    if event.seq > seen:
                        break
                    in_time = event.time >= since and (until is None or event.time <= until)
                    if in_time and _wanted(filters, event):
                        yield event
            while until is None or self.clock.wall() < until:
                if not reader.queue:
                    reader.ready.clear()
                    if reader.error is None:
                        wait = None if until is None else until - self.clock.wall()
                        try:
                            async with asyncio.timeout(wait):
                                await reader.ready.wait()
                        except TimeoutError:
                            return
                if reader.error is not None:
                    raise reader.error
                event = reader.queue.popleft()
                if event.seq <= seen:
                    continue
                if until is not None and event.time > until:
                    return
                if _wanted(filters, event):
                    yield event
        finally:
            self._readers.discard(reader)


def _wanted(filters: dict[str, list[str]], event: ClusterEvent) -> bool:
    return match_event(
        filters,
        type=event.type,
        action=event.action,
        id=event.id,
        attributes=event.attributes,
    )
