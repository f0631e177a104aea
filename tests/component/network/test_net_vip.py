"""VIPs and the routing mesh on real namespaces: a "node" with a bridge, three "tasks" on it
serving HTTP with busybox (b1 and b2 without a route beyond their network, as tasks on
another node; b3 with the node as its gateway, as a local task), a "member" container on the
same network (a VIP's client), and a "client" outside, routed to the node. Also the counts
of connections each published port passed on (what the agent reports as requests). Needs
root, iproute2, nftables and busybox."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from swarmlite.api.control import EndpointInfo, PublishedPort
from swarmlite.errors import NetworkSetupFailure
from swarmlite.network.ip import run_in_netns
from swarmlite.network.nft import Nft
from swarmlite.network.vip import (
    RoutingMesh,
    base_script,
    parse_table,
    plan,
    requests_by_service,
    wanted_state,
)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("ip", "nft", "busybox", "nsenter")),
        reason="needs iproute2, nftables, busybox and nsenter",
    ),
    pytest.mark.timeout(30),
]

BRIDGE = "swlvbr0"
NODE_BRIDGE_ADDR = "198.18.10.1"
NODE_ADDR = "198.18.20.1"  # the node's address facing the client
CLIENT_ADDR = "198.18.20.2"
MEMBER_ADDR = "198.18.10.21"
B1, B2, B3 = "198.18.10.11", "198.18.10.12", "198.18.10.13"
VIP = "198.18.10.100"  # in the bridge's subnet, owned by nobody: unanswered ARP if not NATed


def sh(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Topology:
    """The namespaces and servers of this module, all removed at the end."""

    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    namespaces: list[str] = field(default_factory=list)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def netns(self, role: str) -> str:
        name = f"swlvip-{self.tag}-{role}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    @property
    def node(self) -> str:
        return self.namespaces[0]

    @property
    def client(self) -> str:
        return self.namespaces[1]

    @property
    def member(self) -> str:
        return self.namespaces[2]

    def build(self, root: Path) -> None:
        node, client, member = self.netns("node"), self.netns("cl"), self.netns("c1")
        sh("ip", "-n", node, "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "-n", node, "addr", "add", f"{NODE_BRIDGE_ADDR}/24", "dev", BRIDGE)
        sh("ip", "-n", node, "link", "set", BRIDGE, "up")
        sh("ip", "-n", node, "link", "add", "clh", "type", "veth", "peer", "name", "eth0",
           "netns", client)  # fmt: skip
        sh("ip", "-n", node, "addr", "add", f"{NODE_ADDR}/24", "dev", "clh")
        sh("ip", "-n", node, "link", "set", "clh", "up")
        sh("ip", "-n", client, "addr", "add", f"{CLIENT_ADDR}/24", "dev", "eth0")
        sh("ip", "-n", client, "link", "set", "eth0", "up")
        sh("ip", "-n", client, "route", "add", "default", "via", NODE_ADDR)
        sh("ip", "-n", node, "link", "add", "c1h", "type", "veth", "peer", "name", "eth0",
           "netns", member)  # fmt: skip
        sh("ip", "-n", node, "link", "set", "c1h", "master", BRIDGE, "up")
        sh("ip", "-n", member, "addr", "add", f"{MEMBER_ADDR}/24", "dev", "eth0")
        sh("ip", "-n", member, "link", "set", "eth0", "up")
        # The node answers for VIPs (here: a route to them via the gateway).
        sh("ip", "-n", member, "route", "add", f"{VIP}/31", "via", NODE_BRIDGE_ADDR)
        for name, addr, gateway in (("b1", B1, False), ("b2", B2, False), ("b3", B3, True)):
            task = self.netns(name)
            sh("ip", "-n", node, "link", "add", f"{name}h", "type", "veth", "peer", "name",
               "eth0", "netns", task)  # fmt: skip
            sh("ip", "-n", node, "link", "set", f"{name}h", "master", BRIDGE, "up")
            sh("ip", "-n", task, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", task, "link", "set", "eth0", "up")
            if gateway:
                sh("ip", "-n", task, "route", "add", "default", "via", NODE_BRIDGE_ADDR)
            www = root / name
            www.mkdir()
            (www / "index.html").write_text(name)
            command = ["busybox", "httpd", "-f", "-p", "80", "-h", str(www)]
            self.servers.append(subprocess.Popen(["nsenter", f"--net=/run/netns/{task}", *command]))
        for addr in (B1, B2, B3):
            wait_listening(node, addr)

    def close(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def connect(netns: str, addr: str, port: int, timeout: float = 2.0) -> socket.socket:
    """A TCP connection made from inside `netns`."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((addr, port))
        except OSError:
            sock.close()
            raise
        return sock

    return run_in_netns(netns, make)


