"""Service specs that can never work, refused before anything is stored.

Owns the rules of a ServiceSpec on its own (``check_service``: what swarm mode and the
Docker Engine would refuse later, on a node, plus what swarmlite cannot do, such as sctp
ports), the one rule across services (``check_ports``: an ingress port is published
once in the cluster) and the one rule between a service and its networks
(``check_internal_networks``: no host-mode port into internal networks only). Every
refusal is one InvalidArgument saying ``service <name>: <field> <reason>``, the field
named as a compose file names it.

Does not own names (names.py), whether referenced secrets, configs and networks exist
(services.py, inside the write), nor where tasks can run (the scheduler). Pure: reads a
spec or a store snapshot, writes nothing.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Sequence

import msgspec

from swarmlite.api import (
    FileRef,
    HealthCheck,
    Mount,
    Network,
    PortConfig,
    Resources,
    Service,
    ServiceMode,
    ServiceSpec,
    UpdateConfig,
)
from swarmlite.api.autoscale import autoscale_spec
from swarmlite.api.logdriver import LogDriverProblem, check_log_driver
from swarmlite.api.reference import parse_image
from swarmlite.api.resources import reservations_problem
from swarmlite.errors import InvalidArgument
from swarmlite.manager.constraints import parse_constraint
from swarmlite.manager.controlapi.names import check_name
from swarmlite.store import ReadTx

MIB = 1024 * 1024
MIN_MEMORY = 6 * MIB  # Docker: "Minimum memory limit allowed is 6MB" (reservations too)
MIN_NANO_CPUS = 10_000_000  # 0.01 CPU: the kernel's smallest CFS quota, 1ms per 100ms
MIN_HEALTH_DURATION = 0.001  # Docker: "Interval in Healthcheck cannot be less than 1ms"
PROTOCOLS = ("tcp", "udp")  # what the routing mesh (network/vip.py) publishes
PORT_MODES = ("ingress", "host")
ENDPOINT_MODES = ("vip", "dnsrr")
MOUNT_TYPES = ("volume", "bind", "tmpfs")
PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
NODE_ROLES = ("manager", "worker")

_LOCAL_VOLUME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]+")  # Docker's local volume driver
_LABEL_PREFIX = "node.labels."
_PORT_HINT = "choose another published port, or publish none and let the cluster choose one"

PortKey = tuple[str, int]  # (protocol, published)


def check_service(spec: ServiceSpec) -> None:
    """InvalidArgument for the first thing in ``spec`` that can never work."""
    check_name("service", spec.name)
    _check_image(spec)
    _check_mode(spec)
    _check_placement(spec)
    _check_resources(spec)
    _check_container(spec)
    _check_healthcheck(spec)
    _check_mounts(spec)
    _check_files(spec)
    _check_updates(spec)
    _check_restart(spec)
    _check_endpoint(spec)
    _check_autoscale(spec)
    _check_logging(spec)


def autoscaled_replicas(spec: ServiceSpec, old: ServiceSpec | None) -> ServiceSpec:
    """``spec`` with the replicas an autoscaled service keeps: a new one starts within its
    bounds; a redeploy (``old`` given, e.g. a stack deploy) keeps what the autoscaler chose,
    within the new bounds. Anything else is returned as it is."""
    auto = autoscale_spec(spec.labels)
    if auto is None or spec.mode is not ServiceMode.REPLICATED:
        return spec
    replicas = spec.replicas if old is None else old.replicas
    kept = min(auto.max, max(auto.min, replicas))
    return spec if kept == spec.replicas else msgspec.structs.replace(spec, replicas=kept)


def check_scale(spec: ServiceSpec, old: ServiceSpec) -> None:
    """InvalidArgument when a request sets an autoscaled service's replicas outside the
    bounds its labels declare (the autoscaler would only undo it)."""
    auto = autoscale_spec(spec.labels)
    if auto is None or spec.replicas == old.replicas:
        return
    if not auto.min <= spec.replicas <= auto.max:
        raise _fail(
            spec,
            f"it is autoscaled between {auto.min} and {auto.max} replicas; "
            f"{spec.replicas} is outside",
            hint="change its swarmlite.autoscale labels (x-autoscale) first, or remove them",
        )


def check_ports(state: ReadTx, specs: Sequence[ServiceSpec]) -> None:
    """InvalidArgument when a port of ``specs`` is published by another service.

    An ingress port is published on every node, so it conflicts with the same port and
    protocol published by any other service, in either mode; host-mode ports of different
    services may share a number (the scheduler keeps their tasks apart). A service holds
    the ports its spec publishes and those the allocator gave it that its spec still asks
    for (the allocator's own view: an ingress port published as 0 keeps the port it was
    given). A stored service that one of ``specs`` replaces (same name) holds what its new
    spec lets it keep, and never conflicts with itself; the specs of one request conflict
    with each other.
    """
    by_name = {spec.name.lower(): spec for spec in specs}
    holders: dict[str, dict[PortKey, str]] = {"ingress": {}, "host": {}}
    for service in sorted(state.list(Service), key=lambda s: s.spec.name):
        spec = by_name.get(service.spec.name.lower(), service.spec)
        for port in _held_ports(service, spec):
            holders[port.mode].setdefault((port.protocol, port.published), service.spec.name)
    for spec in specs:
        mine = [p for p in spec.endpoint.ports if p.published and p.mode in PORT_MODES]
        for port in mine:
            _check_port_free(spec, port, holders)
        for port in mine:
            holders[port.mode].setdefault((port.protocol, port.published), spec.name)


def check_internal_networks(
    state: ReadTx, specs: Sequence[ServiceSpec], creating: Sequence[Network] = ()
) -> None:
    """InvalidArgument when a service publishes a port in host mode but every network it
    is attached to is internal (``creating``: networks the same request makes).

    A host-mode port reaches a task through its first network that is not internal, and
    nothing crosses into an internal network (network/isolation.py). Ports published in
    ingress mode are allowed, as Docker allows them: the routing mesh reaches the task
    through the ingress network, a network of its own, and the internal network stays
    closed (its tasks still reach nothing outside it).
    """
    known = {n.spec.name.lower(): n for n in creating}
    known.update({n.spec.name.lower(): n for n in state.list(Network)})  # a stored one stays
    for spec in specs:
        nets = [known.get(net.target.lower()) for net in spec.task.networks]
        if not nets or any(n is None or not n.spec.internal for n in nets):
            continue
        for i, port in enumerate(spec.endpoint.ports):
            if port.mode == "host":
                names = ", ".join(n.spec.name for n in nets if n is not None)
                raise _fail(
                    spec,
                    f"ports[{i}] ({port.published}/{port.protocol}) is published in host "
                    f"mode, but its networks ({names}) are internal: nothing outside an "
                    "internal network reaches it",
                    hint="publish it in ingress mode, or attach the service to a network "
                    "that is not internal as well",
                )


# --------------------------------------------------------------------------- helpers


def _fail(spec: ServiceSpec, what: str, hint: str | None = None) -> InvalidArgument:
    return InvalidArgument(f"service {spec.name}: {what}", hint=hint)


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _size(value: int) -> str:
    return f"{value // MIB}MiB" if value and value % MIB == 0 else f"{value} bytes"


def _cpus(nano: int) -> str:
    return f"{nano / 1e9:g}"


def _not_negative(spec: ServiceSpec, path: str, value: float, shown: str = "") -> None:
    if value < 0:
        raise _fail(spec, f"{path} must not be negative, got {shown or value}")


def _duration(spec: ServiceSpec, path: str, value: float) -> None:
    if not math.isfinite(value):
        raise _fail(spec, f"{path} must be a finite duration, got {value}")
    _not_negative(spec, path, value, _seconds(value))


# --------------------------------------------------------------------------- the spec


def _check_image(spec: ServiceSpec) -> None:
    if not spec.image:
        raise _fail(spec, "image is required", hint="name the image every task runs, e.g. nginx:1")
    try:
        parse_image(spec.image)
    except InvalidArgument as exc:
        raise _fail(spec, exc.message, hint=exc.hint) from None


def _check_autoscale(spec: ServiceSpec) -> None:
    try:
        auto = autoscale_spec(spec.labels)
    except InvalidArgument as exc:
        raise _fail(spec, exc.message, hint=exc.hint) from None
    if auto is None:
        return
    if spec.mode is not ServiceMode.REPLICATED:
        raise _fail(spec, f"only replicated services autoscale; this one is {spec.mode.value}")
    resources = spec.task.resources
    if auto.memory is not None and not (
        resources.limits.memory_bytes or resources.reservations.memory_bytes
    ):
        raise _fail(
            spec,
            "a memory target needs a memory limit or reservation to be a percentage of",
            hint="set deploy.resources.limits.memory (or --limit-memory)",
        )


def _check_logging(spec: ServiceSpec) -> None:
    """api.logdriver's rules, named as a compose file names them (``logging.options.x``)."""
    driver = spec.task.log_driver
    if driver is None:
        return
    try:
        check_log_driver(driver)
    except LogDriverProblem as exc:
        raise _fail(spec, f"logging.{exc.field} {exc.reason}") from None


