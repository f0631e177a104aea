"""The log broker: a reader that falls behind ends with an error, memory stays bounded."""

import asyncio

import pytest

from swarmlite.api.control import LogChunk, LogLine, ManagerMessage
from swarmlite.errors import Unavailable
from swarmlite.manager.logbroker import MAX_QUEUED_CHUNKS, LogBroker


def test_a_reader_that_falls_behind_gets_an_error_and_its_query_ends() -> None:
    async def run() -> None:
        broker = LogBroker()
        asked: list[ManagerMessage] = []
        sent = asyncio.Event()

        async def send(message: ManagerMessage) -> None:
            asked.append(message)
            sent.set()

        broker.attach("n1", send)
        reader = broker.lines({"n1": ["t1"]}, follow=True, tail=0)
        first = asyncio.ensure_future(reader.__anext__())
        await sent.wait()
        query_id = asked[0].query_id  # type: ignore[union-attr]
        line = LogLine(
            task_id="t1", task_name="web.1", node_id="n1", stream="stdout", timestamp=0.0, line="x"
        )
        broker.deliver(LogChunk(query_id=query_id, lines=[line]))
        assert (await first).line == "x"  # a reader that keeps up gets its lines
        for _ in range(MAX_QUEUED_CHUNKS + 5):  # then it stops reading
            broker.deliver(LogChunk(query_id=query_id, lines=[line]))
        with pytest.raises(Unavailable, match="fell more than"):
            await reader.__anext__()
        await reader.aclose()  # type: ignore[attr-defined]
        assert broker._queries == {}  # nothing kept for it

    asyncio.run(run())
