"""Service discovery: a DNS server per node, answering on each overlay's gateway address.

Owns the name tables built from the manager's EndpointInfo (per network: "<service>" and
"<stack>_<service>", as EndpointInfo.names lists them, answer the VIP in `vip` mode or the
task addresses in rotation in `dnsrr` mode; "tasks.<name>" answers every running task),
the UDP and TCP listeners on <gateway>:53 inside the node's namespace (one pair per
network, started and stopped as networks come and go), and forwarding of every other
name to the resolvers of the node's /etc/resolv.conf (read once, at the first update;
servers inside an overlay subnet are skipped so that a query never loops back here).
Does not own the gateway address itself (overlay.py) nor containers' resolv.conf (the
runtime writes what the driver's dns_servers names).

Invariants: a query that arrives on network X, from a client inside X's subnet, is
answered from X's table only, so a service is visible exactly on the networks it is
attached to, as with Docker (a client from elsewhere that reaches X's address through a
gateway gets forwarding only). `update`
builds the new tables aside and swaps one reference: a query sees the old tables or the
new ones, never a mix. Names unknown here are forwarded, never answered NXDOMAIN by us
(Docker does the same), so a container can still resolve outside names that happen to
look like ours; except on an internal network, which reaches nothing outside: a query
arriving there for a name not ours is answered NXDOMAIN, never forwarded (Docker's
resolver does not forward for a container without outside access either). NXDOMAIN, not
REFUSED: a resolver walking its search list goes on to the next name after NXDOMAIN, and
gives up on the whole lookup after a refusal ("vault.example.org" is asked before
"vault").

TTLs: a VIP lives as long as its service and may be cached a little (VIP_TTL = 30 s: long
enough to spare repeated lookups, short enough that a stack removed and deployed again
is followed within half a minute; Docker's 600 s makes clients hold a dead VIP for ten
minutes). Task addresses change with every restart, reschedule and scale, so they are
never cached (TASK_TTL = 0): clients ask again and see the tasks that run now.

Socket errors while binding become NetworkSetupFailure; a failing upstream becomes
SERVFAIL for that query, never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from dnslib import QTYPE, RCODE, RR, A, DNSRecord  # type: ignore[import-untyped]
from dnslib.dns import DNSError  # type: ignore[import-untyped]

from swarmlite.api.control import EndpointInfo, NetworkInfo
from swarmlite.network import ip

log = logging.getLogger(__name__)

DNS_PORT = 53
VIP_TTL = 30
TASK_TTL = 0
UPSTREAM_TIMEOUT = 2.0  # seconds per upstream server
TCP_IDLE_TIMEOUT = 10.0
_IP_FREEBIND = 15  # bind before the gateway address exists (overlay.py may come later)
_MAX_UPSTREAMS = 3  # as many as glibc reads
_UDP_MAX = 512  # without EDNS, a UDP answer must fit here (about 30 A records)


@dataclass(frozen=True)
class Record:
    """What one name answers: A records, shuffled on each answer when `rotate`."""

    addresses: tuple[str, ...]
    ttl: int
    rotate: bool = False


Table = Mapping[str, Record]  # lowercase name without the final dot -> record


def build_tables(
    endpoints: Iterable[EndpointInfo], networks: Iterable[NetworkInfo]
) -> dict[str, dict[str, Record]]:
    """The name table of each network (by network id) from the manager's endpoints."""
    tables: dict[str, dict[str, Record]] = {n.network_id: {} for n in networks}
    for ep in sorted(endpoints, key=lambda e: e.service_id):
        table = tables.get(ep.network_id)
        if table is None:
            continue  # a network this node is not on
        tasks = tuple(sorted({ip.bare(a) for a in ep.tasks}, key=_sort_key))
        if ep.mode == "dnsrr":
            service = Record(
                tuple(sorted({ip.bare(a) for a in ep.backends}, key=_sort_key)),
                TASK_TTL,
                rotate=True,
            )
        else:
            service = Record((ip.bare(ep.vip),) if ep.vip else (), VIP_TTL)
        for name in ep.names:
            key = normalize(name)
            if key:
                table[key] = service
                table[f"tasks.{key}"] = Record(tasks, TASK_TTL, rotate=True)
    return tables


def normalize(name: str) -> str:
    return name.strip().rstrip(".").lower()


