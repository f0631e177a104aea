"""``/services/{id}/logs`` and ``/tasks/{id}/logs``: a service's log lines as dockerd
streams them.

Owns the reading of the query (``stdout``, ``stderr``, ``follow``, ``tail``, ``since``,
``timestamps``, ``details``; refused with 400 before anything is sent when wrong) and the
stream: the 200 and its headers go out at once (a ``follow`` with nothing to say yet
must still show the client the stream is open), then one stdcopy frame per line
(``[stream, 0, 0, 0, length]`` + payload; 1 stdout, 2 stderr), each line with its
``\\n``, because the docker CLI reads each frame as one line. ``details`` puts swarm's
context before the line (``com.docker.swarm.node.id=...,...service.id=...,...task.id=...``,
sorted and query-escaped, as dockerd's ``attrsByteSlice``); ``timestamps`` puts the time
(nine fraction digits) before that. A TTY service's stream is raw, without frames, as is
every stream for API versions before 1.42 by its content type. An error after the 200
becomes a frame of stream 3 (``Error grabbing logs: ...``), which the client prints.

The stream ends when the control API's does (all lines sent, without ``follow``), or when
the client goes away: a closed connection is noticed within a second even when no line
comes. Does not own where lines come from (the control API's SERVICE_LOGS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote_plus

from aiohttp import web

from swarmlite.api.control import LogLine, LogsRequest
from swarmlite.api.dockerjson import rfc3339
from swarmlite.api.routes import SERVICE_LOGS
from swarmlite.dockerapi.http import api_version, control, query_bool
from swarmlite.errors import InvalidArgument, SwarmliteError
from swarmlite.log import kv

log = logging.getLogger(__name__)

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"
STDOUT, STDERR, SYSTEM_ERROR = 1, 2, 3
_CONTEXT = "com.docker.swarm"
_QUEUE_LINES = 1000  # read ahead of a slow client
_CLIENT_CHECK = 1.0  # seconds between looks at the client's connection while idle


@dataclass(frozen=True)
class LogOptions:
    stdout: bool
    stderr: bool
    follow: bool
    tail: int  # -1: all
    since: float  # epoch seconds; 0: from the start
    timestamps: bool
    details: bool


def log_options(request: web.Request) -> LogOptions:
    """The query, checked as dockerd checks it before it starts a stream."""
    stdout, stderr = query_bool(request, "stdout"), query_bool(request, "stderr")
    if not (stdout or stderr):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    return LogOptions(
        stdout=stdout,
        stderr=stderr,
        follow=query_bool(request, "follow"),
        tail=_tail(request.query.get("tail", "")),
        since=_since(request.query.get("since", "")),
        timestamps=query_bool(request, "timestamps"),
        details=query_bool(request, "details"),
    )


def _tail(raw: str) -> int:
    if raw in ("", "all"):
        return -1
    try:
        lines = int(raw)
    except ValueError:
        lines = -1
    if lines < 0:
        raise InvalidArgument(f"tail value must be a positive integer, got {raw!r}")
    return lines


def _since(raw: str) -> float:
    """Unix seconds, optionally ``.nanoseconds`` (what clients send; docker-py's ``0`` is
    unset)."""
    if not raw:
        return 0.0
    seconds, _, fraction = raw.partition(".")
    if not seconds.lstrip("-").isdigit() or (fraction and not fraction.isdigit()):
        raise InvalidArgument(
            f"could not parse since timestamp: {raw!r}",
            hint="seconds since the epoch, optionally with .nanoseconds",
        )
    return max(0.0, float(raw))


def frame(stream: int, payload: bytes) -> bytes:
    """One stdcopy frame."""
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def details_prefix(line: LogLine, service_id: str) -> str:
    attrs = {
        f"{_CONTEXT}.node.id": line.node_id,
        f"{_CONTEXT}.service.id": service_id,
        f"{_CONTEXT}.task.id": line.task_id,
    }
    return ",".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in sorted(attrs.items()))


def render(line: LogLine, service_id: str, options: LogOptions) -> bytes:
    """The payload of one line: ``[time ][details ]text\\n``."""
    text = line.line + "\n"
    if options.details:
        text = f"{details_prefix(line, service_id)} {text}"
    if options.timestamps:
        text = f"{rfc3339(line.timestamp, fixed=True)} {text}"
    return text.encode("utf-8", errors="replace")


async def stream_logs(
    request: web.Request,
    options: LogOptions,
    *,
    service_id: str,
    tty: bool,
    task_id: str | None = None,
) -> web.StreamResponse:
    """Send the logs of ``service_id`` (only ``task_id``'s lines, when given)."""
    multiplexed = not tty
    content_type = MULTIPLEXED if multiplexed and api_version(request) >= (1, 42) else RAW
    response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
    await response.prepare(request)
    lines = control(request).items(
        SERVICE_LOGS,
        LogsRequest(
            service=service_id, follow=options.follow, tail=options.tail, since=options.since
        ),
    )
    try:
        async for item in _until_gone(request, lines):
            if isinstance(item, SwarmliteError):
                message = f"Error grabbing logs: {item.message}\n".encode()
                await response.write(frame(SYSTEM_ERROR, message) if multiplexed else message)
                continue
            if task_id is not None and item.task_id != task_id:
                continue
            stream = STDERR if item.stream == "stderr" else STDOUT
            if not (options.stderr if stream == STDERR else options.stdout):
                continue
            payload = render(item, service_id, options)
            await response.write(frame(stream, payload) if multiplexed else payload)
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away: nothing more to say
    except Exception:  # a bug: the status is sent, so say it in the stream
        log.exception("docker api log stream broke %s", kv(service=service_id))
        with contextlib.suppress(ConnectionError):
            message = b"Error grabbing logs: internal error in swarmlite (see its log)\n"
            await response.write(frame(SYSTEM_ERROR, message) if multiplexed else message)
    return response


async def _until_gone(
    request: web.Request, lines: AsyncIterator[LogLine]
) -> AsyncIterator[LogLine | SwarmliteError]:
    """``lines``, then the error that ended them if any; stops early, within
    ``_CLIENT_CHECK``, when the client has closed its connection."""
    queue: asyncio.Queue[LogLine | SwarmliteError | None] = asyncio.Queue(_QUEUE_LINES)

    async def pump() -> None:
        try:
            async for line in lines:
                await queue.put(line)
            await queue.put(None)
        except SwarmliteError as exc:
            await queue.put(exc)
            await queue.put(None)

    reader = asyncio.create_task(pump())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), _CLIENT_CHECK)
            except TimeoutError:
                gone = request.transport is None or request.transport.is_closing()
                if gone or reader.done():
                    return
                continue
            if item is None:
                return
            yield item
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        aclose = getattr(lines, "aclose", None)
        if aclose is not None:
            await aclose()
