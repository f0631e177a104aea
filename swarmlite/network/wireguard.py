"""One WireGuard interface of this node: the device, its process, its configuration.

Owns, for one interface in the network namespace the caller runs in: creating it (the
kernel's WireGuard where `ip link add type wireguard` works, else a `wireguard-go -f
<ifname>` child process), configuring it (private key, listen port, peers), reading it
back (peers' endpoints, allowed IPs and last handshakes), its address and MTU (pyroute2),
the size of wireguard-go's UDP socket buffers, and removing it all again. Does not own
which peers there are or when keys change: mesh.py decides, this module executes.

Configuration goes over wireguard-go's UAPI, a text protocol on the unix socket
/run/wireguard/<ifname>.sock (reached through /proc/<pid>/root, so that it works whatever
mount namespace the child sees), or over the kernel's generic netlink family when the
kernel module serves the device; never through the `wg` command.

wireguard-go's socket sits in the shared /run of the machine, so interface names must be
unique per machine, not only per namespace: `interface_name` derives one from the node id.
wireguard-go (bookworm's 2022-03 build) leaves its UDP sockets at the kernel's default
buffer (208 KiB), which overflows under load; `fix_buffers` duplicates those sockets out
of the child with pidfd_getfd(2) and forces 7 MiB, and runs again after every listen-port
change (a new port means new sockets). Its TUN queue overflows too: `set_address` makes it
TXQUEUE packets long. It also writes each decrypted packet into its TUN
device one write(2) at a time, with the kernel's receive path inside that write, so the
device gets receive packet steering over every CPU (rps.py).

Invariants: at most one child per interface (a child left by an earlier run of this node,
named in the pid file in `run_dir`, is stopped before a new one starts); `stop` kills only
the pid this object started or adopted. Errors from the OS, netlink or the UAPI become
NetworkSetupFailure naming the interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import hashlib
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2 import AsyncIPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from swarmlite.errors import NetworkSetupFailure
from swarmlite.network import keys, rps

log = logging.getLogger(__name__)

DEFAULT_PORT = 51820
MTU = 1420
KEEPALIVE = 25  # seconds: keeps NAT mappings and stateful firewalls open
BUFFER_BYTES = 7 * 1024 * 1024  # what later wireguard-go versions ask for themselves
# wireguard-go's TUN queue, in packets: the kernel's 500 overflows (and TCP retransmits)
# whenever wireguard-go is scheduled out under bulk load; kernel WireGuard queues 1024.
TXQUEUE = 1000
IFNAME_PREFIX = "swlwg"
UAPI_DIR = "/run/wireguard"

_SYS_PIDFD_GETFD = 438
_SO_SNDBUFFORCE = 32
_SO_RCVBUFFORCE = 33
_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 2.0
_POLL = 0.02
_libc = ctypes.CDLL(None, use_errno=True)


def interface_name(node_id: str) -> str:
    """The node's WireGuard interface: "swlwg" + 8 characters of its id (13 in all).

    Ids are lowercase base-36, so their first 8 characters are used as they are; any other
    id is hashed, so that the name stays a valid interface name.
    """
    head = node_id[:8]
    if len(head) < 8 or not all(c.isascii() and (c.isdigit() or c.islower()) for c in head):
        head = hashlib.sha256(node_id.encode()).hexdigest()[:8]
    return IFNAME_PREFIX + head


# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True, slots=True)
class PeerUpdate:
    """A change to one peer, keyed by its public key (base64).

    None leaves a field as it is; `allowed_ips` replaces the whole list (an address given
    to this peer is taken away from any other peer that had it, in the same step).
    `handshake_now` sends a keepalive at once, which starts a handshake when the peer has
    no valid session (used right after this node changed its private key).
    """

    public_key: str
    remove: bool = False
    endpoint: str | None = None  # "198.18.77.2:51820"
    allowed_ips: tuple[str, ...] | None = None  # ("198.18.128.2/32",)
    keepalive: int | None = None  # seconds, 0 = off
    handshake_now: bool = False


@dataclass(frozen=True, slots=True)
class PeerStatus:
    public_key: str  # base64
    endpoint: str = ""
    allowed_ips: tuple[str, ...] = ()
    keepalive: int = 0
    last_handshake: float = 0.0  # wall time; 0 = never
    rx_bytes: int = 0
    tx_bytes: int = 0


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    public_key: str  # base64, "" before a private key is set
    listen_port: int
    peers: dict[str, PeerStatus] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SocketBuffers:
    """One of wireguard-go's UDP sockets, as the kernel reports it (it doubles what is set)."""

    port: int
    family: int
    rcvbuf: int
    sndbuf: int


