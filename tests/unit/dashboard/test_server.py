"""The dashboard's server without a cluster: a fake control API behind it, a loopback test
server in front. Nothing is shown without the token; with it, the page, its files and its
JSON; the event follower and the sampler keep going through failures."""

from __future__ import annotations

import asyncio
import importlib.resources
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from swarmlite.api import NodeRole
from swarmlite.api.control import (
    ClusterEvent,
    EventsRequest,
    ManagerStatus,
    NodeList,
    NodeView,
    ServiceList,
    ServiceView,
    TaskList,
)
from swarmlite.api.routes import EVENTS, NODE_LS, SERVICE_LS, TASK_LS, Rep, Req, Route
from swarmlite.dashboard.server import (
    EVENTS_BACKFILL,
    HEADERS,
    Dashboard,
    build_app,
    cookie_name,
)
from swarmlite.errors import NoLeader, NotFound
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_node, make_service, make_task

TOKEN = "s3cret-token"
COOKIE = cookie_name(8765)
WEB = make_service("web", id="svc-web", replicas=2)
GUARDED = ["/", "/static/app.js", "/static/style.css", "/api/state", "/api/events", "/api/metrics"]


def _event(seq: int, *, index: int | None = None, time: float = 1.0) -> ClusterEvent:
    return ClusterEvent(
        seq=seq,
        time=time,
        index=index if index is not None else seq,
        type="service",
        action="update",
        id="svc-web",
        attributes={"name": "web"},
    )


class FakeControl:
    """Answers NODE_LS, SERVICE_LS and TASK_LS from its fields; EVENTS from ``streams``,
    one list per connection (an exception in a list is raised there)."""

    def __init__(self) -> None:
        self.nodes = [
            NodeView(
                node=make_node(id="n1", hostname="m1", role=NodeRole.MANAGER),
                manager=ManagerStatus(addr="127.0.0.1:1", leader=True, reachability="reachable"),
            )
        ]
        self.services = [ServiceView(service=WEB, running=1, desired=2)]
        self.tasks = [make_task(WEB, id="t1", node_id="n1", state="running")]
        self.failure: Exception | None = None
        self.streams: list[list[ClusterEvent | Exception]] = []
        self.requests: list[EventsRequest] = []
        self.calls: list[str] = []

    async def call(self, route: Route[Req, Rep], request: Req) -> Rep:
        self.calls.append(route.path)
        if self.failure is not None:
            raise self.failure
        replies: dict[str, Any] = {
            NODE_LS.path: NodeList(nodes=self.nodes),
            SERVICE_LS.path: ServiceList(services=self.services),
            TASK_LS.path: TaskList(tasks=self.tasks),
        }
        return replies[route.path]  # type: ignore[no-any-return]

    def items(self, route: Route[Req, Rep], request: Req) -> AsyncIterator[Rep]:
        assert route is EVENTS and isinstance(request, EventsRequest)
        self.requests.append(request)
        return self._stream()  # type: ignore[return-value]

    async def _stream(self) -> AsyncIterator[ClusterEvent]:
        if not self.streams:
            raise NotFound("no rpc endpoint at /control/v1/events")
        for item in self.streams.pop(0):
            if isinstance(item, Exception):
                raise item
            yield item


@pytest.fixture
def fake() -> FakeControl:
    return FakeControl()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(fake: FakeControl, clock: FakeClock) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(Dashboard(fake, clock), TOKEN, cookie=COOKIE)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- the guard


@pytest.mark.parametrize("path", GUARDED)
async def test_without_the_token_every_path_is_401_and_shows_nothing(
    client: TestClient[Any, Any], fake: FakeControl, path: str
) -> None:
    for headers in ({}, _bearer("wrong"), {"Cookie": f"{COOKIE}=wrong"}, {"Authorization": TOKEN}):
        response = await client.get(path, headers=headers)
        body = await response.text()
        assert response.status == 401, (path, headers)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "m1" not in body and "web" not in body and "<" not in body
    response = await client.get(path, params={"token": "wrong"})
    assert response.status == 401
    assert fake.calls == []  # nothing was even asked of the cluster