def answer(table: Table, request: DNSRecord, rng: random.Random) -> DNSRecord | None:
    """Our reply to `request` from `table`, or None when the name is not ours (forward).

    A name we know answers A records (none for other types: NOERROR without data), with
    the authoritative flag; a known name whose service has no address answers NOERROR
    empty too, so that clients do not ask elsewhere for a service that merely has no
    task right now.
    """
    if not request.questions:
        reply = request.reply()
        reply.header.rcode = RCODE.FORMERR
        return reply
    question = request.questions[0]
    record = table.get(normalize(str(question.qname)))
    if record is None:
        return None
    reply = request.reply(ra=1, aa=1)
    if question.qtype in (QTYPE.A, QTYPE.ANY):
        addresses = list(record.addresses)
        if record.rotate:
            rng.shuffle(addresses)
        for address in addresses:
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=record.ttl))
    return reply


def read_upstreams(path: str | Path, exclude: Iterable[str]) -> list[str]:
    """The `nameserver` addresses of a resolv.conf, minus those inside `exclude` subnets."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        log.warning("dns no resolv.conf path=%s error=%s", path, exc)
        return []
    nets = [ipaddress.ip_network(s, strict=False) for s in exclude]
    found: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2 or words[0] != "nameserver":
            continue
        try:
            address = ipaddress.ip_address(words[1].split("%", 1)[0])
        except ValueError:
            continue
        if address.version != 4 or any(address in n for n in nets):
            continue  # IPv4 only here; never ourselves
        if str(address) not in found:
            found.append(str(address))
    return found[:_MAX_UPSTREAMS]


def _sort_key(address: str) -> tuple[int, str]:
    try:
        return int(ipaddress.IPv4Address(address)), address
    except ValueError:
        return 0, address


class DnsServer:
    """The node's DNS server: one UDP and one TCP listener per overlay network."""

    def __init__(
        self,
        *,
        netns: str | None = None,
        port: int = DNS_PORT,
        resolv_conf: str | Path = "/etc/resolv.conf",
        upstream_timeout: float = UPSTREAM_TIMEOUT,
        rng: random.Random | None = None,
    ) -> None:
        self.netns = netns
        self.port = port
        self.resolv_conf = resolv_conf
        self.upstream_timeout = upstream_timeout
        self.rng = rng or random.Random()
        self._view = _View({}, {})
        self._listeners: dict[str, _Listener] = {}
        self._upstreams: list[str] | None = None
        self._lock = asyncio.Lock()

    @property
    def upstreams(self) -> list[str]:
        return list(self._upstreams or [])

    async def update(self, endpoints: list[EndpointInfo], networks: list[NetworkInfo]) -> None:
        """Answer for exactly these networks, from these endpoints (swapped in at once)."""
        async with self._lock:
            if self._upstreams is None:
                self._upstreams = await asyncio.to_thread(
                    read_upstreams, self.resolv_conf, [n.subnet for n in networks]
                )
                log.info("dns upstreams servers=%s", ",".join(self._upstreams) or "none")
            self._view = _View(
                build_tables(endpoints, networks),
                {n.network_id: ipaddress.ip_network(n.subnet, strict=False) for n in networks},
                frozenset(n.network_id for n in networks if n.internal),
            )
            wanted = {n.network_id: ip.bare(n.gateway) for n in networks}
            for network_id, listener in list(self._listeners.items()):
                if wanted.get(network_id) != listener.address:
                    listener.close()
                    del self._listeners[network_id]
                    log.info("dns stopped network=%s address=%s", network_id, listener.address)
            for network_id, address in wanted.items():
                if network_id not in self._listeners:
                    self._listeners[network_id] = await self._listen(network_id, address)
                    log.info("dns listening network=%s address=%s", network_id, address)

    async def close(self) -> None:
        async with self._lock:
            for listener in self._listeners.values():
                listener.close()
            self._listeners.clear()

    def addresses(self) -> dict[str, str]:
        """network id -> the address this server answers on."""
        return {k: v.address for k, v in self._listeners.items()}

    # ----------------------------------------------------------------- serving

    async def handle(
        self, network_id: str, data: bytes, *, tcp: bool, client: str | None = None
    ) -> bytes | None:
        """The reply to one query that arrived on `network_id` (None: drop it).

        Only a client inside the network's subnet sees its services (a container on
        another network that reaches this address through its gateway does not); every
        client gets forwarding.
        """
        view = self._view  # one read: the whole query uses one generation of tables
        table: Table = view.tables.get(network_id, {})
        subnet = view.subnets.get(network_id)
        if client is not None and (subnet is None or not _inside(client, subnet)):
            table = {}
        try:
            request = DNSRecord.parse(data)
        except (DNSError, struct.error, IndexError, ValueError):
            return None  # not DNS: no reply, as a resolver would do
        if request.header.qr:
            return None
        reply = answer(table, request, self.rng)
        if reply is not None:
            packed: bytes = reply.pack()
            if not tcp and len(packed) > _UDP_MAX:
                packed = reply.truncate().pack()  # TC: the client asks again over TCP
            return packed
        if network_id in view.internal:
            missing = request.reply()  # an internal network reaches no outside name
            missing.header.rcode = RCODE.NXDOMAIN
            return bytes(missing.pack())
        forwarded = await self._forward(data, tcp=tcp)
        if forwarded is not None:
            return forwarded
        failed = request.reply()
        failed.header.rcode = RCODE.SERVFAIL
        packed = failed.pack()
        return packed

    async def _forward(self, data: bytes, *, tcp: bool) -> bytes | None:
        for server in self.upstreams:
            try:
                async with asyncio.timeout(self.upstream_timeout):
                    if tcp:
                        return await self._forward_tcp(server, data)
                    return await self._forward_udp(server, data)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                log.debug("dns upstream failed server=%s error=%r", server, exc)
        return None

    async def _forward_udp(self, server: str, data: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        sock = await ip.in_netns(
            self.netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        )
        with sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, (server, DNS_PORT))
            await loop.sock_sendall(sock, data)
            while True:
                reply = await loop.sock_recv(sock, 65535)
                if reply[:2] == data[:2]:  # the same query id; anything else is stray
                    return reply

    async def _forward_tcp(self, server: str, data: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        sock = await ip.in_netns(
            self.netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        )
        sock.setblocking(False)
        await loop.sock_connect(sock, (server, DNS_PORT))
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            writer.write(struct.pack("!H", len(data)) + data)
            await writer.drain()
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(size)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _listen(self, network_id: str, address: str) -> _Listener:
        where = f"{ip.describe(self.netns)}, {address}:{self.port}"
        loop = asyncio.get_running_loop()

        def make(kind: int) -> socket.socket:
            sock = socket.socket(socket.AF_INET, kind)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
                sock.bind((address, self.port))
                if kind == socket.SOCK_STREAM:
                    sock.listen(64)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            return sock

        with ip.translate("listen for DNS", where):
            udp_sock = await ip.in_netns(self.netns, lambda: make(socket.SOCK_DGRAM))
            try:
                tcp_sock = await ip.in_netns(self.netns, lambda: make(socket.SOCK_STREAM))
            except BaseException:
                udp_sock.close()
                raise
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self, network_id), sock=udp_sock
        )
        tcp_server = await asyncio.start_server(
            lambda r, w: self._serve_tcp(network_id, r, w), sock=tcp_sock
        )
        return _Listener(address, transport, tcp_server)

    async def _serve_tcp(
        self, network_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) else ""
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                    (size,) = struct.unpack("!H", await reader.readexactly(2))
                    data = await reader.readexactly(size)
                reply = await self.handle(network_id, data, tcp=True, client=client)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            pass  # the client went away or idled: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer, network_id: str) -> None:
        self.server = server
        self.network_id = network_id
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector transport does not subclass DatagramTransport, but is one.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self.pending.add(task)  # held until done: a task nobody holds may vanish
        task.add_done_callback(self.pending.discard)

    async def _reply(self, data: bytes, addr: tuple[str | int, int]) -> None:
        try:
            reply = await self.server.handle(self.network_id, data, tcp=False, client=str(addr[0]))
        except Exception:
            log.exception("dns query failed network=%s client=%s", self.network_id, addr)
            return
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self.pending:
            task.cancel()


@dataclass(frozen=True)
class _View:
    """One generation of what the server answers: replaced whole by `update`."""

    tables: Mapping[str, Mapping[str, Record]]
    subnets: Mapping[str, ipaddress.IPv4Network | ipaddress.IPv6Network]
    internal: frozenset[str] = frozenset()  # networks whose queries are never forwarded


def _inside(address: str, subnet: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(address) in subnet
    except ValueError:
        return False


@dataclass
class _Listener:
    address: str
    udp: asyncio.DatagramTransport
    tcp: asyncio.Server

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()
