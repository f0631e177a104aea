"""Logging set-up shared by every process: one line per record, key=value context.

Imports nothing of ours.
"""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(level: int | str = logging.INFO, *, stream: object = None) -> None:
    """Send swarmlite's records to stderr (or ``stream``), once per process."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger("swarmlite")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def kv(**context: object) -> str:
    """Render context as ``key=value`` pairs, in the order given."""
    return " ".join(f"{key}={value}" for key, value in context.items())
