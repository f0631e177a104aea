"""Small helpers shared by the overlay, attachment and DNS modules: names, MACs, namespaces.

Owns the naming of swarmlite's interfaces (bridge, VXLAN device and veth ends, each within
the kernel's 15 characters), the MAC derived from an IPv4 address, entering a network
namespace (a fresh thread that calls setns(2), so no other thread ever changes namespace),
rtnetlink sockets opened inside a namespace, and the translation of pyroute2 and OS errors
into NetworkSetupFailure saying what failed and where. Does not own any device's life:
overlay.py, attach.py and dns.py do.

A namespace is named either by its `ip netns` name ("h1", found under /run/netns) or by
a path ("/proc/1234/ns/net"); None means the namespace this process runs in.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import ipaddress
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from pyroute2 import AsyncIPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from swarmlite.errors import NetworkSetupFailure

T = TypeVar("T")

IFNAMSIZ = 15  # usable characters of an interface name
OVERLAY_MTU = 1370  # WireGuard's 1420 minus VXLAN over IPv4's 50 bytes
VXLAN_PORT = 4789
NETNS_RUN_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000
BRIDGE_PREFIX = "swlbr"
_BRIDGE_PREFIX = BRIDGE_PREFIX
_VXLAN_PREFIX = "swlvx"
_VETH_PREFIX = "swlv"  # host end; the container end starts as "swlc..." until renamed

_libc = ctypes.CDLL(None, use_errno=True)


# --------------------------------------------------------------------------- names


def bridge_name(vni: int) -> str:
    """The bridge of the overlay network with this VNI: "swlbr4100"."""
    return _checked(f"{_BRIDGE_PREFIX}{vni}")


def vxlan_name(vni: int) -> str:
    """The VXLAN device of the overlay network with this VNI: "swlvx4100"."""
    return _checked(f"{_VXLAN_PREFIX}{vni}")


def vni_of(ifname: str) -> tuple[str, int] | None:
    """("bridge" | "vxlan", vni) for a name made by bridge_name/vxlan_name, else None."""
    for kind, prefix in (("bridge", _BRIDGE_PREFIX), ("vxlan", _VXLAN_PREFIX)):
        rest = ifname.removeprefix(prefix)
        if rest != ifname and rest.isdigit() and not rest.startswith("0"):
            return kind, int(rest)
    return None


def veth_names(task_id: str, index: int) -> tuple[str, str]:
    """(host end, container end before its rename) of a task's `index`-th attachment.

    Derived from the task id alone, so that detach finds the host end again after a
    restart of the agent.
    """
    if not 0 <= index < 256:
        raise ValueError(f"attachment index {index} out of range 0..255")
    digest = hashlib.sha256(task_id.encode()).hexdigest()[:9]
    suffix = f"{digest}{index:02x}"
    return _checked(f"{_VETH_PREFIX}{suffix}"), _checked(f"swlc{suffix}")


def container_ifname(index: int) -> str:
    """The name of a task's `index`-th interface inside its container: eth0, eth1, ..."""
    return f"eth{index}"


def _checked(name: str) -> str:
    if len(name) > IFNAMSIZ:
        raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ} characters")
    return name


# --------------------------------------------------------------------------- addresses


def mac_for(address: str) -> str:
    """The MAC of a task's interface: 02:42 and the four bytes of its IPv4 address.

    >>> mac_for("198.19.0.11/24")
    '02:42:c6:13:00:0b'
    """
    ip = ipaddress.IPv4Address(address.split("/", 1)[0])
    return ":".join(f"{b:02x}" for b in (0x02, 0x42, *ip.packed))


def split_address(address: str) -> tuple[str, int]:
    """("10.0.1.5", 24) from "10.0.1.5/24"; ValueError when it is not IPv4."""
    iface = ipaddress.IPv4Interface(address)
    return str(iface.ip), iface.network.prefixlen


def bare(address: str) -> str:
    """The address without its prefix length: "10.0.1.5" from "10.0.1.5/24"."""
    return address.split("/", 1)[0]


# --------------------------------------------------------------------------- namespaces


