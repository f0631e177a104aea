"""Overlays and attachments on real namespaces: three "nodes" on a plain veth/bridge
underlay (standing in for the WireGuard mesh: the underlay addresses are the VTEPs), and
a "container" per node, a process in a namespace of its own. Needs root and iproute2."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec
import pytest

from swarmlite.api.control import FdbEntry, NetworkInfo
from swarmlite.api.task import Attachment, Task
from swarmlite.errors import NetworkSetupFailure
from swarmlite.network.attach import attach, detach
from swarmlite.network.ip import bridge_name, mac_for, veth_names, vxlan_name
from swarmlite.network.overlay import Overlays
from swarmlite.testing.factories import make_task

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2"),
    pytest.mark.timeout(30),
]

UNDERLAY = "198.18.77"
SUBNET_A = "198.19.0.0/24"
SUBNET_B = "198.19.1.0/24"


def sh(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=10)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Lab:
    """Namespaces and processes made by one test, all removed at the end."""

    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    namespaces: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def netns(self, role: str) -> str:
        name = f"swlt-{self.tag}-{role}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.nsenter(name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        self.nsenter(name, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def nsenter(self, netns: str, *args: str, check: bool = True) -> str:
        path = netns if "/" in netns else f"/run/netns/{netns}"
        return sh("nsenter", f"--net={path}", *args, check=check)

    def underlay(self, count: int) -> list[str]:
        """`count` nodes on one bridge (in a switch namespace of its own)."""
        switch = self.netns("sw")
        sh("ip", "-n", switch, "link", "add", "ul", "type", "bridge")
        sh("ip", "-n", switch, "link", "set", "ul", "up")
        nodes = []
        for i in range(1, count + 1):
            node = self.netns(f"n{i}")
            sh("ip", "-n", switch, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0",
               "netns", node)  # fmt: skip
            sh("ip", "-n", switch, "link", "set", f"p{i}", "master", "ul", "up")
            sh("ip", "-n", node, "addr", "add", f"{UNDERLAY}.{i}/24", "dev", "eth0")
            sh("ip", "-n", node, "link", "set", "eth0", "up")
            nodes.append(node)
        return nodes

    def container(self) -> int:
        """A process in a fresh network namespace (IPv6 off, so no stray multicast)."""
        proc = subprocess.Popen(
            ["unshare", "--net", "sh", "-c",
             "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
             " && exec sleep 60"],
        )  # fmt: skip
        self.procs.append(proc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(f"/proc/{proc.pid}/comm") as f:
                if f.read().strip() == "sleep":
                    return proc.pid
            time.sleep(0.01)
        raise AssertionError("container process did not start")

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


def network(
    vni: int, subnet: str, vteps: list[str], fdb: dict[str, str], name: str = "shop_default"
) -> NetworkInfo:
    base = subnet.rsplit(".", 1)[0]
    return NetworkInfo(
        network_id=f"net{vni}",
        name=name,
        vni=vni,
        subnet=subnet,
        gateway=f"{base}.1",
        vteps=vteps,
        fdb=[FdbEntry(mac=mac_for(a), vtep=v) for a, v in fdb.items()],
    )


def for_node(info: NetworkInfo, node_index: int) -> NetworkInfo:
    """What the manager sends node `node_index`: the others as VTEPs and FDB entries."""
    me = f"{UNDERLAY}.{node_index}"
    return msgspec.structs.replace(
        info,
        vteps=[v for v in info.vteps if v != me],
        fdb=[e for e in info.fdb if e.vtep != me],
    )


def link_json(lab: Lab, netns: str, dev: str) -> dict[str, object]:
    out = json.loads(sh("ip", "-n", netns, "-d", "-j", "-s", "link", "show", "dev", dev))
    result: dict[str, object] = out[0]
    return result


def rx_packets(lab: Lab, netns: str, dev: str) -> int:
    stats = link_json(lab, netns, dev)["stats64"]
    assert isinstance(stats, dict)
    return int(stats["rx"]["packets"])


def fdb(lab: Lab, netns: str, dev: str) -> set[tuple[str, str]]:
    rows = json.loads(sh("bridge", "-n", netns, "-j", "fdb", "show", "dev", dev))
    return {(r["mac"], r["dst"]) for r in rows if "dst" in r}


def ping(lab: Lab, pid: int, address: str, count: int = 1) -> bool:
    done = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", "busybox", "ping", "-c", str(count),
         "-i", "0.05" if count > 1 else "1", "-W", "2", address],
        capture_output=True, timeout=15,
    )  # fmt: skip
    return done.returncode == 0


def task_on(attachments: list[Attachment]) -> Task:
    return msgspec.structs.replace(make_task(), networks=attachments)


needs_ping = pytest.mark.skipif(shutil.which("busybox") is None, reason="needs busybox ping")

C1, C2, C3 = "198.19.0.11", "198.19.0.21", "198.19.0.12"


async def two_node_overlay(lab: Lab) -> tuple[list[str], list[Overlays], NetworkInfo, list[int]]:
    """Three nodes on network A; containers c1 on n1 and c2 on n2; n3 only floods."""
    nodes = lab.underlay(3)
    vteps = [f"{UNDERLAY}.{i}" for i in (1, 2, 3)]
    full = network(4100, SUBNET_A, vteps, {C1: vteps[0], C2: vteps[1]})
    overlays = [Overlays(vteps[i], netns=nodes[i]) for i in range(3)]
    for i, ov in enumerate(overlays):
        await ov.apply([for_node(full, i + 1)])
    pids = []
    for i, address in ((0, C1), (1, C2)):
        pid = lab.container()
        task = task_on([Attachment(network_id=full.network_id, address=f"{address}/24")])
        await attach(task, pid, [full], netns=nodes[i])
        pids.append(pid)
    return nodes, overlays, full, pids


async def test_apply_builds_bridge_and_vxlan_as_specified_and_is_idempotent(lab: Lab) -> None:
    nodes = lab.underlay(2)
    info = network(4100, SUBNET_A, [f"{UNDERLAY}.2"], {C2: f"{UNDERLAY}.2"})
    ov = Overlays(f"{UNDERLAY}.1", netns=nodes[0])
    await ov.apply([info])
    first = link_json(lab, nodes[0], vxlan_name(4100))
    await ov.apply([info])
    again = link_json(lab, nodes[0], vxlan_name(4100))

    assert first["ifindex"] == again["ifindex"], "a second apply must not recreate the device"
    data = again["linkinfo"]["info_data"]  # type: ignore[index]
    assert (data["id"], data["local"], data["port"], data["learning"]) == (
        4100, f"{UNDERLAY}.1", 4789, False,
    )  # fmt: skip
    assert again["mtu"] == 1370
    assert again["master"] == bridge_name(4100)
    bridge = link_json(lab, nodes[0], bridge_name(4100))
    assert bridge["mtu"] == 1370 and bridge["address"] == mac_for("198.19.0.1")
    addrs = sh("ip", "-n", nodes[0], "-4", "-o", "addr", "show", "dev", bridge_name(4100))
    assert "198.19.0.1/24" in addrs
    assert fdb(lab, nodes[0], vxlan_name(4100)) == {
        ("00:00:00:00:00:00", f"{UNDERLAY}.2"),
        (mac_for(C2), f"{UNDERLAY}.2"),
    }
    assert lab.nsenter(nodes[0], "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"


async def test_fdb_follows_what_the_manager_sends(lab: Lab) -> None:
    nodes = lab.underlay(1)
    ov = Overlays(f"{UNDERLAY}.1", netns=nodes[0])
    two, three = f"{UNDERLAY}.2", f"{UNDERLAY}.3"
    await ov.apply([network(4100, SUBNET_A, [two, three], {C2: two, C3: three})])
    # C3's task moved to node 2, node 3 left the network.
    await ov.apply([network(4100, SUBNET_A, [two], {C2: two, C3: two})])
    assert fdb(lab, nodes[0], vxlan_name(4100)) == {
        ("00:00:00:00:00:00", two),
        (mac_for(C2), two),
        (mac_for(C3), two),
    }


@needs_ping
async def test_containers_on_two_nodes_ping_over_the_overlay(lab: Lab) -> None:
    _nodes, _ov, _full, (c1, c2) = await two_node_overlay(lab)
    assert ping(lab, c1, C2)
    assert ping(lab, c2, C1)
    assert ping(lab, c1, "198.19.0.1"), "the gateway answers on the container's own node"


@needs_ping
async def test_unicast_to_one_container_does_not_reach_the_third_node(lab: Lab) -> None:
    nodes, _ov, _full, (c1, _c2) = await two_node_overlay(lab)
    assert ping(lab, c1, C2)  # ARP (broadcast, flooded to every VTEP) happens here
    before_n2 = rx_packets(lab, nodes[1], vxlan_name(4100))
    before_n3 = rx_packets(lab, nodes[2], vxlan_name(4100))
    assert ping(lab, c1, C2, count=20)
    assert rx_packets(lab, nodes[1], vxlan_name(4100)) - before_n2 >= 20
    assert rx_packets(lab, nodes[2], vxlan_name(4100)) - before_n3 == 0


@needs_ping
async def test_a_removed_network_is_torn_down_and_the_others_keep_serving(lab: Lab) -> None:
    nodes, overlays, full, (c1, _c2) = await two_node_overlay(lab)
    other = network(4200, SUBNET_B, [f"{UNDERLAY}.2"], {}, name="shop_back")
    await overlays[0].apply([for_node(full, 1), other])
    vx_index = link_json(lab, nodes[0], vxlan_name(4100))["ifindex"]
    assert link_json(lab, nodes[0], bridge_name(4200))["ifname"] == bridge_name(4200)

    await overlays[0].apply([for_node(full, 1)])

    links = sh("ip", "-n", nodes[0], "-o", "link")
    assert bridge_name(4200) not in links and vxlan_name(4200) not in links
    assert link_json(lab, nodes[0], vxlan_name(4100))["ifindex"] == vx_index
    assert ping(lab, c1, C2)

    await overlays[0].apply([])
    links = sh("ip", "-n", nodes[0], "-o", "link")
    assert bridge_name(4100) not in links and vxlan_name(4100) not in links
    assert not ping(lab, c1, C2)


async def test_attach_sets_up_interfaces_in_task_order_and_detach_removes_host_ends(
    lab: Lab,
) -> None:
    nodes = lab.underlay(1)
    a = network(4100, SUBNET_A, [], {})
    b = network(4200, SUBNET_B, [], {}, name="shop_back")
    await Overlays(f"{UNDERLAY}.1", netns=nodes[0]).apply([a, b])
    pid = lab.container()
    task = task_on(
        [
            Attachment(network_id=b.network_id, address="198.19.1.7/24"),
            Attachment(network_id=a.network_id, address="198.19.0.7/24", mac="02:42:aa:bb:cc:dd"),
        ]
    )
    names = await attach(task, pid, [a, b], netns=nodes[0])

    assert names == ["eth0", "eth1"]
    inside = json.loads(lab.nsenter(f"/proc/{pid}/ns/net", "ip", "-j", "addr"))
    by_name = {i["ifname"]: i for i in inside}
    assert by_name["eth0"]["address"] == mac_for("198.19.1.7")
    assert by_name["eth1"]["address"] == "02:42:aa:bb:cc:dd"
    assert [(x["local"], x["prefixlen"]) for x in by_name["eth0"]["addr_info"]] == [
        ("198.19.1.7", 24)
    ]
    assert by_name["eth0"]["mtu"] == 1370 and by_name["eth0"]["operstate"] == "UP"
    route = lab.nsenter(f"/proc/{pid}/ns/net", "ip", "route", "show", "default")
    assert route.split()[:5] == ["default", "via", "198.19.1.1", "dev", "eth0"]
    host0, _ = veth_names(task.id, 0)
    assert link_json(lab, nodes[0], host0)["master"] == bridge_name(4200)

    await detach(task, netns=nodes[0])
    links = sh("ip", "-n", nodes[0], "-o", "link")
    assert host0 not in links and veth_names(task.id, 1)[0] not in links
    await detach(task, netns=nodes[0])  # already gone: nothing to do


async def test_attach_to_a_network_the_node_lacks_fails_and_leaves_nothing(lab: Lab) -> None:
    nodes = lab.underlay(1)
    a = network(4100, SUBNET_A, [], {})
    await Overlays(f"{UNDERLAY}.1", netns=nodes[0]).apply([a])
    pid = lab.container()
    b = network(4200, SUBNET_B, [], {}, name="shop_back")  # known, but no bridge on the node
    task = task_on(
        [
            Attachment(network_id=a.network_id, address="198.19.0.7/24"),
            Attachment(network_id=b.network_id, address="198.19.1.7/24"),
        ]
    )
    with pytest.raises(NetworkSetupFailure, match="swlbr4200 missing"):
        await attach(task, pid, [a, b], netns=nodes[0])
    assert veth_names(task.id, 0)[0] not in sh("ip", "-n", nodes[0], "-o", "link")
