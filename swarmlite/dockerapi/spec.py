"""Docker's ``ServiceSpec`` JSON, as clients send it to create or update a service, read
as swarmlite's ``ServiceSpec``.

Owns the field-by-field mapping (the inverse of ``api.dockerjson``'s ``service_json``, so
that Docker JSON -> swarmlite -> Docker JSON is the identity on what swarmlite holds), the
way Go's decoder reads a body (keys match case-insensitively, as docker-py's
``"replicated"`` needs; ``null`` is absent; unknown keys are ignored; a value of the wrong
type is refused), dockerd's defaults for what a client leaves out (``Mode`` absent or
``{}``: one replica; a replicated job's completions: its concurrency), and the
refusals: a field swarmlite cannot honour (privileges, an isolation, a
plugin runtime, named generic resources, mount options it has no place for...) is refused
with an InvalidArgument naming its JSON path, never dropped. Zero values (``"Privileges":
{"CredentialSpec": null, ...}``, ``"ForceUpdate": 0``, empty objects) are not refusals:
the docker CLI sends them on every request.

Names: Docker names networks, secrets and configs by id, swarmlite by name. A ``Lookup``
(of ``api.dockerjson``) holds the cluster's objects; a network target is an id, a name or
a unique id prefix (as dockerd resolves it), a secret or config reference is resolved by
its id and must carry that object's name (swarmkit's rule).

Does not own the rules of a spec on its own (the control API checks those, with the
words of a compose file), nor any I/O: pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from swarmlite.api import (
    ContainerSpec,
    DiscreteResource,
    EndpointSpec,
    FailureAction,
    FileRef,
    HealthCheck,
    JobSpec,
    LogDriver,
    Mount,
    NetworkAttachment,
    Placement,
    Platform,
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
from swarmlite.api.dockerjson import Lookup
from swarmlite.api.network import Network
from swarmlite.api.secret import Config, Secret
from swarmlite.errors import InvalidArgument, NotFound

_NS = 1_000_000_000
_DEFAULT_STOP_GRACE = ContainerSpec().stop_grace_period
_DEFAULT_RESTART_DELAY = RestartPolicy().delay
_DEFAULT_MONITOR = UpdateConfig().monitor
_MOUNT_TYPES = ("volume", "bind", "tmpfs")
_PROTOCOLS = ("tcp", "udp")
_PUBLISH_MODES = ("ingress", "host")
_ENDPOINT_MODES = ("vip", "dnsrr")
_DEFAULT_WORDS = ("", "default")  # Isolation, Seccomp and AppArmor modes that change nothing


def unsupported(path: str, hint: str | None = None) -> InvalidArgument:
    """The refusal of a field swarmlite cannot honour: ``<path> is not supported by
    swarmlite``."""
    return InvalidArgument(f"{path} is not supported by swarmlite", hint=hint)


# --------------------------------------------------------------------------- reading JSON


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def empty(value: Any) -> bool:
    """Whether ``value`` is Go's zero value, all the way down: null, "", 0, false, [], or
    an object of such values."""
    if isinstance(value, dict):
        return all(empty(item) for item in value.values())
    return value in (None, "", 0, False, [])


class _Obj:
    """One JSON object of the body at ``path`` (``TaskTemplate.ContainerSpec``), read as
    Go reads a struct: a key matches case-insensitively, the exact spelling first."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path
        self._folded = {key.lower(): key for key in reversed(list(data))}

    def at(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str) -> Any:
        if name in self.data:
            return self.data[name]
        key = self._folded.get(name.lower())
        return None if key is None else self.data[key]

    def wrong(self, name: str, value: Any, go_type: str) -> InvalidArgument:
        return InvalidArgument(
            f"invalid JSON: json: cannot unmarshal {_kind(value)} into Go struct field "
            f"ServiceSpec.{self.at(name)} of type {go_type}"
        )

    def str_(self, name: str, default: str = "") -> str:
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.wrong(name, value, "string")
        return value

    def bool_(self, name: str) -> bool:
        value = self.get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.wrong(name, value, "bool")
        return value

    def opt_bool(self, name: str) -> bool | None:
        return None if self.get(name) is None else self.bool_(name)

    def opt_int(self, name: str, *, unsigned: bool = False) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or (unsigned and value < 0):
            raise self.wrong(name, value, "uint64" if unsigned else "int64")
        return value

    def int_(self, name: str, *, unsigned: bool = False) -> int:
        value = self.opt_int(name, unsigned=unsigned)
        return 0 if value is None else value

    def float_(self, name: str) -> float:
        value = self.get(name)
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.wrong(name, value, "float32")
        return float(value)

    def seconds(self, name: str) -> float | None:
        """A Go ``time.Duration`` (integer nanoseconds) as swarmlite's float seconds."""
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.wrong(name, value, "time.Duration")
        return value / _NS

    def strs(self, name: str) -> list[str]:
        value = self.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.wrong(name, value, "[]string")
        return list(value)

    def map_(self, name: str) -> dict[str, str]:
        value = self.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.wrong(name, value, "map[string]string")
        return dict(value)

    def obj(self, name: str) -> _Obj | None:
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.wrong(name, value, name)
        return _Obj(value, self.at(name))

    def objs(self, name: str) -> list[_Obj]:
        value = self.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.wrong(name, value, f"[]{name}")
        found = []
        for i, item in enumerate(value):
            where = f"{self.at(name)}[{i}]"
            if not isinstance(item, dict):
                if item is None:
                    raise InvalidArgument(f"{where} must not be null")
                raise self.wrong(name, item, name)
            found.append(_Obj(item, where))
        return found

    def refuse(self, *names: str, hint: str | None = None) -> None:
        """Refuse each of ``names`` that holds more than Go's zero value."""
        for name in names:
            if not empty(self.get(name)):
                raise unsupported(self.at(name), hint)

    def refuse_mode(self, name: str) -> None:
        """Refuse ``{"Mode": ...}`` settings (Seccomp, AppArmor) other than the default."""
        found = self.obj(name)
        if found is None:
            return
        if found.str_("Mode") not in _DEFAULT_WORDS:
            raise unsupported(found.at("Mode"))
        found.refuse(*(key for key in found.data if key.lower() != "mode"))


