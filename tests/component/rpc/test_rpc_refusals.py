"""What the server refuses, how the client hears it, and that the server keeps serving."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

import aiohttp
import msgspec
import pytest

from swarmlite.ca import NodeCredentials, client_context
from swarmlite.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    SwarmliteError,
    Unavailable,
)
from swarmlite.rpc import Identity, Peer, RpcClient, RpcServer, ServerStream


class Echo(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    count: int = 0


class EchoReply(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    node: str | None
    role: str | None


LIMIT = 1024


async def echo(request: Echo, peer: Peer) -> EchoReply:
    return EchoReply(text=request.text, node=None, role=None)


class StreamLog:
    def __init__(self) -> None:
        self.errors: list[SwarmliteError] = []

    async def echo(self, stream: ServerStream, peer: Peer) -> None:
        try:
            while (frame := await stream.recv()) is not None:
                await stream.send(frame)
        except SwarmliteError as exc:
            self.errors.append(exc)
            raise


def make_server(cluster: Any, streams: StreamLog | None = None, **kwargs: Any) -> RpcServer:
    server = RpcServer(
        cluster.server_context(),
        cluster_id=cluster.cluster_id,
        max_message_bytes=LIMIT,
        **kwargs,
    )
    server.add_unary("/echo", Echo, echo)
    server.add_stream("/stream", (streams or StreamLog()).echo)
    return server


async def good_call(client: RpcClient) -> None:
    reply = await client.call("/echo", Echo(text="still here"), EchoReply)
    assert reply.text == "still here"


async def logged(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    """The warning records mentioning ``text``, waiting briefly for the server to log."""
    for _ in range(200):
        found = [
            r for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()
        ]
        if found:
            return found
        await asyncio.sleep(0.01)
    return []


async def test_client_without_certificate_is_refused(
    cluster, start_server, open_client, caplog
) -> None:
    url = await start_server(make_server(cluster))
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname = False
    bare.load_verify_locations(cadata=cluster.ca.cert_pem.decode())
    refused = open_client(url, bare)

    with (
        caplog.at_level(logging.WARNING, logger="swarmlite.rpc"),
        pytest.raises((Unavailable, PermissionDenied)) as caught,
    ):
        await refused.call("/echo", Echo(text="hi"), EchoReply)

    assert "127.0.0.1" in caught.value.message
    records = await logged(caplog, "TLS handshake failed")
    assert records and "peer=127.0.0.1:" in records[0].getMessage()
    await good_call(open_client(url, cluster.client_context()))


async def test_certificate_from_another_ca_is_refused(
    cluster, other_ca, start_server, open_client, caplog
) -> None:
    url = await start_server(make_server(cluster))
    stranger = other_ca.creds("manager-2")
    # Trusts our CA (so it would talk to us) but presents a certificate of another CA.
    mixed = NodeCredentials(
        cert_pem=stranger.cert_pem, key_pem=stranger.key_pem, ca_cert_pem=cluster.ca.cert_pem
    )
    refused = open_client(url, client_context(mixed))

    with (
        caplog.at_level(logging.WARNING, logger="swarmlite.rpc"),
        pytest.raises((Unavailable, PermissionDenied)),
    ):
        await refused.call("/echo", Echo(text="hi"), EchoReply)

    records = await logged(caplog, "TLS handshake failed")
    assert records and "reason=" in records[0].getMessage()
    await good_call(open_client(url, cluster.client_context()))


async def test_server_of_another_ca_is_not_trusted(
    cluster, other_ca, start_server, open_client
) -> None:
    url = await start_server(make_server(cluster))
    other = open_client(url, other_ca.client_context())

    with pytest.raises(PermissionDenied, match="not trusted"):
        await other.call("/echo", Echo(text="hi"), EchoReply)


async def test_certificate_of_another_cluster_is_refused_with_403(
    cluster, start_server, open_client, caplog
) -> None:
    url = await start_server(make_server(cluster, StreamLog()))
    foreign = client_context(cluster.creds("manager-9", cluster_id="cluster-b"))
    client = open_client(url, foreign)

    with (
        caplog.at_level(logging.WARNING, logger="swarmlite.rpc"),
        pytest.raises(
            PermissionDenied, match="node manager-9 belongs to cluster cluster-b, not cluster-a"
        ),
    ):
        await client.call("/echo", Echo(text="hi"), EchoReply)
    with pytest.raises(PermissionDenied, match="belongs to cluster cluster-b"):
        await client.open_stream("/stream")

    assert await logged(caplog, "belongs to cluster cluster-b")


async def test_authorize_revokes_a_node(cluster, start_server, open_client, caplog) -> None:
    revoked = {"worker-3"}
    seen: list[Identity] = []

    def authorize(identity: Identity) -> None:
        seen.append(identity)
        if identity.node_id in revoked:
            raise PermissionDenied(f"node {identity.node_id} has been removed from the cluster")

    url = await start_server(make_server(cluster, authorize=authorize))
    removed = open_client(url, cluster.client_context("worker-3", "worker"))

    with (
        caplog.at_level(logging.WARNING, logger="swarmlite.rpc"),
        pytest.raises(PermissionDenied, match="node worker-3 has been removed"),
    ):
        await removed.call("/echo", Echo(text="hi"), EchoReply)
    with pytest.raises(PermissionDenied, match="node worker-3 has been removed"):
        await removed.open_stream("/stream")

    assert await logged(caplog, "node worker-3 has been removed")
    await good_call(open_client(url, cluster.client_context("worker-4", "worker")))
    assert Identity(node_id="worker-4", role="worker", cluster_id="cluster-a") in seen


class WrongTypes(msgspec.Struct, frozen=True):
    text: int


async def test_wrongly_typed_request_names_the_field(cluster, start_server, open_client) -> None:
    url = await start_server(make_server(cluster))
    client = open_client(url, cluster.client_context())

    with pytest.raises(InvalidArgument, match=r"malformed Echo for /echo: .*`\$\.text`"):
        await client.call("/echo", WrongTypes(text=5), EchoReply)
    await good_call(client)


async def test_garbage_body_is_invalid_argument(cluster, start_server, open_client) -> None:
    url = await start_server(make_server(cluster))
    connector = aiohttp.TCPConnector(ssl=cluster.client_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(
            url + "/echo", data=b"\xc1 not msgpack", headers={"Content-Type": "application/msgpack"}
        ) as response:
            status, body = response.status, await response.read()
        async with session.post(
            url + "/echo", data=b"{}", headers={"Content-Type": "application/json"}
        ) as response:
            json_status = response.status
        async with session.get(url + "/echo") as response:
            get_status = response.status

    envelope = msgspec.msgpack.decode(body)
    assert status == 400
    assert envelope["code"] == "invalid_argument"
    assert envelope["message"].startswith("malformed Echo for /echo: MessagePack data is malformed")
    assert (json_status, get_status) == (415, 405)
    await good_call(open_client(url, cluster.client_context()))


async def test_oversized_body_is_refused_naming_the_limit(
    cluster, start_server, open_client
) -> None:
    url = await start_server(make_server(cluster))
    client = open_client(url, cluster.client_context())  # its own limit is 16 MiB

    with pytest.raises(InvalidArgument, match="over the 1024-byte limit"):
        await client.call("/echo", Echo(text="x" * 4000), EchoReply)
    await good_call(client)

    small = open_client(url, cluster.client_context(), max_message_bytes=100)
    with pytest.raises(InvalidArgument, match="over the 100-byte limit"):
        await small.call("/echo", Echo(text="x" * 200), EchoReply)


async def test_oversized_frame_closes_the_stream_only(
    cluster, start_server, open_client, caplog
) -> None:
    streams = StreamLog()
    url = await start_server(make_server(cluster, streams))
    client = open_client(url, cluster.client_context())
    stream = await client.open_stream("/stream")

    with caplog.at_level(logging.WARNING, logger="swarmlite.rpc"):
        await stream.send(b"x" * (LIMIT + 1))
        with pytest.raises(InvalidArgument, match="larger than"):
            await stream.recv()

    assert await logged(caplog, "over the 1024-byte limit")
    assert [type(e) for e in streams.errors] == [InvalidArgument]
    again = await client.open_stream("/stream")
    await again.send(b"small")
    assert await again.recv() == b"small"
    await again.close()
    await good_call(client)


async def test_text_frame_closes_the_stream_with_an_error(
    cluster, start_server, open_client, caplog
) -> None:
    streams = StreamLog()
    url = await start_server(make_server(cluster, streams))
    connector = aiohttp.TCPConnector(ssl=cluster.client_context())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.ws_connect(url + "/stream") as ws,
    ):
        with caplog.at_level(logging.WARNING, logger="swarmlite.rpc"):
            await ws.send_str("hello")
            message = await ws.receive()

    assert message.type is aiohttp.WSMsgType.CLOSE
    assert message.data == 1003
    assert "binary msgpack frames only" in message.extra
    assert await logged(caplog, "text frame")
    await good_call(open_client(url, cluster.client_context()))


async def test_malformed_answer_is_invalid_argument(cluster, start_server, open_client) -> None:
    url = await start_server(make_server(cluster))
    client = open_client(url, cluster.client_context())

    with pytest.raises(InvalidArgument, match=r"malformed answer from https://127\.0\.0\.1:"):
        await client.call("/echo", Echo(text="hi"), int)


async def test_nobody_listening_is_unavailable_naming_the_address(cluster, open_client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = open_client(f"https://127.0.0.1:{port}", cluster.client_context())

    with pytest.raises(Unavailable, match=f"127.0.0.1:{port}"):
        await client.call("/echo", Echo(text="hi"), EchoReply)
    with pytest.raises(Unavailable, match=f"127.0.0.1:{port}"):
        await client.open_stream("/stream")


async def test_tcp_without_tls_is_refused() -> None:
    server = RpcServer(None)
    with pytest.raises(FailedPrecondition, match="needs a TLS context"):
        await server.start("127.0.0.1", 0)
    await server.stop()


async def test_silent_connection_neither_blocks_others_nor_stop(cluster, open_client) -> None:
    server = make_server(cluster)
    port = await server.start("127.0.0.1", 0)
    _, silent = await asyncio.open_connection("127.0.0.1", port)  # never says hello
    try:
        await good_call(open_client(f"https://127.0.0.1:{port}", cluster.client_context()))
        await asyncio.wait_for(server.stop(), 2)
    finally:
        silent.close()
        await silent.wait_closed()


async def test_body_cut_short_is_refused_and_logged(
    cluster, start_server, open_client, caplog
) -> None:
    url = await start_server(make_server(cluster))
    port = int(url.rsplit(":", 1)[1])
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=cluster.client_context(), server_hostname=""
    )

    with caplog.at_level(logging.WARNING, logger="swarmlite.rpc"):
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/msgpack\r\n"
            b"Content-Length: 100\r\n\r\n\x81\xa4text"
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        records = await logged(caplog, "request body for /echo could not be read")

    assert records
    await good_call(open_client(url, cluster.client_context()))