def request(sock: socket.socket) -> str:
    """GET / on an open connection: the body, which names the task that answered."""
    with sock:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], head
    return body.decode()


def fetch(netns: str, addr: str, port: int) -> str:
    return request(connect(netns, addr, port))


def wait_listening(netns: str, addr: str) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            fetch(netns, addr, 80)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def listing(netns: str) -> list[dict[str, Any]]:
    """What `nft -j list table ip swarmlite` shows inside `netns`."""
    out = sh("nsenter", f"--net=/run/netns/{netns}", "nft", "-j", "list", "table", "ip",
             "swarmlite")  # fmt: skip
    return [o for o in json.loads(out)["nftables"] if "metainfo" not in o]


def handles(objects: list[dict[str, Any]]) -> dict[str, int]:
    """The kernel handle of the table, each chain and each rule (by chain and comment)."""
    found = {}
    for obj in objects:
        kind = next(iter(obj))
        body = obj[kind]
        if kind == "table":
            found["table"] = body["handle"]
        elif kind == "chain":
            found[f"chain {body['name']}"] = body["handle"]
        elif kind == "rule" and body["chain"].startswith(("vip_", "pp_")):
            found[f"rule {body['chain']}"] = body["handle"]
    return found


def vip(backends: list[str], *, addr: str = VIP, ports: list[int] | None = None) -> EndpointInfo:
    return EndpointInfo(
        network_id="net1",
        service_id=f"svc-{addr}",
        names=["web"],
        mode="vip",
        vip=addr,
        backends=backends,
        tasks=backends,
        ports=ports or [],
    )


def published(
    port: int,
    backends: list[str],
    *,
    mode: str = "ingress",
    proto: str = "tcp",
    target: int = 80,
    service: str = "svcweb",
) -> PublishedPort:
    return PublishedPort(
        published=port,
        protocol=proto,
        target=target,
        mode=mode,
        backends=backends,
        service_id=service,
    )


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topo = Topology()
    try:
        topo.build(tmp_path_factory.mktemp("www"))
        yield topo
    finally:
        topo.close()


@pytest.fixture
async def mesh(topo: Topology) -> Any:
    mesh = RoutingMesh(topo.node, ingress_addrs=[], ingress_bridge=BRIDGE)
    try:
        yield mesh
    finally:
        await mesh.remove()


async def test_connections_to_a_vip_alternate_between_backends(topo: Topology) -> None:
    for backend in ("lib", "cli"):
        mesh = RoutingMesh(topo.node, ingress_addrs=[], ingress_bridge=BRIDGE, backend=backend)
        try:
            await mesh.apply([vip([B1, B2], ports=[80])], [])
            answers = [fetch(topo.member, VIP, 80) for _ in range(6)]
        finally:
            await mesh.remove()
        assert answers == ["b1", "b2"] * 3 or answers == ["b2", "b1"] * 3, (backend, answers)


async def test_vip_without_ports_forwards_every_port(topo: Topology, mesh: RoutingMesh) -> None:
    await mesh.apply([vip([B1, B2])], [])
    assert sorted(fetch(topo.member, VIP, 80) for _ in range(4)) == ["b1", "b1", "b2", "b2"]


async def test_a_removed_backend_gets_no_new_connections_but_keeps_its_open_ones(
    topo: Topology, mesh: RoutingMesh
) -> None:
    other = vip([B1, B2], addr="198.18.10.101", ports=[80])
    await mesh.apply([vip([B1, B2], ports=[80]), other], [])
    open_conns = [connect(topo.member, VIP, 80), connect(topo.member, VIP, 80)]
    before = handles(listing(topo.node))

    await mesh.apply([vip([B1], ports=[80]), other], [])

    assert [fetch(topo.member, VIP, 80) for _ in range(4)] == ["b1"] * 4
    # The two connections opened before went one to each backend, and both still complete.
    assert sorted(request(sock) for sock in open_conns) == ["b1", "b2"]
    after = handles(listing(topo.node))
    assert after["table"] == before["table"]
    assert after["chain vip_198_18_10_100"] == before["chain vip_198_18_10_100"]
    # The other service's rule was not rewritten.
    assert after["rule vip_198_18_10_101"] == before["rule vip_198_18_10_101"]
    assert after["rule vip_198_18_10_100"] != before["rule vip_198_18_10_100"]


