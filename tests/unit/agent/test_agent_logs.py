from __future__ import annotations

import asyncio

import pytest

from swarmlite.agent.driver import ContainerRequest
from swarmlite.agent.logs import LogServer, LogSource
from swarmlite.api.control import LogChunk, LogsQuery
from swarmlite.errors import RuntimeFailure, Unavailable


class Session:
    def __init__(self) -> None:
        self.chunks: list[LogChunk] = []
        self.up = True

    async def send(self, message) -> None:
        if not self.up:
            raise Unavailable("no session with a manager right now")
        assert isinstance(message, LogChunk)
        self.chunks.append(message)

    def lines(self, query_id: str) -> list[tuple[str, str, str]]:
        return [
            (line.task_name, line.stream, line.line)
            for chunk in self.chunks
            if chunk.query_id == query_id
            for line in chunk.lines
        ]

    def done(self, query_id: str) -> bool:
        return any(c.done for c in self.chunks if c.query_id == query_id)


@pytest.fixture
async def setup(driver, task_factory):
    session = Session()
    web1 = await driver.run_container(
        ContainerRequest(task=task_factory("t1"), name="shop_web.1.t1", labels={})
    )
    web2 = await driver.run_container(
        ContainerRequest(task=task_factory("t2", slot=2), name="shop_web.2.t2", labels={})
    )
    sources = {
        "t1": LogSource(container_id=web1, task_name="shop_web.1"),
        "t2": LogSource(container_id=web2, task_name="shop_web.2"),
    }
    server = LogServer("n1", driver, session.send, sources.get)
    running = asyncio.create_task(server.run())
    yield session, server, web1, web2
    server.stop()
    await asyncio.wait_for(running, 5)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_query_gets_every_tasks_lines_then_done(driver, setup) -> None:
    session, server, web1, web2 = setup
    driver.write_log(web1, "stdout", "GET /")
    driver.write_log(web1, "stderr", "oops")
    driver.write_log(web2, "stdout", "GET /health")
    server.handle(LogsQuery(query_id="q1", task_ids=["t1", "t2", "elsewhere"]))
    await settle()
    assert sorted(session.lines("q1")) == [
        ("shop_web.1", "stderr", "oops"),
        ("shop_web.1", "stdout", "GET /"),
        ("shop_web.2", "stdout", "GET /health"),
    ]
    assert session.chunks[-1].done and session.chunks[-1].lines == []
    first = session.chunks[0].lines[0]
    assert (first.node_id, first.task_id) in {("n1", "t1"), ("n1", "t2")}
    assert server.streaming == []


async def test_tail_limits_the_lines_of_each_task(driver, setup) -> None:
    session, server, web1, _ = setup
    for i in range(5):
        driver.write_log(web1, "stdout", f"line {i}")
    server.handle(LogsQuery(query_id="q1", task_ids=["t1"], tail=2))
    await settle()
    assert [line for _, _, line in session.lines("q1")] == ["line 3", "line 4"]
    assert ("logs", web1, False, 2) in driver.calls


async def test_a_follow_streams_new_lines_until_cancelled(driver, setup) -> None:
    session, server, web1, _ = setup
    driver.write_log(web1, "stdout", "before")
    server.handle(LogsQuery(query_id="q1", task_ids=["t1"], follow=True))
    await settle()
    assert session.lines("q1") == [("shop_web.1", "stdout", "before")]
    driver.write_log(web1, "stdout", "after")
    await settle()
    assert session.lines("q1")[-1] == ("shop_web.1", "stdout", "after")
    assert server.streaming == ["q1"] and not session.done("q1")

    server.handle(LogsQuery(query_id="q1", task_ids=[], cancel=True))
    await settle()
    assert server.streaming == []
    driver.write_log(web1, "stdout", "unseen")
    await settle()
    assert ("shop_web.1", "stdout", "unseen") not in session.lines("q1")


async def test_a_follow_ends_when_the_container_exits(driver, setup) -> None:
    session, server, web1, _ = setup
    server.handle(LogsQuery(query_id="q1", task_ids=["t1"], follow=True))
    await settle()
    driver.write_log(web1, "stdout", "bye")
    driver.exit(web1, 0)
    await settle()
    assert session.lines("q1") == [("shop_web.1", "stdout", "bye")]
    assert session.done("q1")


async def test_a_query_for_no_task_here_is_done_at_once(setup) -> None:
    session, server, _, _ = setup
    server.handle(LogsQuery(query_id="q9", task_ids=["elsewhere"], follow=True))
    await settle()
    assert session.chunks == [LogChunk(query_id="q9", lines=[], done=True)]


async def test_a_lost_session_ends_the_stream(driver, setup) -> None:
    session, server, web1, _ = setup
    server.handle(LogsQuery(query_id="q1", task_ids=["t1"], follow=True))
    await settle()
    session.up = False
    driver.write_log(web1, "stdout", "nobody listens")
    await settle()
    assert server.streaming == []


async def test_a_log_that_cannot_be_read_says_why_in_the_stream(driver, setup) -> None:
    """A task whose runtime cannot give its log (its driver keeps nothing, or the runtime
    failed) ends with a line on stderr saying so, not with nothing."""
    session, server, web1, web2 = setup
    driver.write_log(web2, "stdout", "GET /")
    reading = driver.logs
    why = 'the log of container abc cannot be read: its log driver is "none"'

    def logs(container_id: str, **kwargs):
        if container_id == web1:
            return _failing(why)
        return reading(container_id, **kwargs)

    driver.logs = logs
    server.handle(LogsQuery(query_id="q1", task_ids=["t1", "t2"]))
    await settle()
    assert sorted(session.lines("q1")) == [
        ("shop_web.1", "stderr", f"error from the node: {why}"),
        ("shop_web.2", "stdout", "GET /"),
    ]
    assert session.done("q1")


async def _failing(message: str):
    raise RuntimeFailure(message)
    yield  # an async generator, as a driver's logs are