# --------------------------------------------------------------------------- the device


async def kernel_available() -> bool:
    """Whether this namespace can make kernel WireGuard devices (tries one, removes it)."""
    name = f"swlprobe{os.getpid() % 100000}"
    try:
        async with AsyncIPRoute() as ipr:
            try:
                await ipr.link("add", ifname=name, kind="wireguard")
            except NetlinkError:
                return False  # EOPNOTSUPP: no module
            with contextlib.suppress(NetlinkError):
                await ipr.link("del", ifname=name)
            return True
    except OSError:
        return False


class WireGuard:
    """The WireGuard interface `ifname` in the caller's network namespace."""

    def __init__(
        self,
        ifname: str,
        run_dir: Path,
        *,
        use_kernel: bool | None = None,
        binary: str = "wireguard-go",
    ) -> None:
        if not 0 < len(ifname) <= 15:
            raise ValueError(f"bad interface name {ifname!r}")
        self.ifname = ifname
        self._run_dir = run_dir
        self._use_kernel = use_kernel  # None: decide at start
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._kernel = False

    @property
    def pid(self) -> int | None:
        """wireguard-go's pid while it runs (None with the kernel module)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def kernel(self) -> bool:
        return self._kernel

    @property
    def _pid_file(self) -> Path:
        return self._run_dir / f"{self.ifname}.pid"

    @property
    def _log_file(self) -> Path:
        return self._run_dir / f"{self.ifname}.log"

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        """Create the interface (down, no address); returns once it can be configured."""
        with self._translate("create the interface"):
            self._run_dir.mkdir(parents=True, exist_ok=True)
        await self._stop_leftover()
        use_kernel = self._use_kernel
        if use_kernel is None:
            use_kernel = await kernel_available()
        if use_kernel:
            async with AsyncIPRoute() as ipr:
                with self._translate("create the kernel interface"):
                    await ipr.link("add", ifname=self.ifname, kind="wireguard")
            self._kernel = True
            log.info("wireguard started ifname=%s mode=kernel", self.ifname)
            return
        await self._start_userspace()

    async def _start_userspace(self) -> None:
        # The socket path is shared by the whole machine: a live socket here belongs to a
        # wireguard-go this node did not start, and talking to it would configure that one.
        if await self._uapi_alive(f"{UAPI_DIR}/{self.ifname}.sock"):
            raise NetworkSetupFailure(
                f"another wireguard-go serves {UAPI_DIR}/{self.ifname}.sock",
                hint="two nodes on one machine need different node ids (the interface "
                "name comes from the id), or one of them left a wireguard-go running",
                details={"ifname": self.ifname},
            )
        self._proc = self._spawn()
        proc = self._proc
        with self._translate("record wireguard-go's pid"):
            self._pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if proc.poll() is not None:
                self._proc = None
                raise NetworkSetupFailure(
                    f"wireguard-go for {self.ifname} exited with code {proc.returncode}: "
                    f"{self._log_tail()}",
                    details={"ifname": self.ifname},
                )
            try:
                await self._uapi("get=1\n\n")
                if proc.poll() is None:
                    break
                continue  # it answered and died: report its exit above
            except NetworkSetupFailure:
                if time.monotonic() > deadline:
                    await self.stop()
                    raise
            await asyncio.sleep(_POLL)
        log.info("wireguard started ifname=%s mode=userspace pid=%d", self.ifname, proc.pid)
        try:
            await rps.spread_receive(self.ifname)
        except NetworkSetupFailure as exc:  # slower, still correct
            log.warning("wireguard receive not spread ifname=%s reason=%s", self.ifname, exc)

    def _spawn(self) -> subprocess.Popen[bytes]:
        """Fork wireguard-go from this thread, so that it starts in this thread's netns."""
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        env["LOG_LEVEL"] = "error"
        try:
            with open(self._log_file, "ab") as out:
                return subprocess.Popen(
                    [self._binary, "-f", self.ifname],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    close_fds=True,
                    start_new_session=True,  # the daemon stops it, not a terminal's ^C
                )
        except FileNotFoundError as exc:
            raise NetworkSetupFailure(
                f"cannot start {self._binary}: not installed",
                hint="this kernel has no WireGuard module: apt-get install wireguard-go",
                details={"ifname": self.ifname},
            ) from exc
        except OSError as exc:
            raise NetworkSetupFailure(
                f"cannot start {self._binary} for {self.ifname}: {exc}"
            ) from exc

    async def stop(self) -> None:
        """Stop wireguard-go (by pid) and remove the interface. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await _terminate(proc.pid, proc)
            log.info("wireguard stopped ifname=%s pid=%d", self.ifname, proc.pid)
        with contextlib.suppress(FileNotFoundError):
            self._pid_file.unlink()
        async with AsyncIPRoute() as ipr:
            try:
                await ipr.link("del", ifname=self.ifname)
            except NetlinkError as exc:
                if exc.code not in (errno.ENODEV, errno.ENOENT, errno.EINVAL):
                    raise self._failure("remove the interface", exc) from exc
        self._kernel = False

    async def _stop_leftover(self) -> None:
        """Stop a wireguard-go that an earlier run of this node left for this interface."""
        pid = self._leftover_pid()
        if pid is not None:
            log.warning("stopping leftover wireguard-go ifname=%s pid=%d", self.ifname, pid)
            await _terminate(pid, None)
        with contextlib.suppress(FileNotFoundError):
            self._pid_file.unlink()

    def _leftover_pid(self) -> int | None:
        """The pid in the pid file, if that process is still wireguard-go for this interface."""
        try:
            pid = int(self._pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if len(cmdline) >= 3 and cmdline[-3:-1] == [b"-f", self.ifname.encode()]:
            return pid
        return None

    # ------------------------------------------------------------------ configuration

    async def configure(
        self,
        *,
        private_key: bytes | None = None,
        listen_port: int | None = None,
        peers: Sequence[PeerUpdate] = (),
    ) -> None:
        """Apply these changes in one step; fields left None stay as they are."""
        if private_key is None and listen_port is None and not peers:
            return
        if self._kernel:
            await self._configure_kernel(private_key, listen_port, peers)
        else:
            await self._uapi(_uapi_set(private_key, listen_port, peers))
        if listen_port is not None and not self._kernel:
            await self.fix_buffers(expect_port=listen_port or None)

    async def status(self) -> DeviceStatus:
        """What the device holds now."""
        if self._kernel:
            return await self._status_kernel()
        return _parse_get(await self._uapi("get=1\n\n"))

    async def set_address(self, address: str, *, mtu: int = MTU) -> None:
        """Give the interface exactly this address ("198.18.128.1/20"), this MTU (and, for
        wireguard-go, a TUN queue of TXQUEUE packets), and up."""
        wanted = ipaddress.IPv4Interface(address)
        async with AsyncIPRoute() as ipr:
            with self._translate("set the address"):
                found = await ipr.link_lookup(ifname=self.ifname)
                if not found:
                    raise NetworkSetupFailure(f"interface {self.ifname} is gone")
                index = found[0]
                have: list[ipaddress.IPv4Interface] = []
                async for msg in await ipr.addr("dump", index=index, family=socket.AF_INET):
                    have.append(ipaddress.IPv4Interface(f"{msg.get('address')}/{msg['prefixlen']}"))
                for old in have:
                    if old != wanted:
                        await ipr.addr(
                            "del", index=index, address=str(old.ip), prefixlen=old.network.prefixlen
                        )
                if wanted not in have:
                    await ipr.addr(
                        "add",
                        index=index,
                        address=str(wanted.ip),
                        prefixlen=wanted.network.prefixlen,
                    )
                if self._kernel:
                    await ipr.link("set", index=index, mtu=mtu, state="up")
                else:
                    await ipr.link("set", index=index, mtu=mtu, txqlen=TXQUEUE, state="up")

    # ------------------------------------------------------------------ UDP buffers

    async def fix_buffers(self, *, expect_port: int | None = None) -> list[SocketBuffers]:
        """Force wireguard-go's UDP socket buffers to BUFFER_BYTES; what they are now.

        Waits (briefly) for sockets bound to `expect_port`, or to the device's current
        port, since wireguard-go rebinds when its port changes.
        """
        pid = self.pid
        if pid is None:
            return []
        port = expect_port or (await self.status()).listen_port
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            with self._translate("enlarge the UDP buffers"):
                found = _force_buffers(pid, port)
            if found or time.monotonic() > deadline:
                break
            await asyncio.sleep(_POLL)
        if not found:
            raise NetworkSetupFailure(
                f"wireguard-go for {self.ifname} has no UDP socket on port {port}",
                details={"ifname": self.ifname, "port": port},
            )
        log.debug("wireguard buffers ifname=%s port=%d sockets=%d", self.ifname, port, len(found))
        return found

    def socket_buffers(self) -> list[SocketBuffers]:
        """wireguard-go's UDP sockets and their buffer sizes, as the kernel reports them."""
        pid = self.pid
        if pid is None:
            return []
        with self._translate("read the UDP buffers"):
            return _udp_sockets(pid, force=None)

    # ------------------------------------------------------------------ UAPI

    @property
    def uapi_path(self) -> str:
        pid = self.pid
        root = f"/proc/{pid}/root" if pid is not None else ""
        return f"{root}{UAPI_DIR}/{self.ifname}.sock"

    @staticmethod
    async def _uapi_alive(path: str) -> bool:
        try:
            _, writer = await asyncio.open_unix_connection(path)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def _uapi(self, request: str) -> list[tuple[str, str]]:
        """Send one UAPI request; its reply as (key, value) pairs, errno checked."""
        try:
            reader, writer = await asyncio.open_unix_connection(self.uapi_path, limit=1 << 22)
        except OSError as exc:
            raise self._failure("reach wireguard-go's UAPI socket", exc) from exc
        try:
            writer.write(request.encode("ascii"))
            await writer.drain()
            reply = await asyncio.wait_for(reader.readuntil(b"\n\n"), _START_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise self._failure("talk to wireguard-go's UAPI", exc) from exc
        except TimeoutError as exc:
            raise NetworkSetupFailure(f"wireguard-go for {self.ifname} did not answer") from exc
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        pairs = []
        for line in reply.decode("ascii", "replace").splitlines():
            if line:
                key, _, value = line.partition("=")
                pairs.append((key, value))
        code = next((v for k, v in reversed(pairs) if k == "errno"), None)
        if code != "0":
            raise NetworkSetupFailure(
                f"wireguard-go for {self.ifname} refused the change (errno={code})",
                details={"ifname": self.ifname, "errno": code},
            )
        return [(k, v) for k, v in pairs if k != "errno"]

    # ------------------------------------------------------------------ kernel (genl)

    async def _configure_kernel(
        self, private_key: bytes | None, listen_port: int | None, peers: Sequence[PeerUpdate]
    ) -> None:
        from pyroute2 import WireGuard as GenlWireGuard  # only where the module exists

        def run() -> None:
            with GenlWireGuard() as wg:
                first: dict[str, Any] = {}
                if private_key is not None:
                    first["private_key"] = keys.to_b64(private_key)
                if listen_port is not None:
                    first["listen_port"] = listen_port
                if first:
                    wg.set(self.ifname, **first)
                for update in peers:
                    if update.handshake_now:  # a keepalive goes out on a change from 0
                        wg.set(
                            self.ifname,
                            peer={"public_key": update.public_key, "persistent_keepalive": 0},
                        )
                    wg.set(self.ifname, peer=_genl_peer(update))

        with self._translate("configure the kernel interface"):
            await asyncio.to_thread(run)

    async def _status_kernel(self) -> DeviceStatus:
        from pyroute2 import WireGuard as GenlWireGuard

        def run() -> DeviceStatus:
            with GenlWireGuard() as wg:
                messages = wg.info(self.ifname)
            return _parse_genl(messages)

        with self._translate("read the kernel interface"):
            return await asyncio.to_thread(run)

    # ------------------------------------------------------------------ errors

    def _failure(self, what: str, exc: BaseException) -> NetworkSetupFailure:
        code = exc.code if isinstance(exc, NetlinkError) else getattr(exc, "errno", None)
        reason = os.strerror(code) if isinstance(code, int) and code else str(exc)
        return NetworkSetupFailure(
            f"{what} of WireGuard interface {self.ifname}: {reason}",
            details={"ifname": self.ifname, "errno": code},
        )

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except NetworkSetupFailure:
            raise
        except (NetlinkError, OSError) as exc:
            raise self._failure(what, exc) from exc

    def _log_tail(self) -> str:
        try:
            text = self._log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-3:]) or "(empty log)"