def _check_mode(spec: ServiceSpec) -> None:
    _not_negative(spec, "deploy.replicas", spec.replicas)
    if spec.mode.is_job:
        _not_negative(spec, "job.max_concurrent", spec.job.max_concurrent)
        _not_negative(spec, "job.total_completions", spec.job.total_completions)


def _check_placement(spec: ServiceSpec) -> None:
    placement = spec.task.placement
    path = "deploy.placement"
    for text in placement.constraints:
        try:
            constraint = parse_constraint(text)
        except InvalidArgument as exc:
            raise _fail(spec, f"{path}.constraints: {exc.message}", hint=exc.hint) from None
        if constraint.key == "node.role" and constraint.value.lower() not in NODE_ROLES:
            raise _fail(
                spec,
                f"{path}.constraints: invalid constraint {text!r}: node.role is manager or "
                f"worker, not {constraint.value!r}",
            )
    for preference in placement.preferences:
        if _spread_label(preference) is None:
            raise _fail(
                spec,
                f"{path}.preferences: {preference!r} does not spread over a node label",
                hint="write spread: node.labels.<name>",
            )
    _not_negative(spec, f"{path}.max_replicas_per_node", placement.max_replicas_per_node)


def _spread_label(preference: str) -> str | None:
    """The label a preference spreads over; the forms the scheduler reads (its
    ``spread_label``, which this loop may not import): "node.labels.zone",
    "spread=node.labels.zone", "spread: node.labels.zone"."""
    text = preference.strip()
    for prefix in ("spread=", "spread:"):
        text = text.removeprefix(prefix).strip()
    label = text.removeprefix(_LABEL_PREFIX)
    return label if label != text and label else None


