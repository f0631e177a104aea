"""Processes, cgroups and mounts of a lab: starting daemons inside a host, and ending them.

Owns how a lab process is started: detached (``setsid -f``: it is nobody's child, so it
outlives ``lab up``), placed in the lab's tracking cgroup *before* it execs (so everything
it ever forks, such as dockerd's containerd and shims, is found again by ``down``), entered
into the host's network namespace with ``nsenter --net=`` (never ``ip netns exec``, which
remounts /sys and hides the cgroup hierarchies from dockerd), and optionally given a private
mount namespace with its own tmpfs /run (dockerd's containerd keeps shim sockets there;
its overlay mounts then never appear in the machine's mount table and vanish with it).

Also owns ending processes safely: a pid is opened as a pidfd, checked to still belong to
the lab, and only then signalled through that pidfd, so a pid reused by an unrelated
process is never touched. Does not decide which processes are the lab's (``lab.lab``).
Foreign errors (OSError, subprocess) become FailedPrecondition or Unavailable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from swarmlite.errors import FailedPrecondition, Unavailable
from swarmlite.lab import netns
from swarmlite.log import kv

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")

# $1: the cgroup.procs file to join, $2: the log, the rest: the command. The pid goes to
# stdout (a pipe to the caller) before stdout moves to the log.
_LAUNCH = 'echo $$ > "$1" && echo $$ && exec >>"$2" 2>&1 </dev/null && shift 2 && exec "$@"'
_PRIVATE_RUN = 'mount -t tmpfs -o size=64m,mode=0755 swl-run /run && exec "$@"'


# --------------------------------------------------------------------------- cgroups


def tracking_hierarchy() -> Path | None:
    """Where the lab's own cgroups go: the v2 tree, else v1's pids controller, else none."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return CGROUP_ROOT
    if (CGROUP_ROOT / "pids" / "cgroup.procs").exists():
        return CGROUP_ROOT / "pids"
    return None


def hierarchies() -> list[Path]:
    """The root of every mounted cgroup hierarchy (v2, or each v1 controller)."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    found: list[Path] = []
    with contextlib.suppress(OSError):
        found = [d for d in sorted(CGROUP_ROOT.iterdir()) if (d / "cgroup.procs").exists()]
    return found


def make_cgroup(rel: str) -> Path | None:
    """``rel`` in the tracking hierarchy; None where there is no hierarchy to track with."""
    root = tracking_hierarchy()
    if root is None:
        return None
    path = root / rel
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FailedPrecondition(f"cannot create cgroup {path}: {exc}") from exc
    return path


def cgroup_dirs(match: Callable[[str], bool]) -> list[Path]:
    """Top-level cgroup directories, in every hierarchy, whose name ``match``es."""
    found: list[Path] = []
    for root in hierarchies():
        with contextlib.suppress(OSError):
            found += [d for d in root.iterdir() if d.is_dir() and match(d.name)]
    return found


def pids_in_cgroups(tops: Iterable[Path]) -> set[int]:
    pids: set[int] = set()
    for top in tops:
        for directory, _, _ in os.walk(top):
            with contextlib.suppress(OSError, ValueError):
                text = (Path(directory) / "cgroup.procs").read_text()
                pids.update(int(p) for p in text.split())
    return pids


def in_cgroup(pid: int, match: Callable[[str], bool]) -> bool:
    """Whether any of ``pid``'s cgroups has a first path component that ``match``es."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        path = line.split(":", 2)[-1]
        first = path.strip("/").split("/", 1)[0]
        if first and match(first):
            return True
    return False


# --------------------------------------------------------------------------- starting


def launch(
    argv: Sequence[str],
    *,
    netns_name: str,
    cgroup: Path | None,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    private_run: bool = False,
    timeout: float = 10.0,
) -> int:
    """Start ``argv`` detached inside network namespace ``netns_name``; returns its pid.

    The pid is that of ``argv``'s program itself (every wrapper execs).
    """
    command = ["nsenter", f"--net={netns.path_of(netns_name)}", "--"]
    if private_run:
        command += ["unshare", "--mount", "--propagation", "private", "--"]
        command += ["sh", "-c", _PRIVATE_RUN, "sh"]
    procs = str(cgroup / "cgroup.procs") if cgroup is not None else "/dev/null"
    read_end, write_end = os.pipe()
    try:
        with open(log_path, "ab") as out:
            starter = subprocess.Popen(
                ["setsid", "-f", "sh", "-c", _LAUNCH, "sh", procs, str(log_path), *command, *argv],
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=out,
                env=dict(env) if env is not None else None,
            )
        os.close(write_end)
        write_end = -1
        starter.wait(timeout)
        line = _read_line(read_end, timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"cannot start {argv[0]} in {netns_name}: {exc}") from exc
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    if not line.isdigit():
        raise Unavailable(
            f"{argv[0]} did not start in {netns_name}",
            hint=f"its log {log_path} ends with:\n{tail(log_path)}",
        )
    return int(line)


def _read_line(fd: int, timeout: float) -> str:
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def wrap_command(argv: Sequence[str], *, netns_name: str, cgroup: Path | None) -> list[str]:
    """``argv`` run in ``netns_name`` and in ``cgroup``, as a foreground command line."""
    procs = str(cgroup / "cgroup.procs") if cgroup is not None else "/dev/null"
    join = 'echo $$ > "$1" && shift && exec "$@"'
    enter = ["nsenter", f"--net={netns.path_of(netns_name)}", "--"]
    return ["sh", "-c", join, "sh", procs, *enter, *argv]


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


# --------------------------------------------------------------------------- identity


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in ticks since boot); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int, start: int | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, if ``start`` is given, is that process."""
    found = start_time(pid)
    return found is not None and (start is None or found == start)


def protected() -> set[int]:
    """This process and its ancestors: never signalled, even from inside a lab host."""
    pids: set[int] = set()
    pid = os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[-1].split()[1])
    pids.add(1)
    return pids


# --------------------------------------------------------------------------- ending


def end(
    pids: Iterable[int],
    belongs: Callable[[int], bool],
    *,
    grace: float,
    kill_wait: float = 5.0,
) -> set[int]:
    """SIGTERM every pid that ``belongs`` to the lab, SIGKILL what is left after ``grace``.

    ``grace`` 0 sends SIGKILL at once. Returns the pids signalled. Each pid is held as a
    pidfd from before the check until after the last signal, so it cannot be reused.
    """
    keep = protected()
    fds: dict[int, int] = {}
    for pid in set(pids) - keep:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue  # gone already
        if belongs(pid):
            fds[pid] = fd
        else:
            os.close(fd)
    try:
        if grace > 0:
            _signal(fds, signal.SIGTERM)
            _wait_exit(fds, grace)
        if any(not _exited(fd) for fd in fds.values()):
            _signal(fds, signal.SIGKILL)
            _wait_exit(fds, kill_wait)
    finally:
        for fd in fds.values():
            os.close(fd)
    return set(fds)


def _signal(fds: Mapping[int, int], sig: signal.Signals) -> None:
    for pid, fd in fds.items():
        if _exited(fd):
            continue
        try:
            signal.pidfd_send_signal(fd, sig)
            log.debug("signalled %s", kv(pid=pid, signal=sig.name))
        except ProcessLookupError:
            continue


def _exited(fd: int) -> bool:
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready)


def _wait_exit(fds: Mapping[int, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = [fd for fd in fds.values() if not _exited(fd)]
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        select.select(pending, [], [], min(left, 0.2))
        pending = [fd for fd in pending if not _exited(fd)]
