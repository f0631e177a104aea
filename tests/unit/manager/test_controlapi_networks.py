"""The rules of `swarmlite network create|rm` without a server: which services use a network
(``users``), which specs are refused before anything is looked up (``check_spec``), and
which subnets and gateways the allocator would refuse (``network_refusal``)."""

from __future__ import annotations

import re

import msgspec
import pytest

from swarmlite.api import (
    EndpointStatus,
    Network,
    NetworkSpec,
    Object,
    PortConfig,
    Service,
    VirtualIP,
)
from swarmlite.errors import InvalidArgument
from swarmlite.manager.allocator import Pools, network_refusal
from swarmlite.manager.controlapi.names import MAX_NAME
from swarmlite.manager.controlapi.networks import check_spec, users
from swarmlite.store import LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import (
    make_network,
    make_node,
    make_service,
    with_networks,
    with_ports,
)
from swarmlite.testing.store import allocate as run_allocator

replace = msgspec.structs.replace


async def stored(*objects: Object, allocate: bool = False) -> MemoryStore:
    """A store holding ``objects``; with ``allocate`` the allocator has run over them until
    the store stopped changing (networks have subnets, services VIPs, an ingress exists)."""
    memory = MemoryStore()
    clock = FakeClock()
    store = Store(memory, LocalProposer(memory), clock=clock)
    tx = Tx()
    for obj in objects:
        tx.create(obj)
    await store.propose(tx)
    if allocate:
        await run_allocator(store, clock)
    return memory


def network_named(memory: MemoryStore, name: str) -> Network:
    found = memory.get_by_name(Network, name)
    assert found is not None, name
    return found


# --------------------------------------------------------------------------- users


async def test_users_are_the_services_naming_the_network_in_any_case_sorted() -> None:
    shared = make_network("shared")
    memory = await stored(
        shared,
        make_network("other"),
        with_networks(make_service("zeta_api"), "shared"),
        with_networks(make_service("alpha_web"), "other", "Shared"),
        with_networks(make_service("mid_db"), "SHARED"),
        with_networks(make_service("b_other"), "other"),
        make_service("lonely"),
    )

    assert users(memory, shared) == ["alpha_web", "mid_db", "zeta_api"]
    assert users(memory, network_named(memory, "other")) == ["alpha_web", "b_other"]


async def test_a_service_with_a_vip_on_the_network_uses_it_even_if_its_spec_no_longer_says_so() -> (
    None
):
    # The window after an update took the network out of the spec and before the allocator
    # took the VIP away: the service's tasks may still hold addresses there.
    shared = make_network("shared")
    other = make_network("other")
    leaving = replace(
        make_service("a_client"),
        endpoint=EndpointStatus(vips=[VirtualIP(network_id=shared.id, address="10.0.1.2/24")]),
    )
    memory = await stored(shared, other, leaving)

    assert users(memory, shared) == ["a_client"]
    assert users(memory, other) == []


async def test_after_allocation_the_users_are_still_each_networks_own() -> None:
    memory = await stored(
        make_network("shared"),
        make_network("front"),
        with_networks(make_service("b_client"), "shared"),
        with_networks(make_service("a_web"), "front", "shared"),
        allocate=True,
    )
    shared = network_named(memory, "shared")
    web = memory.get_by_name(Service, "a_web")
    assert web is not None
    assert {vip.network_id for vip in web.endpoint.vips} == {
        shared.id,
        network_named(memory, "front").id,
    }

    assert users(memory, shared) == ["a_web", "b_client"]
    assert users(memory, network_named(memory, "front")) == ["a_web"]


async def test_the_ingress_networks_users_are_the_services_publishing_in_ingress_mode() -> None:
    ingress = make_network("ingress", ingress=True)
    # A VIP left on ingress from a port no longer published in ingress mode does not count.
    host_only = replace(
        with_ports(make_service("host_only"), PortConfig(target=80, published=9090, mode="host")),
        endpoint=EndpointStatus(vips=[VirtualIP(network_id=ingress.id, address="10.0.0.5/24")]),
    )
    memory = await stored(
        ingress,
        make_network("shared"),
        with_ports(make_service("web"), PortConfig(target=80, published=8080)),
        with_ports(make_service("api"), 8000),
        host_only,
        with_networks(make_service("b_client"), "shared"),
    )

    assert users(memory, ingress) == ["api", "web"]
    assert users(memory, network_named(memory, "shared")) == ["b_client"]


# --------------------------------------------------------------------------- check_spec


