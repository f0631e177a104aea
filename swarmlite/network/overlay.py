"""Overlay networks on this node: one bridge and one VXLAN device per network.

Owns, per overlay network listed by the manager (NetworkInfo): the bridge "swlbr<vni>"
holding the gateway address (where containers find their default route and DNS), the
VXLAN device "swlvx<vni>" enslaved to it (VNI, local = this node's mesh address, UDP 4789,
no learning, MTU 1370 = WireGuard's 1420 minus VXLAN's 50), the VXLAN forwarding entries
(an all-zero entry per remote VTEP: the flood list for ARP and broadcast; and one static
entry per remote task MAC, so that unicast frames reach only the node that has the MAC),
and IPv4 forwarding. Does not own the mesh under it (mesh.py), containers' interfaces
(attach.py), DNS (dns.py) or nftables (vip.py).

Invariants: `apply` is idempotent and converges on what it is given; it changes only what
differs (an entry or device that still serves is never removed and added again) and
removes only devices named like its own whose network is no longer listed. Errors from
netlink become NetworkSetupFailure naming the device and namespace.

Every bridge of a network has the same MAC on every node (derived from the gateway
address), and the VXLAN port suppresses ARP for the gateway: a container always finds
the gateway (and DNS) on its own node, never on another node's bridge.
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink.rtnl import ndmsg  # type: ignore[import-untyped]

from swarmlite.api.control import NetworkInfo
from swarmlite.errors import NetworkSetupFailure
from swarmlite.network import ip

log = logging.getLogger(__name__)

ZERO_MAC = "00:00:00:00:00:00"
_NUD_PERMANENT = ndmsg.states["permanent"]
_NUD_NOARP = ndmsg.states["noarp"]
_NTF_SELF = ndmsg.flags["self"]


@dataclass(frozen=True)
class _Wanted:
    info: NetworkInfo
    bridge: str
    vxlan: str
    gateway: str  # "10.0.1.1/24"
    fdb: frozenset[tuple[str, str]]  # (mac, vtep), the all-zero MAC for flooding


class Overlays:
    """The overlay networks of one node (its netns: None = the one we run in)."""

    def __init__(self, local_vtep: str, *, mtu: int = ip.OVERLAY_MTU, netns: str | None = None):
        self.local_vtep = ip.bare(local_vtep)
        self.mtu = mtu
        self.netns = netns
        self._where = ip.describe(netns)

    async def apply(self, networks: list[NetworkInfo]) -> None:
        """Make this node's overlays exactly `networks` (tear down the ones not listed)."""
        wanted = [self._wanted(n) for n in networks]
        await ip.set_sysctl(self.netns, "net.ipv4.ip_forward", "1")
        async with ip.rtnl(self.netns) as ipr:
            links = await _links(ipr, self._where)
            for w in wanted:
                await self._apply_one(ipr, w, links)
            keep = {w.info.vni for w in wanted}
            # VXLAN devices first: a bridge removed first would leave them loose.
            stale = sorted(
                (kind != "vxlan", name)
                for name in links
                if (parsed := ip.vni_of(name)) is not None
                for kind, vni in [parsed]
                if vni not in keep
            )
            for _, name in stale:
                log.info("overlay removed netns=%s device=%s", self.netns, name)
                await _delete_link(ipr, name, links[name]["index"], self._where)

    def _wanted(self, info: NetworkInfo) -> _Wanted:
        try:
            subnet = ip.split_address(info.subnet)
            gateway = f"{ip.bare(info.gateway)}/{subnet[1]}"
            ip.split_address(gateway)
        except ValueError as exc:
            raise NetworkSetupFailure(
                f"network {info.name}: bad subnet {info.subnet!r} or gateway {info.gateway!r}",
                details={"network": info.network_id},
            ) from exc
        entries = {(ZERO_MAC, ip.bare(v)) for v in info.vteps if ip.bare(v) != self.local_vtep}
        entries |= {
            (e.mac.lower(), ip.bare(e.vtep)) for e in info.fdb if ip.bare(e.vtep) != self.local_vtep
        }
        return _Wanted(
            info=info,
            bridge=ip.bridge_name(info.vni),
            vxlan=ip.vxlan_name(info.vni),
            gateway=gateway,
            fdb=frozenset(entries),
        )

    async def _apply_one(self, ipr: Any, w: _Wanted, links: dict[str, Any]) -> None:
        where = f"{self._where}, network {w.info.name}"
        br_index = await self._bridge(ipr, w, links.get(w.bridge), where)
        vx_index = await self._vxlan(ipr, w, links.get(w.vxlan), br_index, where)
        await self._fdb(ipr, w, vx_index, where)

    async def _bridge(self, ipr: Any, w: _Wanted, link: Any, where: str) -> int:
        if link is not None and ip.link_kind(link) != "bridge":
            await _delete_link(ipr, w.bridge, link["index"], where)
            link = None
        if link is None:
            with ip.translate(f"create bridge {w.bridge}", where):
                await ipr.link("add", ifname=w.bridge, kind="bridge")
            log.info("overlay bridge created netns=%s device=%s", self.netns, w.bridge)
        index = await _index(ipr, w.bridge, where)
        with ip.translate(f"set up bridge {w.bridge}", where):
            # No multicast snooping: the bridge would join the snoopers' group and flood
            # its IGMP reports to every node on the network (multicast floods instead).
            await ipr.link("set", index=index, kind="bridge", br_mcast_snooping=0)
            await ipr.link(
                "set", index=index, address=ip.mac_for(w.info.gateway), mtu=self.mtu, state="up"
            )
            have = {
                f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                async for a in await ipr.addr("dump", family=socket.AF_INET)
                if a["index"] == index
            }
            if w.gateway not in have:
                address, prefix = ip.split_address(w.gateway)
                await ipr.addr("add", index=index, address=address, prefixlen=prefix)
            for other in sorted(have - {w.gateway}):
                address, prefix = ip.split_address(other)
                await ipr.addr("del", index=index, address=address, prefixlen=prefix)
        return index

    async def _vxlan(self, ipr: Any, w: _Wanted, link: Any, br_index: int, where: str) -> int:
        if link is not None and not self._vxlan_matches(link, w.info.vni):
            # VNI, local address or port cannot change in place: replace the device.
            await _delete_link(ipr, w.vxlan, link["index"], where)
            link = None
        if link is None:
            with ip.translate(f"create vxlan {w.vxlan} (vni {w.info.vni})", where):
                await ipr.link(
                    "add",
                    ifname=w.vxlan,
                    kind="vxlan",
                    vxlan_id=w.info.vni,
                    vxlan_local=self.local_vtep,
                    vxlan_port=ip.VXLAN_PORT,
                    vxlan_learning=0,
                    mtu=self.mtu,
                )
            log.info(
                "overlay vxlan created netns=%s device=%s vni=%d local=%s",
                self.netns,
                w.vxlan,
                w.info.vni,
                self.local_vtep,
            )
        index = await _index(ipr, w.vxlan, where)
        with ip.translate(f"attach vxlan {w.vxlan} to {w.bridge}", where):
            await ipr.link("set", index=index, master=br_index, mtu=self.mtu, state="up")
            # ARP for the gateway is answered by this node's bridge, never another's.
            await ipr.link("set", index=index, kind="bridge_slave", neigh_suppress=1)
        return index

    def _vxlan_matches(self, link: Any, vni: int) -> bool:
        return (
            ip.link_kind(link) == "vxlan"
            and ip.link_data(link, "IFLA_VXLAN_ID") == vni
            and ip.link_data(link, "IFLA_VXLAN_LOCAL") == self.local_vtep
            and ip.link_data(link, "IFLA_VXLAN_PORT") == ip.VXLAN_PORT
            and ip.link_data(link, "IFLA_VXLAN_LEARNING") == 0
        )

    async def _fdb(self, ipr: Any, w: _Wanted, vx_index: int, where: str) -> None:
        have = await fdb_entries(ipr, vx_index, where)
        # Add before removing: a MAC that moved is replaced in place, never left out.
        for mac, vtep in sorted(w.fdb - have):
            command = "append" if mac == ZERO_MAC else "replace"
            with ip.translate(f"add fdb {mac} dst {vtep} on {w.vxlan}", where):
                await ipr.fdb(
                    command,
                    ifindex=vx_index,
                    lladdr=mac,
                    dst=vtep,
                    state=_NUD_PERMANENT | _NUD_NOARP,
                    flags=_NTF_SELF,
                )
        for mac, vtep in sorted(have - w.fdb):
            try:
                await ipr.fdb("del", ifindex=vx_index, lladdr=mac, dst=vtep)
            except Exception as exc:
                if not ip.is_errno(exc, errno.ENOENT):
                    with ip.translate(f"remove fdb {mac} dst {vtep} on {w.vxlan}", where):
                        raise
        if w.fdb != have:
            log.info(
                "overlay fdb network=%s added=%d removed=%d",
                w.info.name,
                len(w.fdb - have),
                len(have - w.fdb),
            )


