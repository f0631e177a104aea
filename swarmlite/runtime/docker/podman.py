"""What the Docker driver does differently when the Engine API is Podman's compatible service.

Owns telling Podman from dockerd (``GET /version`` lists a "Podman Engine" component), and
the three places where Podman, through the same API, does not do what dockerd does:

- Health checks: Podman runs a container's health check only from a systemd timer, so
  without systemd (or with another manager) it never runs and the container stays
  "starting" for ever. `HealthTicker` runs it instead, one asyncio task per running
  container that has a check, every interval of the check (30 s when the image and the
  spec give none), through ``GET /libpod/containers/{id}/healthcheck``, which runs the
  check once and records it, so that Podman keeps counting retries, the start period and
  the failing streak itself, as dockerd does. A ticker ends when its container stops.
- Ulimits: given any ulimit, Podman fills in open files and processes with 1048576
  each, which runc cannot set where the service's hard limits are lower and root lacks
  CAP_SYS_RESOURCE (every start then fails); dockerd leaves the missing ones as its own.
  `fill_ulimits` sets the missing ones to this process's hard limits (processes at most
  32768, which Podman lowers its own to at start), as a container would inherit them.
- Log lines: Podman sends each piece of a line written in several writes as a frame of
  its own, each with its own timestamp; `strip_continuation` takes the timestamp off every
  piece but the first, so that the line reads as the process wrote it.

Everything else the contract asks of a runtime (exit codes, ``NetworkMode: none``,
labels, bind-mounted secrets on the driver's tmpfs, stop signals, logs, one-shot stats,
whose answer Podman sends without a Content-Type) behaves as on dockerd through
``runtime.docker.driver`` and ``runtime.docker.engine`` as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import resource
from collections.abc import Mapping
from typing import Any

from swarmlite.errors import NotFound, RuntimeFailure, RuntimeUnavailable
from swarmlite.log import kv
from swarmlite.runtime.docker.engine import Engine

log = logging.getLogger(__name__)

PODMAN_ENGINE = "Podman Engine"
PODMAN_NPROC = 32768  # what Podman lowers its own processes limit to at start
DEFAULT_HEALTH_INTERVAL = 30.0  # Docker's default too
_NANO = 1_000_000_000
_STAMP = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) ")


def is_podman(version: Mapping[str, Any]) -> bool:
    """Whether a ``GET /version`` answer is Podman's."""
    components = version.get("Components") or []
    return any(isinstance(c, dict) and c.get("Name") == PODMAN_ENGINE for c in components)


def fill_ulimits(host_config: dict[str, Any]) -> None:
    """Add ``nofile`` and ``nproc`` to a non-empty ``HostConfig.Ulimits`` that lacks them:
    this process's hard limits, as a container inherits them from dockerd."""
    ulimits = host_config.get("Ulimits") or []
    if not ulimits:
        return  # Podman's configured defaults apply
    named = {str(u.get("Name")) for u in ulimits}
    for name, which, cap in (
        ("nofile", resource.RLIMIT_NOFILE, None),
        ("nproc", resource.RLIMIT_NPROC, PODMAN_NPROC),
    ):
        if name in named:
            continue
        hard = resource.getrlimit(which)[1]
        if hard == resource.RLIM_INFINITY:
            continue
        limit = hard if cap is None else min(hard, cap)
        ulimits.append({"Name": name, "Soft": limit, "Hard": limit})
    host_config["Ulimits"] = ulimits


def strip_continuation(pending: bytes, frame: bytes) -> bytes:
    """``frame`` without its leading timestamp when it continues a line (``pending`` is
    the unfinished part of it), else ``frame`` as it is."""
    if not pending:
        return frame
    match = _STAMP.match(frame)
    return frame[match.end() :] if match else frame


def health_interval(inspect: Mapping[str, Any]) -> float | None:
    """The health check interval of a container (``GET /containers/{id}/json``), in
    seconds; None when it has no check."""
    check = (inspect.get("Config") or {}).get("Healthcheck") or {}
    test = check.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    interval = int(check.get("Interval") or 0)
    return interval / _NANO if interval > 0 else DEFAULT_HEALTH_INTERVAL


class HealthTicker:
    """Runs the health checks of a Podman's running containers; `close` stops them all."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._tickers: dict[str, asyncio.Task[None]] = {}

    def watch(self, container_id: str, interval: float) -> None:
        """Run ``container_id``'s check every ``interval`` s until it stops (idempotent)."""
        ticker = self._tickers.get(container_id)
        if ticker is not None and not ticker.done():
            return
        self._tickers[container_id] = asyncio.create_task(
            self._run(container_id, interval), name=f"podman-health-{container_id[:12]}"
        )

    def forget(self, container_id: str) -> None:
        ticker = self._tickers.pop(container_id, None)
        if ticker is not None:
            ticker.cancel()

    async def close(self) -> None:
        tickers, self._tickers = list(self._tickers.values()), {}
        for ticker in tickers:
            ticker.cancel()
        for ticker in tickers:
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _run(self, container_id: str, interval: float) -> None:
        path = f"libpod/containers/{container_id}/healthcheck"
        while True:
            await asyncio.sleep(interval)
            try:
                result = await self._engine.get_json(
                    path, {}, what=container_id, subject="container"
                )
            except NotFound:
                return  # removed
            except RuntimeUnavailable as exc:
                log.info("health check not run %s", kv(id=container_id[:12], error=exc))
                continue
            except RuntimeFailure as exc:
                if exc.details.get("status") == 409:  # not running (any more)
                    return
                log.warning("health check failed to run %s", kv(id=container_id[:12], error=exc))
                continue
            log.debug("health checked %s", kv(id=container_id[:12], result=result))
