"""Removing what a private dockerd or a lab left on the machine: mounts and cgroups.

Shared by ``testing.dockerd`` (one dockerd for the contract tests) and ``lab.procs`` (a
lab's hosts). Each call is best effort: what cannot be removed is logged and reported.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
from pathlib import Path

from swarmlite.log import kv

log = logging.getLogger(__name__)

_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def remove_cgroup_tree(top: Path) -> list[Path]:
    """rmdir ``top`` and everything below it, deepest first; returns what stayed."""
    left: list[Path] = []
    dirs = [Path(d) for d, _, _ in os.walk(top)]
    for directory in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        try:
            directory.rmdir()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cgroup left behind %s", kv(path=directory, error=exc))
            left.append(directory)
    return left


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root`` in this mount namespace, deepest first."""
    prefix = str(root)
    points: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=lambda p: p.count("/"), reverse=True)


def unmount_under(root: Path) -> list[str]:
    """Lazily unmount everything at or below ``root``; returns what was unmounted."""
    done: list[str] = []
    for point in mounts_under(root):
        if _libc.umount2(os.fsencode(point), _MNT_DETACH) == 0:
            done.append(point)
        else:
            log.warning("umount failed %s", kv(path=point, errno=ctypes.get_errno()))
    return done
