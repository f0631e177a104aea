"""Streams over real mutual TLS: ordered frames both ways, clean and failed ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from swarmlite.errors import NotFound, Unavailable
from swarmlite.rpc import Peer, RpcServer, ServerStream

FRAMES = 10_000


class Recorder:
    """Stream handlers that remember how their streams ended."""

    def __init__(self) -> None:
        self.ends: list[str] = []
        self.headers: list[str | None] = []
        self.peers: list[str | None] = []
        self.ended = asyncio.Event()

    async def echo(self, stream: ServerStream, peer: Peer) -> None:
        self.headers.append(stream.headers.get("x-session"))
        self.peers.append(peer.identity.node_id if peer.identity else None)
        while (frame := await stream.recv()) is not None:
            await stream.send(frame)
        self.ends.append("clean")
        self.ended.set()

    async def three_then_close(self, stream: ServerStream, peer: Peer) -> None:
        for n in range(3):
            await stream.send(b"%d" % n)

    async def not_found(self, stream: ServerStream, peer: Peer) -> None:
        raise NotFound("session s-1 not found", hint="open a new session")


def make_server(cluster: Any, recorder: Recorder) -> RpcServer:
    server = RpcServer(cluster.server_context(), cluster_id=cluster.cluster_id)
    server.add_stream("/echo", recorder.echo)
    server.add_stream("/three", recorder.three_then_close)
    server.add_stream("/not-found", recorder.not_found)
    return server


async def test_frames_both_ways_in_order(cluster, start_server, open_client) -> None:
    recorder = Recorder()
    url = await start_server(make_server(cluster, recorder))
    client = open_client(url, cluster.client_context("manager-2"))
    stream = await client.open_stream("/echo", headers={"X-Session": "s-42"})
    sent = [b"frame-%d" % n for n in range(FRAMES)]

    async def send_all() -> None:
        for frame in sent:
            await stream.send(frame)

    sender = asyncio.create_task(send_all())
    received = [await stream.recv() for _ in range(FRAMES)]
    await sender

    assert received == sent
    assert recorder.headers == ["s-42"]
    assert recorder.peers == ["manager-2"]
    await stream.close()
    await asyncio.wait_for(recorder.ended.wait(), 5)
    assert recorder.ends == ["clean"]
    assert await stream.recv() is None  # still None after the end


async def test_server_closing_normally_gives_none(cluster, start_server, open_client) -> None:
    url = await start_server(make_server(cluster, Recorder()))
    client = open_client(url, cluster.client_context())
    stream = await client.open_stream("/three")

    assert [await stream.recv() for _ in range(3)] == [b"0", b"1", b"2"]
    assert await stream.recv() is None
    with pytest.raises(Unavailable, match="closed"):
        await stream.send(b"late")


async def test_handler_error_reaches_the_client_as_its_class(
    cluster, start_server, open_client
) -> None:
    url = await start_server(make_server(cluster, Recorder()))
    client = open_client(url, cluster.client_context())
    stream = await client.open_stream("/not-found")

    with pytest.raises(NotFound, match="session s-1 not found"):
        await stream.recv()


async def test_server_stop_ends_open_streams(cluster, open_client) -> None:
    server = make_server(cluster, Recorder())
    port = await server.start("127.0.0.1", 0)
    client = open_client(f"https://127.0.0.1:{port}", cluster.client_context())
    stream = await client.open_stream("/echo")
    await stream.send(b"a")
    assert await stream.recv() == b"a"

    await asyncio.wait_for(server.stop(), 5)

    assert await stream.recv() is None  # going away is a normal end