def _choice(obj: _Obj, name: str, choices: Sequence[str], default: str, refusal: str) -> str:
    value = obj.str_(name) or default
    if value not in choices:
        raise InvalidArgument(refusal.format(value=value, path=obj.at(name)))
    return value


# --------------------------------------------------------------------------- the spec


def service_spec(body: Mapping[str, Any], lookup: Lookup | None = None) -> ServiceSpec:
    """A Docker ``ServiceSpec`` (the body of ``POST /services/create`` and of
    ``/services/{id}/update``) as swarmlite's spec. ``lookup`` holds the networks, secrets
    and configs its references may name."""
    refs = lookup or Lookup()
    root = _Obj(body, "")
    template = root.obj("TaskTemplate") or _Obj({}, "TaskTemplate")
    mode, replicas, job = _mode(root.obj("Mode"))
    return ServiceSpec(
        name=root.str_("Name"),
        labels=root.map_("Labels"),
        task=_task_template(template, _attachments(_networks(root, template), refs), refs),
        mode=mode,
        replicas=replicas,
        job=job,
        update_config=_update_config(root.obj("UpdateConfig")),
        rollback_config=_update_config(root.obj("RollbackConfig")),
        endpoint=_endpoint(root.obj("EndpointSpec")),
    )


def _mode(mode: _Obj | None) -> tuple[ServiceMode, int, JobSpec]:
    """dockerd's reading of ``Mode``: one of four, replicated with one replica when none."""
    if mode is None:
        return ServiceMode.REPLICATED, 1, JobSpec()
    given = [
        (name, found)
        for name in ("Replicated", "Global", "ReplicatedJob", "GlobalJob")
        if (found := mode.obj(name)) is not None
    ]
    if len(given) > 1:
        raise InvalidArgument(
            "must specify only one service mode",
            hint=f"{mode.path} has {', '.join(name for name, _ in given)}",
        )
    if not given:
        return ServiceMode.REPLICATED, 1, JobSpec()
    name, found = given[0]
    if name == "Global":
        return ServiceMode.GLOBAL, 1, JobSpec()
    if name == "GlobalJob":
        return ServiceMode.GLOBAL_JOB, 1, JobSpec()
    if name == "ReplicatedJob":
        concurrent = found.opt_int("MaxConcurrent", unsigned=True)
        concurrent = 1 if concurrent is None else concurrent
        total = found.opt_int("TotalCompletions", unsigned=True)
        total = concurrent if total is None else total
        job = JobSpec(max_concurrent=concurrent, total_completions=total)
        return ServiceMode.REPLICATED_JOB, total, job
    replicas = found.opt_int("Replicas", unsigned=True)
    return ServiceMode.REPLICATED, 1 if replicas is None else replicas, JobSpec()


