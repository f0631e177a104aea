"""What the flags of ``service create`` and ``service update`` do to a ServiceSpec.

Owns ``SpecFlags.apply``, which edits a spec as docker's ``service update`` does: a flag not
given leaves its field alone; a list flag removes what ``-rm`` names, then adds what
``-add`` gives (docker's exceptions kept: a mount replaces the one at its target, an env
variable the one of its name, capabilities un-drop and un-add). ``create`` is the same edit
applied to an empty spec, so every flag means one thing for both commands. Also owns
docker's rules between ``--mode``, ``--replicas`` and ``--max-concurrent``. Pure: the
command resolves what needs the daemon (network names) before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from swarmlite.api import (
    ContainerSpec,
    DiscreteResource,
    FailureAction,
    FileRef,
    HealthCheck,
    LogDriver,
    Mount,
    NetworkAttachment,
    Placement,
    PortConfig,
    ResourceRequirements,
    Resources,
    RestartCondition,
    RestartPolicy,
    ServiceMode,
    ServiceSpec,
    TaskTemplate,
    Ulimit,
    UpdateConfig,
    UpdateOrder,
)
from swarmlite.cli.flagtypes import capability
from swarmlite.errors import UsageError

S = TypeVar("S", bound=msgspec.Struct)


def _replaced(struct: S, **changes: Any) -> S:
    """``struct`` with each field given a value other than None replaced."""
    given = {key: value for key, value in changes.items() if value is not None}
    return msgspec.structs.replace(struct, **given) if given else struct


def _edited(items: Sequence[str], add: Iterable[str], rm: Iterable[str]) -> list[str]:
    """``items`` without ``rm``, then ``add`` not yet there (order kept)."""
    removed = set(rm)
    kept = [item for item in items if item not in removed]
    return kept + [item for item in dict.fromkeys(add) if item not in kept]


def _edited_map(
    items: Mapping[str, str], add: Iterable[tuple[str, str]], rm: Iterable[str]
) -> dict[str, str]:
    removed = {key.partition("=")[0] for key in rm}
    return {key: value for key, value in items.items() if key not in removed} | dict(add)


def _env_key(entry: str) -> str:
    return entry.partition("=")[0]


def _caps(caps: set[str]) -> list[str]:
    return ["ALL"] if "ALL" in caps else sorted(caps)


def _edited_caps(
    container: ContainerSpec, add: Iterable[str], drop: Iterable[str]
) -> tuple[list[str], list[str]]:
    """Docker's ``updateCapabilities``: adding one that was dropped un-drops it (and the
    reverse); adding wins when both name it; RESET empties that list first."""
    added = {capability(c) for c in container.cap_add}
    dropped = {capability(c) for c in container.cap_drop}
    to_add = {capability(c) for c in add}
    to_drop = {capability(c) for c in drop}
    if "RESET" in to_add:
        added, to_add = set(), to_add - {"RESET"}
    if "RESET" in to_drop:
        dropped, to_drop = set(), to_drop - {"RESET"}
    for cap in to_drop - to_add:
        if cap in added:
            added.discard(cap)
        else:
            dropped.add(cap)
    for cap in to_add:
        if cap in dropped:
            dropped.discard(cap)
        else:
            added.add(cap)
    return _caps(added), _caps(dropped)


def _host_parts(entry: str) -> tuple[str, str]:
    """``host:ip`` (docker) or ``host=ip`` (compose) -> (host, ip)."""
    host, sep, addr = entry.partition("=")
    if not sep:
        host, _, addr = entry.partition(":")
    return host, addr


@dataclass(frozen=True, kw_only=True)
class SpecFlags:
    """The flags that edit a spec, as click parsed them: None or () where not given."""

    # the service
    label_add: tuple[tuple[str, str], ...] = ()
    label_rm: tuple[str, ...] = ()
    endpoint_mode: str | None = None
    publish_add: tuple[list[PortConfig], ...] = ()
    publish_rm: tuple[list[PortConfig], ...] = ()
    update_parallelism: int | None = None
    update_delay: float | None = None
    update_monitor: float | None = None
    update_failure_action: str | None = None
    update_max_failure_ratio: float | None = None
    update_order: str | None = None
    rollback_parallelism: int | None = None
    rollback_delay: float | None = None
    rollback_monitor: float | None = None
    rollback_failure_action: str | None = None
    rollback_max_failure_ratio: float | None = None
    rollback_order: str | None = None
    # placement, networks, resources, restarts
    constraint_add: tuple[str, ...] = ()
    constraint_rm: tuple[str, ...] = ()
    placement_pref_add: tuple[str, ...] = ()
    placement_pref_rm: tuple[str, ...] = ()
    replicas_max_per_node: int | None = None
    network_add: tuple[NetworkAttachment, ...] = ()
    network_rm: tuple[str, ...] = ()  # network names (the command resolves ids)
    limit_cpu: int | None = None
    limit_memory: int | None = None
    limit_pids: int | None = None
    reserve_cpu: int | None = None
    reserve_memory: int | None = None
    generic_resource_add: tuple[DiscreteResource, ...] = ()
    generic_resource_rm: tuple[str, ...] = ()  # kinds
    restart_condition: str | None = None
    restart_delay: float | None = None
    restart_max_attempts: int | None = None
    restart_window: float | None = None
    # the container
    entrypoint: list[str] | None = None
    env_add: tuple[str, ...] = ()
    env_rm: tuple[str, ...] = ()
    container_label_add: tuple[tuple[str, str], ...] = ()
    container_label_rm: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    group_add: tuple[str, ...] = ()
    group_rm: tuple[str, ...] = ()
    hostname: str | None = None
    init: bool | None = None
    read_only: bool | None = None
    tty: bool | None = None
    stop_signal: str | None = None
    stop_grace_period: float | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    sysctl_add: tuple[tuple[str, str], ...] = ()
    sysctl_rm: tuple[str, ...] = ()
    ulimit_add: tuple[Ulimit, ...] = ()
    ulimit_rm: tuple[str, ...] = ()
    oom_score_adj: int | None = None
    mount_add: tuple[Mount, ...] = ()
    mount_rm: tuple[str, ...] = ()
    secret_add: tuple[FileRef, ...] = ()
    secret_rm: tuple[str, ...] = ()
    config_add: tuple[FileRef, ...] = ()
    config_rm: tuple[str, ...] = ()
    dns_add: tuple[str, ...] = ()
    dns_rm: tuple[str, ...] = ()
    dns_option_add: tuple[str, ...] = ()
    dns_option_rm: tuple[str, ...] = ()
    dns_search_add: tuple[str, ...] = ()
    dns_search_rm: tuple[str, ...] = ()
    host_add: tuple[str, ...] = ()
    host_rm: tuple[str, ...] = ()
    # logging
    log_driver: str | None = None
    log_opt: tuple[tuple[str, str], ...] = ()
    # healthcheck
    health_cmd: str | None = None
    health_interval: float | None = None
    health_timeout: float | None = None
    health_retries: int | None = None
    health_start_period: float | None = None
    health_start_interval: float | None = None
    no_healthcheck: bool = False

    def given(self) -> list[str]:
        """The flags given, by field name."""
        values = [(field.name, getattr(self, field.name)) for field in dataclasses.fields(self)]
        return [name for name, value in values if value not in ((), None) and value is not False]

    def apply(self, spec: ServiceSpec) -> ServiceSpec:
        """``spec`` edited by these flags."""
        task = spec.task
        task = msgspec.structs.replace(
            task,
            container=self._container(task.container),
            resources=self._resources(task.resources),
            restart_policy=self._restart(task.restart_policy),
            placement=self._placement(task.placement),
            networks=self._networks(task.networks),
            log_driver=self._log_driver(task.log_driver),
        )
        endpoint = _replaced(
            spec.endpoint,
            mode=self.endpoint_mode.lower() if self.endpoint_mode else None,
            ports=self._ports(spec.endpoint.ports),
        )
        return msgspec.structs.replace(
            spec,
            labels=_edited_map(spec.labels, self.label_add, self.label_rm),
            task=task,
            endpoint=endpoint,
            update_config=self._update_config(spec.update_config, "update"),
            rollback_config=self._update_config(spec.rollback_config, "rollback"),
        )

    def _log_driver(self, driver: LogDriver | None) -> LogDriver | None:
        """Docker's ``--log-driver``: the driver and its ``--log-opt`` options replace the
        service's together; an option without the driver is refused, not dropped."""
        if self.log_driver is None:
            if self.log_opt:
                raise UsageError(
                    "--log-opt needs --log-driver",
                    hint="give the driver with its options, e.g. "
                    "--log-driver json-file --log-opt max-size=10m",
                )
            return driver
        if not self.log_driver.strip():
            raise UsageError("--log-driver must not be empty")
        return LogDriver(name=self.log_driver, options=dict(self.log_opt))

    def _update_config(self, config: UpdateConfig | None, prefix: str) -> UpdateConfig | None:
        """Docker's ``--update-*``/``--rollback-*``: the defaults filled in once one is given."""
        action = getattr(self, f"{prefix}_failure_action")
        order = getattr(self, f"{prefix}_order")
        changes = {
            "parallelism": getattr(self, f"{prefix}_parallelism"),
            "delay": getattr(self, f"{prefix}_delay"),
            "monitor": getattr(self, f"{prefix}_monitor"),
            "failure_action": FailureAction(action) if action else None,
            "max_failure_ratio": getattr(self, f"{prefix}_max_failure_ratio"),
            "order": UpdateOrder(order) if order else None,
        }
        if all(value is None for value in changes.values()):
            return config
        return _replaced(config or UpdateConfig(), **changes)

    def _ports(self, ports: Sequence[PortConfig]) -> list[PortConfig] | None:
        """Docker's ``updatePorts``: ``-rm`` matches target, protocol and mode (not the
        published port); an added port already there is not added twice."""
        if not self.publish_add and not self.publish_rm:
            return None
        gone = {(p.target, p.protocol, p.mode) for ports in self.publish_rm for p in ports}
        kept = [p for p in ports if (p.target, p.protocol, p.mode) not in gone]
        for port in (port for added in self.publish_add for port in added):
            if port not in kept:
                kept.append(port)
        return kept

    def _placement(self, placement: Placement) -> Placement:
        return msgspec.structs.replace(
            placement,
            constraints=_edited(placement.constraints, self.constraint_add, self.constraint_rm),
            preferences=_edited(
                placement.preferences, self.placement_pref_add, self.placement_pref_rm
            ),
            max_replicas_per_node=(
                placement.max_replicas_per_node
                if self.replicas_max_per_node is None
                else self.replicas_max_per_node
            ),
        )

    def _networks(self, networks: Sequence[NetworkAttachment]) -> list[NetworkAttachment]:
        removed = set(self.network_rm)
        kept = [net for net in networks if net.target not in removed]
        for net in self.network_add:
            if any(other.target == net.target for other in kept):
                raise UsageError(f"service is already attached to network {net.target}")
            kept.append(net)
        return kept

    def _resources(self, resources: ResourceRequirements) -> ResourceRequirements:
        return msgspec.structs.replace(
            resources,
            limits=_replaced(
                resources.limits,
                nano_cpus=self.limit_cpu,
                memory_bytes=self.limit_memory,
                pids=self.limit_pids,
            ),
            reservations=_replaced(
                resources.reservations,
                nano_cpus=self.reserve_cpu,
                memory_bytes=self.reserve_memory,
                generic_resources=self._generic_resources(resources.reservations),
            ),
        )

    def _generic_resources(self, reservations: Resources) -> list[DiscreteResource] | None:
        """Docker's: ``-rm`` names kinds (one not reserved is an error), an added kind
        replaces the count reserved before."""
        if not self.generic_resource_add and not self.generic_resource_rm:
            return None
        by_kind = {resource.kind: resource for resource in reservations.generic_resources}
        for kind in self.generic_resource_rm:
            if by_kind.pop(kind, None) is None:
                raise UsageError(f"could not find generic-resource `{kind}` to remove it")
        by_kind.update((resource.kind, resource) for resource in self.generic_resource_add)
        return list(by_kind.values())

    def _restart(self, policy: RestartPolicy) -> RestartPolicy:
        condition = self.restart_condition
        return _replaced(
            policy,
            condition=RestartCondition(condition) if condition else None,
            delay=self.restart_delay,
            max_attempts=self.restart_max_attempts,
            window=self.restart_window,
        )

    def _container(self, container: ContainerSpec) -> ContainerSpec:
        cap_add, cap_drop = container.cap_add, container.cap_drop
        if self.cap_add or self.cap_drop:
            cap_add, cap_drop = _edited_caps(container, self.cap_add, self.cap_drop)
        if self.entrypoint is not None:  # `--entrypoint ""`: back to the image's
            container = msgspec.structs.replace(container, entrypoint=self.entrypoint or None)
        container = _replaced(
            container,
            working_dir=self.workdir,
            user=self.user,
            hostname=self.hostname,
            init=self.init,
            read_only=self.read_only,
            tty=self.tty,
            stop_signal=self.stop_signal,
            stop_grace_period=self.stop_grace_period,
            oom_score_adj=self.oom_score_adj,
        )
        return msgspec.structs.replace(
            container,
            env=self._env(container.env),
            labels=_edited_map(container.labels, self.container_label_add, self.container_label_rm),
            groups=_edited(container.groups, self.group_add, self.group_rm),
            cap_add=cap_add,
            cap_drop=cap_drop,
            sysctls=_edited_map(container.sysctls, self.sysctl_add, self.sysctl_rm),
            ulimits=self._ulimits(container.ulimits),
            mounts=self._mounts(container.mounts),
            secrets=self._files(container.secrets, self.secret_add, self.secret_rm),
            configs=self._files(container.configs, self.config_add, self.config_rm),
            dns=_edited(container.dns, self.dns_add, self.dns_rm),
            dns_options=_edited(container.dns_options, self.dns_option_add, self.dns_option_rm),
            dns_search=_edited(container.dns_search, self.dns_search_add, self.dns_search_rm),
            extra_hosts=self._hosts(container.extra_hosts),
            healthcheck=self._healthcheck(container.healthcheck),
        )

    def _env(self, env: Sequence[str]) -> list[str]:
        """Without the keys removed or set again; then each key set, at its last setting."""
        added: dict[str, str] = {}
        for entry in self.env_add:  # docker: a variable set again moves to its last place
            added.pop(_env_key(entry), None)
            added[_env_key(entry)] = entry
        gone = set(self.env_rm) | set(added)
        return [entry for entry in env if _env_key(entry) not in gone] + list(added.values())

    def _ulimits(self, ulimits: Sequence[Ulimit]) -> list[Ulimit]:
        by_name = {ulimit.name: ulimit for ulimit in ulimits}
        for name in self.ulimit_rm:
            by_name.pop(name.partition("=")[0], None)
        by_name.update((ulimit.name, ulimit) for ulimit in self.ulimit_add)
        return list(by_name.values())

    def _mounts(self, mounts: Sequence[Mount]) -> list[Mount]:
        """A mount added replaces the one at its target; ``-rm`` names targets."""
        targets = [mount.target for mount in self.mount_add]
        if len(set(targets)) < len(targets):
            raise UsageError("duplicate mount target")
        gone = set(self.mount_rm) | set(targets)
        return [m for m in mounts if m.target not in gone] + list(self.mount_add)

    @staticmethod
    def _files(refs: Sequence[FileRef], add: Sequence[FileRef], rm: Sequence[str]) -> list[FileRef]:
        """``-rm`` names secrets (configs); added ones are appended, as docker does (the
        server refuses two at one target)."""
        return [ref for ref in refs if ref.name not in rm] + list(add)

    def _hosts(self, hosts: Sequence[str]) -> list[str]:
        """``--host-rm host`` removes every mapping of host; ``host:ip`` only that one."""
        removed = [_host_parts(entry) for entry in self.host_rm]

        def gone(entry: str) -> bool:
            host, addr = _host_parts(entry)
            return any(host == name and (not ip or ip == addr) for name, ip in removed)

        return _edited([entry for entry in hosts if not gone(entry)], self.host_add, ())

    def _healthcheck(self, check: HealthCheck | None) -> HealthCheck | None:
        """Docker's ``updateHealthcheck``: ``--no-healthcheck`` alone disables it; any
        ``--health-*`` edits it (an empty ``--health-cmd`` returns to the image's test)."""
        settings = {
            "interval": self.health_interval,
            "timeout": self.health_timeout,
            "retries": self.health_retries,
            "start_period": self.health_start_period,
            "start_interval": self.health_start_interval,
        }
        edits = self.health_cmd is not None or any(v is not None for v in settings.values())
        if self.no_healthcheck:
            if edits:
                raise UsageError("--no-healthcheck conflicts with --health-* options")
            return HealthCheck(test=["NONE"], disable=True)
        if not edits:
            return check
        check = check or HealthCheck()
        if check.disable or check.test[:1] == ["NONE"]:
            check = HealthCheck()
        if self.health_cmd is not None:
            test = ["CMD-SHELL", self.health_cmd] if self.health_cmd else []
            check = msgspec.structs.replace(check, test=test)
        return _replaced(check, **settings)


