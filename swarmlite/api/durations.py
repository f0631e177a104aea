"""Go-style durations (``1m30s``, ``10s``, ``500ms``), as compose files and labels write them.

Owns reading one into seconds and writing seconds back the shortest way. Pure.
"""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,  # not Go's: only where the caller allows days
}


def parse_duration(text: str, *, days: bool = False) -> float | None:
    """Seconds in a Go-style duration (``1m30s``, ``10s``, ``500ms``; with ``days``, also
    ``90d``), or None."""
    text = text.strip()
    if text in ("0", "+0", "-0"):
        return 0.0
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if not body:
        return None
    total, position = 0.0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            return None
        if match.group(2) == "d" and not days:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(body):
        return None
    return sign * total


def format_duration(seconds: float) -> str:
    """The shortest Go-style duration for ``seconds`` (inverse of parse_duration)."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    nanos = round(abs(seconds) * 1e9)
    parts: list[str] = []
    for unit, size in (("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9)):
        count, nanos = divmod(nanos, size)
        if count:
            parts.append(f"{count}{unit}")
    for unit, size in (("ms", 10**6), ("us", 10**3), ("ns", 1)):
        count, nanos = divmod(nanos, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
