"""The Docker driver's reading of a container's stats: Docker's one-shot JSON and a
namespace's /proc/net/dev, as `docker stats` would show them."""

from __future__ import annotations

import os

from swarmlite.runtime.docker.stats import parse_net_dev, read_net_dev, stats_from_docker

NET_DEV = """\
Inter-|   Receive                                |  Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo
    lo:  5000  50 0 0 0 0 0 0  5000  50 0 0 0 0 0 0
  eth0:  1200  10 0 0 0 0 0 0   800   8 0 0 0 0 0 0
 vxlan1:  300   3 0 0 0 0 0 0   200   2 0 0 0 0 0 0
"""

STATS = {
    "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}},
    "memory_stats": {"usage": 10 << 20, "limit": 8 << 30, "stats": {"inactive_file": 2 << 20}},
    "networks": {"eth0": {"rx_bytes": 7, "tx_bytes": 9}},
}


def test_net_dev_sums_every_interface_but_loopback() -> None:
    assert parse_net_dev(NET_DEV) == (1500, 1000)
    assert parse_net_dev(NET_DEV.splitlines()[0]) == (0, 0)


def test_our_own_namespace_can_be_read() -> None:
    counters = read_net_dev(os.getpid())
    assert counters is not None and min(counters) >= 0
    assert read_net_dev(0) is None


def test_docker_stats_less_the_page_cache_with_the_namespace_counters() -> None:
    stats = stats_from_docker(STATS, {"HostConfig": {"Memory": 64 << 20}}, (1500, 1000))
    assert stats.cpu_seconds == 2.5
    assert stats.memory_bytes == 8 << 20
    assert stats.memory_limit_bytes == 64 << 20
    assert (stats.rx_bytes, stats.tx_bytes) == (1500, 1000)


def test_docker_networks_count_where_the_namespace_cannot_be_read() -> None:
    v1 = dict(STATS, memory_stats={"usage": 10 << 20, "stats": {"total_inactive_file": 1 << 20}})
    stats = stats_from_docker(v1, {}, None)
    assert (stats.rx_bytes, stats.tx_bytes) == (7, 9)
    assert stats.memory_bytes == 9 << 20
    assert stats.memory_limit_bytes == 0


def test_an_empty_reading_is_all_zeros() -> None:
    stats = stats_from_docker({}, {}, None)
    assert (stats.cpu_seconds, stats.memory_bytes, stats.rx_bytes, stats.tx_bytes) == (0, 0, 0, 0)