def _check_resources(spec: ServiceSpec) -> None:
    resources = spec.task.resources
    limits, reservations = resources.limits, resources.reservations
    for which, res in (("limits", limits), ("reservations", reservations)):
        _check_amounts(spec, f"deploy.resources.{which}", res)
    if limits.generic_resources:
        raise _fail(
            spec,
            "deploy.resources.limits.generic_resources: generic resources are reserved, "
            "not limited",
            hint="move them to deploy.resources.reservations.generic_resources",
        )
    problem = reservations_problem(reservations.generic_resources)
    if problem is not None:
        raise _fail(spec, f"deploy.resources.reservations.generic_resources: {problem}")
    if 0 < limits.nano_cpus < MIN_NANO_CPUS:
        raise _fail(
            spec,
            f"deploy.resources.limits.cpus must be at least {_cpus(MIN_NANO_CPUS)}, "
            f"got {_cpus(limits.nano_cpus)}",
        )
    if limits.memory_bytes and reservations.memory_bytes > limits.memory_bytes:
        raise _fail(
            spec,
            f"deploy.resources.reservations.memory ({_size(reservations.memory_bytes)}) is "
            f"above deploy.resources.limits.memory ({_size(limits.memory_bytes)})",
        )
    if limits.nano_cpus and reservations.nano_cpus > limits.nano_cpus:
        raise _fail(
            spec,
            f"deploy.resources.reservations.cpus ({_cpus(reservations.nano_cpus)}) is above "
            f"deploy.resources.limits.cpus ({_cpus(limits.nano_cpus)})",
        )


def _check_amounts(spec: ServiceSpec, path: str, res: Resources) -> None:
    _not_negative(spec, f"{path}.cpus", res.nano_cpus, _cpus(res.nano_cpus))
    _not_negative(spec, f"{path}.memory", res.memory_bytes)
    _not_negative(spec, f"{path}.pids", res.pids)
    if 0 < res.memory_bytes < MIN_MEMORY:
        raise _fail(
            spec,
            f"{path}.memory must be at least {_size(MIN_MEMORY)}, got {_size(res.memory_bytes)}",
            hint="Docker runs no container with less memory",
        )


def _check_container(spec: ServiceSpec) -> None:
    container = spec.task.container
    _duration(spec, "stop_grace_period", container.stop_grace_period)
    for entry in container.env:
        if not entry.partition("=")[0]:
            raise _fail(spec, f"environment: {entry!r} has no variable name")
    for ulimit in container.ulimits:
        path = f"ulimits.{ulimit.name}"
        if not ulimit.name:
            raise _fail(spec, "ulimits: a limit has no name")
        if ulimit.soft < -1 or ulimit.hard < -1:
            raise _fail(spec, f"{path} must be -1 (unlimited) or more")
        if ulimit.hard != -1 and (ulimit.soft == -1 or ulimit.soft > ulimit.hard):
            raise _fail(
                spec, f"{path}: the soft limit {ulimit.soft} is above the hard limit {ulimit.hard}"
            )