def _update_config(config: _Obj | None) -> UpdateConfig | None:
    if config is None:
        return None
    failure = _choice(
        config,
        "FailureAction",
        [a.value for a in FailureAction],
        FailureAction.PAUSE.value,
        "unrecognized update failure action {value}",
    )
    order = _choice(
        config,
        "Order",
        [o.value for o in UpdateOrder],
        UpdateOrder.STOP_FIRST.value,
        "unrecognized update order {value}",
    )
    monitor = config.seconds("Monitor")
    return UpdateConfig(
        parallelism=config.int_("Parallelism", unsigned=True),
        delay=config.seconds("Delay") or 0.0,
        failure_action=FailureAction(failure),
        monitor=monitor if monitor else _DEFAULT_MONITOR,  # 0 is swarmkit's default too
        max_failure_ratio=config.float_("MaxFailureRatio"),
        order=UpdateOrder(order),
    )


def _endpoint(endpoint: _Obj | None) -> EndpointSpec:
    if endpoint is None:
        return EndpointSpec()
    mode = _choice(endpoint, "Mode", _ENDPOINT_MODES, "vip", 'invalid resolution mode: "{value}"')
    ports = []
    for port in endpoint.objs("Ports"):
        protocol = port.str_("Protocol").lower() or "tcp"
        if protocol not in _PROTOCOLS:
            raise unsupported(
                f'{port.at("Protocol")} "{protocol}"', "swarmlite publishes tcp and udp ports"
            )
        ports.append(
            PortConfig(
                name=port.str_("Name"),
                protocol=protocol,
                target=port.int_("TargetPort", unsigned=True),
                published=port.int_("PublishedPort", unsigned=True),
                mode=_choice(
                    port,
                    "PublishMode",
                    _PUBLISH_MODES,
                    "ingress",
                    '{path} must be "ingress" or "host", got "{value}"',
                ),
            )
        )
    return EndpointSpec(mode=mode, ports=ports)


# --------------------------------------------------------------------------- the task template


def _task_template(template: _Obj, networks: list[NetworkAttachment], refs: Lookup) -> TaskTemplate:
    runtime = template.str_("Runtime")
    if runtime not in ("", "container"):
        raise unsupported(f'{template.at("Runtime")} "{runtime}"', "swarmlite runs containers")
    template.refuse("PluginSpec", "NetworkAttachmentSpec")
    container = template.obj("ContainerSpec")
    if container is None:
        raise InvalidArgument(
            f"{template.at('ContainerSpec')} is required", hint="swarmlite runs containers"
        )
    return TaskTemplate(
        container=_container(container, refs),
        resources=_resources(template.obj("Resources")),
        restart_policy=_restart_policy(template.obj("RestartPolicy")),
        placement=_placement(template.obj("Placement")),
        networks=networks,
        force_update=template.int_("ForceUpdate", unsigned=True),
        log_driver=_log_driver(template.obj("LogDriver")),
    )


