"""The lab's network: namespaces, the underlay bridge, veth pairs and addresses, via pyroute2.

Owns the kernel side of the underlay: a switch namespace holding the bridge ``swl-br0``
and one veth per host (named after the host, e.g. ``h1``), whose peer is ``eth0`` in the
host's namespace. Every link is made inside the switch namespace and its peer created
directly in the host's, so nothing of a lab ever appears in the machine's own namespace
(its firewall, Docker's ``FORWARD DROP`` and ``br_netfilter`` never see lab frames). Also
owns running a function inside a namespace (``in_netns``: setns on a thread of its own)
and finding the processes that live in a set of namespaces.

Does not own what runs in the namespaces (``lab.procs``) nor the record (``lab.state``).
Foreign errors (pyroute2's NetlinkError, OSError) become NetworkSetupFailure, with the
namespace and interface named.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pyroute2 import IPRoute, NetlinkError, netns  # type: ignore[import-untyped]

from swarmlite.errors import NetworkSetupFailure
from swarmlite.log import kv

log = logging.getLogger(__name__)

T = TypeVar("T")

NETNS_DIR = Path("/run/netns")
BRIDGE = "swl-br0"
LAB_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def path_of(name: str) -> Path:
    return NETNS_DIR / name


def listing() -> list[str]:
    """Every named network namespace on the machine."""
    try:
        names: list[str] = netns.listnetns()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise NetworkSetupFailure(f"cannot list network namespaces: {exc}") from exc
    return names


def with_prefix(prefix: str) -> list[str]:
    return sorted(n for n in listing() if n.startswith(prefix))


@contextmanager
def allocation_lock() -> Iterator[None]:
    """Serialise labs choosing subnets and names (an flock on /run/netns itself)."""
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(NETNS_DIR, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def create(name: str) -> None:
    """A new network namespace ``name`` with lo up; NetworkSetupFailure if it exists."""
    if path_of(name).exists():
        raise NetworkSetupFailure(
            f"network namespace {name} exists already",
            hint="`swarmlite lab down` removes a lab's leftovers",
        )
    try:
        netns.create(name)
        with IPRoute(netns=name) as ipr:
            ipr.link("set", index=_index(ipr, "lo", name), state="up")
    except (NetlinkError, OSError) as exc:
        raise NetworkSetupFailure(f"cannot create network namespace {name}: {exc}") from exc
    log.debug("netns created %s", kv(netns=name))


def remove(name: str) -> None:
    """Delete the namespace ``name`` and its links first (deleting a netns is asynchronous)."""
    if not path_of(name).exists():
        return
    try:
        with IPRoute(netns=name) as ipr:
            for link in ipr.get_links():
                kind = _kind(link)
                if kind in ("veth", "bridge", "vxlan", "wireguard", "dummy"):
                    ipr.link("del", index=link["index"])
    except NetlinkError as exc:
        log.warning("could not delete links %s", kv(netns=name, error=exc))
    except OSError as exc:
        log.warning("could not enter namespace %s", kv(netns=name, error=exc))
    try:
        netns.remove(name)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise NetworkSetupFailure(f"cannot remove network namespace {name}: {exc}") from exc
    log.debug("netns removed %s", kv(netns=name))


def _kind(link: Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    if info is None:
        return None
    kind: str | None = info.get_attr("IFLA_INFO_KIND")
    return kind


def _index(ipr: Any, ifname: str, ns: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise NetworkSetupFailure(f"no interface {ifname} in network namespace {ns}")
    return int(found[0])


def make_switch(switch: str) -> None:
    """The underlay bridge, up, in the switch namespace."""
    try:
        with IPRoute(netns=switch) as ipr:
            ipr.link("add", ifname=BRIDGE, kind="bridge")
            ipr.link("set", index=_index(ipr, BRIDGE, switch), state="up")
    except NetlinkError as exc:
        raise NetworkSetupFailure(f"cannot create bridge {BRIDGE} in {switch}: {exc}") from exc


def plug(switch: str, port: str, host_ns: str, address: str, prefixlen: int) -> None:
    """Veth ``port`` on the switch's bridge, its peer ``eth0`` in ``host_ns`` with ``address``."""
    try:
        with IPRoute(netns=switch) as ipr:
            ipr.link(
                "add",
                ifname=port,
                kind="veth",
                peer={"ifname": "eth0", "net_ns_fd": str(path_of(host_ns))},
            )
            index = _index(ipr, port, switch)
            ipr.link("set", index=index, master=_index(ipr, BRIDGE, switch))
            ipr.link("set", index=index, state="up")
        with IPRoute(netns=host_ns) as ipr:
            eth0 = _index(ipr, "eth0", host_ns)
            ipr.addr("add", index=eth0, address=address, prefixlen=prefixlen)
            ipr.link("set", index=eth0, state="up")
    except NetlinkError as exc:
        raise NetworkSetupFailure(
            f"cannot plug {host_ns} into the lab's bridge ({port} -> eth0 {address}): {exc}"
        ) from exc


