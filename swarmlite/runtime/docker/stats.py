"""A container's resource use as the Docker driver reads it: CPU, memory and network bytes.

Owns the reading of one-shot stats (``GET /containers/{id}/stats?stream=0&one-shot=1``,
which answers at once instead of waiting a second for a second sample) into
`agent.driver.ContainerStats`, and of a network namespace's counters from
``/proc/PID/net/dev``. Does not own when stats are taken (``metrics``) nor the Engine API
call itself (``driver``, through ``engine``).

Choices: memory is Docker's own "usage" less the page cache the kernel can drop
(``inactive_file`` on cgroup v2, ``total_inactive_file`` on v1), as `docker stats` shows
it. Network bytes come from the container's network namespace (its init process's
``/proc/PID/net/dev``, every interface but loopback), because swarmlite creates
containers with ``NetworkMode: none`` and attaches its own interfaces, which Docker's
stats do not count; Docker's ``networks`` are used only where that file cannot be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarmlite.agent.driver import ContainerStats

_NANO = 1_000_000_000


def parse_net_dev(text: str) -> tuple[int, int]:
    """Received and transmitted bytes, summed over every interface but loopback, from the
    text of a ``/proc/net/dev`` file (two header lines, then one line per interface)."""
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, sep, counters = line.partition(":")
        fields = counters.split()
        if not sep or name.strip() == "lo" or len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def read_net_dev(pid: int) -> tuple[int, int] | None:
    """The network counters of process `pid`'s namespace; None if they cannot be read (the
    process is gone, or lives in another pid namespace than ours)."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            return parse_net_dev(f.read())
    except (OSError, ValueError):
        return None


def _int(mapping: Mapping[str, Any], key: str) -> int:
    value = mapping.get(key)
    return int(value) if isinstance(value, int | float) else 0


def stats_from_docker(
    stats: Mapping[str, Any], inspect: Mapping[str, Any], net: tuple[int, int] | None
) -> ContainerStats:
    """A `ContainerStats` from Docker's one-shot stats and the container's inspect data;
    `net` is the namespace's (rx, tx) when it could be read."""
    cpu = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    cache = _int(detail, "inactive_file") or _int(detail, "total_inactive_file")
    usage = max(0, _int(memory, "usage") - cache)
    if net is None:
        networks = (stats.get("networks") or {}).values()
        net = (
            sum(_int(n, "rx_bytes") for n in networks),
            sum(_int(n, "tx_bytes") for n in networks),
        )
    host_config = inspect.get("HostConfig") or {}
    return ContainerStats(
        cpu_seconds=_int(cpu, "total_usage") / _NANO,
        memory_bytes=usage,
        memory_limit_bytes=_int(host_config, "Memory"),
        rx_bytes=net[0],
        tx_bytes=net[1],
    )
