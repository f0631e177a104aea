"""An internal overlay on real namespaces: a node with an open and an internal network, a
container on each (and a second one on the internal network), and another host on the
underlay. Needs root.

What a user checks: the internal network's containers reach each other and the node's
DNS (service names only), and nothing else: not another host, not the node's own
addresses, not the open network, not even with a default route of their own making; the
open network's container reaches the other host (masqueraded to the node's address).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import msgspec
import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord  # type: ignore[import-untyped]

from swarmlite.api.control import EndpointInfo, NetworkInfo
from swarmlite.api.task import Attachment
from swarmlite.network import ip
from swarmlite.network.attach import attach
from swarmlite.network.dns import DnsServer
from swarmlite.network.isolation import isolate, remove_isolation
from swarmlite.network.overlay import Overlays
from swarmlite.testing import netprobe
from swarmlite.testing.factories import make_task

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(shutil.which("nft") is None, reason="needs nftables"),
    pytest.mark.timeout(60),
]

T = TypeVar("T")
NetnsFactory = Callable[[str], Any]  # conftest's: label -> Netns

OPEN = NetworkInfo(
    network_id="netopen", name="shop_front", vni=4310, subnet="198.19.10.0/24",
    gateway="198.19.10.1",
)  # fmt: skip
CLOSED = NetworkInfo(
    network_id="netclosed", name="shop_back", vni=4311, subnet="198.19.11.0/24",
    gateway="198.19.11.1", internal=True,
)  # fmt: skip
DB = EndpointInfo(
    network_id=CLOSED.network_id, service_id="s-db", names=["db", "shop_db"], mode="dnsrr",
    backends=["198.19.11.51"], tasks=["198.19.11.51"],
)  # fmt: skip
OUTSIDE_PORT = 9000
NODE_PORT = 9001
DB_PORT = 5432


class Upstream(asyncio.DatagramProtocol):
    """The node's resolver: answers every name with 198.18.9.9 and remembers the names."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        request = DNSRecord.parse(data)
        self.asked.append(str(request.q.qname))
        reply = request.reply()
        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("198.18.9.9"), ttl=60))
        assert self.transport is not None
        self.transport.sendto(reply.pack(), addr)


