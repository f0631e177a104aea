"""Container attachment: a veth pair per task network, one end in the container.

Owns, for a running container known only by its init process's pid (any runtime: Docker,
runc, a plain process), the interfaces eth0, eth1, ... inside its network namespace (one
per entry of task.networks, in that order), their MAC (02:42 + the IPv4 bytes, unless the
allocator chose one), address, MTU, state, the loopback, and a default route via the
gateway of the task's first network (none when that one is internal); and, in the node's
namespace, the host end of each pair ("swlv..." named from the task id) on the network's
bridge. Does not own the bridges (overlay.py) nor the container's life: the runtime made
its namespace (NetworkMode none) and the kernel removes the container ends with it.

Invariant: an attachment either completes or leaves no host end behind; attaching again
replaces what an earlier attempt left. Netlink and OS errors become NetworkSetupFailure
naming the task, the interface and the namespace.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Sequence
from typing import Any

from swarmlite.api import Task
from swarmlite.api.control import NetworkInfo
from swarmlite.errors import NetworkSetupFailure
from swarmlite.network import ip

log = logging.getLogger(__name__)


def container_netns(pid: int) -> str:
    """The namespace of a container's init process, as a path."""
    return f"/proc/{pid}/ns/net"


async def attach(
    task: Task,
    pid: int,
    networks: Sequence[NetworkInfo],
    *,
    netns: str | None = None,
    mtu: int = ip.OVERLAY_MTU,
) -> list[str]:
    """Give the container of `pid` an interface on each of the task's networks.

    `networks` are the node's overlays (it must hold every network the task names);
    `netns` is the node's namespace (None: ours). Returns the container's interface
    names, in task.networks order.
    """
    by_id = {n.network_id: n for n in networks}
    plan: list[tuple[str, str, str, str, str, NetworkInfo]] = []
    for index, att in enumerate(task.networks):
        info = by_id.get(att.network_id)
        if info is None:
            raise NetworkSetupFailure(
                f"task {task.name}: network {att.network_id} is not set up on this node",
                hint="the node has not received this network from the manager yet",
                details={"task": task.id, "network": att.network_id},
            )
        try:
            ip.split_address(att.address)
            mac = (att.mac or ip.mac_for(att.address)).lower()
        except ValueError as exc:
            raise NetworkSetupFailure(
                f"task {task.name}: bad address {att.address!r} on network {info.name}",
                details={"task": task.id, "network": att.network_id},
            ) from exc
        host, temp = ip.veth_names(task.id, index)
        plan.append((host, temp, ip.container_ifname(index), att.address, mac, info))

    ctr = container_netns(pid)
    if not _alive(pid):
        raise NetworkSetupFailure(
            f"task {task.name}: its container process {pid} is gone",
            details={"task": task.id, "pid": pid},
        )
    node_where = ip.describe(netns)
    ctr_where = f"container of task {task.name} (pid {pid})"
    created: list[str] = []
    try:
        async with ip.rtnl(netns) as ipr:
            for host, temp, _name, _address, _mac, info in plan:
                await _host_end(ipr, host, temp, pid, info, mtu, f"{node_where}, task {task.name}")
                created.append(host)
        async with ip.rtnl(ctr, where=ctr_where) as cpr:
            await _container_ends(cpr, plan, mtu, ctr_where)
    except BaseException:
        if created:
            await _remove_host_ends(netns, created)
        raise
    names = [name for _h, _t, name, _a, _m, _i in plan]
    log.info("task attached task=%s pid=%d interfaces=%s", task.id, pid, ",".join(names))
    return names


async def detach(task: Task, *, netns: str | None = None) -> None:
    """Remove the host ends of the task's veth pairs that are still present."""
    hosts = [ip.veth_names(task.id, i)[0] for i in range(len(task.networks))]
    if hosts:
        await _remove_host_ends(netns, hosts)
        log.info("task detached task=%s", task.id)


async def _host_end(
    ipr: Any, host: str, temp: str, pid: int, info: NetworkInfo, mtu: int, where: str
) -> None:
    bridge = ip.bridge_name(info.vni)
    with ip.translate(f"find bridge {bridge}", where):
        found = await ipr.link_lookup(ifname=bridge)
    if not found:
        raise NetworkSetupFailure(
            f"network {info.name}: bridge {bridge} missing in {where}",
            hint="apply the node's networks before attaching tasks",
            details={"network": info.network_id, "device": bridge},
        )
    await _delete_if_present(ipr, host, where)  # left by an earlier, interrupted attempt
    with ip.translate(f"create veth {host} into pid {pid}", where):
        # The peer is born in the container's namespace, so its name never meets the
        # node's own interfaces.
        await ipr.link(
            "add",
            ifname=host,
            kind="veth",
            mtu=mtu,
            peer={"ifname": temp, "net_ns_pid": pid, "mtu": mtu},
        )
        index = (await ipr.link_lookup(ifname=host))[0]
        await ipr.link("set", index=index, master=found[0], state="up")


async def _container_ends(
    cpr: Any, plan: list[tuple[str, str, str, str, str, NetworkInfo]], mtu: int, where: str
) -> None:
    with ip.translate("bring up lo", where):
        lo = await cpr.link_lookup(ifname="lo")
        if lo:
            await cpr.link("set", index=lo[0], state="up")
    for _host, temp, name, address, mac, _info in plan:
        with ip.translate(f"set up {name} ({address})", where):
            found = await cpr.link_lookup(ifname=temp)
            if not found:
                raise NetworkSetupFailure(f"{temp} did not arrive in {where}")
            index = found[0]
            await cpr.link("set", index=index, ifname=name, address=mac, mtu=mtu)
            addr, prefix = ip.split_address(address)
            await cpr.addr("replace", index=index, address=addr, prefixlen=prefix)
            await cpr.link("set", index=index, state="up")
    first = plan[0] if plan else None
    # An internal network gives no default route: outside addresses fail at once
    # (unreachable) instead of timing out against the node's drop rules (isolation.py).
    if first is not None and not first[5].internal:
        gateway = ip.bare(first[5].gateway)
        with ip.translate(f"route default via {gateway}", where):
            eth = (await cpr.link_lookup(ifname=first[2]))[0]
            await cpr.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=eth)


async def _delete_if_present(ipr: Any, name: str, where: str) -> None:
    with ip.translate(f"find {name}", where):
        found = await ipr.link_lookup(ifname=name)
    if not found:
        return
    try:
        await ipr.link("del", index=found[0])
    except Exception as exc:
        if not ip.is_errno(exc, errno.ENODEV):
            with ip.translate(f"delete {name}", where):
                raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _remove_host_ends(netns: str | None, hosts: list[str]) -> None:
    where = ip.describe(netns)
    async with ip.rtnl(netns) as ipr:
        for host in hosts:
            await _delete_if_present(ipr, host, where)
