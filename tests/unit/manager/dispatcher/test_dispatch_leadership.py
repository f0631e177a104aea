"""Sessions belong to a term of leadership: when it ends, every session ends with it, and
a session whose hello arrives after it ended is refused (NotLeader) rather than kept by a
manager that no longer leads, where its node would heartbeat unseen by the new leader. The
real dispatcher on a real store (LocalProposer); session streams are in memory."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from swarmlite.api import Cluster
from swarmlite.api.control import SessionHello
from swarmlite.errors import NotLeader, SwarmliteError
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.dispatcher.dispatcher import Dispatcher
from swarmlite.manager.heartbeats import Heartbeats
from swarmlite.manager.logbroker import LogBroker
from swarmlite.rpc import Peer
from swarmlite.rpc.server import Identity
from swarmlite.store import LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_node


class Raft:
    leader_id = "m1"

    def leader_address(self) -> str:
        return "10.0.0.2:2377"

    def members(self) -> list[Any]:
        return []


class Stream:
    """A session stream: frames to receive are put in by the test."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed_with: BaseException | None = None
        self.closed = False

    async def recv(self) -> bytes | None:
        return await self.incoming.get()

    async def send(self, frame: bytes) -> None:
        return None

    async def close(self) -> None:
        self.closed = True
        self.incoming.put_nowait(None)

    async def close_with_error(self, error: SwarmliteError) -> None:
        self.closed_with = error
        await self.close()


@pytest.fixture
async def dispatcher() -> Dispatcher:
    memory = MemoryStore()
    clock = FakeClock()
    store = Store(memory, LocalProposer(memory), clock=clock)
    await store.propose(Tx().create(Cluster(id="c1")).create(make_node("n1")))
    ctx = ManagerContext(
        node_id="m1",
        cluster_id="c1",
        addr="10.0.0.1:2377",
        store=store,
        raft=Raft(),  # type: ignore[arg-type]
        clock=clock,
        client_ssl=lambda: pytest.fail("no call leaves this manager"),
    )
    return Dispatcher(ctx, LogBroker(), Heartbeats(clock))


def hello() -> bytes:
    return msgspec.msgpack.encode(SessionHello(node_id="n1", hostname="n1", addr="10.0.0.5"))


PEER = Peer(identity=Identity(node_id="n1", role="worker", cluster_id="c1"), address="10.0.0.5")


async def until(check: Any) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("timed out")


async def test_a_hello_that_comes_after_the_term_ended_is_refused(dispatcher: Dispatcher) -> None:
    leading = asyncio.create_task(dispatcher.run())
    await until(lambda: dispatcher._leading)
    stream = Stream()
    serving = asyncio.create_task(dispatcher.serve(stream, PEER))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # it waits for the hello
    leading.cancel()  # the term ends (leadership lost) before the hello comes
    with pytest.raises(asyncio.CancelledError):
        await leading
    stream.incoming.put_nowait(hello())
    with pytest.raises(NotLeader):
        await asyncio.wait_for(serving, 5)
    assert dispatcher.sessions == {}


async def test_sessions_of_a_term_end_with_it(dispatcher: Dispatcher) -> None:
    leading = asyncio.create_task(dispatcher.run())
    await until(lambda: dispatcher._leading)
    stream = Stream()
    serving = asyncio.create_task(dispatcher.serve(stream, PEER))  # type: ignore[arg-type]
    stream.incoming.put_nowait(hello())
    await until(lambda: "n1" in dispatcher.sessions)
    leading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leading
    await asyncio.wait_for(serving, 5)
    assert dispatcher.sessions == {} and stream.closed
    # A new session now finds no leader here.
    with pytest.raises(NotLeader):
        await dispatcher.serve(Stream(), PEER)  # type: ignore[arg-type]
