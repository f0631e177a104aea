"""Autoscaling as a service declares it: the ``swarmlite.autoscale.*`` service labels.

A compose file writes ``deploy: {x-autoscale: {min: 1, max: 4, cpu: 70}}``; the compose
converter turns that into these labels, and ``service create --label
swarmlite.autoscale.max=4`` (or a Docker API client) sets them directly, so every front end
declares it the same way and the store needs no new field. Owns the label names, reading
them (``autoscale_spec``) and their rules; the leader's loop that acts on them is
``manager/orchestrator/autoscaler.py``.

Labels (all under ``swarmlite.autoscale.``):
- ``min``, ``max``: replicas, 1 <= min <= max (``max`` is required; ``min`` defaults to 1);
- ``cpu``: target CPU use per task, in % of the task's CPU limit (else its reservation,
  else one core);
- ``memory``: target memory use per task, in % of its memory limit (else reservation; one
  of them is required);
- ``rps``: target requests per second per task, as the routing mesh counts them (new
  connections to the service's published ports);
- ``cooldown``: how long after a change (the autoscaler's or a user's) before the next
  one, both ways (default 30s); ``cooldown_up`` / ``cooldown_down`` set one way only
  (defaults: 10s up, the ``cooldown`` down).
At least one target is required. Only replicated services scale.

Errors: InvalidArgument naming the label and what it must be.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from swarmlite.api.durations import parse_duration
from swarmlite.errors import InvalidArgument

PREFIX = "swarmlite.autoscale."
KEYS = ("min", "max", "cpu", "memory", "rps", "cooldown", "cooldown_up", "cooldown_down")
DEFAULT_COOLDOWN = 30.0
DEFAULT_COOLDOWN_UP = 10.0


@dataclass(frozen=True)
class AutoscaleSpec:
    min: int
    max: int
    cpu: float | None = None  # target %, see the module docstring
    memory: float | None = None
    rps: float | None = None
    cooldown_up: float = DEFAULT_COOLDOWN_UP
    cooldown_down: float = DEFAULT_COOLDOWN

    def labels(self) -> dict[str, str]:
        """The labels that declare this spec (what compose's x-autoscale writes)."""
        out = {f"{PREFIX}min": str(self.min), f"{PREFIX}max": str(self.max)}
        for key in ("cpu", "memory", "rps"):
            value = getattr(self, key)
            if value is not None:
                out[PREFIX + key] = f"{value:g}"
        out[f"{PREFIX}cooldown_up"] = f"{self.cooldown_up:g}s"
        out[f"{PREFIX}cooldown_down"] = f"{self.cooldown_down:g}s"
        return out


def declared(labels: Mapping[str, str]) -> bool:
    return any(key.startswith(PREFIX) for key in labels)


def autoscale_spec(labels: Mapping[str, str]) -> AutoscaleSpec | None:
    """The autoscaling ``labels`` declare, or None; InvalidArgument when they are wrong."""
    mine = {key[len(PREFIX) :]: value for key, value in labels.items() if key.startswith(PREFIX)}
    if not mine:
        return None
    unknown = sorted(set(mine) - set(KEYS))
    if unknown:
        raise InvalidArgument(
            f"unknown autoscale label {PREFIX}{unknown[0]}",
            hint=f"the autoscale labels are {', '.join(PREFIX + k for k in KEYS)}",
        )
    if "max" not in mine:
        raise InvalidArgument(f"autoscaling needs {PREFIX}max (the most replicas)")
    low = _count(mine, "min", 1)
    high = _count(mine, "max", 1)
    if low > high:
        raise InvalidArgument(f"{PREFIX}min ({low}) is above {PREFIX}max ({high})")
    targets = {key: _target(mine, key) for key in ("cpu", "memory", "rps")}
    if all(value is None for value in targets.values()):
        raise InvalidArgument(
            f"autoscaling needs a target: {PREFIX}cpu, {PREFIX}memory or {PREFIX}rps"
        )
    both = _seconds(mine, "cooldown", DEFAULT_COOLDOWN)
    return AutoscaleSpec(
        min=low,
        max=high,
        cpu=targets["cpu"],
        memory=targets["memory"],
        rps=targets["rps"],
        cooldown_up=_seconds(mine, "cooldown_up", both if "cooldown" in mine else None),
        cooldown_down=_seconds(mine, "cooldown_down", both),
    )


def _count(mine: Mapping[str, str], key: str, default: int) -> int:
    raw = mine.get(key)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidArgument(
            f"{PREFIX}{key} must be a whole number of replicas, 1 or more, got {raw!r}"
        )
    return value


def _target(mine: Mapping[str, str], key: str) -> float | None:
    raw = mine.get(key)
    if raw is None:
        return None
    try:
        value = float(raw.strip().removesuffix("%"))
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        what = "requests per second per task" if key == "rps" else "a percentage"
        raise InvalidArgument(f"{PREFIX}{key} must be a number above 0 ({what}), got {raw!r}")
    return value


def _seconds(mine: Mapping[str, str], key: str, default: float | None) -> float:
    raw = mine.get(key)
    if raw is None:
        return DEFAULT_COOLDOWN_UP if default is None else default
    text = raw.strip()
    seconds = parse_duration(text) if not text.replace(".", "", 1).isdigit() else float(text)
    if seconds is None or seconds < 0:
        raise InvalidArgument(
            f'{PREFIX}{key} must be a duration such as "30s" or "2m", got {raw!r}'
        )
    return seconds
