"""The secret and config files of a node's tasks, held in memory only, until their container starts.

Owns the node's files directory (``/run/swarmlite/files`` by default): one directory per
container (0700, the agent's), one file per secret or config in it, with the uid, gid and
mode its reference asks for, which the runtime bind-mounts read-only into the container.
Does not own which files a task gets (``agent.executor``) nor how a runtime mounts them.

Invariants:

- The directory is memory-backed (tmpfs or ramfs): when it is not, a tmpfs is mounted on
  it (as root) before anything is written, and when that cannot be done nothing is
  written at all. A secret never reaches a disk.
- A container's files exist on the host only from its creation until its start: a bind
  mount keeps them readable inside the container (and nowhere else) while it runs, and
  the kernel frees them when it ends. `drop` is called at start, when a create fails and
  at removal; the runtime removes what an earlier run of the agent left (``sweep``).
- Nothing here logs or raises a file's content: messages name the container and paths.

Foreign errors (OSError, mount(2)) become RuntimeFailure naming the path.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from swarmlite.agent.driver import FileData
from swarmlite.errors import AlreadyExists, InvalidArgument, RuntimeFailure
from swarmlite.log import kv

log = logging.getLogger(__name__)

MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
MOUNT_SOURCE = "swarmlite-files"  # how our own tmpfs shows in /proc/self/mountinfo
MOUNT_SIZE = "256m"  # a ceiling, not a reservation: tmpfs takes memory as files are written
_MS_NOSUID, _MS_NODEV = 2, 4
_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _unescape(field: str) -> str:
    """A path as /proc/self/mountinfo writes it (space, tab, newline, backslash as octal)."""
    for escaped, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escaped, char)
    return field


def mount_of(path: Path) -> tuple[str, str, str]:
    """(mount point, filesystem type, source) of the mount that holds ``path`` here."""
    target = os.path.realpath(path)
    best = ("", "", "")
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError as exc:
        raise RuntimeFailure(f"cannot read this process's mounts: {exc}") from exc
    for line in lines:
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        point = _unescape(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        # A later line at the same point is a mount on top of the earlier one.
        if inside and len(point) >= len(best[0]) and len(fields) > sep + 2:
            best = (point, fields[sep + 1], fields[sep + 2])
    return best


def memory_backed(path: Path) -> bool:
    return mount_of(path)[1] in MEMORY_FILESYSTEMS


def mount_tmpfs(path: Path, *, source: str = MOUNT_SOURCE, size: str = MOUNT_SIZE) -> None:
    """Mount a fresh tmpfs (0700, nosuid, nodev) on the directory ``path``; OSError if not."""
    options = f"mode=0700,size={size}".encode()
    flags = _MS_NOSUID | _MS_NODEV
    if _libc.mount(source.encode(), os.fsencode(path), b"tmpfs", flags, options) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), str(path))


def unmount(path: Path) -> bool:
    """Lazily unmount what is mounted on ``path``; whether it worked."""
    return bool(_libc.umount2(os.fsencode(path), _MNT_DETACH) == 0)


class TaskFiles:
    """The files directory of one node: `write` at create, `drop` at start and removal."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _ensure_memory(self) -> None:
        """Checked before every write (a mount can go away): never write to a disk."""
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not memory_backed(self.root):
                if os.geteuid() != 0:
                    raise RuntimeFailure(
                        f"secrets and configs need a memory-backed directory: {self.root} is "
                        "on a disk, and only root can mount a tmpfs there",
                        hint="run the daemon as root, or give it a --socket under /run",
                    )
                mount_tmpfs(self.root)
                log.info("tmpfs mounted for task files %s", kv(path=self.root))
            self.root.chmod(0o700)
        except OSError as exc:
            raise RuntimeFailure(f"cannot make {self.root} memory-backed: {exc}") from exc

    def folder(self, name: str) -> Path:
        if not name or "/" in name.strip("/") or name.strip("/") in (".", ".."):
            raise InvalidArgument(f"not a container name: {name!r}")
        return self.root / name.strip("/")

    def write(self, name: str, files: Sequence[FileData]) -> list[str]:
        """Write container ``name``'s files; Docker ``Binds`` (``path:target:ro``) for them."""
        if not files:
            return []
        for item in files:
            if not item.target.startswith("/"):
                raise InvalidArgument(f"file target must be absolute: {item.target!r}")
        self._ensure_memory()
        folder = self.folder(name)
        binds: list[str] = []
        if os.path.lexists(folder):
            # Another container of that name has its files here: leave them alone.
            raise AlreadyExists(f'the container name "/{name.strip("/")}" is already in use')
        try:
            folder.mkdir(mode=0o700)
            for index, item in enumerate(files):
                path = folder / str(index)
                _write_file(path, item)
                binds.append(f"{path}:{item.target}:ro")
        except OSError as exc:
            self.drop(name)
            raise RuntimeFailure(
                f"cannot write the secrets and configs of {name}: {exc.strerror} ({exc.filename})"
            ) from exc
        return binds

    def drop(self, name: str) -> None:
        """Remove container ``name``'s files from the host (no error if there are none)."""
        try:
            path = self.folder(name)
        except InvalidArgument:
            return  # no container has such a name, so no files either
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def names(self) -> list[str]:
        """Every container name that has files here (and anything else found in the root)."""
        try:
            return sorted(entry.name for entry in os.scandir(self.root))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RuntimeFailure(f"cannot list {self.root}: {exc}") from exc

    def memory_backed(self) -> bool:
        return self.root.is_dir() and memory_backed(self.root)

    def close(self) -> None:
        """Unmount our own tmpfs if it holds nothing (a running container keeps its files)."""
        point, kind, source = mount_of(self.root)
        if point != os.path.realpath(self.root) or kind != "tmpfs" or source != MOUNT_SOURCE:
            return  # the machine's (/run) or a lab's: not ours to take away
        if not self.names() and unmount(self.root):
            log.info("tmpfs for task files unmounted %s", kv(path=self.root))


def _write_file(path: Path, item: FileData) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(item.data)
        while view:
            view = view[os.write(fd, view) :]
        if os.geteuid() == 0:
            os.fchown(fd, item.uid, item.gid)
        os.fchmod(fd, item.mode)
    finally:
        os.close(fd)