# --------------------------------------------------------------------------- helpers


async def _terminate(pid: int, proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after a grace period; reap it when it is our child."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT
        while not _exited(pid, proc):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                deadline = time.monotonic() + _STOP_TIMEOUT
            await asyncio.sleep(_POLL)
    finally:
        os.close(pidfd)


def _exited(pid: int, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is not None:
        return proc.poll() is not None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def _uapi_set(
    private_key: bytes | None, listen_port: int | None, peers: Sequence[PeerUpdate]
) -> str:
    lines = ["set=1"]
    if private_key is not None:
        lines.append(f"private_key={private_key.hex()}")
    if listen_port is not None:
        lines.append(f"listen_port={listen_port}")
    for peer in peers:
        lines.append(f"public_key={keys.b64_to_hex(peer.public_key)}")
        if peer.remove:
            lines.append("remove=true")
            continue
        if peer.endpoint is not None:
            lines.append(f"endpoint={peer.endpoint}")
        if peer.handshake_now:
            # A keepalive goes out only when the interval changes from 0 to non-zero.
            lines.append("persistent_keepalive_interval=0")
            lines.append(f"persistent_keepalive_interval={peer.keepalive or KEEPALIVE}")
        elif peer.keepalive is not None:
            lines.append(f"persistent_keepalive_interval={peer.keepalive}")
        if peer.allowed_ips is not None:
            lines.append("replace_allowed_ips=true")
            lines.extend(f"allowed_ip={cidr}" for cidr in peer.allowed_ips)
    return "\n".join(lines) + "\n\n"


def _parse_get(pairs: list[tuple[str, str]]) -> DeviceStatus:
    public = ""
    port = 0
    peers: dict[str, PeerStatus] = {}
    current: dict[str, Any] | None = None

    def flush() -> None:
        if current is not None:
            peers[current["public_key"]] = PeerStatus(
                public_key=current["public_key"],
                endpoint=current.get("endpoint", ""),
                allowed_ips=tuple(current.get("allowed_ips", ())),
                keepalive=current.get("keepalive", 0),
                last_handshake=current.get("sec", 0) + current.get("nsec", 0) / 1e9,
                rx_bytes=current.get("rx", 0),
                tx_bytes=current.get("tx", 0),
            )

    for key, value in pairs:
        if key == "private_key" and current is None:
            raw = bytes.fromhex(value)
            public = keys.from_private(raw).public_b64 if any(raw) else ""
        elif key == "listen_port" and current is None:
            port = int(value)
        elif key == "public_key":
            flush()
            current = {"public_key": keys.hex_to_b64(value)}
        elif current is None:
            continue
        elif key == "endpoint":
            current["endpoint"] = value
        elif key == "allowed_ip":
            current.setdefault("allowed_ips", []).append(value)
        elif key == "persistent_keepalive_interval":
            current["keepalive"] = int(value)
        elif key == "last_handshake_time_sec":
            current["sec"] = int(value)
        elif key == "last_handshake_time_nsec":
            current["nsec"] = int(value)
        elif key == "rx_bytes":
            current["rx"] = int(value)
        elif key == "tx_bytes":
            current["tx"] = int(value)
    flush()
    return DeviceStatus(public_key=public, listen_port=port, peers=peers)


def _genl_peer(update: PeerUpdate) -> dict[str, Any]:
    peer: dict[str, Any] = {"public_key": update.public_key}
    if update.remove:
        peer["remove"] = True
        return peer
    if update.endpoint:
        host, _, port = update.endpoint.rpartition(":")
        peer["endpoint_addr"] = host.strip("[]")
        peer["endpoint_port"] = int(port)
    if update.keepalive is not None or update.handshake_now:
        peer["persistent_keepalive"] = update.keepalive or KEEPALIVE
    if update.allowed_ips is not None:
        peer["replace_allowed_ips"] = True
        peer["allowed_ips"] = list(update.allowed_ips)
    return peer


def _parse_genl(messages: Any) -> DeviceStatus:
    public = ""
    port = 0
    peers: dict[str, PeerStatus] = {}
    for msg in messages:
        private = msg.get_attr("WGDEVICE_A_PRIVATE_KEY")
        if private:
            public = keys.from_private(keys.from_b64(_text(private))).public_b64
        port = msg.get_attr("WGDEVICE_A_LISTEN_PORT") or port
        for peer in msg.get_attr("WGDEVICE_A_PEERS") or ():
            key = _text(peer.get_attr("WGPEER_A_PUBLIC_KEY"))
            endpoint = peer.get_attr("WGPEER_A_ENDPOINT") or {}
            handshake = peer.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME") or {}
            allowed = [
                f"{a.get_attr('WGALLOWEDIP_A_IPADDR')}/{a.get_attr('WGALLOWEDIP_A_CIDR_MASK')}"
                for a in peer.get_attr("WGPEER_A_ALLOWEDIPS") or ()
            ]
            peers[key] = PeerStatus(
                public_key=key,
                endpoint=f"{endpoint['addr']}:{endpoint['port']}" if endpoint else "",
                allowed_ips=tuple(allowed),
                keepalive=peer.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL") or 0,
                last_handshake=float(handshake.get("tv_sec", 0) if handshake else 0),
                rx_bytes=peer.get_attr("WGPEER_A_RX_BYTES") or 0,
                tx_bytes=peer.get_attr("WGPEER_A_TX_BYTES") or 0,
            )
    return DeviceStatus(public_key=public, listen_port=port, peers=peers)


def _text(value: Any) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _pidfd_getfd(pidfd: int, fd: int) -> int:
    dup = int(_libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0))
    if dup < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pidfd_getfd: {os.strerror(err)}")
    return dup


def _force_buffers(pid: int, port: int) -> list[SocketBuffers]:
    """Set BUFFER_BYTES on the child's UDP sockets bound to `port`; [] if there are none."""
    return _udp_sockets(pid, force=port)


def _udp_sockets(pid: int, *, force: int | None) -> list[SocketBuffers]:
    """The child's UDP sockets (those on port `force` get BUFFER_BYTES first)."""
    found: list[SocketBuffers] = []
    seen: set[str] = set()
    pidfd = os.pidfd_open(pid)
    try:
        fd_dir = f"/proc/{pid}/fd"
        for name in os.listdir(fd_dir):
            try:
                target = os.readlink(f"{fd_dir}/{name}")
            except FileNotFoundError:
                continue  # closed meanwhile
            if not target.startswith("socket:") or target in seen:
                continue
            seen.add(target)
            try:
                dup = _pidfd_getfd(pidfd, int(name))
            except OSError as exc:
                if exc.errno == errno.EBADF:
                    continue  # closed meanwhile
                raise
            with socket.socket(fileno=dup) as sock:  # closes our copy only
                if sock.type != socket.SOCK_DGRAM or sock.family not in (
                    socket.AF_INET,
                    socket.AF_INET6,
                ):
                    continue
                bound = sock.getsockname()[1]
                if force is not None:
                    if bound != force:
                        continue
                    sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, BUFFER_BYTES)
                    sock.setsockopt(socket.SOL_SOCKET, _SO_SNDBUFFORCE, BUFFER_BYTES)
                found.append(
                    SocketBuffers(
                        port=bound,
                        family=sock.family,
                        rcvbuf=sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                        sndbuf=sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                    )
                )
    finally:
        os.close(pidfd)
    return found
