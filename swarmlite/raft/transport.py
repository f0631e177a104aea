"""Raft messages between managers, over the cluster port's rpc streams.

Owns the links to peers: one outbound stream per peer, carrying batches of messages in one
msgpack frame each; what the peer answers comes back on the stream the peer opened to us.
Messages to an unreachable peer are dropped and the node is told (Raft resends). It does
not own what the messages mean (``raft.core``) or TLS (``rpc``, ``ca``).

Invariants: a stream is accepted only from a manager of this cluster whose certificate
names the node every message claims to come from; a malformed frame ends that stream with
a logged error and nothing reaches the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

import msgspec

from swarmlite.errors import InvalidArgument, PermissionDenied, SwarmliteError
from swarmlite.log import kv
from swarmlite.raft.entries import Membership
from swarmlite.raft.messages import Message, decode_batch, encode_batch
from swarmlite.rpc import Peer, RpcClient, RpcServer, ServerStream

log = logging.getLogger(__name__)

PATH = "/raft/v1/stream"
MAX_FRAME_BYTES = 8 << 20  # one WebSocket frame; larger batches travel as fragments
MAX_BATCH_BYTES = 1 << 30  # a whole batch, e.g. a snapshot, after reassembly
WHOLE, PART = b"\x00", b"\x01"  # a frame's first byte: the last (or only) piece, or more follow
MAX_QUEUED = 50_000  # messages held for a peer that is not connected
BACKOFF_MIN, BACKOFF_MAX = 0.05, 1.0


class _Hello(msgspec.Struct, frozen=True, array_like=True):
    cluster_id: str
    node_id: str
    address: str = ""  # where the sender listens: answers can reach a node not yet a member


_hello_encoder = msgspec.msgpack.Encoder()
_hello_decoder = msgspec.msgpack.Decoder(_Hello)


class _Link:
    def __init__(self, peer_id: str, address: str) -> None:
        self.peer_id = peer_id
        self.address = address
        self.queue: list[Message] = []
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class RaftTransport:
    def __init__(
        self,
        node_id: str,
        cluster_id: str,
        client_ssl: ssl.SSLContext | None,
        *,
        deliver: Callable[[list[Message]], None],
        unreachable: Callable[[str], None],
        address: str = "",
        scheme: str = "https",
    ) -> None:
        self.node_id = node_id
        self.address = address
        self.cluster_id = cluster_id
        self._ssl = client_ssl
        self._deliver = deliver
        self._unreachable = unreachable
        self._scheme = scheme
        self._links: dict[str, _Link] = {}
        self._members: dict[str, str] = {}
        self._heard: dict[str, str] = {}  # peers outside the membership that opened a stream
        self._closed = False

    # ------------------------------------------------------------------ outbound

    def update_members(self, membership: Membership) -> None:
        self._members = {m.id: m.address for m in membership.members if m.id != self.node_id}
        self._sync_links()

    def _sync_links(self) -> None:
        wanted = {**self._heard, **self._members}
        for peer_id in list(self._links):
            link = self._links[peer_id]
            if wanted.get(peer_id) != link.address:
                self._drop_link(peer_id)
        for peer_id, address in wanted.items():
            if peer_id not in self._links and not self._closed:
                link = _Link(peer_id, address)
                link.task = asyncio.get_running_loop().create_task(self._run_link(link))
                self._links[peer_id] = link

    def send(self, messages: list[Message]) -> None:
        for m in messages:
            link = self._links.get(m.dst)
            if link is None:
                continue
            if len(link.queue) >= MAX_QUEUED:
                link.queue.clear()
                self._unreachable(link.peer_id)
            link.queue.append(m)
            link.ready.set()

    async def close(self) -> None:
        self._closed = True
        for peer_id in list(self._links):
            self._drop_link(peer_id)

    def _drop_link(self, peer_id: str) -> None:
        link = self._links.pop(peer_id)
        if link.task is not None:
            link.task.cancel()

    async def _run_link(self, link: _Link) -> None:
        backoff = BACKOFF_MIN
        failures = 0
        while not self._closed:
            client = RpcClient(
                f"{self._scheme}://{link.address}",
                self._ssl,
                max_message_bytes=MAX_FRAME_BYTES,
                timeout=2.0,
            )
            try:
                stream = await client.open_stream(PATH)
                hello = _Hello(self.cluster_id, self.node_id, self.address)
                await stream.send(_hello_encoder.encode(hello))
                if failures:
                    log.info("raft peer reachable again %s", kv(peer=link.peer_id))
                failures, backoff = 0, BACKOFF_MIN
                while True:
                    await link.ready.wait()
                    link.ready.clear()
                    batch, link.queue = link.queue, []
                    for frame in _frames(batch):
                        await stream.send(frame)
            except SwarmliteError as exc:
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(
                    level,
                    "raft peer unreachable %s",
                    kv(peer=link.peer_id, address=link.address, error=exc.message),
                )
                link.queue.clear()
                self._unreachable(link.peer_id)
            finally:
                with contextlib.suppress(Exception):
                    await client.close()
            await asyncio.sleep(backoff)
            backoff = min(BACKOFF_MAX, backoff * 2)

    # ------------------------------------------------------------------ inbound

    def register(self, server: RpcServer) -> None:
        server.add_stream(PATH, self._serve)

    async def _serve(self, stream: ServerStream, peer: Peer) -> None:
        identity = peer.identity
        if identity is not None and identity.role != "manager":
            raise PermissionDenied(
                f"node {identity.node_id} is a {identity.role}: only managers take part in raft"
            )
        first = await stream.recv()
        if first is None:
            return
        try:
            hello = _hello_decoder.decode(first)
        except msgspec.DecodeError as exc:
            raise InvalidArgument(f"malformed raft hello: {exc}") from exc
        if hello.cluster_id != self.cluster_id:
            raise PermissionDenied(
                f"raft peer {hello.node_id} belongs to cluster {hello.cluster_id}, "
                f"not {self.cluster_id}"
            )
        sender = identity.node_id if identity is not None else hello.node_id
        if sender != hello.node_id:
            raise PermissionDenied(
                f"raft peer's certificate names {sender} but it says it is {hello.node_id}"
            )
        log.debug("raft peer connected %s", kv(peer=sender, address=peer.address))
        if (
            hello.address
            and sender not in self._members
            and self._heard.get(sender) != hello.address
        ):
            self._heard[sender] = hello.address
            self._sync_links()
        parts: list[bytes] = []
        size = 0
        while True:
            frame = await stream.recv()
            if frame is None:
                return
            if len(frame) > MAX_FRAME_BYTES + 1 or frame[:1] not in (WHOLE, PART):
                raise InvalidArgument(
                    f"raft frame of {len(frame)} bytes is malformed or over the "
                    f"{MAX_FRAME_BYTES}-byte limit"
                )
            size += len(frame) - 1
            if size > MAX_BATCH_BYTES:
                raise InvalidArgument(f"raft batch over the {MAX_BATCH_BYTES}-byte limit")
            parts.append(frame[1:])
            if frame[:1] == PART:
                continue
            batch, parts, size = b"".join(parts), [], 0
            messages = decode_batch(batch)
            for m in messages:
                if m.src != sender or m.dst != self.node_id:
                    raise PermissionDenied(
                        f"raft peer {sender} sent a message from {m.src} to {m.dst}"
                    )
            self._deliver(messages)


def _frames(batch: list[Message]) -> list[bytes]:
    """Encode `batch` as frames of at most MAX_FRAME_BYTES (plus a one-byte marker)."""
    data = encode_batch(batch)
    if len(data) <= MAX_FRAME_BYTES:
        return [WHOLE + data]
    pieces = [data[i : i + MAX_FRAME_BYTES] for i in range(0, len(data), MAX_FRAME_BYTES)]
    return [PART + p for p in pieces[:-1]] + [WHOLE + pieces[-1]]
