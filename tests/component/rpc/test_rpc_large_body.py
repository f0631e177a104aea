"""Requests over aiohttp's 1 MiB raw-bytes threshold go through whole, without a warning."""

from __future__ import annotations

import msgspec

from swarmlite.rpc import Peer, RpcServer


class Blob(msgspec.Struct, frozen=True, kw_only=True):
    data: bytes


class Size(msgspec.Struct, frozen=True, kw_only=True):
    size: int
    last: int


async def measure(request: Blob, peer: Peer) -> Size:
    return Size(size=len(request.data), last=request.data[-1])


async def test_a_three_mib_request_arrives_whole(cluster, start_server, open_client) -> None:
    server = RpcServer(cluster.server_context(), max_message_bytes=8 << 20)
    server.add_unary("/blob", Blob, measure)
    url = await start_server(server)
    client = open_client(url, cluster.client_context(), max_message_bytes=8 << 20)
    data = bytes(range(256)) * (3 << 12)  # 3 MiB, ending in 255

    reply = await client.call("/blob", Blob(data=data), Size)

    assert reply == Size(size=3 << 20, last=255)
