"""Answer the manager's LogsQuery with the logs of this node's task containers.

Owns the streams of one node: each query reads its tasks' containers (`driver.logs`,
with the query's follow and tail) side by side and sends what it read as LogChunk
messages, a few hundred lines at most per chunk, and a last chunk with ``done=True``
when every container's log has ended (never, for a follow, until the containers exit).
A query with ``cancel=True`` stops the stream of the same id. Does not own which
container belongs to which task: it asks `lookup`.

Errors: a task unknown here or a container gone is skipped; a runtime error ends that
container's part of the stream (logged) with one last line on stderr saying why, so that a
task whose log driver keeps nothing to read (``none``) or whose runtime failed shows its
reason in ``service logs`` instead of nothing; a failed send ends the whole stream, since
its reader is gone with the session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from swarmlite.agent.driver import RuntimeDriver
from swarmlite.api.control import AgentMessage, LogChunk, LogLine, LogsQuery
from swarmlite.clock import Clock, SystemClock
from swarmlite.errors import NotFound, SwarmliteError
from swarmlite.log import kv

log = logging.getLogger(__name__)

MAX_LINES = 200  # per chunk
BUFFER_LINES = 1000  # read ahead of a slow sender, per query


@dataclass(frozen=True)
class LogSource:
    """Where a task's log is: its container, and the name `service logs` shows for it."""

    container_id: str
    task_name: str


class LogServer:
    def __init__(
        self,
        node_id: str,
        driver: RuntimeDriver,
        send: Callable[[AgentMessage], Awaitable[None]],
        lookup: Callable[[str], LogSource | None],
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._node_id = node_id
        self._driver = driver
        self._send = send
        self._lookup = lookup
        self._queries: asyncio.Queue[LogsQuery | None] = asyncio.Queue()
        self._streams: dict[str, asyncio.Task[None]] = {}

    @property
    def streaming(self) -> list[str]:
        """The ids of the queries being answered now."""
        return sorted(self._streams)

    def handle(self, query: LogsQuery) -> None:
        """Start (or, with cancel=True, stop) answering `query`; returns at once."""
        self._queries.put_nowait(query)

    def stop(self) -> None:
        self._queries.put_nowait(None)

    async def run(self) -> None:
        """Answer queries until `stop`; every stream still running is then cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                while (query := await self._queries.get()) is not None:
                    self._cancel(query.query_id)
                    if not query.cancel:
                        self._streams[query.query_id] = group.create_task(self._stream(query))
                for stream in self._streams.values():
                    stream.cancel()
        finally:
            self._streams.clear()

    def _cancel(self, query_id: str) -> None:
        stream = self._streams.pop(query_id, None)
        if stream is not None:
            stream.cancel()
            log.debug("log stream cancelled %s", kv(query=query_id))

    async def _stream(self, query: LogsQuery) -> None:
        me = asyncio.current_task()
        lines: asyncio.Queue[LogLine | None] = asyncio.Queue(BUFFER_LINES)
        sources = [(t, s) for t in query.task_ids if (s := self._lookup(t)) is not None]
        try:
            async with asyncio.TaskGroup() as group:
                for task_id, source in sources:
                    group.create_task(self._read(query, task_id, source, lines))
                group.create_task(self._forward(query.query_id, lines, len(sources)))
            await self._send(LogChunk(query_id=query.query_id, lines=[], done=True))
        except* SwarmliteError as group_exc:
            log.info(
                "log stream ended %s",
                kv(query=query.query_id, error=_first_message(group_exc)),
            )
        except* Exception:
            log.exception("log stream broke %s", kv(query=query.query_id))
        finally:
            if self._streams.get(query.query_id) is me:
                del self._streams[query.query_id]

    async def _read(
        self,
        query: LogsQuery,
        task_id: str,
        source: LogSource,
        lines: asyncio.Queue[LogLine | None],
    ) -> None:
        entries = self._driver.logs(
            source.container_id, follow=query.follow, tail=query.tail, since=query.since
        )
        try:
            async for entry in entries:
                await lines.put(
                    LogLine(
                        task_id=task_id,
                        task_name=source.task_name,
                        node_id=self._node_id,
                        stream=entry.stream,
                        timestamp=entry.timestamp,
                        line=entry.line,
                    )
                )
        except NotFound:
            log.debug("no container for a log query %s", kv(task=task_id))
        except SwarmliteError as exc:
            log.info("reading a task's log failed %s", kv(task=task_id, error=exc.message))
            await lines.put(
                LogLine(
                    task_id=task_id,
                    task_name=source.task_name,
                    node_id=self._node_id,
                    stream="stderr",
                    timestamp=self._clock.wall(),
                    line=f"error from the node: {exc.message}",
                )
            )
        finally:
            aclose = getattr(entries, "aclose", None)
            if aclose is not None:
                await aclose()
        await lines.put(None)  # this reader is done

    async def _forward(
        self, query_id: str, lines: asyncio.Queue[LogLine | None], readers: int
    ) -> None:
        while readers:
            first = await lines.get()
            chunk: list[LogLine] = []
            for item in [first, *_drain(lines, MAX_LINES - 1)]:
                if item is None:
                    readers -= 1
                else:
                    chunk.append(item)
            if chunk:
                await self._send(LogChunk(query_id=query_id, lines=chunk))


def _drain(queue: asyncio.Queue[LogLine | None], most: int) -> list[LogLine | None]:
    items: list[LogLine | None] = []
    while len(items) < most:
        try:
            items.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            break
    return items


def _first_message(group: BaseExceptionGroup[SwarmliteError]) -> str:
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return str(first)
