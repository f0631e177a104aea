"""What normalising one compose file needs: its directory, the environment, a warning sink.

Owns the Context handed to every key reader, the merge markers of ``!reset`` and
``!override``, and path resolution. Owns no key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlite.api.durations import format_duration
from swarmlite.compose.loader import Mark, Node
from swarmlite.compose.validate import as_duration

Warn = Callable[[Mark, str, str], None]  # (where, key path, message)


class _Reset:
    def __repr__(self) -> str:
        return "RESET"


RESET: Any = _Reset()  # `!reset`: remove the key when merging


@dataclass(frozen=True)
class Override:
    """`!override`: replace the base value instead of merging with it."""

    value: Any


@dataclass
class Context:
    base_dir: Path  # relative paths are resolved against this
    env: Mapping[str, str]
    warn: Warn


def dur(node: Node, path: str) -> str:
    """A duration in its canonical text ("1m30s")."""
    return format_duration(as_duration(node, path))


def resolve_path(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base / path).resolve()