async def test_a_cookie_for_another_port_is_not_this_dashboards(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/api/state", headers={"Cookie": f"{cookie_name(1)}={TOKEN}"})
    assert response.status == 401


async def test_the_token_in_the_url_becomes_a_cookie_and_leaves_the_address_bar(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/", params={"token": TOKEN}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/"
    cookie = response.cookies[COOKIE]
    assert cookie.value == TOKEN
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"

    page = await client.get("/", headers={"Cookie": f"{COOKIE}={TOKEN}"})
    assert page.status == 200
    assert "<title>swarmlite</title>" in await page.text()


async def test_scripts_may_send_the_token_as_a_bearer(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/state", headers=_bearer())
    assert response.status == 200
    response = await client.get("/api/state", params={"token": TOKEN})  # no redirect for JSON
    assert response.status == 200


async def test_every_answer_carries_the_security_headers(client: TestClient[Any, Any]) -> None:
    for response in (await client.get("/"), await client.get("/", headers=_bearer())):
        for name, value in HEADERS.items():
            assert response.headers[name] == value
    assert "script-src 'self'" in HEADERS["Content-Security-Policy"]


# --------------------------------------------------------------------------- the page


async def test_the_page_and_its_files_are_served_from_the_package(
    client: TestClient[Any, Any],
) -> None:
    static = importlib.resources.files("swarmlite.dashboard") / "static"
    for path, name, kind in (
        ("/", "index.html", "text/html"),
        ("/static/app.js", "app.js", "text/javascript"),
        ("/static/style.css", "style.css", "text/css"),
    ):
        response = await client.get(path, headers=_bearer())
        assert response.status == 200
        assert response.content_type == kind
        assert await response.read() == (static / name).read_bytes()
    assert (await client.get("/static/../server.py", headers=_bearer())).status == 404
    assert (await client.get("/static/nothing.js", headers=_bearer())).status == 404


def test_the_page_loads_nothing_from_elsewhere() -> None:
    static = importlib.resources.files("swarmlite.dashboard") / "static"
    for name in ("index.html", "app.js", "style.css"):
        text = (static / name).read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
        assert "innerHTML" not in text  # the cluster's names are text, never markup


# --------------------------------------------------------------------------- the JSON


async def test_state_is_the_shaped_cluster_and_cached_briefly(
    client: TestClient[Any, Any], fake: FakeControl, clock: FakeClock
) -> None:
    state = await (await client.get("/api/state", headers=_bearer())).json()
    assert [n["name"] for n in state["nodes"]] == ["m1"]
    assert [t["id"] for t in state["nodes"][0]["tasks"]] == ["t1"]
    assert [(s["name"], s["running"], s["desired"]) for s in state["services"]] == [("web", 1, 2)]
    assert state["error"] is None

    await client.get("/api/state", headers=_bearer())
    assert len(fake.calls) == 3  # cached: one round of calls
    clock.advance(1.5)
    await client.get("/api/state", headers=_bearer())
    assert len(fake.calls) == 6


async def test_a_failing_control_api_gives_the_last_state_marked_stale(
    client: TestClient[Any, Any], fake: FakeControl, clock: FakeClock
) -> None:
    fake.failure = NoLeader("no leader elected yet")
    first = await (await client.get("/api/state", headers=_bearer())).json()
    assert first["nodes"] == [] and first["stale"] is True
    assert first["error"].startswith("no leader elected yet")

    fake.failure = None
    clock.advance(2)
    await client.get("/api/state", headers=_bearer())
    fake.failure = NoLeader("no leader elected yet")
    clock.advance(2)
    stale = await (await client.get("/api/state", headers=_bearer())).json()
    assert stale["stale"] is True
    assert [n["name"] for n in stale["nodes"]] == ["m1"]


async def test_events_are_asked_after_a_number(client: TestClient[Any, Any]) -> None:
    reply = await (await client.get("/api/events?after=0", headers=_bearer())).json()
    assert reply == {"events": [], "last": 0, "status": "connecting", "error": ""}
    response = await client.get("/api/events?after=x", headers=_bearer())
    assert response.status == 400


# --------------------------------------------------------------------------- background


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_the_follower_keeps_events_once_and_comes_back_after_a_failure(
    fake: FakeControl, clock: FakeClock
) -> None:
    now = clock.wall()
    fake.streams = [
        [_event(1, time=now - 2), _event(2, time=now - 1), NoLeader("leader lost")],
        [_event(2, time=now - 1), _event(3, time=now + 1)],  # from `since`: 2 again
    ]
    dashboard = Dashboard(fake, clock, retry=5.0)
    running = asyncio.create_task(dashboard.run())
    await _settle()
    assert [e["seq"] for e in dashboard.events(0)["events"]] == [1, 2]
    assert dashboard.events_status == "unavailable"
    assert "leader lost" in dashboard.events_error

    await clock.run_for(5.0)
    await _settle()
    reply = dashboard.events(2)
    assert [(e["n"], e["seq"]) for e in reply["events"]] == [(3, 3)]
    assert fake.requests[1].since == now - 1  # asked again from the last one seen
    assert fake.requests[0].since == now - EVENTS_BACKFILL

    # the stream ended: without an endpoint (an older manager) it says so and retries
    await clock.run_for(5.0)
    await _settle()
    assert dashboard.events_status == "unavailable"
    assert "no rpc endpoint" in dashboard.events_error

    dashboard.stop()
    await asyncio.wait_for(running, 1)


async def test_the_sampler_records_replicas_over_time(fake: FakeControl, clock: FakeClock) -> None:
    dashboard = Dashboard(fake, clock, sample_period=2.0)
    running = asyncio.create_task(dashboard.run())
    await _settle()
    fake.failure = NoLeader("no leader")  # a failed sample is skipped, not fatal
    await clock.run_for(2.0)
    fake.failure = None
    fake.services = [
        ServiceView(service=msgspec.structs.replace(WEB), running=2, desired=2),
    ]
    await clock.run_for(2.0)
    await _settle()
    samples = dashboard.metrics()["services"]["svc-web"]["samples"]
    assert [s[1:] for s in samples] == [[1, 2], [2, 2]]
    dashboard.stop()
    await asyncio.wait_for(running, 1)
