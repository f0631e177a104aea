"""Logging set-up shared by every process: one line per record, key=value context.

Imports nothing of ours.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# A daemon's log file is rotated past this size, keeping this many older files: at most
# (1 + LOG_BACKUPS) * LOG_MAX_BYTES on disk, whatever a peer makes us log.
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3
# The most of one value ``kv`` writes: a value that comes from a peer (a hostname, a path,
# a header) is cut to this, so that no request can make a log line long.
MAX_VALUE_CHARS = 300


def setup(level: int | str = logging.INFO, *, stream: object = None) -> None:
    """Send swarmlite's records to stderr (or ``stream``), once per process."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger("swarmlite")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def kv(**context: object) -> str:
    """Render context as ``key=value`` pairs, in the order given, each value cut to
    ``MAX_VALUE_CHARS`` (see ``clip``)."""
    return " ".join(f"{key}={clip(value)}" for key, value in context.items())


def clip(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """``str(value)``, cut to ``limit`` characters with a note of how long it was."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text)} chars)"


def setup_file(
    path: Path,
    level: int | str = logging.INFO,
    *,
    max_bytes: int = LOG_MAX_BYTES,
    backups: int = LOG_BACKUPS,
) -> None:
    """Send swarmlite's records to ``path``, rotated past ``max_bytes`` (``backups`` kept).

    The process's stdout and stderr (a crash's traceback, a library's print) are pointed at
    the current file too, and follow it at each rotation, so nothing is written past the
    bound.
    """
    handler = _RotatingStdHandler(path, max_bytes=max_bytes, backups=backups)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.redirect_std()
    root = logging.getLogger("swarmlite")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _RotatingStdHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log file that fds 1 and 2 follow."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")

    def redirect_std(self) -> None:
        if self.stream is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        for fd in (1, 2):
            os.dup2(self.stream.fileno(), fd)

    def doRollover(self) -> None:
        super().doRollover()
        self.redirect_std()