# --------------------------------------------------------------------------- modes


def created_mode(
    spec: ServiceSpec,
    mode: ServiceMode,
    *,
    replicas: int | None,
    max_concurrent: int | None,
) -> ServiceSpec:
    """``--mode`` with ``--replicas`` and ``--max-concurrent``, with docker's rules: a job's
    concurrency defaults to its completions and the reverse; neither fits a global mode."""
    mixed = "can only be used with replicated or replicated-job mode"
    if mode.is_global and replicas is not None:
        raise UsageError(f"replicas {mixed}")
    if mode.is_global and spec.task.placement.max_replicas_per_node:
        raise UsageError(f"replicas-max-per-node {mixed}")
    if mode is not ServiceMode.REPLICATED_JOB and max_concurrent is not None:
        raise UsageError("max-concurrent can only be used with replicated-job mode")
    if mode.is_job and (spec.update_config or spec.rollback_config):
        raise UsageError("update and rollback configuration is not supported for jobs")
    spec = msgspec.structs.replace(spec, mode=mode)
    if mode is ServiceMode.REPLICATED and replicas is not None:
        return msgspec.structs.replace(spec, replicas=replicas)
    if mode is ServiceMode.REPLICATED_JOB:
        concurrent = max_concurrent if max_concurrent is not None else replicas
        total = replicas if replicas is not None else concurrent
        job = _replaced(spec.job, max_concurrent=concurrent, total_completions=total)
        return msgspec.structs.replace(spec, job=job)
    return spec


def updated_mode(
    spec: ServiceSpec, *, replicas: int | None, max_concurrent: int | None
) -> ServiceSpec:
    """``service update --replicas`` (replicated services only, as docker has it) and
    ``--max-concurrent`` (replicated jobs)."""
    if replicas is not None:
        if spec.mode is not ServiceMode.REPLICATED:
            raise UsageError("replicas can only be used with replicated mode")
        spec = msgspec.structs.replace(spec, replicas=replicas)
    if max_concurrent is not None:
        if spec.mode is not ServiceMode.REPLICATED_JOB:
            raise UsageError("max-concurrent can only be used with replicated-job mode")
        job = msgspec.structs.replace(spec.job, max_concurrent=max_concurrent)
        spec = msgspec.structs.replace(spec, job=job)
    return spec


def empty_spec(name: str, image: str, command: Sequence[str]) -> ServiceSpec:
    """What ``service create`` edits: the name, the image and the command after it."""
    container = ContainerSpec(image=image, command=list(command) or None)
    return ServiceSpec(name=name, task=TaskTemplate(container=container))
