"""Factories for api objects in tests: short calls, sensible defaults, every field reachable.

Owns ``make_node``, ``make_service``, ``make_task`` and ``make_network`` (with
``with_networks``/``with_ports`` to give a service networks and published ports); each
stands alone (none calls another), takes keyword arguments for what a test cares about
and builds a frozen object that was never written to a store (``version`` 0).
Ids are random unless given.
"""

from __future__ import annotations

import re

import msgspec

from swarmlite.api import (
    STACK_LABEL,
    ContainerSpec,
    EndpointSpec,
    FailureAction,
    HealthCheck,
    JobSpec,
    Network,
    NetworkAttachment,
    NetworkSpec,
    Node,
    NodeAvailability,
    NodeRole,
    NodeSpec,
    NodeState,
    NodeStatus,
    Placement,
    PortConfig,
    ResourceRequirements,
    Resources,
    RestartCondition,
    RestartPolicy,
    Service,
    ServiceMode,
    ServiceSpec,
    Task,
    TaskState,
    TaskStatus,
    TaskTemplate,
    UpdateConfig,
    UpdateOrder,
    new_id,
)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _bytes(size: int | str) -> int:
    """``"2G"`` -> 2 GiB; an int is taken as bytes."""
    if isinstance(size, int):
        return size
    match = _SIZE.match(size)
    if match is None:
        raise ValueError(f"not a size: {size!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def make_node(
    id: str | None = None,
    *,
    hostname: str = "",
    role: NodeRole | str = NodeRole.WORKER,
    availability: NodeAvailability | str = NodeAvailability.ACTIVE,
    state: NodeState | str = NodeState.READY,
    labels: dict[str, str] | None = None,
    os: str = "linux",
    arch: str = "x86_64",
    cpus: float = 2.0,
    memory: int | str = "2G",
    addr: str = "",
) -> Node:
    """A node, READY and ACTIVE unless told otherwise (``make_node(memory="2G")``)."""
    node_id = id or new_id()
    return Node(
        id=node_id,
        spec=NodeSpec(
            role=NodeRole(role),
            availability=NodeAvailability(availability),
            labels=dict(labels or {}),
        ),
        status=NodeStatus(
            state=NodeState(state),
            hostname=hostname or f"host-{node_id[:6]}",
            addr=addr,
            os=os,
            arch=arch,
            nano_cpus=int(cpus * 1e9),
            memory_bytes=_bytes(memory),
        ),
    )


def make_service(
    name: str = "web",
    *,
    id: str | None = None,
    mode: ServiceMode | str = ServiceMode.REPLICATED,
    replicas: int = 1,
    image: str = "nginx:1",
    env: list[str] | None = None,
    constraints: list[str] | None = None,
    restart: RestartPolicy | None = None,
    restart_condition: RestartCondition | str | None = None,
    restart_delay: float | None = None,
    max_attempts: int | None = None,
    restart_window: float | None = None,
    update: UpdateConfig | None = None,
    rollback: UpdateConfig | None = None,
    parallelism: int | None = None,
    order: UpdateOrder | str | None = None,
    failure_action: FailureAction | str | None = None,
    monitor: float | None = None,
    max_concurrent: int = 1,
    total_completions: int = 1,
    healthcheck: HealthCheck | None = None,
    memory: int | str = 0,
    labels: dict[str, str] | None = None,
    spec_version: int = 1,
) -> Service:
    """A service spec with its knobs as flat keywords (``make_service(replicas=3)``).

    ``restart_*``/``max_attempts`` start from ``restart`` (or the default policy);
    ``parallelism``/``order``/``failure_action``/``monitor`` start from ``update`` (or the
    default update config) and set ``update_config``.
    """
    policy = restart or RestartPolicy()
    policy_changes: dict[str, object] = {}
    if restart_condition is not None:
        policy_changes["condition"] = RestartCondition(restart_condition)
    if restart_delay is not None:
        policy_changes["delay"] = restart_delay
    if max_attempts is not None:
        policy_changes["max_attempts"] = max_attempts
    if restart_window is not None:
        policy_changes["window"] = restart_window
    if policy_changes:
        policy = msgspec.structs.replace(policy, **policy_changes)
    update_changes: dict[str, object] = {}
    if parallelism is not None:
        update_changes["parallelism"] = parallelism
    if order is not None:
        update_changes["order"] = UpdateOrder(order)
    if failure_action is not None:
        update_changes["failure_action"] = FailureAction(failure_action)
    if monitor is not None:
        update_changes["monitor"] = monitor
    if update_changes:
        update = msgspec.structs.replace(update or UpdateConfig(), **update_changes)
    return Service(
        id=id or new_id(),
        spec_version=spec_version,
        spec=ServiceSpec(
            name=name,
            labels=dict(labels or {}),
            mode=ServiceMode(mode),
            replicas=replicas,
            job=JobSpec(max_concurrent=max_concurrent, total_completions=total_completions),
            update_config=update,
            rollback_config=rollback,
            task=TaskTemplate(
                container=ContainerSpec(image=image, env=list(env or []), healthcheck=healthcheck),
                resources=ResourceRequirements(reservations=Resources(memory_bytes=_bytes(memory))),
                restart_policy=policy,
                placement=Placement(constraints=list(constraints or [])),
            ),
        ),
    )