async def fdb_entries(ipr: Any, vx_index: int, where: str) -> set[tuple[str, str]]:
    """(mac, remote vtep) of every VXLAN forwarding entry of a device that names a remote."""
    found: set[tuple[str, str]] = set()
    with ip.translate("list fdb", where):
        async for entry in await ipr.fdb("dump"):
            dst = entry.get_attr("NDA_DST")
            if entry["ifindex"] == vx_index and dst and entry["flags"] & _NTF_SELF:
                found.add((str(entry.get_attr("NDA_LLADDR")).lower(), str(dst)))
    return found


async def _links(ipr: Any, where: str) -> dict[str, Any]:
    with ip.translate("list links", where):
        return {link.get_attr("IFLA_IFNAME"): link async for link in await ipr.link("dump")}


async def _index(ipr: Any, name: str, where: str) -> int:
    with ip.translate(f"find {name}", where):
        found = await ipr.link_lookup(ifname=name)
    if not found:
        raise NetworkSetupFailure(f"{name} vanished in {where}", details={"device": name})
    return int(found[0])


async def _delete_link(ipr: Any, name: str, index: int, where: str) -> None:
    try:
        await ipr.link("del", index=index)
    except Exception as exc:
        if not ip.is_errno(exc, errno.ENODEV):
            with ip.translate(f"delete {name}", where):
                raise
