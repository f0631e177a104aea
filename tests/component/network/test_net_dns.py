"""The node's DNS server on real namespaces: a node with two overlays, a container on one
of them asking the gateway, and a fake upstream resolver inside the node. Needs root."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import msgspec
import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from swarmlite.api.control import EndpointInfo, NetworkInfo
from swarmlite.api.task import Attachment
from swarmlite.network import ip
from swarmlite.network.attach import attach
from swarmlite.network.dns import VIP_TTL, DnsServer
from swarmlite.network.overlay import Overlays
from swarmlite.testing.factories import make_task

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2"),
    pytest.mark.timeout(30),
]

FRONT = NetworkInfo(
    network_id="netfront", name="shop_front", vni=4300, subnet="198.19.2.0/24",
    gateway="198.19.2.1",
)  # fmt: skip
BACK = NetworkInfo(
    network_id="netback", name="shop_back", vni=4301, subnet="198.19.3.0/24",
    gateway="198.19.3.1",
)  # fmt: skip
CONTAINER = "198.19.2.50"
OUTSIDE = "198.18.9.9"  # what the fake upstream answers for outside.example

WEB = EndpointInfo(
    network_id=FRONT.network_id, service_id="s-web", names=["web", "shop_web"], mode="vip",
    vip="198.19.2.2", backends=["198.19.2.10"], tasks=["198.19.2.10", "198.19.2.11"],
)  # fmt: skip
CACHE = EndpointInfo(
    network_id=FRONT.network_id, service_id="s-cache", names=["cache", "shop_cache"],
    mode="dnsrr", backends=["198.19.2.21", "198.19.2.20"], tasks=["198.19.2.20", "198.19.2.21"],
)  # fmt: skip
DB = EndpointInfo(
    network_id=BACK.network_id, service_id="s-db", names=["db", "shop_db"], mode="vip",
    vip="198.19.3.2", tasks=["198.19.3.10"],
)  # fmt: skip


def sh(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr.strip()}"
    return done.stdout


class FakeUpstream(asyncio.DatagramProtocol):
    """A resolver in the node's namespace: outside.example -> OUTSIDE, the rest NXDOMAIN."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.asked: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector transport does not subclass DatagramTransport, but is one.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        request = DNSRecord.parse(data)
        name = str(request.q.qname)
        self.asked.append(name)
        reply = request.reply()
        if name == "outside.example.":
            reply.add_answer(RR(name, QTYPE.A, rdata=A(OUTSIDE), ttl=60))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        assert self.transport is not None
        self.transport.sendto(reply.pack(), addr)


@dataclass
class Node:
    netns: str
    pid: int
    dns: DnsServer
    upstream: FakeUpstream
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    async def query(
        self, name: str, qtype: str = "A", *, server: str = FRONT.gateway, tcp: bool = False
    ) -> DNSRecord:
        """Ask `server` from inside the container, as its resolver would."""

        def ask() -> bytes:
            data: bytes = DNSRecord.question(name, qtype).send(server, 53, tcp=tcp, timeout=3)
            return data

        return DNSRecord.parse(await ip.in_netns(f"/proc/{self.pid}/ns/net", ask))


def addresses(reply: DNSRecord) -> list[str]:
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]


def start_container(procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """A process in a network namespace of its own, as a runtime with NetworkMode none."""
    proc = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    procs.append(proc)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{proc.pid}/comm").read_text().strip() != "sleep":
        assert time.monotonic() < deadline, "container process did not start"
        time.sleep(0.01)
    return proc


def cleanup(procs: list[subprocess.Popen[bytes]], netns: str) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()
    subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=10)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    netns = f"swlt-{secrets.token_hex(3)}-dns"
    sh("ip", "netns", "add", netns)
    procs: list[subprocess.Popen[bytes]] = []
    transport: asyncio.DatagramTransport | None = None
    dns: DnsServer | None = None
    try:
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        await Overlays("198.18.77.1", netns=netns).apply([FRONT, BACK])
        proc = start_container(procs)
        task = msgspec.structs.replace(
            make_task(),
            networks=[Attachment(network_id=FRONT.network_id, address=f"{CONTAINER}/24")],
        )
        await attach(task, proc.pid, [FRONT, BACK], netns=netns)

        sock = ip.socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 53))
        upstream = FakeUpstream()
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: upstream, sock=sock
        )
        resolv = tmp_path / "resolv.conf"
        # The gateway itself is listed first, as a node whose own resolver points at an
        # overlay would: it must be skipped, not asked (that would loop).
        resolv.write_text(f"search example\nnameserver {FRONT.gateway}\nnameserver 127.0.0.1\n")
        dns = DnsServer(netns=netns, resolv_conf=resolv, upstream_timeout=1.0)
        await dns.update([WEB, CACHE, DB], [FRONT, BACK])
        yield Node(netns, proc.pid, dns, upstream, procs)
    finally:
        if dns is not None:
            await dns.close()
        if transport is not None:
            transport.close()
        cleanup(procs, netns)