def make_task(
    service: Service | None = None,
    *,
    id: str | None = None,
    slot: int = 1,
    node_id: str = "",
    state: TaskState | str = TaskState.PENDING,
    desired: TaskState | str = TaskState.RUNNING,
    timestamp: float = 0.0,
    exit_code: int | None = None,
    health: str = "",
    created_at: float = 0.0,
) -> Task:
    """A task of ``service`` (or of a bare one) in ``state``, from the service's spec."""
    template = service.spec.task if service is not None else TaskTemplate()
    return Task(
        id=id or new_id(),
        created_at=created_at,
        updated_at=created_at,
        service_id=service.id if service is not None else "",
        service_name=service.spec.name if service is not None else "",
        service_labels=service.spec.labels if service is not None else {},
        slot=slot,
        node_id=node_id,
        desired_state=TaskState(desired),
        spec=template,
        spec_version=service.spec_version if service is not None else 0,
        job_iteration=service.job_iteration if service is not None else 0,
        status=TaskStatus(
            state=TaskState(state), timestamp=timestamp, exit_code=exit_code, health=health
        ),
    )


def make_network(
    name: str = "net",
    *,
    id: str | None = None,
    subnet: str = "",
    gateway: str = "",
    ingress: bool = False,
    stack: str | None = None,
    labels: dict[str, str] | None = None,
    created_at: float = 0.0,
) -> Network:
    """An overlay network, not yet allocated (``make_network("shop_default", stack="shop")``)."""
    all_labels = dict(labels or {})
    if stack is not None:
        all_labels[STACK_LABEL] = stack
    return Network(
        id=id or new_id(),
        created_at=created_at,
        updated_at=created_at,
        spec=NetworkSpec(
            name=name, subnet=subnet, gateway=gateway, ingress=ingress, labels=all_labels
        ),
    )


def with_networks(
    service: Service, *targets: str, aliases: dict[str, list[str]] | None = None
) -> Service:
    """``service`` attached to the networks named ``targets`` (aliases per network name)."""
    nets = [
        NetworkAttachment(target=target, aliases=list((aliases or {}).get(target, [])))
        for target in targets
    ]
    task = msgspec.structs.replace(service.spec.task, networks=nets)
    return msgspec.structs.replace(service, spec=msgspec.structs.replace(service.spec, task=task))


def with_ports(service: Service, *ports: PortConfig | int, endpoint_mode: str = "vip") -> Service:
    """``service`` publishing ``ports``; an int ``n`` is target ``n`` in ingress mode, published
    as 0 (the allocator chooses); ``PortConfig(target=80, published=8080)`` says more."""
    configs = [p if isinstance(p, PortConfig) else PortConfig(target=p) for p in ports]
    endpoint = EndpointSpec(mode=endpoint_mode, ports=configs)
    spec = msgspec.structs.replace(service.spec, endpoint=endpoint)
    return msgspec.structs.replace(service, spec=spec)