async def test_an_unchanged_apply_changes_nothing(topo: Topology, mesh: RoutingMesh) -> None:
    endpoints, ports = [vip([B1, B2], ports=[80])], [published(8080, [B1, B2])]
    await mesh.apply(endpoints, ports)
    before = listing(topo.node)

    # What the kernel lists reads back as exactly what was wanted: nothing left to do.
    wanted = wanted_state(endpoints, ports, ingress_bridge=BRIDGE)
    assert plan(parse_table(before), wanted, base_script(any_local_address=True)) == []
    await mesh.apply(endpoints, ports)
    assert listing(topo.node) == before


async def test_published_port_answers_from_outside_and_from_the_node_itself(
    topo: Topology, mesh: RoutingMesh
) -> None:
    await mesh.apply([], [published(8080, [B1, B2])])

    from_client = [fetch(topo.client, NODE_ADDR, 8080) for _ in range(4)]
    from_node = [fetch(topo.node, NODE_ADDR, 8080) for _ in range(4)]
    via_bridge_addr = fetch(topo.node, NODE_BRIDGE_ADDR, 8080)

    assert sorted(from_client) == ["b1", "b1", "b2", "b2"]
    assert sorted(from_node) == ["b1", "b1", "b2", "b2"]
    assert via_bridge_addr in ("b1", "b2")


async def test_published_port_restricted_to_ingress_addrs(topo: Topology) -> None:
    mesh = RoutingMesh(topo.node, ingress_addrs=[NODE_ADDR], ingress_bridge=BRIDGE)
    try:
        await mesh.apply([], [published(8080, [B1])])
        assert fetch(topo.client, NODE_ADDR, 8080) == "b1"
        with pytest.raises(ConnectionRefusedError):  # the node's other address: nobody listens
            connect(topo.node, NODE_BRIDGE_ADDR, 8080)
    finally:
        await mesh.remove()


async def test_host_mode_publishes_only_local_tasks(topo: Topology, mesh: RoutingMesh) -> None:
    await mesh.apply([], [published(9090, [B3], mode="host"), published(9091, [], mode="host")])

    assert [fetch(topo.client, NODE_ADDR, 9090) for _ in range(3)] == ["b3"] * 3
    keys = {
        tuple(elem[0]["concat"])
        for obj in listing(topo.node)
        if obj.get("map", {}).get("name") == "to_published"
        for elem in obj["map"].get("elem", [])
    }
    assert keys == {("tcp", 9090)}


async def test_an_endpoint_without_backends_refuses_at_once(
    topo: Topology, mesh: RoutingMesh
) -> None:
    await mesh.apply([vip([], ports=[80])], [published(8080, [])])

    # Refused (a TCP reset): a dropped SYN would end in TimeoutError instead.
    for netns, addr, port in (
        (topo.member, VIP, 80),
        (topo.client, VIP, 80),
        (topo.client, NODE_ADDR, 8080),
        (topo.node, VIP, 80),
        (topo.node, NODE_ADDR, 8080),
    ):
        with pytest.raises(ConnectionRefusedError):
            connect(netns, addr, port, timeout=2.0)

    # Backends come back: the same VIP serves again, without a new table.
    handle = handles(listing(topo.node))["table"]
    await mesh.apply([vip([B2], ports=[80])], [published(8080, [B1])])
    assert fetch(topo.member, VIP, 80) == "b2"
    assert fetch(topo.client, NODE_ADDR, 8080) == "b1"
    assert handles(listing(topo.node))["table"] == handle


async def test_removing_everything_leaves_an_empty_table_and_remove_deletes_it(
    topo: Topology,
) -> None:
    mesh = RoutingMesh(topo.node, ingress_addrs=[], ingress_bridge=BRIDGE)
    await mesh.apply([vip([B1], ports=[80])], [published(8080, [B1])])
    await mesh.apply([], [])
    names = {obj["chain"]["name"] for obj in listing(topo.node) if "chain" in obj}
    assert not any(name.startswith(("vip_", "pp_")) for name in names)
    with pytest.raises(OSError):
        connect(topo.member, VIP, 80, timeout=0.5)  # nobody answers ARP for the VIP now

    await mesh.remove()
    assert Nft(topo.node).list_table("ip", "swarmlite") is None


async def test_a_table_of_another_layout_is_rebuilt(topo: Topology, mesh: RoutingMesh) -> None:
    sh("nsenter", f"--net=/run/netns/{topo.node}", "nft",
       "add table ip swarmlite; add chain ip swarmlite stale")  # fmt: skip
    await mesh.apply([vip([B1], ports=[80])], [])
    names = {obj["chain"]["name"] for obj in listing(topo.node) if "chain" in obj}
    assert "stale" not in names
    assert fetch(topo.member, VIP, 80) == "b1"


