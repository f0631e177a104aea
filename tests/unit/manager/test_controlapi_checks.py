"""The control API's refusals of service specs that can never work, without a server:
names (``check_name``), one spec on its own (``check_service``) and published ports across
the cluster (``check_ports``), each with the exact words a user sees."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from swarmlite.api import (
    EndpointSpec,
    EndpointStatus,
    FileRef,
    HealthCheck,
    Mount,
    Object,
    Placement,
    PortConfig,
    ResourceRequirements,
    Resources,
    Service,
    ServiceMode,
    ServiceSpec,
    Ulimit,
    UpdateConfig,
)
from swarmlite.errors import InvalidArgument
from swarmlite.manager.controlapi.checks import check_ports, check_service
from swarmlite.manager.controlapi.names import MAX_NAME, check_name
from swarmlite.store import LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_network, make_service, with_ports
from swarmlite.testing.store import allocate as run_allocator

replace = msgspec.structs.replace
MIB = 1024 * 1024


def web(**changes: Any) -> ServiceSpec:
    """The spec of a good service "shop_web", with ``changes`` to the spec."""
    return replace(make_service("shop_web").spec, **changes)


def task(**changes: Any) -> ServiceSpec:
    spec = web()
    return replace(spec, task=replace(spec.task, **changes))


def container(**changes: Any) -> ServiceSpec:
    spec = web()
    return task(container=replace(spec.task.container, **changes))


def resources(
    limits: Resources | None = None, reservations: Resources | None = None
) -> ServiceSpec:
    return task(
        resources=ResourceRequirements(
            limits=limits or Resources(), reservations=reservations or Resources()
        )
    )


def ports(*configs: PortConfig, mode: str = "vip") -> ServiceSpec:
    return web(endpoint=EndpointSpec(mode=mode, ports=list(configs)))


def refusal(spec: ServiceSpec) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as refused:
        check_service(spec)
    return refused.value


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["web", "a", "0", "shop_web", "Shop-Web_2", "a-_-b", "x" * 63])
def test_good_service_names_pass(name: str) -> None:
    check_name("service", name)


@pytest.mark.parametrize(
    "name", ["", "Bad Name!", "_web", "web_", "-web", "web-", "shop.web", "wéb", "x" * 64]
)
def test_bad_service_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_name("service", name)
    assert refused.value.message == f"service name {name!r} is not valid"
    assert refused.value.hint == (
        "use letters, digits, '-' and '_', starting and ending with a letter or digit, "
        "at most 63 characters"
    )


@pytest.mark.parametrize("name", ["shop", "my_stack", "Shop-2", "x" * 61])
def test_good_stack_names_pass(name: str) -> None:
    check_name("stack", name)


@pytest.mark.parametrize("name", ["", " ", "shop ", "shop.v2", "_shop", "x" * 62])
def test_bad_stack_names_leave_room_for_the_service_names(name: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_name("stack", name)
    assert refused.value.message == f"stack name {name!r} is not valid"
    assert refused.value.hint is not None and "at most 61 characters" in refused.value.hint


def test_networks_keep_their_own_rule() -> None:
    check_name("network", "shop.net_v2")
    check_name("network", "x" * MAX_NAME)
    with pytest.raises(InvalidArgument, match="network name '-net' is not valid"):
        check_name("network", "-net")


# --------------------------------------------------------------------------- check_service


def test_a_plain_service_passes() -> None:
    check_service(web())


def test_a_service_using_every_field_well_passes() -> None:
    spec = replace(
        container(
            image="ghcr.io/acme/web:2@sha256:" + "ab" * 32,
            env=["A=1", "B=", "C"],
            stop_grace_period=0.0,
            ulimits=[
                Ulimit(name="nofile", soft=1024, hard=2048),
                Ulimit(name="core", soft=-1, hard=-1),
            ],
            healthcheck=HealthCheck(
                test=["CMD-SHELL", "curl -f localhost"], interval=0.001, retries=3
            ),
            mounts=[
                Mount(type="volume", source="shop_data", target="/data"),
                Mount(type="volume", target="/anonymous"),
                Mount(type="bind", source="/etc/shop", target="/etc/shop", read_only=True),
                Mount(type="tmpfs", target="/cache", tmpfs_size=64 * MIB, tmpfs_mode=0o1777),
                Mount(type="volume", source="x", target="/nfs", volume_driver="nfs"),
            ],
            secrets=[FileRef(name="db", target="db"), FileRef(name="api", target="api")],
            configs=[FileRef(name="db", target="/etc/db")],
        ),
        mode=ServiceMode.REPLICATED_JOB,
        replicas=0,
        update_config=UpdateConfig(parallelism=0, max_failure_ratio=1.0),
        rollback_config=UpdateConfig(delay=0.5),
        endpoint=EndpointSpec(
            ports=[
                PortConfig(target=80, published=8080),
                PortConfig(target=80),
                PortConfig(target=53, published=8080, protocol="udp"),
                PortConfig(target=443, published=8443, mode="host"),
            ]
        ),
    )
    spec = replace(
        spec,
        task=replace(
            spec.task,
            placement=Placement(
                constraints=["node.role==Manager", "node.labels.zone!=b", "engine.labels.x==y"],
                preferences=["node.labels.zone", "spread=node.labels.rack"],
            ),
            resources=ResourceRequirements(
                limits=Resources(nano_cpus=10_000_000, memory_bytes=6 * MIB, pids=100),
                reservations=Resources(nano_cpus=10_000_000, memory_bytes=6 * MIB),
            ),
        ),
    )
    check_service(spec)


def test_a_dnsrr_service_may_publish_in_host_mode() -> None:
    check_service(ports(PortConfig(target=80, published=8080, mode="host"), mode="dnsrr"))


def test_the_service_name_is_checked_first() -> None:
    assert refusal(web(name="Bad Name!", replicas=-1)).message == (
        "service name 'Bad Name!' is not valid"
    )


BAD = [
    # image
    (container(image=""), "image is required"),
    (
        container(image="/swl/web:2"),
        'image reference "/swl/web:2": the repository name must not start with "/"',
    ),
    (
        container(image="Shop/Web"),
        'image reference "Shop/Web": the repository name must be lowercase',
    ),
    (container(image="web:v 2"), 'image reference "web:v 2": it contains a space'),
    # mode
    (web(replicas=-1), "deploy.replicas must not be negative, got -1"),
    (
        web(
            mode=ServiceMode.REPLICATED_JOB,
            job=msgspec.structs.replace(web().job, max_concurrent=-1),
        ),
        "job.max_concurrent must not be negative, got -1",
    ),
    (
        web(
            mode=ServiceMode.REPLICATED_JOB,
            job=msgspec.structs.replace(web().job, total_completions=-2),
        ),
        "job.total_completions must not be negative, got -2",
    ),
    # placement
    (
        task(placement=Placement(constraints=["node.zone==b"])),
        "deploy.placement.constraints: invalid constraint 'node.zone==b': unknown key 'node.zone'",
    ),
    (
        task(placement=Placement(constraints=["node.labels.zone=b"])),
        "deploy.placement.constraints: invalid constraint 'node.labels.zone=b': expected == or !=",
    ),
    (
        task(placement=Placement(constraints=["node.role==boss"])),
        "deploy.placement.constraints: invalid constraint 'node.role==boss': node.role is "
        "manager or worker, not 'boss'",
    ),
    (
        task(placement=Placement(preferences=["node.zone"])),
        "deploy.placement.preferences: 'node.zone' does not spread over a node label",
    ),
    (
        task(placement=Placement(preferences=["spread=node.labels."])),
        "deploy.placement.preferences: 'spread=node.labels.' does not spread over a node label",
    ),
    (
        task(placement=Placement(max_replicas_per_node=-1)),
        "deploy.placement.max_replicas_per_node must not be negative, got -1",
    ),
    # resources
    (
        resources(limits=Resources(nano_cpus=-500_000_000)),
        "deploy.resources.limits.cpus must not be negative, got -0.5",
    ),
    (
        resources(limits=Resources(nano_cpus=5_000_000)),
        "deploy.resources.limits.cpus must be at least 0.01, got 0.005",
    ),
    (
        resources(limits=Resources(memory_bytes=-1)),
        "deploy.resources.limits.memory must not be negative, got -1",
    ),
    (
        resources(limits=Resources(memory_bytes=4 * MIB)),
        "deploy.resources.limits.memory must be at least 6MiB, got 4MiB",
    ),
    (
        resources(reservations=Resources(memory_bytes=1000)),
        "deploy.resources.reservations.memory must be at least 6MiB, got 1000 bytes",
    ),
    (
        resources(limits=Resources(pids=-1)),
        "deploy.resources.limits.pids must not be negative, got -1",
    ),
    (
        resources(
            limits=Resources(memory_bytes=256 * MIB),
            reservations=Resources(memory_bytes=512 * MIB),
        ),
        "deploy.resources.reservations.memory (512MiB) is above "
        "deploy.resources.limits.memory (256MiB)",
    ),
    (
        resources(limits=Resources(nano_cpus=500_000_000), reservations=Resources(nano_cpus=10**9)),
        "deploy.resources.reservations.cpus (1) is above deploy.resources.limits.cpus (0.5)",
    ),
    # container
    (container(stop_grace_period=-1.0), "stop_grace_period must not be negative, got -1s"),
    (
        container(stop_grace_period=float("inf")),
        "stop_grace_period must be a finite duration, got inf",
    ),
    (container(env=["A=1", "=oops"]), "environment: '=oops' has no variable name"),
    (container(env=[""]), "environment: '' has no variable name"),
    (
        container(ulimits=[Ulimit(name="nofile", soft=2048, hard=1024)]),
        "ulimits.nofile: the soft limit 2048 is above the hard limit 1024",
    ),
    (
        container(ulimits=[Ulimit(name="nofile", soft=-1, hard=1024)]),
        "ulimits.nofile: the soft limit -1 is above the hard limit 1024",
    ),
    (
        container(ulimits=[Ulimit(name="nproc", soft=-2, hard=10)]),
        "ulimits.nproc must be -1 (unlimited) or more",
    ),
    (container(ulimits=[Ulimit(name="", soft=1, hard=1)]), "ulimits: a limit has no name"),
    # healthcheck
    (
        container(healthcheck=HealthCheck(test=["curl", "-f", "localhost"])),
        'healthcheck.test must start with "CMD", "CMD-SHELL" or "NONE", got \'curl\'',
    ),
    (
        container(healthcheck=HealthCheck(test=["CMD-SHELL", " "])),
        "healthcheck.test has no command after 'CMD-SHELL'",
    ),
    (
        container(healthcheck=HealthCheck(test=["CMD"])),
        "healthcheck.test has no command after 'CMD'",
    ),
    (
        container(healthcheck=HealthCheck(interval=-1.0)),
        "healthcheck.interval must not be negative, got -1s",
    ),
    (
        container(healthcheck=HealthCheck(timeout=0.0005)),
        "healthcheck.timeout must be 0s (the default) or at least 1ms, got 0.0005s",
    ),
    (
        container(healthcheck=HealthCheck(start_period=1e-6)),
        "healthcheck.start_period must be 0s (the default) or at least 1ms, got 1e-06s",
    ),
    (
        container(healthcheck=HealthCheck(start_interval=0.0009)),
        "healthcheck.start_interval must be 0s (the default) or at least 1ms, got 0.0009s",
    ),
    (
        container(healthcheck=HealthCheck(retries=-1)),
        "healthcheck.retries must not be negative, got -1",
    ),
    # mounts
    (
        container(mounts=[Mount(type="npipe", target="/x")]),
        "volumes[0].type must be volume, bind or tmpfs, got 'npipe'",
    ),
    (
        container(mounts=[Mount(source="data", target="")]),
        "volumes[0].target must be an absolute path, got ''",
    ),
    (
        container(mounts=[Mount(source="data", target="var/lib")]),
        "volumes[0].target must be an absolute path, got 'var/lib'",
    ),
    (container(mounts=[Mount(source="data", target="/")]), 'volumes[0].target must not be "/"'),
    (
        container(mounts=[Mount(type="bind", source="./conf", target="/conf")]),
        "volumes[0].source must be an absolute path on the node for a bind mount, got './conf'",
    ),
    (
        container(mounts=[Mount(type="bind", target="/conf")]),
        "volumes[0].source must be an absolute path on the node for a bind mount, got ''",
    ),
    (
        container(
            mounts=[Mount(type="bind", source="/c", target="/c", bind_propagation="rprivat")]
        ),
        "volumes[0].bind.propagation must be one of rprivate, private, rshared, shared, "
        "rslave, slave, got 'rprivat'",
    ),
    (
        container(mounts=[Mount(type="tmpfs", source="/tmp", target="/cache")]),
        "volumes[0].source must be empty for a tmpfs mount, got '/tmp'",
    ),
    (
        container(mounts=[Mount(type="tmpfs", target="/cache", tmpfs_size=-1)]),
        "volumes[0].tmpfs.size must not be negative, got -1",
    ),
    (
        container(mounts=[Mount(type="tmpfs", target="/cache", tmpfs_mode=0o10000)]),
        "volumes[0].tmpfs.mode must be a file mode (0 to 0o7777)",
    ),
    (
        container(mounts=[Mount(source="x", target="/data")]),
        "volumes[0].source 'x' is not a valid volume name",
    ),
    (
        container(mounts=[Mount(source="/srv/data", target="/data")]),
        "volumes[0].source '/srv/data' is not a valid volume name",
    ),
    (
        container(
            mounts=[
                Mount(source="a_data", target="/data"),
                Mount(type="tmpfs", target="/data/"),
            ]
        ),
        "volumes[1].target '/data/' is mounted twice",
    ),
    # secrets and configs
    (container(secrets=[FileRef(name="db", target="")]), "secrets[0].target must not be empty"),
    (container(configs=[FileRef(name="", target="/c")]), "configs[0].source must not be empty"),
    (
        container(secrets=[FileRef(name="db", target="db", mode=0o20000)]),
        "secrets[0].mode must be a file mode (0 to 0o7777)",
    ),
    (
        container(secrets=[FileRef(name="db_v1", target="db"), FileRef(name="db_v2", target="db")]),
        "secrets: db_v1 and db_v2 have the same target 'db'",
    ),
    # update_config, rollback_config, restart_policy
    (
        web(update_config=UpdateConfig(parallelism=-1)),
        "deploy.update_config.parallelism must not be negative, got -1",
    ),
    (
        web(update_config=UpdateConfig(delay=-5.0)),
        "deploy.update_config.delay must not be negative, got -5s",
    ),
    (
        web(rollback_config=UpdateConfig(monitor=-1.0)),
        "deploy.rollback_config.monitor must not be negative, got -1s",
    ),
    (
        web(rollback_config=UpdateConfig(max_failure_ratio=1.5)),
        "deploy.rollback_config.max_failure_ratio must be 0 to 1, got 1.5",
    ),
    (
        web(update_config=UpdateConfig(max_failure_ratio=float("nan"))),
        "deploy.update_config.max_failure_ratio must be 0 to 1, got nan",
    ),
    (
        make_service("shop_web", restart_delay=-1.0).spec,
        "deploy.restart_policy.delay must not be negative, got -1s",
    ),
    (
        make_service("shop_web", restart_window=-2.0).spec,
        "deploy.restart_policy.window must not be negative, got -2s",
    ),
    (
        make_service("shop_web", max_attempts=-1).spec,
        "deploy.restart_policy.max_attempts must not be negative, got -1",
    ),
    # endpoint and ports
    (ports(mode="dns"), "deploy.endpoint_mode must be vip or dnsrr, got 'dns'"),
    (
        ports(PortConfig(target=80), mode="dnsrr"),
        "deploy.endpoint_mode dnsrr cannot be used with ports published in ingress mode (port 80)",
    ),
    (ports(PortConfig(target=0, published=80)), "ports[0].target must be 1 to 65535, got 0"),
    (ports(PortConfig(target=70000)), "ports[0].target must be 1 to 65535, got 70000"),
    (
        ports(PortConfig(target=80, published=65536)),
        "ports[0].published must be 1 to 65535 (or 0: none), got 65536",
    ),
    (
        ports(PortConfig(target=80, published=-1)),
        "ports[0].published must be 1 to 65535 (or 0: none), got -1",
    ),
    (
        ports(PortConfig(target=80, published=80, protocol="sctp")),
        "ports[0].protocol must be tcp or udp, got 'sctp'",
    ),
    (
        ports(PortConfig(target=80, published=80, mode="global")),
        "ports[0].mode must be ingress or host, got 'global'",
    ),
    (
        ports(PortConfig(target=80, mode="host")),
        "ports[0].published is required in host mode (target 80)",
    ),
    (
        ports(PortConfig(target=80, published=8080), PortConfig(target=81, published=8080)),
        "ports[1]: port 8080/tcp is published twice",
    ),
    (
        ports(
            PortConfig(target=80, published=8080, mode="host"),
            PortConfig(target=81, published=8080),
        ),
        "ports[1]: port 8080/tcp is published twice",
    ),
]


@pytest.mark.parametrize(("spec", "why"), BAD)
def test_a_spec_that_can_never_work_is_refused_naming_the_field(
    spec: ServiceSpec, why: str
) -> None:
    assert refusal(spec).message == f"service shop_web: {why}"


def test_refusals_carry_a_hint_where_there_is_something_to_do() -> None:
    assert refusal(container(image="Shop/Web")).hint == "write the name in lowercase"
    assert refusal(ports(PortConfig(target=80), mode="dnsrr")).hint == (
        "publish the ports with mode: host, or use endpoint_mode vip"
    )
    assert refusal(ports(PortConfig(target=80, published=80, protocol="sctp"))).hint == (
        "swarmlite publishes tcp and udp ports only"
    )
    hint = refusal(task(placement=Placement(constraints=["node.zone==b"]))).hint
    assert hint is not None and hint.startswith("write key==value or key!=value")


def test_a_disabled_healthcheck_is_not_looked_at() -> None:
    check_service(container(healthcheck=HealthCheck(test=["NONE"], interval=-1.0, disable=True)))


# --------------------------------------------------------------------------- check_ports


async def stored(*objects: Object, allocate: bool = False) -> MemoryStore:
    """A store holding ``objects``; with ``allocate`` the allocator has run over them."""
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


def publishing(name: str, *configs: PortConfig | int) -> Service:
    return with_ports(make_service(name), *configs)


def ports_refusal(memory: MemoryStore, *specs: ServiceSpec) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as refused:
        check_ports(memory, specs)
    return refused.value


HINT = "choose another published port, or publish none and let the cluster choose one"


async def test_an_ingress_port_of_another_service_is_refused_naming_it() -> None:
    memory = await stored(publishing("other_web", PortConfig(target=80, published=8080)))
    refused = ports_refusal(
        memory, publishing("shop_web", PortConfig(target=80, published=8080)).spec
    )

    assert (
        refused.message
        == "service shop_web: port 8080/tcp is already published by service other_web"
    )
    assert refused.hint == HINT


async def test_free_ports_and_other_protocols_pass() -> None:
    memory = await stored(publishing("other_web", PortConfig(target=80, published=8080)))
    check_ports(
        memory,
        [
            publishing("shop_web", PortConfig(target=80, published=8081)).spec,
            publishing("shop_dns", PortConfig(target=53, published=8080, protocol="udp")).spec,
            publishing("shop_api", 80).spec,  # the allocator chooses one
        ],
    )


async def test_a_service_replaced_by_a_spec_of_its_name_does_not_conflict_with_itself() -> None:
    memory = await stored(publishing("shop_web", PortConfig(target=80, published=8080)))
    check_ports(memory, [publishing("shop_web", PortConfig(target=8000, published=8080)).spec])
    check_ports(memory, [publishing("SHOP_WEB", PortConfig(target=80, published=8080)).spec])


async def test_a_port_given_up_by_a_replaced_service_can_be_taken_in_the_same_request() -> None:
    memory = await stored(publishing("shop_web", PortConfig(target=80, published=8080)))
    check_ports(
        memory,
        [
            publishing("shop_web", PortConfig(target=80, published=8081)).spec,
            publishing("shop_api", PortConfig(target=80, published=8080)).spec,
        ],
    )


async def test_two_specs_of_one_request_conflict_with_each_other() -> None:
    memory = await stored()
    refused = ports_refusal(
        memory,
        publishing("shop_web", PortConfig(target=80, published=8080)).spec,
        publishing("shop_api", PortConfig(target=81, published=8080)).spec,
    )
    assert (
        refused.message
        == "service shop_api: port 8080/tcp is already published by service shop_web"
    )


async def test_host_ports_of_different_services_may_share_a_number() -> None:
    memory = await stored(publishing("edge_a", PortConfig(target=80, published=80, mode="host")))
    check_ports(
        memory,
        [
            publishing("edge_b", PortConfig(target=80, published=80, mode="host")).spec,
            publishing("edge_c", PortConfig(target=80, published=80, mode="host")).spec,
        ],
    )


async def test_an_ingress_port_conflicts_with_a_host_port_of_another_service() -> None:
    memory = await stored(publishing("edge", PortConfig(target=80, published=80, mode="host")))
    refused = ports_refusal(
        memory, publishing("shop_web", PortConfig(target=80, published=80)).spec
    )
    assert refused.message == (
        "service shop_web: port 80/tcp is already published by service edge in host mode; "
        "an ingress port takes it on every node"
    )


async def test_a_host_port_conflicts_with_an_ingress_port_of_another_service() -> None:
    memory = await stored(publishing("shop_web", PortConfig(target=80, published=80)))
    refused = ports_refusal(
        memory, publishing("edge", PortConfig(target=80, published=80, mode="host")).spec
    )
    assert refused.message == "service edge: port 80/tcp is already published by service shop_web"


async def test_a_port_the_allocator_gave_a_service_is_held_while_its_spec_asks_for_it() -> None:
    given = EndpointStatus(ports=[PortConfig(target=80, published=30001)])
    holder = replace(publishing("shop_api", 80), endpoint=given)
    memory = await stored(holder)
    refused = ports_refusal(
        memory, publishing("shop_web", PortConfig(target=80, published=30001)).spec
    )
    assert (
        refused.message
        == "service shop_web: port 30001/tcp is already published by service shop_api"
    )

    # The replacement of shop_api keeps its port when it still publishes target 80 as 0 ...
    refused = ports_refusal(
        memory,
        publishing("shop_api", 80, 81).spec,
        publishing("shop_web", PortConfig(target=80, published=30001)).spec,
    )
    assert (
        refused.message
        == "service shop_web: port 30001/tcp is already published by service shop_api"
    )
    # ... and gives it up when it no longer does.
    check_ports(
        memory,
        [
            publishing("shop_api", 81).spec,
            publishing("shop_web", PortConfig(target=80, published=30001)).spec,
        ],
    )


async def test_a_port_the_spec_no_longer_asks_for_is_not_held() -> None:
    left = replace(
        publishing("shop_api", PortConfig(target=8000)),
        endpoint=EndpointStatus(ports=[PortConfig(target=80, published=30001)]),
    )
    memory = await stored(left)
    check_ports(memory, [publishing("shop_web", PortConfig(target=80, published=30001)).spec])


async def test_the_check_sees_the_ports_the_allocator_chose() -> None:
    memory = await stored(
        make_network("ingress", ingress=True), publishing("shop_api", 80), allocate=True
    )
    api = memory.get_by_name(Service, "shop_api")
    assert api is not None and len(api.endpoint.ports) == 1
    chosen = api.endpoint.ports[0].published
    assert chosen

    refused = ports_refusal(
        memory, publishing("shop_web", PortConfig(target=80, published=chosen)).spec
    )
    assert refused.message == (
        f"service shop_web: port {chosen}/tcp is already published by service shop_api"
    )