@dataclass
class Lab:
    node: Any  # conftest.Netns
    outside: Any
    pids: dict[str, int]  # open, closed, closed2 -> container pid
    upstream: Upstream
    listeners: list[socket.socket] = field(default_factory=list)

    def connect(self, container: str, addr: str, port: int) -> str:
        """ "ok: <peer the server saw>" or "error: <errno name>" for one TCP connection."""
        [listener] = [s for s in self.listeners if s.getsockname() == (addr, port)]

        def dial() -> str:
            got = netprobe.dial(addr, port, timeout=1.0)
            if got != "ok":
                return got
            listener.settimeout(2.0)
            peer, _ = listener.accept()
            return f"ok: {_peer(peer)}"

        return ip.run_in_netns(f"/proc/{self.pids[container]}/ns/net", dial)

    def query(self, container: str, name: str, server: str) -> DNSRecord:
        def ask() -> bytes:
            data: bytes = DNSRecord.question(name).send(server, 53, timeout=3)
            return data

        return DNSRecord.parse(ip.run_in_netns(f"/proc/{self.pids[container]}/ns/net", ask))

    def sh(self, container: str, *argv: str) -> str:
        done = subprocess.run(
            ["nsenter", f"--net=/proc/{self.pids[container]}/ns/net", *argv],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


def _peer(conn: socket.socket) -> str:
    with conn:
        return str(conn.getpeername()[0])


def _container(procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """A process in a network namespace of its own, as a runtime with NetworkMode none."""
    proc = subprocess.Popen(["unshare", "--net", "sleep", "120"])
    procs.append(proc)
    for _ in range(500):
        if Path(f"/proc/{proc.pid}/comm").read_text().strip() == "sleep":
            return proc
        time.sleep(0.01)
    raise AssertionError("container process did not start")


def _listen(netns: str, addr: str, port: int) -> socket.socket:
    sock = ip.socket_in(netns, socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((addr, port))
    sock.listen(8)
    return sock


@pytest.fixture
async def lab(netns_factory: NetnsFactory, tmp_path: Path) -> AsyncIterator[Lab]:
    node = netns_factory("node")
    outside = netns_factory("outside")
    procs: list[subprocess.Popen[bytes]] = []
    listeners: list[socket.socket] = []
    dns: DnsServer | None = None
    transport: asyncio.DatagramTransport | None = None
    try:
        await Overlays(node.address, netns=node.name).apply([OPEN, CLOSED])
        pids: dict[str, int] = {}
        for name, net, address in (
            ("open", OPEN, "198.19.10.50/24"),
            ("closed", CLOSED, "198.19.11.50/24"),
            ("closed2", CLOSED, "198.19.11.51/24"),
        ):
            proc = await asyncio.to_thread(_container, procs)
            task = msgspec.structs.replace(
                make_task(),
                networks=[Attachment(network_id=net.network_id, address=address)],
            )
            await attach(task, proc.pid, [OPEN, CLOSED], netns=node.name)
            pids[name] = proc.pid
        await isolate([OPEN, CLOSED], netns=node.name)

        sock = ip.socket_in(node.name, socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 53))
        upstream = Upstream()
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: upstream, sock=sock
        )
        resolv = tmp_path / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\n")
        dns = DnsServer(netns=node.name, resolv_conf=resolv, upstream_timeout=1.0)
        await dns.update([DB], [OPEN, CLOSED])

        listeners.append(_listen(outside.name, outside.address, OUTSIDE_PORT))
        listeners.append(_listen(node.name, node.address, NODE_PORT))
        listeners.append(_listen(f"/proc/{pids['closed2']}/ns/net", "198.19.11.51", DB_PORT))
        listeners.append(_listen(f"/proc/{pids['open']}/ns/net", "198.19.10.50", OUTSIDE_PORT))
        yield Lab(node, outside, pids, upstream, listeners)
    finally:
        for s in listeners:
            s.close()
        if dns is not None:
            await dns.close()
        if transport is not None:
            transport.close()
        await remove_isolation(node.name)
        for proc in procs:
            proc.kill()
            proc.wait()


async def test_the_open_network_reaches_another_host_masqueraded(lab: Lab) -> None:
    got = await asyncio.to_thread(lab.connect, "open", lab.outside.address, OUTSIDE_PORT)
    assert got == f"ok: {lab.node.address}"
    got = await asyncio.to_thread(lab.connect, "open", lab.node.address, NODE_PORT)
    assert got == "ok: 198.19.10.50"


async def test_the_internal_network_reaches_its_own_tasks_and_nothing_else(lab: Lab) -> None:
    assert "default" not in lab.sh("closed", "ip", "route")
    assert await asyncio.to_thread(lab.connect, "closed", "198.19.11.51", DB_PORT) == (
        "ok: 198.19.11.50"
    )
    got = await asyncio.to_thread(lab.connect, "closed", lab.outside.address, OUTSIDE_PORT)
    assert got == "error: ENETUNREACH"
    # A container that makes its own default route still reaches nothing: the node drops
    # what leaves the internal bridge, and answers nothing but DNS itself.
    lab.sh("closed", "ip", "route", "add", "default", "via", CLOSED.gateway)
    for addr, port in (
        (lab.outside.address, OUTSIDE_PORT),
        (lab.node.address, NODE_PORT),
        ("198.19.10.50", OUTSIDE_PORT),
    ):
        got = await asyncio.to_thread(lab.connect, "closed", addr, port)
        assert got.startswith("error"), (addr, got)
    # Nor does anything outside reach into it, the node's other networks included.
    lab.sh("open", "ip", "route", "replace", "198.19.11.0/24", "via", OPEN.gateway)
    got = await asyncio.to_thread(lab.connect, "open", "198.19.11.51", DB_PORT)
    assert got.startswith("error"), got


async def test_the_internal_network_resolves_service_names_but_no_outside_name(
    lab: Lab,
) -> None:
    reply = await asyncio.to_thread(lab.query, "closed", "db", CLOSED.gateway)
    assert [str(rr.rdata) for rr in reply.rr] == ["198.19.11.51"]
    reply = await asyncio.to_thread(lab.query, "closed", "example.org", CLOSED.gateway)
    assert reply.header.rcode == RCODE.NXDOMAIN and reply.rr == []
    assert lab.upstream.asked == []
    reply = await asyncio.to_thread(lab.query, "open", "example.org", OPEN.gateway)
    assert [str(rr.rdata) for rr in reply.rr] == ["198.18.9.9"]
    assert lab.upstream.asked == ["example.org."]
