"""``/events``: the cluster's events and the node's runtime's, in one stream, as a swarm
manager's dockerd sends them.

Owns the reading of the query (``since``, ``until``, ``filters``; refused with 400 before
anything is sent when wrong), which sources a request needs, and the merge: the 200 goes out
at once, then one JSON message a line from whichever source has one (the runtime's lines as
it wrote them; the cluster's from the control API's EVENTS, in Docker's shape with scope
``swarm``). A ``type`` or ``scope`` filter that only one source can match leaves the other
unasked. Swarmlite's ``task`` events are sent only to a client that asks for that type,
because dockerd has none. The stream ends when every source has ended (an ``until`` that
passed) or when the client goes away (noticed within a second even when nothing happens).
A source that breaks off (the runtime stops answering, the leader is lost) or a server that
stops cuts the client's connection, so that the client never takes a broken stream for a
whole one.

On a worker (the node's INFO says so) only the runtime's events flow, as on a swarm
worker; on a node without a runtime (or whose runtime does not answer when the stream
starts) only the cluster's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from yarl import URL

from swarmlite.api.control import Empty, EventsRequest
from swarmlite.api.dockerjson import event_json
from swarmlite.api.filters import EVENT, Filters
from swarmlite.api.routes import EVENTS, INFO
from swarmlite.api.states import NodeRole
from swarmlite.dockerapi.http import VERSIONED, DockerError, control, query_filters
from swarmlite.dockerapi.passthrough import RUNTIME_KEY, upstream_target
from swarmlite.errors import InvalidArgument, SwarmliteError
from swarmlite.log import kv

log = logging.getLogger(__name__)

SWARM_TYPES = frozenset({"service", "node", "secret", "config", "network", "task"})
RUNTIME_ONLY_SWARM = frozenset({"service", "node", "secret", "config", "task"})  # not local
_CLIENT_CHECK = 1.0
_QUEUE = 1000
_BROKEN = object()  # what a source that broke off puts in the queue (an ended one: None)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/events", get_events)
    router.add_get(VERSIONED + "/events", get_events)


def _time(request: web.Request, name: str) -> float | None:
    """``since``/``until``: unix seconds with optional ``.nanoseconds``, as clients send."""
    raw = request.query.get(name, "")
    if not raw:
        return None
    seconds, _, fraction = raw.partition(".")
    if not seconds.lstrip("-").isdigit() or (fraction and not fraction.isdigit()):
        raise InvalidArgument(f"could not parse {name} timestamp: {raw!r}")
    return float(raw)


def sources(filters: Filters) -> tuple[bool, bool]:
    """(the cluster's, the runtime's): which event sources can match ``filters``."""
    types = set(filters.get("type", []))
    scopes = set(filters.get("scope", []))
    swarm = (not types or bool(types & SWARM_TYPES)) and (not scopes or "swarm" in scopes)
    runtime = (not types or bool(types - RUNTIME_ONLY_SWARM)) and (not scopes or "local" in scopes)
    return swarm, runtime


async def get_events(request: web.Request) -> web.StreamResponse:
    filters = query_filters(request)
    EVENT.check(filters)
    since, until = _time(request, "since"), _time(request, "until")
    if since is not None and until is not None and until < since:
        raise InvalidArgument("since time must be before until time")
    want_swarm, want_runtime = sources(filters)
    runtime = request.app.get(RUNTIME_KEY)
    queue: asyncio.Queue[bytes | object | None] = asyncio.Queue(_QUEUE)
    feeds: list[AsyncIterator[bytes]] = []
    if want_swarm and (await control(request).call(INFO, Empty())).role is not NodeRole.MANAGER:
        want_swarm = False  # a worker: the runtime's events only, as on a swarm worker
    if want_swarm:
        wanted = EventsRequest(since=since, until=until, filters=filters)
        feeds.append(_cluster(request, wanted, tasks="task" in filters.get("type", [])))
    if want_runtime and runtime is not None:
        feeds.append(_runtime(request))
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await response.prepare(request)

    async def pump(feed: AsyncIterator[bytes]) -> None:
        ended: object | None = None
        try:
            async for line in feed:
                await queue.put(line)
        except SwarmliteError as exc:
            log.info("docker api cluster events broke off %s", kv(error=exc.message))
            ended = _BROKEN
        except (aiohttp.ClientError, OSError, DockerError) as exc:
            log.info("docker api runtime events broke off %s", kv(error=str(exc)))
            ended = _BROKEN
        await queue.put(ended)

    pumps = [asyncio.create_task(pump(feed)) for feed in feeds]
    running, whole = len(pumps), True
    try:
        while running:
            try:
                line = await asyncio.wait_for(queue.get(), _CLIENT_CHECK)
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return response
                if runtime is not None and runtime.stopping:
                    whole = False
                    break
                continue
            if line is _BROKEN:
                whole = False
                break
            if line is None:
                running -= 1
                continue
            assert isinstance(line, bytes)
            await response.write(line)
        if whole:
            await response.write_eof()
        elif request.transport is not None:
            request.transport.close()  # a cut stream, not one that looks complete
    except ConnectionError:
        pass  # the client went away
    finally:
        for task in pumps:
            task.cancel()
        for task in pumps:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return response


async def _cluster(
    request: web.Request, wanted: EventsRequest, *, tasks: bool
) -> AsyncIterator[bytes]:
    async for event in control(request).items(EVENTS, wanted):
        if event.type == "task" and not tasks:
            continue
        yield (json.dumps(event_json(event), separators=(",", ":")) + "\n").encode()


async def _runtime(request: web.Request) -> AsyncIterator[bytes]:
    runtime = request.app[RUNTIME_KEY]
    try:
        target = await upstream_target(request, runtime)
        upstream = await runtime.session().get(URL("http://docker" + target, encoded=True))
    except (aiohttp.ClientConnectionError, OSError, DockerError) as exc:
        # A runtime that is down has no events to add: the cluster's still flow.
        log.info("docker api events without the runtime's %s", kv(error=str(exc)))
        return
    async with upstream:
        if upstream.status != 200:
            body = await upstream.read()
            log.info(
                "runtime refused its events %s",
                kv(status=upstream.status, body=body[:200].decode(errors="replace")),
            )
            return
        while line := await upstream.content.readline():
            yield line
