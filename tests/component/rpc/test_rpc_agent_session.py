"""A node's session (agent/session.py) against a real server over mutual TLS.

The server stands in for the leader's dispatcher: it answers each session's hello with a
SessionInfo and remembers every hello it got, per connection. Checked: a new hello (new
mesh keys) goes out on the open session instead of starting a new one, and a session that
was up and then lost is opened again after the shortest pause every time, however often
that happens, plus a random part of one heartbeat period (so that the nodes that lost a
leader together do not all come back at the same instant).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import msgspec

from swarmlite.agent.session import BACKOFF_MIN, Session
from swarmlite.api import NodeRole
from swarmlite.api.control import SESSION, AgentMessage, SessionHello, SessionInfo
from swarmlite.clock import SystemClock
from swarmlite.errors import Unavailable
from swarmlite.rpc import Peer, RpcServer, ServerStream

HEARTBEAT = 60.0  # long: no heartbeat goes out during a test
NODE = "worker-1"

_decode = msgspec.msgpack.Decoder(AgentMessage).decode
_encode = msgspec.msgpack.Encoder().encode


class Dispatcher:
    """Records the hellos of each connection; `drop` ends every session with an error."""

    def __init__(self, *, drop: bool = False, period: float = HEARTBEAT) -> None:
        self.drop = drop
        self.period = period
        self.connections: list[list[SessionHello]] = []

    async def serve(self, stream: ServerStream, peer: Peer) -> None:
        hellos: list[SessionHello] = []
        self.connections.append(hellos)
        info = SessionInfo(managers=[], heartbeat_period=self.period, role=NodeRole.WORKER)
        first = True
        while (frame := await stream.recv()) is not None:
            message = _decode(frame)
            if isinstance(message, SessionHello):
                hellos.append(message)
            if first:
                await stream.send(_encode(info))
                first = False
                if self.drop:
                    raise Unavailable("the manager is going away")


class RecordingClock(SystemClock):
    """The system clock, remembering every pause asked of it."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


async def start(cluster: Any, start_server: Any, dispatcher: Dispatcher) -> str:
    server = RpcServer(cluster.server_context(), cluster_id=cluster.cluster_id)
    server.add_stream(SESSION, dispatcher.serve)
    url: str = await start_server(server)
    return url.removeprefix("https://")


class NoSpread(random.Random):
    """Draws the lowest value every time: no pause before reconnecting."""

    def uniform(self, a: float, b: float) -> float:
        return a


def open_session(
    cluster: Any, address: str, clock: SystemClock, rng: random.Random | None = None
) -> Session:
    async def on_info(info: SessionInfo) -> None:
        return None

    context = cluster.client_context(NODE, role="worker")
    hello = SessionHello(node_id=NODE, hostname="w1", addr="127.0.0.1")
    return Session(hello, [address], lambda: context, clock, on_info, rng=rng or NoSpread())


async def until(check: Any, what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_a_new_hello_goes_out_on_the_open_session(cluster, start_server) -> None:
    dispatcher = Dispatcher()
    session = open_session(cluster, await start(cluster, start_server, dispatcher), SystemClock())
    running = asyncio.create_task(session.run())
    try:
        await until(lambda: session.connected_to is not None, "the session to open")
        await session.rehello(msgspec.structs.replace(session.hello, mesh_next_key="next-key"))
        await until(lambda: len(dispatcher.connections[-1]) == 2, "the second hello")
    finally:
        running.cancel()
    assert len(dispatcher.connections) == 1
    assert [h.mesh_next_key for h in dispatcher.connections[0]] == ["", "next-key"]
    assert session.hello.mesh_next_key == "next-key"  # what a new session would start with


async def test_a_session_lost_again_and_again_is_reopened_quickly_each_time(
    cluster, start_server
) -> None:
    dispatcher = Dispatcher(drop=True)
    clock = RecordingClock()
    session = open_session(cluster, await start(cluster, start_server, dispatcher), clock)
    running = asyncio.create_task(session.run())
    try:
        await until(lambda: len(dispatcher.connections) >= 6, "six sessions")
    finally:
        running.cancel()
    pauses = [s for s in clock.sleeps if s != HEARTBEAT]
    assert len(pauses) >= 5
    assert set(pauses) == {BACKOFF_MIN}, pauses


async def test_sessions_lost_together_come_back_spread_over_a_heartbeat_period(
    cluster, start_server
) -> None:
    period = 0.3
    dispatcher = Dispatcher(drop=True, period=period)
    clock = RecordingClock()
    address = await start(cluster, start_server, dispatcher)
    session = open_session(cluster, address, clock, rng=random.Random(7))
    running = asyncio.create_task(session.run())
    try:
        await until(lambda: len(dispatcher.connections) >= 6, "six sessions")
    finally:
        running.cancel()
    # Each lost session: a pause drawn from one period, then the shortest backoff.
    spread = [s for s in clock.sleeps if s not in (period, BACKOFF_MIN)]
    assert len(spread) >= 5, clock.sleeps
    assert all(0 < s < period for s in spread), spread
    assert len(set(spread)) == len(spread), spread  # drawn anew each time
    assert BACKOFF_MIN in clock.sleeps and max(clock.sleeps) <= period