def _log_driver(driver: _Obj | None) -> LogDriver | None:
    """Swarm's ``LogDriver``: null or empty is the default (as dockerd reads it)."""
    if driver is None:
        return None
    name, options = driver.str_("Name"), driver.map_("Options")
    if not name and not options:
        return None
    return LogDriver(name=name, options=options)


def _resources(resources: _Obj | None) -> ResourceRequirements:
    if resources is None:
        return ResourceRequirements()
    limits = resources.obj("Limits") or _Obj({}, resources.at("Limits"))
    reservations = resources.obj("Reservations") or _Obj({}, resources.at("Reservations"))
    limits.refuse("SwapBytes", "MemorySwappiness")
    return ResourceRequirements(
        limits=Resources(
            nano_cpus=limits.int_("NanoCPUs"),
            memory_bytes=limits.int_("MemoryBytes"),
            pids=limits.int_("Pids"),
        ),
        reservations=Resources(
            nano_cpus=reservations.int_("NanoCPUs"),
            memory_bytes=reservations.int_("MemoryBytes"),
            generic_resources=_generic_resources(reservations),
        ),
    )


def _generic_resources(reservations: _Obj) -> list[DiscreteResource]:
    """``GenericResources``: each a ``DiscreteResourceSpec`` (a count of a kind); a named
    one is refused, as swarmkit does: a service reserves counts, the scheduler names."""
    found = []
    for item in reservations.objs("GenericResources"):
        if not empty(item.get("NamedResourceSpec")):
            raise InvalidArgument(
                f"{item.at('NamedResourceSpec')}: a service reserves a count of a kind "
                "(DiscreteResourceSpec); which named resources a task gets is the scheduler's "
                "choice"
            )
        discrete = item.obj("DiscreteResourceSpec")
        if discrete is None:
            raise InvalidArgument(f"{item.at('DiscreteResourceSpec')} is required")
        found.append(DiscreteResource(kind=discrete.str_("Kind"), value=discrete.int_("Value")))
    return found


def _restart_policy(policy: _Obj | None) -> RestartPolicy:
    if policy is None:
        return RestartPolicy()
    condition = _choice(
        policy,
        "Condition",
        [c.value for c in RestartCondition],
        RestartCondition.ANY.value,
        'invalid RestartCondition: "{value}"',
    )
    delay = policy.seconds("Delay")
    return RestartPolicy(
        condition=RestartCondition(condition),
        delay=_DEFAULT_RESTART_DELAY if delay is None else delay,
        max_attempts=policy.int_("MaxAttempts", unsigned=True),
        window=policy.seconds("Window") or 0.0,
    )


def _placement(placement: _Obj | None) -> Placement:
    if placement is None:
        return Placement()
    preferences = []
    for preference in placement.objs("Preferences"):
        spread = preference.obj("Spread")
        if spread is not None and spread.str_("SpreadDescriptor"):
            preferences.append(spread.str_("SpreadDescriptor"))
    return Placement(
        constraints=placement.strs("Constraints"),
        preferences=preferences,
        max_replicas_per_node=placement.int_("MaxReplicas", unsigned=True),
        platforms=[
            Platform(os=p.str_("OS"), architecture=p.str_("Architecture"))
            for p in placement.objs("Platforms")
        ],
    )


def _networks(root: _Obj, template: _Obj) -> list[_Obj]:
    """``TaskTemplate.Networks``, or the deprecated ``Networks`` of the spec itself (older
    clients), as swarmkit reads them: the task template's win when both are given."""
    own = template.objs("Networks")
    legacy = root.objs("Networks")
    if own and legacy and [n.data for n in own] != [n.data for n in legacy]:
        raise InvalidArgument(
            "Networks and TaskTemplate.Networks differ",
            hint="Networks is deprecated: give the networks in TaskTemplate.Networks only",
        )
    return own or legacy


def _attachments(networks: list[_Obj], refs: Lookup) -> list[NetworkAttachment]:
    found = []
    for network in networks:
        target = network.str_("Target")
        if not target:
            raise InvalidArgument(f"{network.at('Target')} is required")
        network.refuse("DriverOpts")
        found.append(
            NetworkAttachment(
                target=_network_name(target, refs.networks), aliases=network.strs("Aliases")
            )
        )
    return found


