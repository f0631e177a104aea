"""Which C allocator the daemon's process runs on, and how it gives memory back.

Python's own small-object allocator keeps a 1 MiB arena while one object in it lives:
after 2,000 connections came and went on the cluster port, 24 MB of arenas stayed, each
pinned by a few survivors. So the daemon runs with ``PYTHONMALLOC=malloc``, on one of:

- **jemalloc**, when the system has it (Debian: ``libjemalloc2``), preloaded. Told to purge
  freed pages after a second from its own thread (``JEMALLOC_CONF``), it gave back all but
  7 MB after that abuse, and the leader's loops run as fast as on Python's allocator:
  100,000 tasks deployed on 1,000 nodes in 7.6 s instead of 9.3-10.9 s on glibc's
  (BENCHMARKS.md, "Control plane at scale").
- **glibc's malloc** otherwise, or when ``SWARMLITE_MALLOC=glibc`` asks for it: a fixed mmap
  threshold (``tune_glibc``) and ``malloc_trim`` (``rpc.limits.reclaim_memory``) give back
  all but 3 MB, but every small object costs more.

The allocator can only be chosen before the process starts: ``use_daemon_malloc`` starts
the daemon's command again with ``daemon_env`` when it is not already so (where the dynamic
linker could not preload jemalloc after all, the process runs on glibc's and says so). The
preload is for the daemon's process alone: it is taken out of the environment that the
daemon's own children (``nft``, ``ip``, ``wireguard-go``) inherit.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Mapping, MutableMapping

MALLOC_ENV = "SWARMLITE_MALLOC"  # "jemalloc" or "glibc": what the daemon chose (or is told)
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"


def find_jemalloc() -> str | None:
    """jemalloc's shared library as the dynamic linker finds it, or None."""
    return ctypes.util.find_library("jemalloc")


def daemon_env(environ: Mapping[str, str], jemalloc: str | None) -> dict[str, str]:
    """The variables the daemon's process starts with, over ``environ``: jemalloc
    (``jemalloc``, its library, or None when there is none) unless ``environ`` asks for
    glibc; a ``MALLOC_CONF`` already set is kept."""
    env = {"PYTHONMALLOC": "malloc", MALLOC_ENV: "glibc"}
    if jemalloc is None or environ.get(MALLOC_ENV) == "glibc":
        return env
    preload = environ.get("LD_PRELOAD", "").split()
    env[MALLOC_ENV] = "jemalloc"
    env["LD_PRELOAD"] = " ".join(preload if jemalloc in preload else [jemalloc, *preload])
    env["MALLOC_CONF"] = environ.get("MALLOC_CONF") or JEMALLOC_CONF
    return env


def daemon_environ() -> dict[str, str]:
    """This process's environment as the daemon's process starts with it (``daemon_env``
    over ``os.environ``, with jemalloc where the system has it)."""
    return {**os.environ, **daemon_env(os.environ, find_jemalloc())}


def runs_as_asked(environ: Mapping[str, str]) -> bool:
    """Whether a process started with ``environ`` already runs on the daemon's allocator."""
    chosen = environ.get(MALLOC_ENV)
    if environ.get("PYTHONMALLOC") != "malloc" or chosen not in ("jemalloc", "glibc"):
        return False
    return chosen == "glibc" or "jemalloc" in environ.get("LD_PRELOAD", "")


def unpreload(environ: MutableMapping[str, str]) -> None:
    """Take jemalloc out of ``LD_PRELOAD``: this process has it; its children need not."""
    rest = [lib for lib in environ.get("LD_PRELOAD", "").split() if "jemalloc" not in lib]
    if rest:
        environ["LD_PRELOAD"] = " ".join(rest)
    else:
        environ.pop("LD_PRELOAD", None)


def use_daemon_malloc() -> None:
    """Run this process again on the daemon's allocator unless it already is (same pid and
    argv: only for a command that is the daemon, ``swarmlite daemon``)."""
    if sys.argv[1:2] != ["daemon"]:
        return  # not the daemon command (a test calling it)
    if runs_as_asked(os.environ):
        if os.environ[MALLOC_ENV] == "jemalloc" and not _mapped("jemalloc"):
            os.environ[MALLOC_ENV] = "glibc"  # the linker could not preload it (it said why)
        unpreload(os.environ)
        return
    argv = [sys.executable, "-m", "swarmlite", *sys.argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, daemon_environ())


def _mapped(name: str) -> bool:
    """Whether a library whose path holds ``name`` is mapped into this process."""
    try:
        with open("/proc/self/maps") as maps:
            return any(name in line for line in maps)
    except OSError:
        return False


def tune_glibc() -> None:
    """Make memory that peers made us take go back to the system once they leave, on glibc.

    glibc raises its mmap threshold each time a large block is freed, after which blocks of
    that size (asyncio's per-connection TLS buffers) come from the heap, where freeing them
    returns nothing; a fixed threshold keeps them mmapped, and so returned at close. Does
    nothing on jemalloc (it purges by itself) or off glibc.
    """
    if os.environ.get(MALLOC_ENV) == "jemalloc":
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 64 * 1024)
        libc.mallopt(m_trim_threshold, 256 * 1024)
