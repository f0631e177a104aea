"""Internal networks without a kernel: the isolation table's rules, which network gives a
task its default route, the control API's refusal of a host-mode port into internal
networks only, and `internal` from the Docker API and compose files."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from swarmlite.api import NetworkSpec, PortConfig, Service
from swarmlite.api.control import NetworkInfo
from swarmlite.api.task import Attachment
from swarmlite.compose import load_stack, to_stack_deploy
from swarmlite.dockerapi.http import Body
from swarmlite.dockerapi.networks import network_spec
from swarmlite.errors import InvalidArgument
from swarmlite.manager.controlapi.checks import check_internal_networks
from swarmlite.network.isolation import isolation_script
from swarmlite.network.node import _route_order
from swarmlite.store import LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_network, make_service, make_task, with_networks

replace = msgspec.structs.replace


def rules(script: str, chain: str) -> list[str]:
    """The rules of one chain of the script, without its hook line."""
    body = script.split(f"chain {chain} {{\n", 1)[1].split("\t}", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip() and "hook" not in line]


def test_an_internal_bridge_forwards_only_to_itself_and_the_node_answers_it_only_dns() -> None:
    script = isolation_script(
        [4096, 4097, 4098], ingress_vni=4096, internal={4098: "10.0.3.1"}, egress=["10.0.2.0/24"]
    )
    assert rules(script, "forward") == [
        'iifname "swlbr4097" oifname "swlbr*" oifname != { "swlbr4096", "swlbr4097" } drop',
        'iifname "swlbr4098" oifname != "swlbr4098" drop',
        'oifname "swlbr4098" iifname != "swlbr4098" drop',
    ]
    assert rules(script, "input") == [
        'iifname "swlbr4098" ct state established,related accept',
        'iifname "swlbr4098" ip daddr 10.0.3.1 meta l4proto { tcp, udp } th dport 53 accept',
        'iifname "swlbr4098" drop',
    ]
    # Only the open network's subnet leaves the overlays, as the node's address.
    assert rules(script, "egress") == ['ip saddr { 10.0.2.0/24 } oifname != "swlbr*" masquerade']


def test_without_internal_networks_the_node_itself_is_not_filtered() -> None:
    script = isolation_script([4100], ingress_vni=None, egress=["10.0.5.0/24"])
    assert "chain input" not in script
    assert "chain egress" in script
    assert "chain egress" not in isolation_script([4100], ingress_vni=None)


def info(network_id: str, *, internal: bool = False, ingress: bool = False) -> NetworkInfo:
    return NetworkInfo(
        network_id=network_id, name=network_id, vni=1, subnet="10.0.0.0/24",
        gateway="10.0.0.1", internal=internal, ingress=ingress,
    )  # fmt: skip


def test_the_default_route_comes_from_a_network_that_is_neither_internal_nor_ingress() -> None:
    networks = [info("back", internal=True), info("front"), info("ingress", ingress=True)]
    task = replace(
        make_task(),
        networks=[
            Attachment(network_id=n, address=f"10.0.0.{i + 2}/24")
            for i, n in enumerate(["ingress", "back", "front"])
        ],
    )
    assert [a.network_id for a in _route_order(task, networks)] == ["front", "back", "ingress"]
    only_internal = replace(task, networks=task.networks[:2])
    assert [a.network_id for a in _route_order(only_internal, networks)] == ["back", "ingress"]


async def stored(*services: Service, internal: tuple[str, ...] = ()) -> MemoryStore:
    memory = MemoryStore()
    store = Store(memory, LocalProposer(memory), clock=FakeClock())
    tx = Tx()
    for name in ("front", "back", "vault"):
        net = make_network(name)
        tx.create(replace(net, spec=replace(net.spec, internal=name in internal)))
    for service in services:
        tx.create(service)
    await store.propose(tx)
    return memory


def publishing(service: Service, mode: str) -> Service:
    port = PortConfig(target=80, published=8080, mode=mode)
    spec = replace(service.spec, endpoint=replace(service.spec.endpoint, ports=[port]))
    return replace(service, spec=spec)


async def test_a_host_port_into_internal_networks_only_is_refused_naming_the_port() -> None:
    memory = await stored(internal=("back", "vault"))
    db = publishing(with_networks(make_service("db"), "back", "vault"), "host")
    with pytest.raises(InvalidArgument) as err:
        check_internal_networks(memory, [db.spec])
    assert str(err.value) == (
        "service db: ports[0] (8080/tcp) is published in host mode, but its networks "
        "(back, vault) are internal: nothing outside an internal network reaches it"
    )
    assert "ingress mode" in (err.value.hint or "")


async def test_ingress_ports_and_host_ports_with_an_open_network_are_allowed() -> None:
    memory = await stored(internal=("back",))
    # As Docker: the routing mesh reaches the task through the ingress network.
    behind = publishing(with_networks(make_service("a"), "back"), "ingress")
    check_internal_networks(memory, [behind.spec])
    # The host port reaches the task through "front".
    check_internal_networks(
        memory, [publishing(with_networks(make_service("b"), "back", "front"), "host").spec]
    )


async def test_a_network_made_by_the_same_stack_deploy_counts() -> None:
    memory = await stored()
    new = make_network("shop_private")
    new = replace(new, spec=replace(new.spec, internal=True))
    db = publishing(with_networks(make_service("shop_db"), "shop_private"), "host")
    with pytest.raises(InvalidArgument, match="shop_private"):
        check_internal_networks(memory, [db.spec], [new])


def test_the_docker_api_takes_internal() -> None:
    spec = network_spec(Body({"Name": "vault", "Driver": "overlay", "Internal": True}, "net"))
    assert spec == NetworkSpec(name="vault", internal=True)
    assert not network_spec(Body({"Name": "open"}, "net")).internal


def test_compose_internal_reaches_the_networks_spec(tmp_path: Path) -> None:
    path = tmp_path / "compose.yml"
    path.write_text(
        "services:\n"
        "  db:\n"
        "    image: postgres:16\n"
        "    networks: [back]\n"
        "networks:\n"
        "  back:\n"
        "    internal: true\n"
    )
    deploy = to_stack_deploy(load_stack([path], env={}), "shop")
    [back] = deploy.networks
    assert (back.spec.name, back.spec.internal) == ("shop_back", True)