def _check_healthcheck(spec: ServiceSpec) -> None:
    check = spec.task.container.healthcheck
    if check is None or check.disable:
        return
    _check_health_test(spec, check)
    for name, value in (
        ("interval", check.interval),
        ("timeout", check.timeout),
        ("start_period", check.start_period),
        ("start_interval", check.start_interval),
    ):
        _duration(spec, f"healthcheck.{name}", value)
        if 0 < value < MIN_HEALTH_DURATION:
            raise _fail(
                spec,
                f"healthcheck.{name} must be 0s (the default) or at least 1ms, got "
                f"{_seconds(value)}",
            )
    _not_negative(spec, "healthcheck.retries", check.retries)


def _check_health_test(spec: ServiceSpec, check: HealthCheck) -> None:
    test = check.test
    if not test or test[0] == "NONE":
        return
    if test[0] not in ("CMD", "CMD-SHELL"):
        raise _fail(
            spec,
            f'healthcheck.test must start with "CMD", "CMD-SHELL" or "NONE", got {test[0]!r}',
        )
    if not any(word.strip() for word in test[1:]):
        raise _fail(spec, f"healthcheck.test has no command after {test[0]!r}")


def _check_mounts(spec: ServiceSpec) -> None:
    targets: set[str] = set()
    for i, mount in enumerate(spec.task.container.mounts):
        path = f"volumes[{i}]"
        _check_mount(spec, path, mount)
        target = posixpath.normpath(mount.target)
        if target in targets:
            raise _fail(spec, f"{path}.target {mount.target!r} is mounted twice")
        targets.add(target)


def _check_mount(spec: ServiceSpec, path: str, mount: Mount) -> None:
    if mount.type not in MOUNT_TYPES:
        raise _fail(spec, f"{path}.type must be volume, bind or tmpfs, got {mount.type!r}")
    if not mount.target.startswith("/"):
        raise _fail(spec, f"{path}.target must be an absolute path, got {mount.target!r}")
    if posixpath.normpath(mount.target) in ("/", "//"):
        raise _fail(spec, f'{path}.target must not be "/"')
    if mount.type == "bind":
        _check_bind(spec, path, mount)
    elif mount.type == "tmpfs":
        _check_tmpfs(spec, path, mount)
    elif mount.source and mount.volume_driver in ("", "local"):
        _check_volume_name(spec, path, mount.source)


def _check_bind(spec: ServiceSpec, path: str, mount: Mount) -> None:
    if not mount.source.startswith("/"):
        raise _fail(
            spec,
            f"{path}.source must be an absolute path on the node for a bind mount, "
            f"got {mount.source!r}",
        )
    if mount.bind_propagation and mount.bind_propagation not in PROPAGATIONS:
        raise _fail(
            spec,
            f"{path}.bind.propagation must be one of {', '.join(PROPAGATIONS)}, "
            f"got {mount.bind_propagation!r}",
        )


def _check_tmpfs(spec: ServiceSpec, path: str, mount: Mount) -> None:
    if mount.source:
        raise _fail(spec, f"{path}.source must be empty for a tmpfs mount, got {mount.source!r}")
    _not_negative(spec, f"{path}.tmpfs.size", mount.tmpfs_size)
    if not 0 <= mount.tmpfs_mode <= 0o7777:
        raise _fail(spec, f"{path}.tmpfs.mode must be a file mode (0 to 0o7777)")


def _check_volume_name(spec: ServiceSpec, path: str, name: str) -> None:
    if not _LOCAL_VOLUME.fullmatch(name):
        raise _fail(
            spec,
            f"{path}.source {name!r} is not a valid volume name",
            hint="a local volume's name is 2 or more letters, digits, '_', '.' and '-', "
            "starting with a letter or digit; a host path is a bind mount",
        )


def _check_files(spec: ServiceSpec) -> None:
    container = spec.task.container
    for kind, refs in (("secrets", container.secrets), ("configs", container.configs)):
        _check_file_refs(spec, kind, refs)


def _check_file_refs(spec: ServiceSpec, kind: str, refs: Sequence[FileRef]) -> None:
    used: dict[str, str] = {}
    for i, ref in enumerate(refs):
        path = f"{kind}[{i}]"
        if not ref.name:
            raise _fail(spec, f"{path}.source must not be empty")
        if not ref.target:
            raise _fail(spec, f"{path}.target must not be empty")
        if not 0 <= ref.mode <= 0o7777:
            raise _fail(spec, f"{path}.mode must be a file mode (0 to 0o7777)")
        other = used.get(ref.target)
        if other is not None:
            raise _fail(spec, f"{kind}: {other} and {ref.name} have the same target {ref.target!r}")
        used[ref.target] = ref.name


