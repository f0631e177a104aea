"""A private dockerd for tests and the lab: started as our child, stopped and cleaned up by us.

Owns one `dockerd` process with its own data root, exec root, unix socket, pid file and
cgroup parent, all under one short directory (unix socket paths are limited to ~100
bytes, hence ``/tmp/swld-XXXX`` rather than pytest's long tmp paths). It never talks to
or stops any other daemon: no default socket, no bridge, no iptables changes, no IP
forwarding, and containers' cgroups live under ``/swl-test-<pid>`` apart from others.
Starting, waiting for ``/_ping`` and stopping are `testing.engineproc`'s (shared with
`testing.podman`), and so are `engine_request` and `engine_json`, the tiny synchronous
Engine API client of the test helpers, re-exported here.

Does not own images (`testing.images`) nor the driver (`runtime.docker`).

Invariant: after `stop()`, nothing of this daemon is left: its containers are removed,
its process (and the containerd it spawned) is gone, nothing stays mounted under its
root, the root is deleted and the cgroup directories it created are removed.
Foreign errors (OSError, subprocess) become FailedPrecondition / RuntimeUnavailable.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from swarmlite.errors import FailedPrecondition
from swarmlite.testing.cleanup import remove_cgroup_tree
from swarmlite.testing.engineproc import EngineProcess, engine_json, engine_request

__all__ = ["INSTALL_HINT", "Dockerd", "engine_json", "engine_request", "private_dockerd_argv"]

INSTALL_HINT = (
    "install Docker's daemon (Debian: `apt-get install -y docker.io busybox-static`, as "
    ".ci/run does) and run the tests as root"
)
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


class Dockerd(EngineProcess):
    """``Dockerd(root).start()`` ... ``stop()``; also a context manager.

    ``command_prefix`` runs dockerd under another command that execs it (for the lab:
    ``["nsenter", "--net=/run/netns/h1"]``); ``extra_args`` are appended to dockerd's.
    """

    name = "dockerd"
    install_hint = INSTALL_HINT
    socket_name = "docker.sock"
    log_name = "dockerd.log"
    temp_prefix = "swld-"

    def __init__(
        self,
        root: Path,
        *,
        command_prefix: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(root, command_prefix=command_prefix, startup_timeout=startup_timeout)
        self.data_root = root / "data"
        self.exec_root = root / "exec"
        self.pidfile = root / "docker.pid"
        number = next(_instances)
        suffix = "" if number == 1 else f"-{number}"
        self.cgroup_parent = f"swl-test-{os.getpid()}{suffix}"
        self._extra = list(extra_args)

    def _binary(self) -> str:
        binary = shutil.which("dockerd")
        if binary is None:
            raise FailedPrecondition("dockerd is not installed", hint=INSTALL_HINT)
        return binary

    def _argv(self, binary: str) -> list[str]:
        return [
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

    def _terminate(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        children = _children(proc.pid)
        super()._terminate(proc, timeout)
        for child in children:  # its containerd, if dockerd died before stopping it
            _kill_if_alive(child, timeout=5.0)

    def _release_cgroups(self) -> None:
        _remove_cgroups(self.cgroup_parent)


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