async def test_errors_name_the_namespace(topo: Topology) -> None:
    mesh = RoutingMesh(f"swlvip-{topo.tag}-missing", ingress_addrs=[], ingress_bridge=BRIDGE)
    with pytest.raises(NetworkSetupFailure, match=f"swlvip-{topo.tag}-missing"):
        await mesh.apply([vip([B1])], [])


def test_a_refused_script_names_the_table_and_changes_nothing(topo: Topology) -> None:
    nft = Nft(topo.node)
    script = "add table ip swarmlite\nadd rule ip swarmlite no_such_chain accept\n"
    with pytest.raises(NetworkSetupFailure, match="table ip swarmlite") as caught:
        nft.run(script, what="table ip swarmlite")
    assert "No such file or directory" in caught.value.message
    assert caught.value.details["script"] == script
    assert nft.list_table("ip", "swarmlite") is None  # the whole transaction was refused


async def requests(mesh: RoutingMesh) -> dict[str, int]:
    """What the node's agent would report: connections passed on, by service."""
    return requests_by_service((await mesh.port_counts()).values())


async def test_published_ports_count_the_connections_they_pass_on_by_service(
    topo: Topology, mesh: RoutingMesh
) -> None:
    ports = [published(8080, [B1, B2]), published(9090, [B3], mode="host", service="svcapi")]
    await mesh.apply([], ports)
    assert await requests(mesh) == {"svcweb": 0, "svcapi": 0}

    for _ in range(5):
        fetch(topo.client, NODE_ADDR, 8080)  # prerouting
    for _ in range(2):
        fetch(topo.node, NODE_ADDR, 8080)  # output: the node's own connections count too
    for _ in range(3):
        fetch(topo.client, NODE_ADDR, 9090)
    # An open connection counts from its first packet; its later packets do not.
    sock = connect(topo.client, NODE_ADDR, 8080)
    assert await requests(mesh) == {"svcweb": 8, "svcapi": 3}
    assert request(sock) in ("b1", "b2")
    assert await requests(mesh) == {"svcweb": 8, "svcapi": 3}

    # Reading the counters rewrote nothing, and the same state again rewrites nothing.
    before = handles(listing(topo.node))
    await mesh.apply([], ports)
    assert handles(listing(topo.node)) == before

    # A new backend rewrites the port's rule but keeps its count.
    await mesh.apply([], [published(8080, [B1, B2, B3]), ports[1]])
    assert handles(listing(topo.node))["rule pp_tcp_8080"] != before["rule pp_tcp_8080"]
    assert await requests(mesh) == {"svcweb": 8, "svcapi": 3}
    fetch(topo.client, NODE_ADDR, 8080)
    assert await requests(mesh) == {"svcweb": 9, "svcapi": 3}

    # The port goes to another service: that one starts from 0; the old one is gone.
    await mesh.apply([], [published(8080, [B1], service="svcnew"), ports[1]])
    assert await requests(mesh) == {"svcnew": 0, "svcapi": 3}
    fetch(topo.client, NODE_ADDR, 8080)
    assert await requests(mesh) == {"svcnew": 1, "svcapi": 3}

    # A port that refuses (no backends) passes nothing on and counts nothing.
    await mesh.apply([], [published(8080, [], service="svcnew"), ports[1]])
    with pytest.raises(ConnectionRefusedError):
        connect(topo.client, NODE_ADDR, 8080)
    assert await requests(mesh) == {"svcnew": 1, "svcapi": 3}


async def test_a_published_udp_port_counts_each_flow_once(
    topo: Topology, mesh: RoutingMesh
) -> None:
    def bind() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((B1, 5300))
        sock.settimeout(2.0)
        return sock

    def datagram() -> socket.socket:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    # A socket made in b1's namespace stays there: no server process to clean up.
    server = run_in_netns(f"swlvip-{topo.tag}-b1", bind)
    senders: list[socket.socket] = []
    try:
        await mesh.apply([], [published(53, [B1], proto="udp", target=5300, service="svcdns")])
        senders = [run_in_netns(topo.client, datagram) for _ in range(4)]
        for index, sender in enumerate(senders):
            sender.sendto(f"q{index}".encode(), (NODE_ADDR, 53))
        for _ in range(3):  # more from the first flow
            senders[0].sendto(b"again", (NODE_ADDR, 53))
        got = sorted(server.recv(64) for _ in range(7))
        assert got == [b"again"] * 3 + [b"q0", b"q1", b"q2", b"q3"]
        assert await requests(mesh) == {"svcdns": 4}
    finally:
        server.close()
        for sender in senders:
            sender.close()
