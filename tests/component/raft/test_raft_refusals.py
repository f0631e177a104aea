"""What a Raft member refuses on its raft stream, that it logs why, and that it keeps
serving afterwards.

The member is a real `raftproc` process; the intruder is this test, opening
`/raft/v1/stream` with `RpcClient` and certificates from the cluster CA (or not).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from swarmlite.ca import NodeCredentials, RootCA, client_context, issue_node_cert
from swarmlite.errors import InvalidArgument, PermissionDenied, SwarmliteError, Unavailable
from swarmlite.raft import transport
from swarmlite.raft.entries import Entry, EntryKind
from swarmlite.raft.messages import Append, Heartbeat, encode_batch
from swarmlite.rpc import DEFAULT_MAX_MESSAGE_BYTES, ClientStream, RpcClient
from swarmlite.testing.raftcluster import CLUSTER_ID, ProcCluster

MakeCluster = Callable[..., ProcCluster]
PATH = "/raft/v1/stream"


def hello(cluster_id: str, node_id: str) -> bytes:
    """The first frame of a raft stream: [cluster id, node id] (transport._Hello)."""
    return msgspec.msgpack.encode([cluster_id, node_id])


class Member:
    """One running member (n1 of a single-member cluster) and clients to its raft port."""

    def __init__(self, cluster: ProcCluster) -> None:
        self.cluster = cluster
        self.log = cluster.members["n1"].log
        self.url = f"https://{cluster.members['n1'].address}"
        self.clients: list[RpcClient] = []

    def client(self, context: ssl.SSLContext) -> RpcClient:
        client = RpcClient(self.url, context, timeout=5.0, max_message_bytes=32 << 20)
        self.clients.append(client)
        return client

    def manager(self, node_id: str = "n2") -> RpcClient:
        """A client holding a genuine manager certificate of this cluster."""
        return self.client(
            client_context(issue_node_cert(self.cluster.ca, node_id, "manager", CLUSTER_ID))
        )

    async def peer_stream(self, node_id: str = "n2") -> ClientStream:
        """A raft stream opened by a genuine manager that said a valid hello."""
        stream = await self.manager(node_id).open_stream(PATH)
        await stream.send(hello(CLUSTER_ID, node_id))
        return stream

    async def still_serves(self) -> None:
        index = await self.cluster.put("still", b"here", timeout=10.0)
        assert index > 0
        assert await self.cluster.get("still") == b"here"


@pytest.fixture
async def member(make_cluster: MakeCluster) -> AsyncIterator[Member]:
    cluster = make_cluster(1)
    cluster.start_all()
    await cluster.put("k", b"v")
    running = Member(cluster)
    yield running
    for client in running.clients:
        await client.close()


async def ended_with(stream: ClientStream, timeout: float = 10.0) -> SwarmliteError | None:
    """How the member ended `stream`: the error it closed it with, None if closed cleanly."""
    try:
        async with asyncio.timeout(timeout):
            while await stream.recv() is not None:
                pass
    except SwarmliteError as exc:
        return exc
    except TimeoutError:
        raise AssertionError(f"the member kept the stream open for {timeout}s") from None
    return None


@pytest.mark.timeout(60)
async def test_client_without_certificate_cannot_open_the_raft_stream(
    member: Member, logged: Callable[..., Any]
) -> None:
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname = False
    bare.load_verify_locations(cadata=member.cluster.ca.cert_pem.decode())

    with pytest.raises((Unavailable, PermissionDenied)):
        await member.client(bare).open_stream(PATH)

    assert "peer=127.0.0.1:" in await logged(member.log, "rpc TLS handshake failed")
    await member.still_serves()


@pytest.mark.timeout(60)
async def test_certificate_from_another_ca_is_refused(
    member: Member, logged: Callable[..., Any]
) -> None:
    stranger = issue_node_cert(RootCA.create(CLUSTER_ID), "n2", "manager", CLUSTER_ID)
    # Trusts the member's CA, so it would talk to it, but presents a foreign certificate.
    mixed = NodeCredentials(
        cert_pem=stranger.cert_pem,
        key_pem=stranger.key_pem,
        ca_cert_pem=member.cluster.ca.cert_pem,
    )

    with pytest.raises((Unavailable, PermissionDenied)):
        await member.client(client_context(mixed)).open_stream(PATH)

    assert "reason=" in await logged(member.log, "rpc TLS handshake failed")
    await member.still_serves()


@pytest.mark.timeout(60)
async def test_worker_certificate_is_refused_on_the_raft_stream(
    member: Member, logged: Callable[..., Any]
) -> None:
    worker = issue_node_cert(member.cluster.ca, "w1", "worker", CLUSTER_ID)
    stream = await member.client(client_context(worker)).open_stream(PATH)
    await stream.send(hello(CLUSTER_ID, "w1"))

    error = await ended_with(stream)

    assert isinstance(error, PermissionDenied)
    assert "node w1 is a worker" in error.message
    assert "w1 is a worker" in await logged(member.log, "rpc stream ended with error")
    await member.still_serves()


@pytest.mark.timeout(60)
async def test_certificate_of_another_cluster_is_refused(
    member: Member, logged: Callable[..., Any]
) -> None:
    foreign = issue_node_cert(member.cluster.ca, "n9", "manager", "other-cluster")

    with pytest.raises(PermissionDenied, match="belongs to cluster other-cluster"):
        await member.client(client_context(foreign)).open_stream(PATH)

    line = await logged(member.log, "rpc refused")
    assert "path=/raft/v1/stream" in line and "other-cluster" in line
    await member.still_serves()


@pytest.mark.timeout(60)
async def test_hello_naming_another_cluster_is_refused(
    member: Member, logged: Callable[..., Any]
) -> None:
    stream = await member.manager("n2").open_stream(PATH)
    await stream.send(hello("other-cluster", "n2"))

    error = await ended_with(stream)

    assert isinstance(error, PermissionDenied)
    assert "belongs to cluster other-cluster" in error.message
    assert "other-cluster" in await logged(member.log, "rpc stream ended with error")
    await member.still_serves()


@pytest.mark.timeout(60)
async def test_hello_naming_another_node_than_the_certificate_is_refused(
    member: Member, logged: Callable[..., Any]
) -> None:
    stream = await member.manager("n2").open_stream(PATH)
    await stream.send(hello(CLUSTER_ID, "n3"))

    error = await ended_with(stream)

    assert isinstance(error, PermissionDenied)
    assert "names n2 but it says it is n3" in error.message
    assert "n3" in await logged(member.log, "rpc stream ended with error")
    await member.still_serves()


@pytest.mark.timeout(60)
async def test_frame_without_a_piece_marker_closes_the_stream(
    member: Member, logged: Callable[..., Any]
) -> None:
    stream = await member.peer_stream("n2")
    await stream.send(b"\x07" + encode_batch([Heartbeat(term=1, src="n2", dst="n1", commit=0)]))

    error = await ended_with(stream)

    assert isinstance(error, InvalidArgument)
    await logged(member.log, "raft frame of")
    await member.still_serves()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "frame",
    [
        b"\xc1 not msgpack",
        msgspec.msgpack.encode({"term": 1}),
        msgspec.msgpack.encode([[99, 1, "n2", "n1"]]),  # no message has tag 99
        msgspec.msgpack.encode([[9, "one", "n2", "n1", 0]]),  # a Heartbeat with a text term
    ],
    ids=["not-msgpack", "not-a-batch", "unknown-tag", "wrong-field-type"],
)
async def test_malformed_frame_after_hello_closes_the_stream(
    member: Member, logged: Callable[..., Any], frame: bytes
) -> None:
    stream = await member.peer_stream("n2")
    await stream.send(transport.WHOLE + frame)

    error = await ended_with(stream)

    assert isinstance(error, InvalidArgument)
    assert "malformed raft message batch" in error.message
    await logged(member.log, "malformed raft message batch")
    await member.still_serves()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("src", "dst"), [("n3", "n1"), ("n2", "n9")], ids=["spoofed-sender", "someone-else"]
)
async def test_message_not_from_the_certificate_holder_to_this_node_is_refused(
    member: Member, logged: Callable[..., Any], src: str, dst: str
) -> None:
    stream = await member.peer_stream("n2")
    await stream.send(
        transport.WHOLE + encode_batch([Heartbeat(term=1, src=src, dst=dst, commit=0)])
    )

    error = await ended_with(stream)

    assert isinstance(error, PermissionDenied)
    assert f"raft peer n2 sent a message from {src} to {dst}" in error.message
    await logged(member.log, f"sent a message from {src} to {dst}")
    await member.still_serves()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("limit", "says", "logs"),
    [
        (transport.MAX_FRAME_BYTES, "8388608-byte limit", "8388608-byte limit"),
        (DEFAULT_MAX_MESSAGE_BYTES, "size limit", "rpc stream closed"),
    ],
    ids=["over-raft-frame-limit", "over-rpc-message-limit"],
)
async def test_frame_over_the_limit_closes_the_stream(
    member: Member, logged: Callable[..., Any], limit: int, says: str, logs: str
) -> None:
    stream = await member.peer_stream("n2")
    # Well-formed and harmless (a stale term), only too large.
    big = Entry(term=0, index=1, kind=EntryKind.NORMAL, data=b"x" * limit)
    frame = transport.WHOLE + encode_batch([Append(0, "n2", "n1", 0, 0, (big,), 0)])
    assert len(frame) > limit
    await stream.send(frame)

    error = await ended_with(stream, timeout=5.0)

    assert isinstance(error, InvalidArgument), f"a {len(frame)}-byte frame was accepted"
    assert says in error.message
    await logged(member.log, logs)
    await member.still_serves()
