"""A private dockerd for tests and the lab: started as our child, stopped and cleaned up by us.

Owns one `dockerd` process with its own data root, exec root, unix socket, pid file and
cgroup parent, all under one short directory (unix socket paths are limited to ~100
bytes, hence ``/tmp/swld-XXXX`` rather than pytest's long tmp paths). It never talks to
or stops any other daemon: no default socket, no bridge, no iptables changes, no IP
forwarding, and containers' cgroups live under ``/swl-test-<pid>`` apart from others.
Also owns `engine_request`, a tiny synchronous Engine API client over a unix socket for
test helpers (the runtime driver itself uses aiodocker).

Does not own images (`testing.images`) nor the driver (`runtime.docker`).

Invariant: after `stop()`, nothing of this daemon is left: its containers are removed,
its process (and the containerd it spawned) is gone, nothing stays mounted under its
root, the root is deleted and the cgroup directories it created are removed.
Foreign errors (OSError, subprocess) become FailedPrecondition / RuntimeUnavailable.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from swarmlite.errors import FailedPrecondition, RuntimeFailure, RuntimeUnavailable
from swarmlite.log import kv
from swarmlite.testing.cleanup import remove_cgroup_tree, unmount_under

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install Docker's daemon (Debian: `apt-get install -y docker.io busybox-static`, as "
    ".ci/run does) and run the tests as root"
)
_SOCKET_DIR = "/tmp"  # short on purpose: a unix socket path must stay under ~100 bytes
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_instances = itertools.count(1)


def private_dockerd_argv(
    binary: str,
    *,
    host_url: str,
    data_root: Path,
    exec_root: Path,
    pidfile: Path,
    cgroup_parent: str,
) -> list[str]:
    """A dockerd beside any other on the machine: its own socket, roots and pid file, no
    bridge and no firewall or forwarding changes, its containers under ``cgroup_parent``."""
    return [
        binary,
        "--host",
        host_url,
        "--data-root",
        str(data_root),
        "--exec-root",
        str(exec_root),
        "--pidfile",
        str(pidfile),
        "--bridge",
        "none",
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--cgroup-parent",
        "/" + cgroup_parent,
    ]


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def engine_request(
    socket_path: str | Path,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[int, bytes]:
    """One Engine API call (unversioned path like ``/containers/json``): status and body.

    RuntimeUnavailable when the socket does not answer.
    """
    conn = _UnixHTTPConnection(str(socket_path), timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except OSError as exc:
        raise RuntimeUnavailable(f"dockerd at {socket_path} does not answer: {exc}") from exc
    finally:
        conn.close()


def engine_json(socket_path: str | Path, method: str, path: str, body: Any = None) -> Any:
    """An Engine API call with a JSON body and answer; RuntimeFailure on a 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    status, raw = engine_request(
        socket_path, method, path, data, headers={"Content-Type": "application/json"}
    )
    if status >= 400:
        raise RuntimeFailure(f"{method} {path}: {status} {raw.decode(errors='replace')}")
    return json.loads(raw) if raw.strip() else None


class Dockerd:
    """``Dockerd(root).start()`` ... ``stop()``; also a context manager.

    ``command_prefix`` runs dockerd under another command that execs it (for the lab:
    ``["nsenter", "--net=/run/netns/h1"]``); ``extra_args`` are appended to dockerd's.
    """

    def __init__(
        self,
        root: Path,
        *,
        command_prefix: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.data_root = root / "data"
        self.exec_root = root / "exec"
        self.pidfile = root / "docker.pid"
        self.logfile = root / "dockerd.log"
        number = next(_instances)
        suffix = "" if number == 1 else f"-{number}"
        self.cgroup_parent = f"swl-test-{os.getpid()}{suffix}"
        self._prefix = list(command_prefix)
        self._extra = list(extra_args)
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def in_temp_dir(cls, **kwargs: Any) -> Dockerd:
        """A daemon under a fresh short directory ``/tmp/swld-XXXX`` (removed by `stop`)."""
        return cls(Path(tempfile.mkdtemp(prefix="swld-", dir=_SOCKET_DIR)), **kwargs)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> Dockerd:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start dockerd and wait until ``/_ping`` answers; FailedPrecondition if it cannot."""
        binary = shutil.which("dockerd")
        if binary is None:
            raise FailedPrecondition("dockerd is not installed", hint=INSTALL_HINT)
        if os.geteuid() != 0:
            raise FailedPrecondition("a private dockerd needs root", hint=INSTALL_HINT)
        if len(str(self.socket)) > 100:
            raise FailedPrecondition(f"socket path too long for a unix socket: {self.socket}")
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [
            *self._prefix,
            *private_dockerd_argv(
                binary,
                host_url=self.url,
                data_root=self.data_root,
                exec_root=self.exec_root,
                pidfile=self.pidfile,
                cgroup_parent=self.cgroup_parent,
            ),
            *self._extra,
        ]
        with self.logfile.open("ab") as out:
            self._proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        log.info("dockerd starting %s", kv(pid=self._proc.pid, root=self.root))
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self._log_tail()
                self.stop()
                raise FailedPrecondition(
                    f"dockerd exited with {self._proc.returncode} at start-up:\n{tail}",
                    hint=INSTALL_HINT,
                )
            if self._ping():
                log.info("dockerd ready %s", kv(pid=self._proc.pid, socket=self.socket))
                return
            time.sleep(0.1)
        tail = self._log_tail()
        self.stop()
        raise FailedPrecondition(
            f"dockerd did not answer within {self._startup_timeout} s:\n{tail}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """Remove its containers, stop it (SIGTERM, then SIGKILL), unmount, delete, rmdir."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._remove_containers()
            children = _children(proc.pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("dockerd ignored SIGTERM, killing it %s", kv(pid=proc.pid))
                proc.kill()
                proc.wait()
            for child in children:  # its containerd, if dockerd died before stopping it
                _kill_if_alive(child, timeout=5.0)
        unmount_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
        _remove_cgroups(self.cgroup_parent)
        self._proc = None

    def _ping(self) -> bool:
        try:
            status, body = engine_request(self.socket, "GET", "/_ping", timeout=2.0)
        except RuntimeUnavailable:
            return False
        return status == 200 and body == b"OK"

    def _remove_containers(self) -> None:
        try:
            containers = engine_json(self.socket, "GET", "/containers/json?all=1")
        except (RuntimeUnavailable, RuntimeFailure) as exc:
            log.warning("could not list containers before stopping %s", kv(error=exc))
            return
        for container in containers or []:
            cid = quote(container["Id"])
            try:
                engine_request(self.socket, "DELETE", f"/containers/{cid}?force=1&v=1")
            except RuntimeUnavailable as exc:
                log.warning("could not remove container %s", kv(id=cid, error=exc))

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def _kill_if_alive(pid: int, *, timeout: float) -> None:
    """SIGTERM, then SIGKILL, a process we know we started (a child of our dockerd)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _remove_cgroups(name: str) -> None:
    """rmdir ``/sys/fs/cgroup/*/<name>`` (and ``<name>`` itself on cgroup v2), depth first."""
    candidates = [_CGROUP_ROOT / name]
    with contextlib.suppress(OSError):
        candidates += [d / name for d in _CGROUP_ROOT.iterdir() if d.is_dir()]
    for top in candidates:
        if top.is_dir():
            remove_cgroup_tree(top)
