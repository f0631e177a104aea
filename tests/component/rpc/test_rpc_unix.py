"""The local socket: no TLS, mode 0600, no identity; stale sockets replaced, live ones kept."""

from __future__ import annotations

import os
import socket
import stat

import msgspec
import pytest

from swarmlite.errors import FailedPrecondition
from swarmlite.rpc import Peer, RpcClient, RpcServer, ServerStream


class Echo(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    count: int = 0


class EchoReply(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    node: str | None
    role: str | None


async def echo(request: Echo, peer: Peer) -> EchoReply:
    return EchoReply(text=request.text, node=peer.address, role=repr(peer.identity))


async def stream_echo(stream: ServerStream, peer: Peer) -> None:
    while (frame := await stream.recv()) is not None:
        await stream.send(frame)


async def test_unix_socket_server_and_client(tmp_path) -> None:
    path = str(tmp_path / "swarmlite.sock")
    server = RpcServer(None)
    server.add_unary("/echo", Echo, echo)
    server.add_stream("/stream", stream_echo)
    await server.start_unix(path)
    client = RpcClient("http://localhost", None, unix_socket=path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        reply = await client.call("/echo", Echo(text="local"), EchoReply)
        stream = await client.open_stream("/stream")
        await stream.send(b"\x93\x01\x02\x03")
        assert await stream.recv() == b"\x93\x01\x02\x03"
        await stream.close()
    finally:
        await client.close()
        await server.stop()

    assert reply == EchoReply(text="local", node="local", role="None")
    # stop removes the socket file, and no temporary name is left behind
    assert list(tmp_path.iterdir()) == []


async def test_stale_socket_is_replaced_and_live_one_refused(tmp_path) -> None:
    path = str(tmp_path / "swarmlite.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # a dead daemon's socket file: nobody listens on it
    first = RpcServer(None)
    first.add_unary("/echo", Echo, echo)
    await first.start_unix(path)
    second = RpcServer(None)
    client = RpcClient("http://localhost", None, unix_socket=path)
    try:
        with pytest.raises(FailedPrecondition, match="already listening"):
            await second.start_unix(path)
        assert (await client.call("/echo", Echo(text="a"), EchoReply)).text == "a"
    finally:
        await client.close()
        await second.stop()
        await first.stop()
