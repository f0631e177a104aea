"""A three-host lab running the network tests' stacks, and the probes those tests use.

`NetLab` wraps one `swarmlite lab` (h1 manager, h2 and h3 workers, each a network
namespace with its own dockerd and swarmlite daemon) driven through the CLI as a user
would: `swarmlite lab exec` for the cluster, `docker -H <host's socket>` for containers.
It reads the cluster's state through the control API on h1's unix socket (`NetLab.call`,
with the client the CLI uses), so a test does not depend on how the CLI prints it.
Probes run from Python on a thread that entered a network namespace (a host's, or a
container's through /proc/<pid>/ns/net), so a connection's timing is the kernel's, not a
subprocess's start-up.

Owns the lab of this directory's tests (up, the stacks deployed, down in a finally whatever
happened), `kill_host` (SIGKILL by pid of every process of one lab host: its swarmlite
daemon, dockerd, containerd, WireGuard, shims and containers) and the capture on the
underlay (tcpdump in the lab's switch namespace). scripts/bench/network.py loads this file
by path and uses the same helpers.

Invariant: `lab down` runs for every lab this module brought up, also after a failure; the
only processes signalled are the lab's own (found by its namespaces and cgroups) and the
tcpdump this module started.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from swarmlite.api.control import NameRef
from swarmlite.api.routes import SERVICE_INSPECT, Rep, Req, Route
from swarmlite.lab import LabState
from swarmlite.rpc import ControlClient
from swarmlite.testing import labkit
from swarmlite.testing.labkit import ok, swarmlite

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
CLI_TIMEOUT = 150.0
STACK_LABEL = "com.docker.stack.namespace"
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


# --------------------------------------------------------------------------- the CLI


def run(argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


# --------------------------------------------------------------------------- namespaces


def in_ns(path: str | Path, func: Callable[[], T]) -> T:
    """Run `func` on a new thread that entered the network namespace at `path`."""
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({path}): {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(func())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=body, name=f"netns-{path}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def http_get(addr: str, port: int, timeout: float = 1.0) -> str:
    """One HTTP/1.0 GET of / on a fresh connection; the body, stripped. OSError on failure."""
    with socket.create_connection((addr, port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        chunks: list[bytes] = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    reply = b"".join(chunks).decode(errors="replace")
    head, sep, body = reply.partition("\r\n\r\n")
    if not sep or " 200 " not in head.split("\r\n", 1)[0]:
        raise OSError(f"not a 200 reply from {addr}:{port}: {reply[:200]!r}")
    return body.strip()


# --------------------------------------------------------------------------- the lab


@dataclass(frozen=True)
class Container:
    host: str  # the lab host whose dockerd runs it
    id: str
    name: str
    pid: int
    hostname: str  # what a web task serves as its page

    @property
    def netns(self) -> str:
        return f"/proc/{self.pid}/ns/net"


@dataclass
class NetLab:
    dir: Path
    state: LabState

    def host_netns(self, host: str) -> str:
        return f"/run/netns/{self.state.host(host).netns}"

    def addr(self, host: str) -> str:
        return self.state.host(host).addr

    def exec(self, host: str, *command: str, env: dict[str, str] | None = None) -> str:
        return ok("lab", "exec", "--dir", str(self.dir), host, "--", *command, env=env)

    def cli(self, *args: str) -> str:
        """`swarmlite args...` against the manager (h1)."""
        return self.exec("h1", "swarmlite", *args)

    def call(self, route: Route[Req, Rep], request: Req, host: str = "h1") -> Rep:
        """One control call on `host`'s unix socket (h1: the manager), as the CLI makes it."""
        client = ControlClient.unix(self.state.host(host).swarmlite_socket, timeout=CLI_TIMEOUT)
        return client.call(route, request)

    def cli_result(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`swarmlite args...` against the manager (h1), failed or not."""
        return swarmlite("lab", "exec", "--dir", str(self.dir), "h1", "--", "swarmlite", *args)

    def deploy(self, compose: Path, stack: str) -> str:
        """`stack deploy` on h1, which returns once the stack converged; the compose files
        name images as ${REGISTRY}/..., the lab's registry (`lab exec` passes env on)."""
        env = {"REGISTRY": self.state.registry}
        return self.exec("h1", "swarmlite", "stack", "deploy", "-c", str(compose), stack, env=env)

    def docker(self, host: str, *args: str, timeout: float = 60.0) -> str:
        done = run(["docker", "-H", self.state.host(host).docker_host, *args], timeout)
        assert done.returncode == 0, f"docker {' '.join(args)} on {host}: {done.stderr}"
        return done.stdout

    def docker_exec(self, container: Container, script: str) -> subprocess.CompletedProcess[str]:
        """`sh -c script` inside the container; never raises on a failed script."""
        host = self.state.host(container.host).docker_host
        return run(["docker", "-H", host, "exec", container.id, "sh", "-c", script], 60.0)

    def containers(self, service: str, hosts: tuple[str, ...] | None = None) -> list[Container]:
        """The running containers of `service` (stack_service), on every host or `hosts`."""
        found: list[Container] = []
        for host in hosts or tuple(h.name for h in self.state.hosts):
            ids = self.docker(host, "ps", "-q", "--no-trunc", "-f", f"name={service}.").split()
            for cid in ids:
                [info] = json.loads(self.docker(host, "inspect", cid))
                if info["Name"].lstrip("/").split(".")[0] != service:
                    continue
                found.append(
                    Container(
                        host=host,
                        id=cid,
                        name=info["Name"].lstrip("/"),
                        pid=int(info["State"]["Pid"]),
                        hostname=info["Config"]["Hostname"],
                    )
                )
        return sorted(found, key=lambda c: c.host)

    def vips(self, service: str) -> set[str]:
        endpoint = self.call(SERVICE_INSPECT, NameRef(ref=service)).service.endpoint
        return {vip.address.split("/")[0] for vip in endpoint.vips}

    def wait(self, what: str, check: Callable[[], T], timeout: float = 60.0) -> T:
        deadline = time.monotonic() + timeout
        last: T | None = None
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, AssertionError):
                last = check()
                if last:
                    return last
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")

    def answers(self, netns: str, addr: str, port: int, count: int) -> list[str]:
        """`count` GETs one after the other from `netns`; each body, or "error: ..."."""

        def probe() -> list[str]:
            seen: list[str] = []
            for _ in range(count):
                try:
                    seen.append(http_get(addr, port))
                except OSError as exc:
                    seen.append(f"error: {exc}")
            return seen

        return in_ns(netns, probe)

    # The module's helpers, for the tests (which reach this file only through the fixture).
    in_ns = staticmethod(in_ns)
    http_get = staticmethod(http_get)

    def kill_host(self, name: str) -> tuple[float, set[int]]:
        return kill_host(self.state, name)

    def capture(self, out: Path) -> contextlib.AbstractContextManager[Path]:
        return underlay_capture(self.state, out)

    def capture_on(self, host: str, out: Path) -> contextlib.AbstractContextManager[Path]:
        """Every interface of lab host `host` (its underlay, mesh, VXLAN and bridges)."""
        return capture_in(self.host_netns(host), out)

    def read_capture(self, path: Path) -> list[Frame]:
        return read_capture(path)

    def logs(self) -> str:
        """The tail of every host's swarmlite log, for a failure message."""
        parts = []
        for host in self.state.hosts:
            path = Path(host.dir) / "swarmlite" / "swarmlite.log"
            with contextlib.suppress(OSError):
                lines = path.read_text(errors="replace").splitlines()[-40:]
                parts.append(f"--- {host.name} {path}\n" + "\n".join(lines))
        return "\n".join(parts)


