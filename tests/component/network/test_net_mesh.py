"""The WireGuard mesh between real namespaces, with real wireguard-go.

Three hosts on one underlay bridge each run a Mesh on their own event loop (a thread
inside the host's namespace, so wireguard-go starts there); tests apply MeshStates as the
dispatcher would and check what a user would: mesh addresses reach each other, the wire
carries only WireGuard's UDP, a removed peer is cut off, a key rotation keeps a TCP stream
alive, two nodes that switch keys together find each other again, the UDP buffers are
7 MiB, and nothing is left behind.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from swarmlite.api.control import MeshPeer, MeshState
from swarmlite.errors import FailedPrecondition, InvalidArgument
from swarmlite.network import keys, rps
from swarmlite.network.mesh import Mesh
from swarmlite.network.wireguard import BUFFER_BYTES, DEFAULT_PORT, TXQUEUE, interface_name

MESH_NET = "198.18.128"

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0
    or not os.path.exists("/dev/net/tun")
    or not all(shutil.which(tool) for tool in ("wireguard-go", "tcpdump", "busybox", "ip")),
    reason="needs root, /dev/net/tun, wireguard-go, tcpdump, busybox and iproute2",
)


@dataclass
class Node:
    host: Any  # conftest.Netns
    mesh: Mesh
    node_id: str
    index: int

    @property
    def mesh_ip(self) -> str:
        return f"{MESH_NET}.{self.index}"

    def peer(self, *, public_key: str | None = None, next_key: str = "") -> MeshPeer:
        return MeshPeer(
            node_id=self.node_id,
            public_key=public_key or self.mesh.public_key,
            endpoint=self.mesh.endpoint,
            mesh_address=self.mesh_ip,
            next_key=next_key,
        )

    async def apply(self, peers: list[MeshPeer]) -> None:
        state = MeshState(address=f"{self.mesh_ip}/24", peers=peers)
        await self.host.call(self.mesh.apply(state))

    async def wg_peers(self) -> dict[str, tuple[str, ...]]:
        """public key -> allowed IPs, as the device holds them now."""
        status = await self.host.call(self.mesh.device.status())
        return {key: peer.allowed_ips for key, peer in status.peers.items()}


def full_state(nodes: list[Node], me: Node, **overrides: MeshPeer) -> list[MeshPeer]:
    return [overrides.get(n.node_id, n.peer()) for n in nodes if n is not me]


def pings(src: Node, dst: Node) -> bool:
    result = src.host.sh(["busybox", "ping", "-c", "1", "-W", "1", dst.mesh_ip])
    return result.returncode == 0


async def wait_for(check: Callable[[], object], what: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def nodes(netns_factory: Any, tmp_path: Path) -> AsyncIterator[list[Node]]:
    """Three hosts, a started Mesh on each, all peered with each other."""
    made: list[Node] = []
    try:
        for index, label in enumerate(("a", "b", "c"), start=1):
            host = netns_factory(label)
            node_id = f"node{label}{os.getpid():x}{index}".ljust(25, "0")[:25]
            mesh = Mesh(node_id, tmp_path / label, underlay_addr=host.address)
            made.append(Node(host=host, mesh=mesh, node_id=node_id, index=index))
            await host.call(mesh.start())
        for node in made:
            await node.apply(full_state(made, node))
        yield made
    finally:
        for node in made:
            await node.host.call(node.mesh.close())


# --------------------------------------------------------------------------- keys


def test_key_file_is_private_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "wg" / "private.key"
    pair = keys.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.load_or_create(path) == pair  # the same key after a restart
    assert len(pair.public_b64) == 44 and len(pair.public_hex) == 64
    assert keys.hex_to_b64(pair.public_hex) == pair.public_b64
    assert keys.b64_to_hex(pair.public_b64) == pair.public_hex
    assert pair.private_b64 not in repr(pair)


@pytest.mark.skipif(shutil.which("wg") is None, reason="needs wireguard-tools to cross-check")
def test_public_key_matches_wg_pubkey(tmp_path: Path) -> None:
    pair = keys.load_or_create(tmp_path / "private.key")
    out = subprocess.run(
        ["wg", "pubkey"], input=pair.private_b64, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == pair.public_b64


def test_key_file_with_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "private.key"
    path.write_text("not a key\n")
    with pytest.raises(InvalidArgument, match="does not hold a WireGuard private key"):
        keys.load(path)


def test_interface_names_fit_and_differ_per_node() -> None:
    a = interface_name("3k9x0c1m7q2w8e5r4t6y1u0io")
    b = interface_name("3k9x0c1n7q2w8e5r4t6y1u0io")
    assert a == "swlwg3k9x0c1m" and len(a) <= 15
    assert a != b
    odd = interface_name("Node/1")
    assert len(odd) == 13 and odd.isalnum()


def test_finish_without_begin_is_refused(tmp_path: Path) -> None:
    mesh = Mesh("n1", tmp_path, underlay_addr="198.18.77.1")
    with pytest.raises(FailedPrecondition):
        asyncio.run(mesh.finish_rotation())
    assert mesh.endpoint == f"198.18.77.1:{DEFAULT_PORT}"


# --------------------------------------------------------------------------- the mesh


@needs_netns
async def test_nodes_reach_each_other_and_the_wire_carries_only_wireguard(
    nodes: list[Node], underlay: Any, tmp_path: Path
) -> None:
    a, b, c = nodes
    pcap = tmp_path / "underlay.pcap"
    dump = underlay.popen(
        ["tcpdump", "-i", "any", "-nn", "-U", "--immediate-mode", "-Z", "root", "-w", str(pcap)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert dump.stderr is not None
        while b"listening on" not in (line := dump.stderr.readline()):
            assert line, "tcpdump did not start"
        for src in nodes:
            for dst in nodes:
                if src is not dst:
                    assert pings(src, dst), f"{src.host.label} -> {dst.host.label}"
        marker = b"PLAINTEXT-" + os.urandom(8).hex().encode()
        assert tcp_echo(a, b, marker) == marker
        assert tcp_echo(c, a, marker) == marker
    finally:
        dump.terminate()
        dump.wait(timeout=10)
        assert dump.stderr is not None
        dump.stderr.close()
    raw, lines = read_pcap(pcap)
    assert marker not in raw
    assert len(lines) >= 12  # at least the handshakes and six pings, both ways
    for line in lines:
        assert f".{DEFAULT_PORT} " in line or f".{DEFAULT_PORT}:" in line, line
        assert "UDP" in line, line
        assert MESH_NET not in line, line


def read_pcap(pcap: Path) -> tuple[bytes, list[str]]:
    """The capture's bytes and tcpdump's one-line summary of each IPv4 packet in it that a
    host sent: the bridge's own IGMP membership reports (from 0.0.0.0, when it comes up) are
    the switch's, not traffic between hosts."""
    read = subprocess.run(
        ["tcpdump", "-nn", "-r", str(pcap), "ip and not src host 0.0.0.0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return pcap.read_bytes(), read.stdout.splitlines()


def exists(path: str) -> bool:
    return os.path.exists(path)


def tcp_echo(client: Node, server: Node, payload: bytes) -> bytes:
    """Send `payload` from client to an echo server on server's mesh address."""
    listener = server.host.run(lambda: socket.create_server((server.mesh_ip, 0)))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(conn.recv(65536))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client.host.run(
            lambda: socket.create_connection((server.mesh_ip, port), timeout=5)
        ) as conn:
            conn.sendall(payload)
            return conn.recv(65536)
    finally:
        thread.join(timeout=5)
        listener.close()


@needs_netns
async def test_a_peer_removed_from_the_state_can_no_longer_reach(nodes: list[Node]) -> None:
    a, b, c = nodes
    assert pings(c, a)
    await a.apply([b.peer()])  # the managers dropped c
    assert c.peer().public_key not in await a.wg_peers()
    assert not pings(c, a)
    assert not pings(a, c)
    assert pings(b, a)  # the others are untouched
    await a.apply(full_state(nodes, a))  # and back: a handshakes with c at once
    # (c's first packet may still go out on the session a forgot; once the new one is up,
    # c reaches a again.)
    await wait_handshake(a, c)
    assert pings(c, a)


async def wait_handshake(node: Node, peer: Node) -> None:
    deadline = time.monotonic() + 5
    while True:
        status = await node.host.call(node.mesh.device.status())
        if status.peers[peer.mesh.public_key].last_handshake > 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{node.host.label} never handshook with {peer.host.label}")
        await asyncio.sleep(0.02)


@needs_netns
async def test_apply_is_idempotent_and_keeps_sessions(nodes: list[Node]) -> None:
    a, b, _ = nodes
    assert pings(a, b)
    before = await a.host.call(a.mesh.device.status())
    await a.apply(full_state(nodes, a))
    after = await a.host.call(a.mesh.device.status())
    assert after.peers.keys() == before.peers.keys()
    key_b = b.mesh.public_key
    # Re-applying the same state starts no new handshake with b.
    assert after.peers[key_b].last_handshake == before.peers[key_b].last_handshake
    assert after.peers[key_b].allowed_ips == (f"{b.mesh_ip}/32",)


@needs_netns
async def test_key_rotation_keeps_a_tcp_stream_alive(nodes: list[Node], tmp_path: Path) -> None:
    a, b, c = nodes
    stream = EchoStream(client=a, server=b)
    stream.start()
    try:
        await wait_for(lambda: stream.echoed > 0, "the stream to start")
        old = a.mesh.public_key
        nxt = a.mesh.begin_rotation()
        assert a.mesh.next_key == nxt != old
        for peer in (b, c):
            await peer.apply(full_state(nodes, peer, **{a.node_id: a.peer(next_key=nxt)}))
            held = await peer.wg_peers()
            assert held[old] == (f"{a.mesh_ip}/32",) and held[nxt] == ()
        assert await a.host.call(a.mesh.finish_rotation()) == nxt
        assert a.mesh.public_key == nxt and a.mesh.next_key == ""
        for peer in (b, c):  # each sees a's handshake with the new key and moves over
            await wait_rotated(peer, old, nxt, a.mesh_ip)
        for peer in (b, c):  # then the managers publish the new key
            await peer.apply(full_state(nodes, peer))
            assert await peer.wg_peers() == {
                n.mesh.public_key: (f"{n.mesh_ip}/32",) for n in nodes if n is not peer
            }
        mark = stream.echoed
        await wait_for(lambda: stream.echoed > mark + 20, "the stream to go on")
    finally:
        stream.stop()
    assert stream.error is None
    assert pings(c, a) and pings(a, b)
    # The new key is the one on disk: a restart of a's mesh keeps it.
    again = Mesh(a.node_id, tmp_path / "a", underlay_addr=a.host.address)
    assert (again.public_key, again.next_key) == (nxt, "")


@needs_netns
async def test_two_nodes_that_switch_together_find_each_other_s_new_key(
    nodes: list[Node], underlay: Any
) -> None:
    a, b, c = nodes
    old_a, old_b = a.mesh.public_key, b.mesh.public_key
    next_a, next_b = a.mesh.begin_rotation(), b.mesh.begin_rotation()
    rotating = {a.node_id: a.peer(next_key=next_a), b.node_id: b.peer(next_key=next_b)}
    for node in nodes:
        await node.apply(full_state(nodes, node, **rotating))
    # Both switch before either hears the other's handshake: a is cut off meanwhile.
    switch_port(underlay, "v-a", "down")
    try:
        assert await a.host.call(a.mesh.finish_rotation()) == next_a
        assert await b.host.call(b.mesh.finish_rotation()) == next_b
    finally:
        switch_port(underlay, "v-a", "up")
    # No new state from the managers: the handshakes to the next keys, retried, do it.
    await wait_rotated(a, old_b, next_b, b.mesh_ip, timeout=10)
    await wait_rotated(b, old_a, next_a, a.mesh_ip, timeout=10)
    await wait_rotated(c, old_a, next_a, a.mesh_ip, timeout=10)
    assert pings(a, b) and pings(b, a) and pings(c, a) and pings(c, b)


def switch_port(underlay: Any, port: str, state: str) -> None:
    subprocess.run(["ip", "-n", underlay.name, "link", "set", port, state], check=True)


async def wait_rotated(peer: Node, old: str, new: str, address: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while True:
        held = await peer.wg_peers()
        if old not in held and held.get(new) == (f"{address}/32",):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{peer.host.label} still holds {held}")
        await asyncio.sleep(0.02)


class EchoStream:
    """One TCP connection from client to server, echoing small messages until stopped."""

    def __init__(self, client: Node, server: Node) -> None:
        self.listener = server.host.run(lambda: socket.create_server((server.mesh_ip, 0)))
        port = self.listener.getsockname()[1]
        self.conn = client.host.run(
            lambda: socket.create_connection((server.mesh_ip, port), timeout=5)
        )
        self.echoed = 0
        self.max_gap = 0.0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve, daemon=True),
            threading.Thread(target=self._talk, daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.conn.close()
        self.listener.close()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def _talk(self) -> None:
        message = os.urandom(512)
        try:
            last = time.monotonic()
            while not self._stop.is_set():
                self.conn.sendall(message)
                got = b""
                while len(got) < len(message):
                    chunk = self.conn.recv(len(message) - len(got))
                    if not chunk:
                        raise ConnectionError("the server closed the stream")
                    got += chunk
                if got != message:
                    raise AssertionError("echo differs")
                now = time.monotonic()
                self.max_gap = max(self.max_gap, now - last)
                last = now
                self.echoed += 1
                time.sleep(0.005)
            self.conn.shutdown(socket.SHUT_WR)
        except BaseException as exc:
            self.error = exc


@needs_netns
async def test_udp_buffers_are_seven_mib_also_after_a_port_change(nodes: list[Node]) -> None:
    a, b, _ = nodes
    sockets = a.mesh.device.socket_buffers()
    assert {s.port for s in sockets} == {DEFAULT_PORT}
    for s in sockets:  # the kernel reports twice what was set
        assert (s.rcvbuf, s.sndbuf) == (2 * BUFFER_BYTES, 2 * BUFFER_BYTES)
    await a.host.call(a.mesh.set_listen_port(DEFAULT_PORT + 1))
    assert a.mesh.listen_port == DEFAULT_PORT + 1
    assert a.mesh.endpoint == f"{a.host.address}:{DEFAULT_PORT + 1}"
    sockets = a.mesh.device.socket_buffers()
    assert sockets and {s.port for s in sockets} == {DEFAULT_PORT + 1}
    for s in sockets:
        assert (s.rcvbuf, s.sndbuf) == (2 * BUFFER_BYTES, 2 * BUFFER_BYTES)
    assert pings(a, b)  # b follows a to its new port


@needs_netns
async def test_received_packets_are_steered_to_every_cpu(nodes: list[Node]) -> None:
    # Read through `ip netns exec`, which mounts a sysfs of the host's own namespace.
    def shown(node: Node) -> str:
        path = f"/sys/class/net/{node.mesh.ifname}/queues/rx-0/rps_cpus"
        argv = ["ip", "netns", "exec", node.host.name, "cat", path]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    everyone = os.sched_getaffinity(0)
    for node in nodes:
        mask = await asyncio.to_thread(shown, node)
        assert rps.mask_cpus(mask) == everyone, (node.mesh.ifname, mask)


@needs_netns
async def test_close_leaves_nothing_behind(netns_factory: Any, tmp_path: Path) -> None:
    host = netns_factory("solo")
    mesh = Mesh("solo0000000000000000000000", tmp_path, underlay_addr=host.address)
    try:
        await host.call(mesh.apply(MeshState(address=f"{MESH_NET}.9/24", peers=[])))
        pid = mesh.device.pid
        assert pid is not None
        shows = host.sh(["ip", "-br", "addr", "show", mesh.ifname])
        assert f"{MESH_NET}.9/24" in shows.stdout, shows.stdout
        link = host.sh(["ip", "link", "show", mesh.ifname]).stdout
        assert "mtu 1420" in link and f"qlen {TXQUEUE}" in link, link
        assert ",UP" in host.sh(["ip", "link", "show", mesh.ifname]).stdout
    finally:
        await host.call(mesh.close())
    assert not exists(f"/proc/{pid}")
    assert host.sh(["ip", "link", "show", mesh.ifname]).returncode != 0
    assert not exists(f"/run/wireguard/{mesh.ifname}.sock")
    await host.call(mesh.close())  # idempotent
