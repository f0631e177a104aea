"""Names and MACs of swarmlite's interfaces: within the kernel's limits, stable, reversible."""

from __future__ import annotations

import pytest

from swarmlite.network.ip import (
    IFNAMSIZ,
    bridge_name,
    container_ifname,
    mac_for,
    split_address,
    veth_names,
    vni_of,
    vxlan_name,
)


def test_mac_is_02_42_and_the_ipv4_bytes() -> None:
    assert mac_for("198.19.0.11") == "02:42:c6:13:00:0b"
    assert mac_for("10.0.1.255/24") == "02:42:0a:00:01:ff"


def test_mac_of_a_non_ipv4_address_is_refused() -> None:
    with pytest.raises(ValueError):
        mac_for("fd00::1")


def test_device_names_fit_the_kernel_limit_for_the_largest_vni() -> None:
    largest = 2**24 - 1
    assert bridge_name(largest) == "swlbr16777215"
    assert len(vxlan_name(largest)) <= IFNAMSIZ


def test_device_names_map_back_to_their_vni_and_nothing_else_does() -> None:
    assert vni_of(bridge_name(4100)) == ("bridge", 4100)
    assert vni_of(vxlan_name(4100)) == ("vxlan", 4100)
    for other in ("swlbr", "swlbrx1", "swlbr0100", "eth0", "swlwg0", "docker0"):
        assert vni_of(other) is None, other


def test_veth_names_are_stable_per_task_and_distinct_per_attachment() -> None:
    task = "3k9x0c1m7q2w8e5r4t6y1u0io"
    first = veth_names(task, 0)
    assert first == veth_names(task, 0)
    assert first != veth_names(task, 1)
    assert first[0] != veth_names("0" * 25, 0)[0]
    assert all(len(n) <= IFNAMSIZ for n in (*first, *veth_names(task, 255)))
    with pytest.raises(ValueError):
        veth_names(task, 256)


def test_container_interfaces_are_numbered_in_task_order() -> None:
    assert [container_ifname(i) for i in range(3)] == ["eth0", "eth1", "eth2"]


def test_split_address_reads_address_and_prefix() -> None:
    assert split_address("10.0.1.5/24") == ("10.0.1.5", 24)
    with pytest.raises(ValueError):
        split_address("10.0.1.500/24")