def in_netns(name: str, func: Callable[[], T]) -> T:
    """Run ``func`` on a new thread that lives in the network namespace ``name``.

    setns changes only the calling thread, so the caller's own namespace is untouched;
    sockets made by ``func`` stay in ``name``, and /proc/sys/net is that namespace's.
    """
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(path_of(name), os.O_RDONLY)
        except OSError as exc:
            failure.append(NetworkSetupFailure(f"no network namespace {name}: {exc}"))
            return
        try:
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                failure.append(NetworkSetupFailure(f"setns({name}): {os.strerror(err)}"))
                return
        finally:
            os.close(fd)
        try:
            result.append(func())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"netns-{name}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def sysctl(name: str, key: str, value: str) -> None:
    """Set a per-namespace sysctl (``net.ipv4.ip_forward``) inside namespace ``name``."""

    def write() -> None:
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)

    try:
        in_netns(name, write)
    except OSError as exc:
        raise NetworkSetupFailure(f"cannot set {key}={value} in {name}: {exc}") from exc


def can_connect(name: str, host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connect from inside namespace ``name`` to host:port succeeds."""

    def connect() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False

    return in_netns(name, connect)


def lab_addresses(name: str) -> set[ipaddress.IPv4Network]:
    """The /24s of the lab range that namespace ``name`` (None: this one) has addresses in."""
    found: set[ipaddress.IPv4Network] = set()
    try:
        ipr_ctx = IPRoute(netns=name) if name else IPRoute()
        with ipr_ctx as ipr:
            for addr in ipr.get_addr(family=socket.AF_INET):
                ip = ipaddress.ip_address(addr.get_attr("IFA_ADDRESS"))
                if ip in LAB_RANGE:
                    found.add(ipaddress.IPv4Network(f"{ip}/24", strict=False))
    except (NetlinkError, OSError) as exc:
        log.debug("addresses not read %s", kv(netns=name, error=exc))
    return found


def used_subnets(prefix: str = "swl-") -> set[ipaddress.IPv4Network]:
    """The lab /24s in use: in this namespace and in every ``swl-*`` namespace."""
    used = lab_addresses("")
    for name in listing():
        if name.startswith(prefix) and not name.endswith("-sw"):
            used |= lab_addresses(name)
    return used


def inode(name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path_of(name))
    except OSError:
        return None
    return st.st_dev, st.st_ino


def pids_in(names: list[str]) -> set[int]:
    """Every process whose network namespace is one of ``names``."""
    wanted = {i for i in (inode(n) for n in names) if i is not None}
    found: set[int] = set()
    if not wanted:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in wanted:
            found.add(int(entry.name))
    return found


def same_netns(pid: int, names: list[str]) -> bool:
    wanted = {i for i in (inode(n) for n in names) if i is not None}
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in wanted
