"""The dashboard's HTTP server: the page, its JSON, and the guard in front of both.

Owns the aiohttp application (``build_app``), the token check that every request passes
(``_guard``), the security headers of every answer, and ``Dashboard``: the cache of the
cluster's state, the event follower and the replica sampler, all fed by the node's own
control API over its unix socket (``SocketControl``), never by the store, so that the page
sees what ``swarmlite`` sees: a follower forwards the calls to the leader. Does not own the
JSON's shapes (``dashboard.shape``), the token file (``dashboard.access``) nor the page's
drawing (``static/``).

Paths: ``/`` (the page), ``/static/app.js`` and ``/static/style.css``, and the JSON the page
polls: ``/api/state`` (cached for ``state_ttl`` so that many viewers cost one round of
calls), ``/api/events?after=N`` and ``/api/metrics``. Everything is GET: the dashboard
changes nothing.

A failure of the control API (no leader, a manager restarting) is not an HTTP error: the
page gets the last state it saw with ``error`` set and ``stale`` true, and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import ipaddress
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol

from aiohttp import web

from swarmlite.api.control import EventsRequest, ListRequest, ServiceFilter, TaskFilter
from swarmlite.api.routes import EVENTS, NODE_LS, SERVICE_LS, TASK_LS, Rep, Req, Route
from swarmlite.clock import Clock, SystemClock
from swarmlite.dashboard.access import (
    ensure_token,
    forget_addr,
    parse_addr,
    token_matches,
    write_addr,
)
from swarmlite.dashboard.shape import (
    History,
    Json,
    event_json,
    events_json,
    state_json,
)
from swarmlite.errors import FailedPrecondition, SwarmliteError
from swarmlite.log import kv
from swarmlite.rpc import RpcClient

log = logging.getLogger(__name__)

STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
EVENTS_BACKFILL = 600.0  # seconds of the managers' kept events shown on the first start

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Control(Protocol):
    """What the dashboard needs of the control API (a fake in the unit tests)."""

    async def call(self, route: Route[Req, Rep], request: Req) -> Rep: ...

    def items(self, route: Route[Req, Rep], request: Req) -> AsyncIterator[Rep]: ...


class SocketControl:
    """The node's own control API over its unix socket: the local admin's rights, and a
    follower forwards to the leader."""

    def __init__(self, socket_path: str, *, timeout: float = 10.0) -> None:
        self._client = RpcClient("http://localhost", None, unix_socket=socket_path, timeout=timeout)

    async def call(self, route: Route[Req, Rep], request: Req) -> Rep:
        return await self._client.request(route, request)

    def items(self, route: Route[Req, Rep], request: Req) -> AsyncIterator[Rep]:
        return self._client.items(route, request)

    async def close(self) -> None:
        await self._client.close()


# --------------------------------------------------------------------------- what it shows


class Dashboard:
    """The state, events and replica history the page polls; ``run`` keeps the last two
    fresh until ``stop``."""

    def __init__(
        self,
        control: Control,
        clock: Clock,
        *,
        state_ttl: float = 1.0,
        sample_period: float = 2.0,
        max_samples: int = 180,
        keep_events: int = 200,
        retry: float = 5.0,
    ) -> None:
        self._control = control
        self._clock = clock
        self.state_ttl = state_ttl
        self.sample_period = sample_period
        self.retry = retry
        self.history = History(max_samples)
        self._state: Json | None = None
        self._state_at = -math.inf
        self._state_lock = asyncio.Lock()
        self._events: deque[Json] = deque(maxlen=keep_events)
        self._event_keys: deque[tuple[int, str, str, str]] = deque(maxlen=4 * keep_events)
        self._count = 0
        self.events_status = "connecting"  # connecting | live | unavailable
        self.events_error = ""
        self._stopping = asyncio.Event()

    # ------------------------------------------------------------------ the page's reads

    async def state(self) -> Json:
        async with self._state_lock:
            now = self._clock.monotonic()
            if self._state is not None and now - self._state_at < self.state_ttl:
                return self._state
            try:
                nodes = await self._control.call(NODE_LS, ListRequest())
                services = await self._control.call(SERVICE_LS, ServiceFilter())
                tasks = await self._control.call(TASK_LS, TaskFilter(all=True))
            except SwarmliteError as exc:
                log.debug("dashboard state unavailable %s", kv(error=exc.code))
                last = self._state or {
                    "time": self._clock.wall(),
                    "nodes": [],
                    "services": [],
                    "unassigned": [],
                }
                return {**last, "error": _words(exc), "stale": True}
            self._state = state_json(
                nodes.nodes, services.services, tasks.tasks, now=self._clock.wall()
            )
            self._state_at = now
            return self._state

    def events(self, after: int) -> Json:
        return events_json(self._events, after, status=self.events_status, error=self.events_error)

    def metrics(self) -> Json:
        return self.history.to_json(self.sample_period)

    # ------------------------------------------------------------------ background

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            children = [tasks.create_task(self._sample()), tasks.create_task(self._follow())]
            await self._stopping.wait()
            for child in children:
                child.cancel()

    def stop(self) -> None:
        self._stopping.set()

    async def _sample(self) -> None:
        while True:
            try:
                services = await self._control.call(SERVICE_LS, ServiceFilter())
                self.history.record(self._clock.wall(), services.services)
            except SwarmliteError as exc:
                log.debug("dashboard sample skipped %s", kv(error=exc.code))
            except Exception:  # a bug here must not stop the daemon: log, sample again
                log.exception("dashboard sample failed")
            await self._clock.sleep(self.sample_period)

    async def _follow(self) -> None:
        """Keep the newest events of the EVENTS stream; after a break, ask again from the
        last one seen (those seen already are dropped)."""
        since = self._clock.wall() - EVENTS_BACKFILL
        while True:
            try:
                self.events_status = "connecting"
                async for event in self._control.items(EVENTS, EventsRequest(since=since)):
                    self.events_status, self.events_error = "live", ""
                    key = (event.index, event.type, event.id, event.action)
                    since = max(since, event.time)
                    if key in self._event_keys:
                        continue
                    self._event_keys.append(key)
                    self._count += 1
                    self._events.append(event_json(self._count, event))
                self.events_status = "connecting"
            except SwarmliteError as exc:
                self.events_status, self.events_error = "unavailable", _words(exc)
                log.debug("dashboard events unavailable %s", kv(error=exc.code))
            except Exception:
                self.events_status, self.events_error = "unavailable", "internal error"
                log.exception("dashboard events follower failed")
            await self._clock.sleep(self.retry)


def _words(exc: SwarmliteError) -> str:
    return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


# --------------------------------------------------------------------------- HTTP

DASHBOARD_KEY = web.AppKey("swarmlite.dashboard", Dashboard)
TOKEN_KEY = web.AppKey("swarmlite.dashboard.token", str)
COOKIE_KEY = web.AppKey("swarmlite.dashboard.cookie", str)


def cookie_name(port: int) -> str:
    """One cookie per port: browsers share a host's cookies across its ports."""
    return f"swarmlite_dashboard_{port}"


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only a holder of the token gets anything: ``?token=`` (the URL ``swarmlite
    dashboard`` prints; the page then gets it as an HttpOnly cookie and the token leaves
    the address bar), the cookie, or ``Authorization: Bearer``."""
    token = request.app[TOKEN_KEY]
    if token_matches(request.query.get("token"), token):
        if request.method == "GET" and not request.path.startswith("/api/"):
            query = {k: v for k, v in request.query.items() if k != "token"}
            found = web.HTTPSeeOther(location=str(request.rel_url.with_query(query)))
            found.set_cookie(
                request.app[COOKIE_KEY], token, httponly=True, samesite="Strict", path="/"
            )
            raise found
        return await handler(request)
    bearer = request.headers.get("Authorization", "")
    if token_matches(bearer.removeprefix("Bearer "), token) and bearer.startswith("Bearer "):
        return await handler(request)
    if token_matches(request.cookies.get(request.app[COOKIE_KEY]), token):
        return await handler(request)
    return web.Response(
        status=401,
        text="unauthorized: open the URL that `swarmlite dashboard` prints on a manager\n",
        headers={"WWW-Authenticate": 'Bearer realm="swarmlite dashboard"'},
    )


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(HEADERS)


def _static(name: str) -> bytes:
    return (importlib.resources.files("swarmlite.dashboard") / "static" / name).read_bytes()


def build_app(dashboard: Dashboard, token: str, *, cookie: str) -> web.Application:
    app = web.Application(middlewares=[_guard])
    app[DASHBOARD_KEY] = dashboard
    app[TOKEN_KEY] = token
    app[COOKIE_KEY] = cookie
    app.on_response_prepare.append(_headers)
    page = _static("index.html")
    files = {name: (_static(name), kind) for name, kind in STATIC.items()}

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def static(request: web.Request) -> web.Response:
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found[0], content_type=found[1], charset="utf-8")

    async def state(request: web.Request) -> web.Response:
        return web.json_response(await request.app[DASHBOARD_KEY].state())

    async def events(request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
        except ValueError as exc:
            raise web.HTTPBadRequest(text="after must be an integer") from exc
        return web.json_response(request.app[DASHBOARD_KEY].events(after))

    async def metrics(request: web.Request) -> web.Response:
        return web.json_response(request.app[DASHBOARD_KEY].metrics())

    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/metrics", metrics)
    return app


class DashboardServer:
    """The dashboard of one manager, on ``addr``, until ``close``."""

    def __init__(
        self, control_socket: Path, addr: str, data_dir: Path, *, clock: Clock | None = None
    ) -> None:
        self.addr = addr
        self._host, self._port = parse_addr(addr)
        self._data_dir = data_dir
        self.control = SocketControl(str(control_socket))
        self.dashboard = Dashboard(self.control, clock or SystemClock())
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (a held port is FailedPrecondition); the token is made if there is none."""
        token = ensure_token(self._data_dir)
        app = build_app(self.dashboard, token, cookie=cookie_name(self._port))
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except OSError as exc:
            await self.close()
            raise FailedPrecondition(
                f"cannot listen on {self.addr} for the dashboard: {exc.strerror or exc}",
                hint="choose another --dashboard-addr",
            ) from exc
        write_addr(self._data_dir, self.addr)
        log.info("dashboard listening %s", kv(addr=self.addr))
        if not _loopback(self._host):
            log.warning(
                "the dashboard is plain HTTP: its token crosses the network in clear %s",
                kv(addr=self.addr, hint="listen on 127.0.0.1 and tunnel, or put TLS in front"),
            )

    async def run(self) -> None:
        await self.dashboard.run()

    def stop(self) -> None:
        self.dashboard.stop()

    async def close(self) -> None:
        if self._runner is not None:
            forget_addr(self._data_dir)
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
            self._runner = None
        await self.control.close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
