"""`swarmlite network ...` against a fake daemon: the spec `create` sends and the flags it
refuses before calling, the `ls` table, `inspect` and `rm` with a failing reference, and what
`stack rm` says about a network another stack still uses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from swarmlite.api import (
    STACK_LABEL,
    ContainerSpec,
    Network,
    NetworkSpec,
    NetworkStatus,
    Service,
    ServiceSpec,
    TaskTemplate,
)
from swarmlite.api.control import (
    ListRequest,
    NameRef,
    NetworkCreate,
    NetworkList,
    NetworkView,
    ServiceList,
    ServiceView,
    StackDeployReply,
)
from swarmlite.api.routes import (
    NETWORK_CREATE,
    NETWORK_INSPECT,
    NETWORK_LS,
    NETWORK_RM,
    SERVICE_LS,
    STACK_RM,
)
from swarmlite.errors import FailedPrecondition, NotFound
from swarmlite.manager.controlapi.networks import check_spec

SHARED_ID = "7q2w8e5r4t6y1u0io3k9x0c1m"
FRONT_ID = "0c1m7q2w8e5r4t6y1u0io3k9x"
INGRESS_ID = "k9x0c1m7q2w8e5r4t6y1u0io3"


def view(
    network_id: str,
    name: str,
    *,
    subnet: str = "",
    services: tuple[str, ...] = (),
    ingress: bool = False,
) -> NetworkView:
    """A network as the server shows it; allocated (vni, gateway) when ``subnet`` is given."""
    status = NetworkStatus()
    if subnet:
        gateway = subnet.rsplit(".", 1)[0] + ".1"
        status = NetworkStatus(vni=4096, subnet=subnet, gateway=gateway)
    network = Network(
        id=network_id,
        created_at=1_700_000_000.0,
        spec=NetworkSpec(name=name, ingress=ingress),
        status=status,
    )
    return NetworkView(network=network, services=list(services))


# --------------------------------------------------------------------------- create


def test_create_sends_the_spec_with_the_subnet_normalized_and_prints_the_id(
    daemon: Any, run: Any
) -> None:
    daemon.on(
        NETWORK_CREATE,
        lambda request: NetworkView(network=Network(id=SHARED_ID, spec=request.spec)),
    )

    result = run(
        "network",
        "create",
        "--subnet",
        "10.20.0.0/255.255.255.0",
        "--gateway",
        "10.20.0.254",
        "--label",
        "team=shop",
        "--label",
        "tier",
        "shared",
    )

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(NETWORK_CREATE) == [
        NetworkCreate(
            spec=NetworkSpec(
                name="shared",
                driver="overlay",
                subnet="10.20.0.0/24",
                gateway="10.20.0.254",
                labels={"team": "shop", "tier": ""},
            )
        )
    ]
    assert result.stdout == f"{SHARED_ID}\n"


def test_create_without_flags_leaves_subnet_and_gateway_to_the_cluster(
    daemon: Any, run: Any
) -> None:
    daemon.on(
        NETWORK_CREATE,
        lambda request: NetworkView(network=Network(id=SHARED_ID, spec=request.spec)),
    )

    result = run("network", "create", "shared")

    assert result.exit_code == 0, result.stderr
    (request,) = daemon.requests(NETWORK_CREATE)
    assert request.spec == NetworkSpec(name="shared", driver="overlay", subnet="", gateway="")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--subnet", "10.0.0.1/24"),
            "error: Invalid value for '--subnet': '10.0.0.1/24' is not an IPv4 subnet "
            "like 10.20.0.0/24 (10.0.0.1/24 has host bits set)",
        ),
        (
            ("--subnet", "banana"),
            "error: Invalid value for '--subnet': 'banana' is not an IPv4 subnet "
            "like 10.20.0.0/24 (Expected 4 octets in 'banana')",
        ),
        (
            ("--subnet", "fd00::/64"),
            "error: Invalid value for '--subnet': 'fd00::/64' is not an IPv4 subnet "
            "like 10.20.0.0/24 (Expected 4 octets in 'fd00::')",
        ),
        (
            ("--gateway", "10.0.0.300"),
            "error: Invalid value for '--gateway': '10.0.0.300' is not an IPv4 address",
        ),
        (
            ("--subnet", "10.0.0.0/24", "--gateway", "10.0.0.1/24"),
            "error: Invalid value for '--gateway': '10.0.0.1/24' is not an IPv4 address",
        ),
    ],
)
def test_create_refuses_a_bad_subnet_or_gateway_without_calling_the_daemon(
    daemon: Any, run: Any, args: tuple[str, ...], expected: str
) -> None:
    result = run("network", "create", *args, "shared")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        expected,
        "hint: `swarmlite network create --help` shows the usage",
    ]
    assert result.stdout == ""
    assert daemon.calls == []


def test_create_passes_another_driver_on_and_shows_the_servers_refusal(
    daemon: Any, run: Any
) -> None:
    def create(request: NetworkCreate) -> NetworkView:
        check_spec(request.spec)  # the server's own rule
        return NetworkView(network=Network(id=SHARED_ID, spec=request.spec))

    daemon.on(NETWORK_CREATE, create)

    result = run("network", "create", "--driver", "bridge", "shared")

    assert result.exit_code == 1
    (request,) = daemon.requests(NETWORK_CREATE)
    assert request.spec.driver == "bridge"
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: network driver 'bridge' is not supported: networks are overlay networks",
        "hint: leave --driver out, or give --driver overlay",
    ]


# --------------------------------------------------------------------------- ls


def three_networks() -> list[NetworkView]:
    """Out of name order, as a server need not sort; ``shared`` has no subnet yet."""
    return [
        view(SHARED_ID, "shared", services=("b_client",)),
        view(INGRESS_ID, "ingress", subnet="10.0.0.0/24", ingress=True),
        view(FRONT_ID, "front", subnet="10.0.1.0/24", services=("a_web",)),
    ]


def test_ls_table_has_dockers_columns_sorted_by_name(daemon: Any, run: Any) -> None:
    daemon.on(NETWORK_LS, lambda request: NetworkList(networks=three_networks()))

    result = run("network", "ls")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(NETWORK_LS) == [ListRequest()]
    assert result.stdout.splitlines() == [
        "NETWORK ID     NAME      DRIVER    SCOPE",
        "0c1m7q2w8e5r   front     overlay   swarm",
        "k9x0c1m7q2w8   ingress   overlay   swarm",
        "7q2w8e5r4t6y   shared    overlay   swarm",
    ]


def test_ls_quiet_prints_short_ids_or_whole_ones(daemon: Any, run: Any) -> None:
    daemon.on(NETWORK_LS, lambda request: NetworkList(networks=three_networks()))

    quiet = run("network", "ls", "-q")
    whole = run("network", "ls", "-q", "--no-trunc")

    assert quiet.exit_code == 0, quiet.stderr
    assert quiet.stdout.splitlines() == [FRONT_ID[:12], INGRESS_ID[:12], SHARED_ID[:12]]
    assert whole.stdout.splitlines() == [FRONT_ID, INGRESS_ID, SHARED_ID]


def test_ls_filters_go_to_the_server_and_the_subnet_is_a_field(daemon: Any, run: Any) -> None:
    daemon.on(NETWORK_LS, lambda request: NetworkList(networks=three_networks()))

    result = run(
        "network", "ls", "--filter", "driver=overlay", "-f", "name=front", "-f", "name=shared",
        "--format", "table {{.Name}}\t{{.Subnet}}\t{{.CreatedAt}}",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(NETWORK_LS) == [
        ListRequest(filters={"driver": ["overlay"], "name": ["front", "shared"]})
    ]
    assert result.stdout.splitlines() == [
        "NAME      SUBNET        CREATED AT",
        "front     10.0.1.0/24   2023-11-14 22:13:20 +0000 UTC",
        "ingress   10.0.0.0/24   2023-11-14 22:13:20 +0000 UTC",
        "shared                  2023-11-14 22:13:20 +0000 UTC",
    ]


def test_ls_json_is_one_docker_object_a_line(daemon: Any, run: Any) -> None:
    daemon.on(NETWORK_LS, lambda request: NetworkList(networks=three_networks()))

    result = run("network", "ls", "--format", "json", "--no-trunc")

    assert result.exit_code == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [item["ID"] for item in documents] == [FRONT_ID, INGRESS_ID, SHARED_ID]
    assert documents[0] == {
        "CreatedAt": "2023-11-14 22:13:20 +0000 UTC",
        "Driver": "overlay",
        "ID": FRONT_ID,
        "IPv4": "true",
        "IPv6": "false",
        "Internal": "false",
        "Labels": "",
        "Name": "front",
        "Scope": "swarm",
        "Subnet": "10.0.1.0/24",
    }


# --------------------------------------------------------------------------- inspect, rm


def test_inspect_shows_the_found_network_then_the_error(daemon: Any, run: Any) -> None:
    front = view(FRONT_ID, "front", subnet="10.0.1.0/24", services=("a_web",))

    def inspect(request: NameRef) -> NetworkView:
        if request.ref == "ghost":
            raise NotFound(
                "network 'ghost' not found",
                hint="`swarmlite network ls` lists the networks of this cluster",
            )
        return front

    daemon.on(NETWORK_INSPECT, inspect)

    result = run("network", "inspect", "front", "ghost")

    assert result.exit_code == 1
    assert daemon.requests(NETWORK_INSPECT) == [NameRef(ref="front"), NameRef(ref="ghost")]
    document = json.loads(result.stdout)
    assert [item["Id"] for item in document] == [FRONT_ID]
    assert document[0]["Name"] == "front"
    assert document[0]["IPAM"]["Config"] == [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]
    assert result.stderr.splitlines() == [
        "error: network 'ghost' not found",
        "hint: `swarmlite network ls` lists the networks of this cluster",
    ]


def test_inspect_format_reads_dockers_fields(daemon: Any, run: Any) -> None:
    front = view(FRONT_ID, "front", subnet="10.0.1.0/24")
    daemon.on(NETWORK_INSPECT, lambda request: front)

    result = run(
        "network", "inspect", "-f", "{{.Name}} {{range .IPAM.Config}}{{.Subnet}}{{end}}", "front"
    )
    as_json = run("network", "inspect", "--format", "json", "front")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "front 10.0.1.0/24\n"
    assert as_json.stdout.count("\n") == 1
    assert json.loads(as_json.stdout)[0]["Scope"] == "swarm"


def test_rm_of_a_network_in_use_says_by_whom_and_removes_the_others(daemon: Any, run: Any) -> None:
    def remove(request: NameRef) -> NetworkView:
        if request.ref == "shared":
            raise FailedPrecondition(
                "network shared is in use by service s",
                hint="remove those services (or their stacks) first",
                details={"services": ["s"]},
            )
        return view(FRONT_ID, request.ref)

    daemon.on(NETWORK_RM, remove)

    result = run("network", "rm", "front", "shared")

    assert result.exit_code == 1
    assert daemon.requests(NETWORK_RM) == [NameRef(ref="front"), NameRef(ref="shared")]
    assert result.stdout == "front\n"
    assert result.stderr.splitlines() == [
        "error: network shared is in use by service s",
        "hint: remove those services (or their stacks) first",
    ]


# --------------------------------------------------------------------------- stack rm


def client_service() -> Service:
    spec = ServiceSpec(
        name="a_web",
        labels={STACK_LABEL: "a"},
        task=TaskTemplate(container=ContainerSpec(image="shop/web:1")),
    )
    return Service(id="a_web".ljust(25, "0"), spec=spec)


def test_stack_rm_says_which_network_it_keeps_for_another_stack(daemon: Any, run: Any) -> None:
    services = [ServiceView(service=client_service(), running=1, desired=1)]
    daemon.on(SERVICE_LS, lambda request: ServiceList(services=services))
    daemon.on(
        STACK_RM,
        lambda request: StackDeployReply(
            removed=["a_web"], kept=["network shared: in use by b_client"]
        ),
    )

    result = run("stack", "rm", "a")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(STACK_RM) == [NameRef(ref="a")]
    assert result.stdout == "Removing service a_web\n"
    assert result.stderr == "Keeping network shared: in use by b_client\n"


def test_stack_rm_keeping_nothing_prints_nothing_on_stderr(daemon: Any, run: Any) -> None:
    services = [ServiceView(service=client_service(), running=1, desired=1)]
    daemon.on(SERVICE_LS, lambda request: ServiceList(services=services))
    daemon.on(STACK_RM, lambda request: StackDeployReply(removed=["a_web", "shared"]))

    result = run("stack", "rm", "a")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Removing service a_web\n"
    assert result.stderr == ""
