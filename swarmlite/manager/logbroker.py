"""Logs from tasks to whoever asked: the meeting point of the log request and the sessions.

Owns the routing of `service logs`: a request asks the nodes that ran the service's tasks
(through their dispatcher sessions) for their lines, and gets the LogChunks back. It is
not a control loop: the control API and the dispatcher both use it, on the leader; it
keeps no state in the store. A query holds at most MAX_QUEUED_CHUNKS chunks its reader has
not taken: a reader that falls further behind (a stalled `service logs -f`) gets an error
and its query ends, so that the leader's memory never grows with a slow reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from swarmlite.api import new_id
from swarmlite.api.control import LogChunk, LogLine, LogsQuery, ManagerMessage
from swarmlite.errors import SwarmliteError, Unavailable
from swarmlite.log import kv

log = logging.getLogger(__name__)

Send = Callable[[ManagerMessage], Awaitable[None]]

MAX_QUEUED_CHUNKS = 1_000
_BEHIND = LogChunk(query_id="", lines=[], done=True)  # in a query's queue: its reader fell behind


class LogBroker:
    def __init__(self) -> None:
        self._sessions: dict[str, Send] = {}
        self._queries: dict[str, asyncio.Queue[LogChunk | None]] = {}

    # ------------------------------------------------------------------ dispatcher side

    def attach(self, node_id: str, send: Send) -> None:
        self._sessions[node_id] = send

    def detach(self, node_id: str, send: Send) -> None:
        if self._sessions.get(node_id) is send:
            del self._sessions[node_id]

    def deliver(self, chunk: LogChunk) -> None:
        queue = self._queries.get(chunk.query_id)
        if queue is None:
            return
        if queue.qsize() >= MAX_QUEUED_CHUNKS:
            log.warning("logs: reader fell behind, ending its query %s", kv(query=chunk.query_id))
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(_BEHIND)
            del self._queries[chunk.query_id]  # later chunks of it are dropped
            return
        queue.put_nowait(chunk)

    # ------------------------------------------------------------------ request side

    async def lines(
        self,
        tasks_by_node: dict[str, list[str]],
        *,
        follow: bool,
        tail: int,
        since: float = 0.0,
    ) -> AsyncIterator[LogLine]:
        """Every line of the given tasks, from every node that is connected now."""
        query_id = new_id()
        queue: asyncio.Queue[LogChunk | None] = asyncio.Queue()
        self._queries[query_id] = queue
        asked: list[tuple[str, Send]] = []
        try:
            for node_id, task_ids in tasks_by_node.items():
                send = self._sessions.get(node_id)
                if send is None:
                    log.info("logs: node not connected %s", kv(node=node_id))
                    continue
                query = LogsQuery(
                    query_id=query_id, task_ids=task_ids, follow=follow, tail=tail, since=since
                )
                try:
                    await send(query)
                    asked.append((node_id, send))
                except SwarmliteError as exc:
                    log.info("logs: could not ask node %s", kv(node=node_id, error=exc.message))
            if not asked:
                if tasks_by_node:
                    raise Unavailable("none of the nodes that ran these tasks is connected")
                return
            pending = len(asked)
            while pending:
                chunk = await queue.get()
                if chunk is None:
                    return
                if chunk is _BEHIND:
                    raise Unavailable(
                        f"the log reader fell more than {MAX_QUEUED_CHUNKS} chunks behind",
                        hint="read faster, or ask again with --since",
                    )
                for line in chunk.lines:
                    yield line
                if chunk.done:
                    pending -= 1
        finally:
            self._queries.pop(query_id, None)
            if follow:
                for _, send in asked:
                    cancel = LogsQuery(query_id=query_id, task_ids=[], cancel=True)
                    with contextlib.suppress(SwarmliteError):
                        await send(cancel)
