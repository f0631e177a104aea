"""A cluster of real swarmlite daemons on 127.0.0.1, driven only through the `swarmlite` CLI.

`Cluster` owns the nodes a test started: one data dir, unix socket and cluster port each,
all under one directory. It starts nodes with `swarmlite init`/`join` (which detach the
daemon) or `swarmlite daemon --data-dir` (a restart, run by us in a new session), reads the
cluster through the control API with the CLI's own client (`swarmlite.rpc.ControlClient` on
a node's unix socket, so a test's reading does not depend on how the CLI prints), and kills
daemons with SIGKILL by the pid in their pid file. It does not import the daemon: what it
sees is what the CLI's client sees, plus each node's pid file and log.

Invariant: every daemon pid the cluster ever saw is SIGKILLed by `close()`, whatever the
test did (a pid is killed only while its command line still names the node's data dir,
so a reused pid is never touched).

scripts/bench/cluster.py loads this file by path and uses the same class.

Every test under tests/integration is marked `integration` here (one hook, not a mark per
module): a plain `pytest` leaves them out, `scripts/test` runs them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from swarmlite.api.control import ListRequest, NodeView
from swarmlite.api.routes import NODE_LS, Rep, Req, Route
from swarmlite.errors import SwarmliteError
from swarmlite.rpc import ControlClient
from swarmlite.testing.cleanup import unmount_under

T = TypeVar("T")

CLI_TIMEOUT = 60.0  # one CLI call; the machine may be loaded
WAIT_TIMEOUT = 60.0  # a cluster-level condition (election, READY, ...)
_ENV_DROP = ("SWARMLITE_HOST", "SWARMLITE_SOCKET", "SWARMLITE_CERT_DIR", "SWARMLITE_DATA_DIR")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Node:
    """One node as the harness knows it: where its state, socket and port are."""

    name: str
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None  # set when the harness restarted it
    removed: bool = False  # `node rm` took it out of the cluster: heal() leaves it down

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def socket(self) -> Path:
        return self.data_dir / "swarmlite.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def https(self) -> str:
        return f"https://{self.addr}"

    @property
    def certs(self) -> Path:
        return self.data_dir / "certs"

    @property
    def log(self) -> Path:
        return self.data_dir / "swarmlite.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "swarmlite.pid"


@dataclass(frozen=True)
class Seen:
    """One node as NODE_LS gives it (what a row of `node ls` shows)."""

    id: str
    hostname: str
    state: str  # ready, down, unknown
    role: str  # the desired role: manager or worker
    leader: bool
    reachability: str | None  # None for a node outside the raft membership

    @property
    def is_manager_member(self) -> bool:
        return self.reachability is not None


@dataclass
class Cluster:
    root: Path
    nodes: dict[str, Node] = field(default_factory=dict)
    pids: set[int] = field(default_factory=set)

    # ------------------------------------------------------------------ the control API

    def control(self, via: Node | None = None) -> ControlClient:
        """The CLI's own client on `via`'s unix socket (default: any live manager)."""
        return ControlClient.unix((via or self.a_manager()).socket, timeout=CLI_TIMEOUT)

    def call(self, route: Route[Req, Rep], request: Req, via: Node | None = None) -> Rep:
        """One control call on `via` (default: any live manager); raises its error."""
        return self.control(via).call(route, request)

    # ------------------------------------------------------------------ the CLI

    def env(self, name: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
        env["PYTHONUNBUFFERED"] = "1"
        if name is not None:
            env["SWARMLITE_HOSTNAME"] = name
        return env

    def cli(
        self,
        *args: str,
        host: str | None = None,
        cert_dir: Path | None = None,
        name: str | None = None,
        timeout: float = CLI_TIMEOUT,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`swarmlite [-H host] [--cert-dir dir] args...` (``input`` on its stdin); never
        raises on a failed command."""
        argv = [sys.executable, "-m", "swarmlite"]
        if host is not None:
            argv += ["-H", host]
        if cert_dir is not None:
            argv += ["--cert-dir", str(cert_dir)]
        argv += list(args)
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(name),
            input=input if input is not None else "",
            check=False,
        )

    def ok(self, *args: str, **kwargs: Any) -> str:
        """Like `cli`, but the command must succeed; returns its stdout."""
        done = self.cli(*args, **kwargs)
        assert done.returncode == 0, (
            f"`swarmlite {' '.join(args)}` exited {done.returncode}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return done.stdout

    # ------------------------------------------------------------------ starting nodes

    def _new_node(self, name: str) -> Node:
        assert name not in self.nodes, f"node {name} exists already"
        node = Node(name=name, data_dir=self.root / name, port=free_port())
        self.nodes[name] = node
        return node

    def init(self, name: str, *flags: str) -> Node:
        node = self._new_node(name)
        try:
            self.ok(
                "init",
                "--data-dir",
                str(node.data_dir),
                "--listen-addr",
                node.addr,
                *flags,
                name=name,
            )
        finally:
            self._remember_pid(node)
        return node

    def token(self, role: str, via: Node | None = None) -> str:
        return self.ok("join-token", "-q", role, host=(via or self.a_manager()).host).strip()

    def join_cmd(self, name: str, token: str, via: Node) -> subprocess.CompletedProcess[str]:
        """`swarmlite join` for a new node `name`; the node is known even if joining failed."""
        node = self._new_node(name)
        try:
            return self.cli(
                "join",
                "--token",
                token,
                "--data-dir",
                str(node.data_dir),
                "--listen-addr",
                node.addr,
                via.addr,
                name=name,
            )
        finally:
            self._remember_pid(node)

    def join(self, name: str, role: str, via: Node | None = None) -> Node:
        via = via or self.a_manager()
        done = self.join_cmd(name, self.token(role, via), via)
        assert done.returncode == 0, f"join of {name} failed: {done.stderr}"
        return self.nodes[name]

    def start(self, node: Node) -> None:
        """Restart a node from its data dir: `swarmlite daemon --data-dir`, in a new session."""
        self.reap(node)
        assert not self.alive(node), f"{node.name} runs already"
        with open(node.log, "ab") as log:
            node.proc = subprocess.Popen(
                [sys.executable, "-m", "swarmlite", "daemon", "--data-dir", str(node.data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(node.name),
                start_new_session=True,
            )
        self.pids.add(node.proc.pid)

    # ------------------------------------------------------------------ processes

    def _remember_pid(self, node: Node) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.pids.add(int(node.pid_file.read_text().strip()))

    def pid(self, node: Node) -> int:
        """The daemon's pid: the harness's own child, else the one in the pid file."""
        if node.proc is not None and node.proc.poll() is None:
            return node.proc.pid
        pid = int(node.pid_file.read_text().strip())
        self.pids.add(pid)
        return pid

    def alive(self, node: Node) -> bool:
        """Whether the node's daemon runs (a restarted one may not have written its pid yet)."""
        if node.proc is not None and node.proc.poll() is None:
            return True
        with contextlib.suppress(OSError, ValueError):
            return _is_ours(self.pid(node), node.data_dir)
        return False

    def kill(self, node: Node) -> float:
        """SIGKILL the node's daemon; returns the monotonic time of the kill, once it is gone."""
        pid = self.pid(node)
        assert _is_ours(pid, node.data_dir), f"{node.name} (pid {pid}) is not running"
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        self.wait(f"{node.name} (pid {pid}) to exit", lambda: not _is_ours(pid, node.data_dir))
        self.reap(node)
        return killed

    def reap(self, node: Node) -> None:
        """Wait for the harness's own child (a restarted daemon) once it is dead."""
        if node.proc is not None and not _is_ours(node.proc.pid, node.data_dir):
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(timeout=10)
            node.proc = None

    def close(self) -> None:
        """SIGKILL every daemon this cluster ever started, reap the harness's children, and
        unmount what they left mounted under the root."""
        for node in self.nodes.values():
            self._remember_pid(node)
        for pid in self.pids:
            for node in self.nodes.values():
                if _is_ours(pid, node.data_dir):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        for node in self.nodes.values():
            if node.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    node.proc.kill()
                node.proc.wait(timeout=10)
                node.proc = None
        # A killed daemon leaves the tmpfs its tasks' secrets and configs were kept on.
        unmount_under(self.root)

    # ------------------------------------------------------------------ what NODE_LS says

    def managers(self) -> list[Node]:
        """The nodes whose data dir says they are managers (their raft dir exists)."""
        return [n for n in self.nodes.values() if (n.data_dir / "raft").is_dir()]

    def a_manager(self, exclude: tuple[Node, ...] = ()) -> Node:
        for node in self.managers():
            if node not in exclude and self.alive(node):
                return node
        raise AssertionError("no live manager")

    def node_ls(self, via: Node | None = None) -> list[Seen]:
        """NODE_LS on `via` (default: any live manager)."""
        return [_seen(view) for view in self.call(NODE_LS, ListRequest(), via).nodes]

    def try_node_ls(self, via: Node | None = None) -> list[Seen] | None:
        """`node_ls`, or None while it fails (no leader yet, a restarting daemon, ...)."""
        try:
            return self.node_ls(via)
        except (SwarmliteError, AssertionError):  # AssertionError: no live manager
            return None

    def row(self, rows: list[Seen], node: Node) -> Seen | None:
        found = [r for r in rows if r.hostname == node.name]
        assert len(found) <= 1, f"two rows for {node.name}: {found}"
        return found[0] if found else None

    def leaders(self, rows: list[Seen]) -> list[str]:
        return [r.hostname for r in rows if r.leader]

    def healthy(self, rows: list[Seen] | None) -> bool:
        """Every node not removed is READY, every manager reachable, and one leader."""
        if rows is None:
            return False
        expected = {n.name for n in self.nodes.values() if not n.removed and _holds_node(n)}
        ready = {r.hostname for r in rows if r.state == "ready"}
        reachable = all(r.reachability in (None, "reachable") for r in rows)
        return expected <= ready and reachable and len(self.leaders(rows)) == 1

    def heal(self, timeout: float = WAIT_TIMEOUT) -> list[Seen]:
        """Restart every node that should run and does not; wait until all are READY."""
        for node in self.nodes.values():
            if not node.removed and _holds_node(node) and not self.alive(node):
                self.start(node)
        rows = self.wait(
            "every node READY, every manager reachable, one leader", self._healthy_rows, timeout
        )
        assert rows is not None
        return rows

    def _healthy_rows(self) -> list[Seen] | None:
        for via in self.managers():
            if self.alive(via):
                rows = self.try_node_ls(via)
                if self.healthy(rows):
                    return rows
        return None

    # ------------------------------------------------------------------ waiting

    def wait(
        self,
        what: str,
        check: Callable[[], T],
        timeout: float = WAIT_TIMEOUT,
        interval: float = 0.05,
    ) -> T:
        """Call `check` until it returns something truthy, and return that."""
        deadline = time.monotonic() + timeout
        last: T | None = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")

    def log_since(self, node: Node, offset: int) -> str:
        with open(node.log, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_size(self, node: Node) -> int:
        return node.log.stat().st_size if node.log.exists() else 0


def _seen(view: NodeView) -> Seen:
    node, manager = view.node, view.manager
    return Seen(
        id=node.id,
        hostname=node.status.hostname,
        state=node.status.state.value,
        role=node.spec.role.value,
        leader=bool(manager and manager.leader),
        reachability=manager.reachability if manager else None,
    )


def _holds_node(node: Node) -> bool:
    return (node.data_dir / "node.json").exists()


def _is_ours(pid: int, data_dir: Path) -> bool:
    """Whether `pid` is a live (not zombie) process whose command line names `data_dir`."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    if "\nState:\tZ" in status:
        return False
    return os.fsencode(str(data_dir)) in cmdline.split(b"\0")


_HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this directory and below `integration`."""
    for item in items:
        if item.path.resolve().is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three managers (m1, m2, m3) and two workers (w1, w2); every daemon killed afterwards."""
    made = Cluster(tmp_path_factory.mktemp("cluster").resolve())
    try:
        m1 = made.init("m1")
        made.join("m2", "manager", via=m1)
        made.join("m3", "manager", via=m1)
        made.join("w1", "worker", via=m1)
        made.join("w2", "worker", via=m1)
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def small_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two managers (m1, m2) and a worker (w1): a leader, a follower that forwards, and a
    node that is no manager; every daemon killed afterwards."""
    made = Cluster(tmp_path_factory.mktemp("small").resolve())
    try:
        m1 = made.init("m1")
        made.join("m2", "manager", via=m1)
        made.join("w1", "worker", via=m1)
        made.heal()
        yield made
    finally:
        made.close()


@pytest.fixture
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A harness of this test's own that has started no node yet (the test inits and joins,
    with the flags it needs); every daemon killed afterwards."""
    made = Cluster(tmp_path_factory.mktemp("own").resolve())
    try:
        yield made
    finally:
        made.close()