def netns_path(netns: str) -> str:
    """The file that names a namespace: /run/netns/<name>, or the path given."""
    return netns if "/" in netns else os.path.join(NETNS_RUN_DIR, netns)


def run_in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """Call `fn` inside `netns` (blocking) and return what it returns.

    setns(2) changes the calling thread's namespace only, so this runs `fn` on a thread
    made for the purpose, which ends with it: no thread of this process is ever left in
    a namespace it did not start in. Sockets made by `fn` stay in `netns` for good.
    """
    if netns is None:
        return fn()
    path = netns_path(netns)
    outcome: list[tuple[bool, Any]] = []

    def body() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({path}): {os.strerror(err)}")
            finally:
                os.close(fd)
            outcome.append((True, fn()))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))

    thread = threading.Thread(target=body, name=f"netns:{netns}", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    result: T = value
    return result


async def in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """`run_in_netns` without blocking the event loop."""
    if netns is None:
        return fn()
    return await asyncio.to_thread(run_in_netns, netns, fn)


def socket_in(netns: str | None, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A new socket that lives in `netns` (blocking; use `in_netns` from async code)."""
    return run_in_netns(netns, lambda: socket.socket(family, kind, proto))


@contextlib.asynccontextmanager
async def rtnl(netns: str | None, *, where: str = "") -> AsyncIterator[Any]:
    """An AsyncIPRoute whose netlink socket lives in `netns`.

    The socket is made on a thread that entered the namespace, which avoids pyroute2's
    own way (forking a helper process) inside an asyncio program.
    """
    place = where or _where(netns)
    with translate("open rtnetlink", place):
        sock = await in_netns(netns, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0))
        ipr = AsyncIPRoute(fileno=sock.detach())
    try:
        with translate("open rtnetlink", place):
            await ipr.setup_endpoint()
        yield ipr
    finally:
        ipr.close()


def _where(netns: str | None) -> str:
    return f"netns {netns}" if netns is not None else "this node's netns"


def describe(netns: str | None) -> str:
    """How error messages name a namespace."""
    return _where(netns)


# --------------------------------------------------------------------------- errors


@contextlib.contextmanager
def translate(what: str, where: str) -> Iterator[None]:
    """Turn netlink and OS errors inside the block into NetworkSetupFailure."""
    try:
        yield
    except NetworkSetupFailure:
        raise
    except NetlinkError as exc:
        code = exc.code
        raise NetworkSetupFailure(
            f"{what} in {where}: {os.strerror(code) if code else exc}",
            details={"what": what, "where": where, "errno": code},
        ) from exc
    except OSError as exc:
        raise NetworkSetupFailure(
            f"{what} in {where}: {exc.strerror or exc}",
            details={"what": what, "where": where, "errno": exc.errno},
        ) from exc


def is_errno(exc: BaseException, *codes: int) -> bool:
    """Whether a netlink or OS error carries one of these errno values."""
    if isinstance(exc, NetlinkError):
        return exc.code in codes
    return isinstance(exc, OSError) and exc.errno in codes


async def set_sysctl(netns: str | None, key: str, value: str) -> None:
    """Write a sysctl ("net.ipv4.ip_forward") as seen from `netns`.

    /proc/sys/net shows the namespace of the process that opens it, hence the thread.
    """
    path = "/proc/sys/" + key.replace(".", "/")

    def write() -> None:
        with open(path, "w") as f:
            f.write(value)

    with translate(f"set {key}={value}", _where(netns)):
        await in_netns(netns, write)


def attr(msg: Any, name: str) -> Any:
    """An attribute of a pyroute2 message (None when absent)."""
    return msg.get_attr(name)


def link_kind(msg: Any) -> str | None:
    """The kind of a link message ("bridge", "vxlan", "veth"), or None."""
    info = msg.get_attr("IFLA_LINKINFO")
    if info is None:
        return None
    kind = info.get_attr("IFLA_INFO_KIND")
    return str(kind) if kind is not None else None


def link_data(msg: Any, name: str) -> Any:
    """An IFLA_INFO_DATA attribute of a link message ("IFLA_VXLAN_ID"), or None."""
    info = msg.get_attr("IFLA_LINKINFO")
    data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    return data.get_attr(name) if data is not None else None