def _network_name(ref: str, networks: Sequence[Network]) -> str:
    """dockerd's ``getNetwork``: a full id, else a name, else a unique id prefix."""
    for network in networks:
        if network.id == ref:
            return network.spec.name
    found = [n for n in networks if n.spec.name == ref] or [
        n for n in networks if n.id.startswith(ref)
    ]
    if not found:
        raise NotFound(f"network {ref} not found")
    if len(found) > 1:
        raise InvalidArgument(f"network {ref} is ambiguous ({len(found)} matches found)")
    return found[0].spec.name


# --------------------------------------------------------------------------- the container


def _container(spec: _Obj, refs: Lookup) -> ContainerSpec:
    _privileges(spec)
    isolation = spec.str_("Isolation")
    if isolation not in _DEFAULT_WORDS:
        raise unsupported(f'{spec.at("Isolation")} "{isolation}"')
    dns = spec.obj("DNSConfig") or _Obj({}, spec.at("DNSConfig"))
    grace = spec.seconds("StopGracePeriod")
    return ContainerSpec(
        image=spec.str_("Image"),
        entrypoint=spec.strs("Command") or None,  # Docker's Command is the entrypoint ...
        command=spec.strs("Args") or None,  # ... and its Args the command
        env=spec.strs("Env"),
        labels=spec.map_("Labels"),
        working_dir=spec.str_("Dir"),
        user=spec.str_("User"),
        groups=spec.strs("Groups"),
        hostname=spec.str_("Hostname"),
        stop_signal=spec.str_("StopSignal"),
        stop_grace_period=_DEFAULT_STOP_GRACE if grace is None else grace,
        init=spec.opt_bool("Init"),
        read_only=spec.bool_("ReadOnly"),
        tty=spec.bool_("TTY"),
        stdin_open=spec.bool_("OpenStdin"),
        cap_add=spec.strs("CapabilityAdd"),
        cap_drop=spec.strs("CapabilityDrop"),
        sysctls=spec.map_("Sysctls"),
        ulimits=[
            Ulimit(name=u.str_("Name"), soft=u.int_("Soft"), hard=u.int_("Hard"))
            for u in spec.objs("Ulimits")
        ],
        healthcheck=_healthcheck(spec.obj("Healthcheck")),
        mounts=[_mount(m) for m in spec.objs("Mounts")],
        secrets=[_file_ref(r, "Secret", refs.secrets) for r in spec.objs("Secrets")],
        configs=[_file_ref(r, "Config", refs.configs) for r in spec.objs("Configs")],
        extra_hosts=_hosts(spec),
        dns=dns.strs("Nameservers"),
        dns_search=dns.strs("Search"),
        dns_options=dns.strs("Options"),
        oom_score_adj=spec.int_("OomScoreAdj"),
    )


def _privileges(spec: _Obj) -> None:
    """Nothing but zero values and the default profiles: swarmlite runs no task with
    credential specs, SELinux labels, custom seccomp or AppArmor profiles, or
    no-new-privileges."""
    privileges = spec.obj("Privileges")
    if privileges is None:
        return
    privileges.refuse_mode("Seccomp")
    privileges.refuse_mode("AppArmor")
    privileges.refuse(
        *(key for key in privileges.data if key.lower() not in ("seccomp", "apparmor"))
    )


def _healthcheck(check: _Obj | None) -> HealthCheck | None:
    if check is None:
        return None
    test = check.strs("Test")
    return HealthCheck(
        test=test,
        interval=check.seconds("Interval") or 0.0,
        timeout=check.seconds("Timeout") or 0.0,
        retries=check.int_("Retries"),
        start_period=check.seconds("StartPeriod") or 0.0,
        start_interval=check.seconds("StartInterval") or 0.0,
        disable=test[:1] == ["NONE"],
    )