@contextlib.contextmanager
def lab_up(nodes: int = 3) -> Iterator[NetLab]:
    """A lab of `nodes` hosts (h1 the manager), torn down on exit whatever happened."""
    with labkit.lab_up("--nodes", str(nodes), prefix="swl-net-") as lab:
        yield NetLab(dir=lab.dir, state=lab.state)


# --------------------------------------------------------------------------- a host dies


def _netns_inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def host_pids(state: LabState, name: str) -> set[int]:
    """Every live process of lab host `name`: in its network namespace (daemons, WireGuard,
    containerd, shims), in its dockerd's cgroup parent (containers, which have namespaces of
    their own), and the pids the lab recorded for it."""
    host = state.host(name)
    wanted = _netns_inode(f"/run/netns/{host.netns}")
    parent = "/" + host.cgroup_parent
    tracking = "/" + state.prefix.rstrip("-") + "/" + host.name
    found = {p.pid for p in state.processes if p.host == name}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        if wanted is not None and _netns_inode(f"/proc/{pid}/ns/net") == wanted:
            found.add(pid)
            continue
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            continue
        paths = {line.split(":", 2)[2] for line in lines if line.count(":") >= 2}
        if any(p == root or p.startswith(root + "/") for p in paths for root in (parent, tracking)):
            found.add(pid)
    return {pid for pid in found if Path(f"/proc/{pid}").exists()}


