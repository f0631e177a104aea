"""Address arithmetic: free subnets, free addresses, pools and their label overrides."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

import pytest

from swarmlite.errors import InvalidArgument
from swarmlite.manager.allocator import MESH_LABEL, POOL_LABEL, SIZE_LABEL, Pools
from swarmlite.manager.allocator.ipam import free_address, free_subnet, parse_network


def net(text: str) -> IPv4Network:
    return IPv4Network(text)


def test_the_first_free_block_skips_every_block_that_overlaps_something_taken() -> None:
    pool = net("10.0.0.0/16")
    taken = [net("10.0.0.0/24"), net("10.0.1.128/25"), net("10.0.2.7/32"), net("10.0.4.0/23")]
    assert free_subnet(pool, 24, taken) == net("10.0.3.0/24")
    assert free_subnet(pool, 23, taken) == net("10.0.6.0/23")
    # A taken block larger than the size asked for is jumped over whole.
    assert free_subnet(pool, 24, [net("10.0.0.0/20")]) == net("10.0.16.0/24")


def test_a_full_pool_has_no_free_block() -> None:
    assert free_subnet(net("10.0.0.0/23"), 24, [net("10.0.0.0/24"), net("10.0.1.0/24")]) is None
    assert free_subnet(net("10.0.0.0/24"), 23, []) is None


def test_the_lowest_free_address_is_never_the_network_or_broadcast_address() -> None:
    subnet = net("10.0.1.0/29")
    gateway = IPv4Address("10.0.1.1")
    assert free_address(subnet, {gateway}) == IPv4Address("10.0.1.2")
    taken = {IPv4Address(f"10.0.1.{i}") for i in range(1, 7)}
    assert free_address(subnet, taken) is None
    assert free_address(subnet, taken - {IPv4Address("10.0.1.4")}) == IPv4Address("10.0.1.4")


def test_defaults_are_ten_slash_eight_in_slash_24s_and_a_mesh_pool_outside_the_lab_range() -> None:
    pools = Pools()
    assert pools.default_pool == net("10.0.0.0/8")
    assert pools.subnet_size == 24
    assert pools.mesh_pool == net("100.96.0.0/16")
    assert not pools.mesh_pool.overlaps(net("198.18.0.0/15"))


def test_cluster_labels_override_the_pools() -> None:
    labels = {POOL_LABEL: "172.20.0.0/14", SIZE_LABEL: "/26", MESH_LABEL: "198.18.128.0/17"}
    pools = Pools().with_labels(labels)
    assert pools == Pools(
        default_pool=net("172.20.0.0/14"), subnet_size=26, mesh_pool=net("198.18.128.0/17")
    )


def test_a_bad_label_is_ignored_and_the_pools_stay_as_they_were() -> None:
    base = Pools()
    assert base.with_labels({POOL_LABEL: "not-a-subnet"}) == base
    assert base.with_labels({SIZE_LABEL: "40"}) == base
    # A block larger than the pool it is cut from is refused too.
    assert base.with_labels({POOL_LABEL: "10.0.0.0/26"}) == base


def test_a_subnet_that_is_not_ipv4_cidr_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match=re.escape("10.0.0.0/33")):
        parse_network("10.0.0.0/33")
    assert parse_network("10.0.1.7/24") == net("10.0.1.0/24")