async def test_a_service_name_answers_its_vip_and_tasks_name_its_tasks(node: Node) -> None:
    reply = await node.query("web")
    assert addresses(reply) == [WEB.vip]
    assert reply.header.aa == 1 and reply.rr[0].ttl == VIP_TTL
    assert addresses(await node.query("SHOP_WEB.")) == [WEB.vip]
    assert sorted(addresses(await node.query("tasks.web"))) == ["198.19.2.10", "198.19.2.11"]
    assert addresses(await node.query("shop_web", tcp=True)) == [WEB.vip]


async def test_a_dnsrr_service_answers_its_healthy_tasks(node: Node) -> None:
    assert sorted(addresses(await node.query("cache"))) == ["198.19.2.20", "198.19.2.21"]


async def test_a_known_name_has_no_ipv6_record_and_is_not_forwarded(node: Node) -> None:
    reply = await node.query("web", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and reply.rr == []
    assert node.upstream.asked == []


async def test_a_service_on_another_network_is_not_seen(node: Node) -> None:
    reply = await node.query("db")  # on shop_back only; the container is on shop_front
    assert reply.header.rcode == RCODE.NXDOMAIN and addresses(reply) == []
    assert node.upstream.asked == ["db."], "unknown here: forwarded, like any outside name"
    # Asking shop_back's DNS through the gateway does not reveal it either.
    assert addresses(await node.query("db", server=BACK.gateway)) == []


async def test_other_names_resolve_through_the_nodes_resolver(node: Node) -> None:
    assert addresses(await node.query("outside.example")) == [OUTSIDE]
    assert node.upstream.asked == ["outside.example."]


async def test_update_swaps_the_tables_at_once(node: Node) -> None:
    moved = msgspec.structs.replace(WEB, vip="198.19.2.3")
    stop = asyncio.Event()

    async def flip() -> None:
        for i in range(30):
            await node.dns.update([moved if i % 2 == 0 else WEB, CACHE, DB], [FRONT, BACK])
            await asyncio.sleep(0)
        stop.set()

    answers: list[list[str]] = []

    async def ask() -> None:
        while not stop.is_set():
            answers.append(addresses(await node.query("web")))

    await asyncio.gather(flip(), ask())
    assert answers and all(a in ([WEB.vip], [moved.vip]) for a in answers)
    await node.dns.update([moved, CACHE, DB], [FRONT, BACK])
    assert addresses(await node.query("web")) == [moved.vip]
    assert node.upstream.asked == [], "a name never went missing while tables changed"


async def test_a_network_gone_stops_its_listener_and_a_new_one_starts(node: Node) -> None:
    await node.dns.update([WEB], [BACK])
    assert node.dns.addresses() == {BACK.network_id: BACK.gateway}
    with pytest.raises(OSError):
        await node.query("web")  # nothing listens on shop_front's gateway any more
    await node.dns.update([WEB, CACHE], [FRONT])
    assert node.dns.addresses() == {FRONT.network_id: FRONT.gateway}
    assert addresses(await node.query("web")) == [WEB.vip]


async def test_a_dead_upstream_gives_servfail(node: Node, tmp_path: Path) -> None:
    resolv = tmp_path / "dead.conf"
    resolv.write_text("nameserver 127.0.0.2\n")  # nothing listens there
    dns = DnsServer(netns=node.netns, port=5353, resolv_conf=resolv, upstream_timeout=0.3)
    try:
        await dns.update([WEB], [FRONT])

        def ask() -> bytes:
            data: bytes = DNSRecord.question("outside.example").send(FRONT.gateway, 5353, timeout=3)
            return data

        reply = DNSRecord.parse(await ip.in_netns(f"/proc/{node.pid}/ns/net", ask))
        assert reply.header.rcode == RCODE.SERVFAIL
    finally:
        await dns.close()