def _hosts(spec: _Obj) -> list[str]:
    """``Hosts`` lines (``IP host [alias...]``, as in /etc/hosts) as swarmlite's
    ``host:ip`` entries, one per name: dockerd passes only the first name to the
    container, swarmlite gives the aliases too."""
    entries: list[str] = []
    for i, line in enumerate(spec.strs("Hosts")):
        ip, *names = line.split()
        if not names:
            raise InvalidArgument(
                f'{spec.at("Hosts")}[{i}] must be "IP hostname", got {line!r}',
                hint='one line of /etc/hosts, e.g. "10.0.0.9 db.example.com"',
            )
        entries.extend(f"{name}:{ip}" for name in names)
    return entries


def _mount(mount: _Obj) -> Mount:
    kind = mount.str_("Type")
    if not kind:
        raise InvalidArgument(f"{mount.at('Type')} is required (volume, bind or tmpfs)")
    if kind not in _MOUNT_TYPES:
        raise unsupported(f'{mount.at("Type")} "{kind}"', "mounts are volume, bind or tmpfs")
    consistency = mount.str_("Consistency")
    if consistency not in _DEFAULT_WORDS:
        raise unsupported(f'{mount.at("Consistency")} "{consistency}"')
    mount.refuse("ImageOptions", "ClusterOptions")
    for options, owner in (("BindOptions", "bind"), ("VolumeOptions", "volume")):
        if owner != kind and not empty(mount.get(options)):
            raise InvalidArgument(f"{mount.at(options)} is only for {owner} mounts")
    if kind != "tmpfs" and not empty(mount.get("TmpfsOptions")):
        raise InvalidArgument(f"{mount.at('TmpfsOptions')} is only for tmpfs mounts")
    bind = mount.obj("BindOptions") or _Obj({}, mount.at("BindOptions"))
    bind.refuse(
        "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive", "ReadOnlyForceRecursive"
    )
    volume = mount.obj("VolumeOptions") or _Obj({}, mount.at("VolumeOptions"))
    volume.refuse("Subpath")
    driver = volume.obj("DriverConfig") or _Obj({}, volume.at("DriverConfig"))
    driver.refuse("Options")
    tmpfs = mount.obj("TmpfsOptions") or _Obj({}, mount.at("TmpfsOptions"))
    tmpfs.refuse("Options")
    return Mount(
        type=kind,
        source=mount.str_("Source"),
        target=mount.str_("Target"),
        read_only=mount.bool_("ReadOnly"),
        volume_driver=driver.str_("Name"),  # "": the local driver, as Docker leaves it out
        volume_labels=volume.map_("Labels"),
        volume_nocopy=volume.bool_("NoCopy"),
        bind_propagation=bind.str_("Propagation"),
        tmpfs_size=tmpfs.int_("SizeBytes"),
        tmpfs_mode=tmpfs.int_("Mode", unsigned=True),
    )


def _file_ref(ref: _Obj, kind: str, known: Sequence[Secret] | Sequence[Config]) -> FileRef:
    """A ``SecretReference``/``ConfigReference``: the object by id (its name must match,
    as swarmkit checks), given to the task as the file ``File``."""
    ref.refuse("Runtime", hint="swarmlite gives secrets and configs to tasks as files only")
    target = ref.obj("File")
    if target is None or not target.str_("Name"):
        raise InvalidArgument(
            f"{ref.at('File')}.Name is required",
            hint=f"malformed {kind.lower()} reference, no target provided",
        )
    object_id, name = ref.str_(f"{kind}ID"), ref.str_(f"{kind}Name")
    by_id = {item.id: item.spec.name for item in known}
    if object_id:
        found = by_id.get(object_id)
        if found is None or (name and found != name):
            raise InvalidArgument(f"{kind.lower()} not found: {name or object_id}")
        name = found
    elif name not in by_id.values():
        raise InvalidArgument(f"{kind.lower()} not found: {name}")
    return FileRef(
        name=name,
        target=target.str_("Name"),
        uid=target.str_("UID", "0"),
        gid=target.str_("GID", "0"),
        mode=target.int_("Mode", unsigned=True),
    )