def kill_host(state: LabState, name: str) -> tuple[float, set[int]]:
    """SIGKILL every process of host `name` at once; (monotonic time of the kill, pids)."""
    pids = host_pids(state, name)
    assert pids, f"no process of {name} found"
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return time.monotonic(), pids


# --------------------------------------------------------------------------- the underlay


@dataclass(frozen=True)
class Frame:
    line: str
    src: str
    sport: int | None
    dst: str
    dport: int | None
    proto: str  # udp, tcp, icmp, other


_IP_LINE = re.compile(
    r" IP (\d+\.\d+\.\d+\.\d+)(?:\.(\d+))? > (\d+\.\d+\.\d+\.\d+)(?:\.(\d+))?: (.*)$"
)


def parse_frames(text: str) -> list[Frame]:
    """The IPv4 frames of `tcpdump -r -nn` output (ARP and other non-IP lines are left out)."""
    frames: list[Frame] = []
    for line in text.splitlines():
        found = _IP_LINE.search(line)
        if found is None:
            if " IP " in line:  # an IPv4 line we cannot read is kept, as "other"
                frames.append(Frame(line, "", None, "", None, "other"))
            continue
        src, sport, dst, dport, rest = found.groups()
        if rest.startswith("UDP"):
            proto = "udp"
        elif rest.startswith("Flags ["):
            proto = "tcp"
        elif rest.startswith("ICMP"):
            proto = "icmp"
        else:
            proto = "other"
        frames.append(
            Frame(
                line,
                src,
                int(sport) if sport else None,
                dst,
                int(dport) if dport else None,
                proto,
            )
        )
    return frames


@contextlib.contextmanager
def underlay_capture(state: LabState, out: Path) -> Iterator[Path]:
    """tcpdump on every interface of the lab's switch namespace while the block runs.

    `-i any` sees the frames the bridge forwards between host ports (a capture on the bridge
    device alone misses forwarded unicast).
    """
    with capture_in(f"/run/netns/{state.switch_netns}", out) as path:
        yield path


@contextlib.contextmanager
def capture_in(netns: str, out: Path) -> Iterator[Path]:
    """tcpdump on every interface of network namespace `netns` while the block runs; `-Z
    root` lets it write where root can."""
    argv = [
        "nsenter",
        f"--net={netns}",
        "tcpdump",
        "-i",
        "any",
        "-nn",
        "-U",
        "--immediate-mode",
        "-Z",
        "root",
        "-w",
        str(out),
    ]
    err_path = out.with_suffix(".err")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        deadline = time.monotonic() + 10
        while b"listening on" not in err_path.read_bytes():
            assert proc.poll() is None, f"tcpdump exited: {err_path.read_text()}"
            assert time.monotonic() < deadline, "tcpdump did not start listening"
            time.sleep(0.05)
        yield out
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def read_capture(path: Path) -> list[Frame]:
    """The frames hosts sent: a bridge's own IGMP membership reports (from 0.0.0.0, when it
    comes up) are the switch's, not traffic between hosts."""
    done = run(["tcpdump", "-r", str(path), "-nn", "not (ip and src host 0.0.0.0)"], timeout=120)
    assert done.returncode == 0, f"tcpdump -r {path}: {done.stderr}"
    return parse_frames(done.stdout)


# --------------------------------------------------------------------------- fixture


@pytest.fixture(scope="module")
def netlab() -> Iterator[NetLab]:
    """One 3-host lab with the stacks `net` (net.yml) and `other` (other.yml) deployed."""
    with lab_up(3) as lab:
        lab.deploy(HERE / "net.yml", "net")
        lab.deploy(HERE / "other.yml", "other")
        yield lab


# --------------------------------------------------------------------------- on failure


def diagnostics(lab: NetLab) -> str:
    """What to read beside a failed lab test: the warnings and errors each host's daemon
    logged, and every WireGuard interface's peers, handshakes and bytes (wireguard-go's
    control sockets are files: `wg show` lists every host's interface at once)."""
    parts = []
    for host in lab.state.hosts:
        log = Path(host.dir) / "swarmlite" / "swarmlite.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        bad = [line for line in lines if " WARNING " in line or " ERROR " in line]
        parts.append(f"--- {host.name}: daemon warnings and errors (last 40)")
        parts.extend(bad[-40:])
    shown = run(["wg", "show", "all"], timeout=10.0)
    parts.append(f"--- wg show all\n{shown.stdout}{shown.stderr}")
    return "\n".join(parts)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    lab = getattr(item, "funcargs", {}).get("netlab")
    if call.when == "call" and report.failed and isinstance(lab, NetLab):
        report.sections.append(("lab diagnostics", diagnostics(lab)))
    return report