def _check_updates(spec: ServiceSpec) -> None:
    for key, config in (
        ("update_config", spec.update_config),
        ("rollback_config", spec.rollback_config),
    ):
        if config is not None:
            _check_update(spec, f"deploy.{key}", config)


def _check_update(spec: ServiceSpec, path: str, config: UpdateConfig) -> None:
    _not_negative(spec, f"{path}.parallelism", config.parallelism)
    _duration(spec, f"{path}.delay", config.delay)
    _duration(spec, f"{path}.monitor", config.monitor)
    if not 0 <= config.max_failure_ratio <= 1:
        raise _fail(
            spec, f"{path}.max_failure_ratio must be 0 to 1, got {config.max_failure_ratio:g}"
        )


def _check_restart(spec: ServiceSpec) -> None:
    policy = spec.task.restart_policy
    _duration(spec, "deploy.restart_policy.delay", policy.delay)
    _duration(spec, "deploy.restart_policy.window", policy.window)
    _not_negative(spec, "deploy.restart_policy.max_attempts", policy.max_attempts)


def _check_endpoint(spec: ServiceSpec) -> None:
    endpoint = spec.endpoint
    if endpoint.mode not in ENDPOINT_MODES:
        raise _fail(spec, f"deploy.endpoint_mode must be vip or dnsrr, got {endpoint.mode!r}")
    seen: set[PortKey] = set()
    for i, port in enumerate(endpoint.ports):
        path = f"ports[{i}]"
        _check_port(spec, path, port)
        if endpoint.mode == "dnsrr" and port.mode == "ingress":
            raise _fail(
                spec,
                f"deploy.endpoint_mode dnsrr cannot be used with ports published in ingress "
                f"mode (port {port.target})",
                hint="publish the ports with mode: host, or use endpoint_mode vip",
            )
        key = (port.protocol, port.published)
        if port.published and key in seen:
            raise _fail(spec, f"{path}: port {port.published}/{port.protocol} is published twice")
        seen.add(key)


def _check_port(spec: ServiceSpec, path: str, port: PortConfig) -> None:
    if not 1 <= port.target <= 65535:
        raise _fail(spec, f"{path}.target must be 1 to 65535, got {port.target}")
    if not 0 <= port.published <= 65535:
        raise _fail(spec, f"{path}.published must be 1 to 65535 (or 0: none), got {port.published}")
    if port.protocol not in PROTOCOLS:
        raise _fail(
            spec,
            f"{path}.protocol must be tcp or udp, got {port.protocol!r}",
            hint="swarmlite publishes tcp and udp ports only",
        )
    if port.mode not in PORT_MODES:
        raise _fail(spec, f"{path}.mode must be ingress or host, got {port.mode!r}")
    if port.mode == "host" and not port.published:
        raise _fail(
            spec,
            f"{path}.published is required in host mode (target {port.target})",
            hint="swarmlite does not choose host ports: name the port on the node",
        )


# --------------------------------------------------------------------------- across services


def _held_ports(service: Service, spec: ServiceSpec) -> list[PortConfig]:
    """The published ports ``service`` holds once its spec is ``spec``: those ``spec``
    publishes, and those the allocator gave it that ``spec`` still asks for."""
    wanted = [p for p in spec.endpoint.ports if p.mode in PORT_MODES]
    held = [p for p in wanted if p.published]
    for port in service.endpoint.ports:
        still = any(
            (p.protocol, p.target, p.mode) == (port.protocol, port.target, port.mode)
            and p.published in (0, port.published)
            for p in wanted
        )
        if port.published and still:
            held.append(port)
    return held


def _check_port_free(
    spec: ServiceSpec, port: PortConfig, holders: dict[str, dict[PortKey, str]]
) -> None:
    key = (port.protocol, port.published)
    shown = f"{port.published}/{port.protocol}"
    ingress = holders["ingress"].get(key)
    host = holders["host"].get(key)
    own = spec.name.lower()
    if ingress is not None and ingress.lower() != own:
        raise _fail(spec, f"port {shown} is already published by service {ingress}", _PORT_HINT)
    if port.mode == "ingress" and host is not None and host.lower() != own:
        raise _fail(
            spec,
            f"port {shown} is already published by service {host} in host mode; "
            "an ingress port takes it on every node",
            _PORT_HINT,
        )