@pytest.mark.parametrize(
    "name",
    ["", "-shared", ".shared", "shop/shared", "shared net", "x" * (MAX_NAME + 1)],
)
def test_check_spec_refuses_a_bad_name(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_spec(NetworkSpec(name=name))

    assert caught.value.message == f"network name {name!r} is not valid"
    assert caught.value.hint is not None and f"at most {MAX_NAME}" in caught.value.hint


@pytest.mark.parametrize("name", ["shared", "a", "Shop_net.2-b", "0net", "x" * MAX_NAME])
def test_check_spec_takes_a_good_name_with_the_overlay_driver(name: str) -> None:
    check_spec(NetworkSpec(name=name, driver="overlay", subnet="10.20.0.0/24"))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            NetworkSpec(name="shared", driver="bridge"),
            "network driver 'bridge' is not supported: networks are overlay networks",
        ),
        (
            NetworkSpec(name="shared", driver=""),
            "network driver '' is not supported: networks are overlay networks",
        ),
        (
            NetworkSpec(name="shared", ingress=True),
            "the cluster makes its ingress network itself; there is one",
        ),
        (
            NetworkSpec(name="shared", gateway="10.20.0.1"),
            "a gateway needs a subnet (--subnet) to belong to",
        ),
    ],
)
def test_check_spec_refuses_what_a_network_cannot_be(spec: NetworkSpec, expected: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^{re.escape(expected)}$"):
        check_spec(spec)


# --------------------------------------------------------------------------- network_refusal


@pytest.fixture
async def cluster() -> MemoryStore:
    """An allocated cluster: ingress (10.0.0.0/24), front (172.28.0.0/16), a node at
    172.30.0.5."""
    return await stored(
        make_network("front", subnet="172.28.0.0/16"),
        make_node("n1", hostname="n1", addr="172.30.0.5:2377"),
        allocate=True,
    )


@pytest.mark.parametrize(
    ("subnet", "gateway"),
    [
        ("172.29.0.0/24", ""),
        ("172.29.0.0/24", "172.29.0.254"),
        ("10.0.1.0/24", ""),
        ("", ""),  # the pool chooses
    ],
)
async def test_a_free_subnet_is_not_refused(
    cluster: MemoryStore, subnet: str, gateway: str
) -> None:
    network = make_network("new", subnet=subnet, gateway=gateway)

    assert network_refusal(cluster, Pools(), network) == ""


@pytest.mark.parametrize(
    ("subnet", "expected"),
    [
        ("172.28.5.0/24", "subnet 172.28.5.0/24 overlaps network front (172.28.0.0/16)"),
        ("172.0.0.0/8", "subnet 172.0.0.0/8 overlaps network front (172.28.0.0/16)"),
        ("10.0.0.0/16", "subnet 10.0.0.0/16 overlaps network ingress (10.0.0.0/24)"),
        ("100.96.3.0/24", "subnet 100.96.3.0/24 overlaps the mesh pool (100.96.0.0/16)"),
        ("172.30.0.0/24", "subnet 172.30.0.0/24 overlaps node n1's address (172.30.0.5/32)"),
        ("172.29.0.0/31", "subnet 172.29.0.0/31 is too small for tasks"),
    ],
)
async def test_a_subnet_that_is_taken_is_refused_naming_its_holder(
    cluster: MemoryStore, subnet: str, expected: str
) -> None:
    network = make_network("new", subnet=subnet)

    assert network_refusal(cluster, Pools(), network) == expected


@pytest.mark.parametrize(
    "gateway",
    ["172.29.1.1", "172.29.0.0", "172.29.0.255"],  # outside, the network, the broadcast
)
async def test_a_gateway_that_is_not_a_host_of_the_subnet_is_refused(
    cluster: MemoryStore, gateway: str
) -> None:
    network = make_network("new", subnet="172.29.0.0/24", gateway=gateway)

    assert network_refusal(cluster, Pools(), network) == (
        f"gateway {gateway} is not a host address of 172.29.0.0/24"
    )


async def test_a_removed_subnet_is_free_again() -> None:
    memory = await stored(make_network("front", subnet="172.28.0.0/16"), allocate=True)
    network = make_network("new", subnet="172.28.5.0/24")
    assert network_refusal(memory, Pools(), network) != ""

    front = network_named(memory, "front")
    store = Store(memory, LocalProposer(memory), clock=FakeClock())
    await store.propose(Tx().delete(front))

    assert network_refusal(memory, Pools(), network) == ""


async def test_a_subnet_named_by_a_network_not_yet_allocated_is_refused() -> None:
    memory = await stored(make_network("first", subnet="172.28.0.0/24"))  # no allocator yet
    network = make_network("second", subnet="172.28.0.0/24")

    assert network_refusal(memory, Pools(), network) != ""
