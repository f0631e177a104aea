"""The event log: store changes become Docker-style events with who asked and why; the
stream replays from --since, follows, filters and ends at --until."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import msgspec
import pytest

from swarmlite.api import NodeState, Service, TaskState
from swarmlite.api.actor import acting_as
from swarmlite.api.control import ClusterEvent, EventsRequest
from swarmlite.api.dockerjson import event_json
from swarmlite.api.service import UpdateState, UpdateStatus
from swarmlite.api.task import TaskStatus
from swarmlite.cli.commands.events import event_line
from swarmlite.errors import InvalidArgument, Unavailable
from swarmlite.manager.events import EventLog
from swarmlite.store import LocalProposer, MemoryStore, Store, Tx, decode_transaction
from swarmlite.store.tx import Transaction, encode_transaction
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_node, make_service, make_task

replace = msgspec.structs.replace


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Store, EventLog, FakeClock]]:
    memory = MemoryStore()
    clock = FakeClock()
    store = Store(memory, LocalProposer(memory), clock=clock)
    log = EventLog(memory, clock)
    running = asyncio.create_task(log.run())
    await asyncio.sleep(0)
    yield store, log, clock
    running.cancel()


async def write(store: Store, tx: Tx, actor: str = "") -> None:
    with acting_as(actor):
        await store.propose(tx)
    await asyncio.sleep(0)  # the log's watch takes the batch


def kept(log: EventLog) -> list[tuple[str, str, dict[str, str]]]:
    return [(e.type, e.action, e.attributes) for e in log]


async def test_a_service_create_scale_and_update_say_what_changed_and_who_asked(
    cluster: tuple[Store, EventLog, FakeClock],
) -> None:
    store, log, _ = cluster
    web = make_service("web", replicas=1, image="app:1")
    await write(store, Tx().create(web), "admin@n1")
    web = store.memory.get(Service, web.id)
    assert web is not None
    scaled = replace(web, spec=replace(web.spec, replicas=3))
    await write(store, Tx().update(scaled), "docker-api@n2")
    web = store.memory.get(Service, web.id)
    assert web is not None
    updating = replace(
        web,
        spec=replace(
            web.spec,
            task=replace(web.spec.task, container=replace(web.spec.task.container, image="app:2")),
        ),
        update_status=UpdateStatus(state=UpdateState.UPDATING, message="update in progress"),
    )
    await write(store, Tx().update(updating), "orchestrator.replicated")

    events = list(log)
    assert [(e.type, e.action, e.actor) for e in events] == [
        ("service", "create", "admin@n1"),
        ("service", "update", "docker-api@n2"),
        ("service", "update", "orchestrator.replicated"),
    ]
    assert events[0].attributes == {"name": "web", "image": "app:1", "replicas": "1"}
    assert events[1].attributes == {"name": "web", "replicas.old": "1", "replicas.new": "3"}
    assert events[2].attributes == {
        "name": "web",
        "image.old": "app:1",
        "image.new": "app:2",
        "updatestate.old": "",
        "updatestate.new": "updating",
    }
    assert events[2].message == "update in progress"
    assert [e.seq for e in events] == [1, 2, 3]


async def test_a_task_failure_says_why_and_a_no_op_task_write_is_not_an_event(
    cluster: tuple[Store, EventLog, FakeClock],
) -> None:
    store, log, _ = cluster
    web = make_service("web")
    task = make_task(web, slot=2, node_id="node-a", state=TaskState.RUNNING)
    await write(store, Tx().create(task), "orchestrator.replicated")
    task = store.memory.get(type(task), task.id)
    assert task is not None
    probed = replace(task, status=replace(task.status, health="healthy"))
    await write(store, Tx().update(probed), "agent@node-a")
    task = store.memory.get(type(task), task.id)
    assert task is not None
    failed = replace(task, status=TaskStatus(state=TaskState.FAILED, err="task: non-zero exit (3)"))
    await write(store, Tx().update(failed), "agent@node-a")

    assert kept(log) == [
        (
            "task",
            "create",
            {
                "name": "web.2",
                "service": "web",
                "node": "node-a",
                "slot": "2",
                "state": "running",
                "desiredstate": "running",
            },
        ),
        (
            "task",
            "update",
            {
                "name": "web.2",
                "service": "web",
                "node": "node-a",
                "slot": "2",
                "state.old": "running",
                "state.new": "failed",
            },
        ),
    ]
    assert list(log)[-1].message == "task: non-zero exit (3)"
    assert list(log)[-1].actor == "agent@node-a"


async def test_a_node_going_down_is_an_update_with_its_reason(
    cluster: tuple[Store, EventLog, FakeClock],
) -> None:
    store, log, _ = cluster
    node = make_node("n1", hostname="alpha")
    await write(store, Tx().create(node))
    stored = store.memory.get(type(node), "n1")
    assert stored is not None
    down = replace(
        stored, status=replace(stored.status, state=NodeState.DOWN, message="heartbeat failure")
    )
    await write(store, Tx().update(down), "dispatcher")
    await write(store, Tx().delete(store.memory.get(type(node), "n1")), "admin@n2")  # type: ignore[arg-type]

    events = list(log)
    assert [(e.action, e.attributes.get("state.new")) for e in events] == [
        ("create", None),
        ("update", "down"),
        ("remove", None),
    ]
    assert events[1].message == "heartbeat failure"
    assert events[2].attributes["name"] == "alpha"


async def collect(log: EventLog, request: EventsRequest) -> list[ClusterEvent]:
    return [event async for event in log.stream(request)]


async def test_since_until_and_filters_select_from_the_kept_events(
    cluster: tuple[Store, EventLog, FakeClock],
) -> None:
    store, log, clock = cluster
    start = clock.wall()
    web, db = make_service("web"), make_service("db")
    await write(store, Tx().create(web))
    clock.advance(10)
    await write(store, Tx().create(db))
    await write(store, Tx().create(make_task(web, slot=1, node_id="n1")))
    clock.advance(10)
    end = clock.wall()

    everything = await collect(log, EventsRequest(since=start, until=end))
    assert [(e.type, e.attributes["name"]) for e in everything] == [
        ("service", "web"),
        ("service", "db"),
        ("task", "web.1"),
    ]
    later = await collect(log, EventsRequest(since=start + 5, until=end))
    assert [e.attributes["name"] for e in later] == ["db", "web.1"]
    # An end alone replays what was kept before it, as dockerd does.
    assert len(await collect(log, EventsRequest(until=end))) == 3
    # `service=web` keeps the service and its tasks; `type` narrows to one kind.
    of_web = await collect(log, EventsRequest(until=end, filters={"service": ["web"]}))
    assert [e.type for e in of_web] == ["service", "task"]
    tasks = await collect(log, EventsRequest(until=end, filters={"type": ["task"]}))
    assert [e.attributes["name"] for e in tasks] == ["web.1"]
    on_n1 = await collect(log, EventsRequest(until=end, filters={"node": ["n1"]}))
    assert [e.attributes["name"] for e in on_n1] == ["web.1"]
    created = await collect(log, EventsRequest(until=end, filters={"event": ["remove"]}))
    assert created == []


async def test_a_bad_request_is_refused_before_any_event(
    cluster: tuple[Store, EventLog, FakeClock],
) -> None:
    _, log, clock = cluster
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        await collect(log, EventsRequest(until=clock.wall(), filters={"colour": ["red"]}))
    with pytest.raises(InvalidArgument, match="invalid filter 'type=pod'"):
        await collect(log, EventsRequest(until=clock.wall(), filters={"type": ["pod"]}))
    with pytest.raises(InvalidArgument, match="--until must not be before --since"):
        await collect(log, EventsRequest(since=clock.wall(), until=clock.wall() - 1))


async def test_a_live_stream_gets_new_events_only_and_ends_at_until(
    cluster: tuple[Store, EventLog, FakeClock],
) -> None:
    store, log, _ = cluster
    await write(store, Tx().create(make_service("old")))
    got: list[str] = []

    async def follow() -> None:
        async for event in log.stream(EventsRequest()):
            got.append(event.attributes["name"])
            if len(got) == 2:
                return

    reading = asyncio.create_task(follow())
    await asyncio.sleep(0)
    await write(store, Tx().create(make_service("one")))
    await write(store, Tx().create(make_service("two")))
    await asyncio.wait_for(reading, 5)
    assert got == ["one", "two"]
    # With an end a moment away and nothing happening, the stream ends by itself.
    began = time.monotonic()
    ended = await collect(log, EventsRequest(since=None, until=log.clock.wall() + 0.2))
    assert time.monotonic() - began < 5
    assert [e.attributes["name"] for e in ended] == ["old", "one", "two"]


async def test_a_reader_that_falls_behind_is_cut_off_not_the_log() -> None:
    memory = MemoryStore()
    clock = FakeClock()
    store = Store(memory, LocalProposer(memory), clock=clock)
    log = EventLog(memory, clock, max_pending=3)
    running = asyncio.create_task(log.run())
    await asyncio.sleep(0)
    stream = log.stream(EventsRequest())
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    for n in range(6):
        await store.propose(Tx().create(make_service(f"s{n}")))
    await asyncio.sleep(0)
    assert (await first).attributes["name"] == "s0"
    with pytest.raises(Unavailable, match="fell more than 3 events behind"):
        async for _ in stream:
            pass
    assert len(list(log)) == 6  # the log kept everything
    running.cancel()


def test_old_log_entries_without_an_actor_still_decode() -> None:
    class Before(msgspec.Struct, array_like=True):
        ops: list[object]

    data = msgspec.msgpack.encode(Before(ops=[]))
    assert decode_transaction(data) == Transaction([], "")
    assert decode_transaction(encode_transaction(Transaction([], "admin@n1"))).actor == "admin@n1"


def test_docker_shape_and_line(monkeypatch: pytest.MonkeyPatch) -> None:
    event = ClusterEvent(
        seq=1,
        time=1_796_593_111.25,
        index=7,
        type="service",
        action="update",
        id="abc",
        attributes={"name": "web", "replicas.old": "1", "replicas.new": "3"},
        actor="admin@n1",
        message="",
    )
    message = event_json(event)
    assert message == {
        "Type": "service",
        "Action": "update",
        "Actor": {
            "ID": "abc",
            "Attributes": {
                "name": "web",
                "replicas.old": "1",
                "replicas.new": "3",
                "by": "admin@n1",
            },
        },
        "scope": "swarm",
        "time": 1_796_593_111,
        "timeNano": 1_796_593_111_250_000_000,
    }
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert event_line(message) == (
            "2026-12-06T21:38:31.250000000Z service update abc "
            "(by=admin@n1, name=web, replicas.new=3, replicas.old=1)"
        )
        monkeypatch.setenv("TZ", "Asia/Kolkata")
        time.tzset()
        assert event_line(message).startswith("2026-12-07T03:08:31.250000000+05:30 service")
    finally:
        monkeypatch.undo()
        time.tzset()
