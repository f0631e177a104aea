"""A LoadedStack to the API's StackDeploy: ServiceSpecs, networks, secrets and configs.

Owns names and defaults at deploy, as ``docker stack deploy`` makes them: services
``<stack>_<service>``; networks ``<stack>_<name>`` (``<stack>_default`` for services that
name none); volumes, secrets and configs ``<stack>_<name>``, unless they set ``name:``;
``external: true`` ones referenced by their name and never created; the label
``com.docker.stack.namespace=<stack>`` on services, their containers, networks, volumes,
secrets and configs; each service reachable on its networks by its short name. Secret and
config data is read here (``file:`` relative to the compose file, ``environment:``,
``content:``); the treatment of every compose key is tabled in keys.py. Disk errors are
translated to ComposeError here.
"""

from __future__ import annotations

from typing import Any

from swarmlite.api.control import StackDeploy
from swarmlite.api.durations import parse_duration
from swarmlite.api.network import Network, NetworkSpec
from swarmlite.api.resources import DiscreteResource
from swarmlite.api.secret import Config, ConfigSpec, Secret, SecretSpec
from swarmlite.api.service import (
    STACK_LABEL,
    ContainerSpec,
    EndpointSpec,
    FailureAction,
    FileRef,
    HealthCheck,
    JobSpec,
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
from swarmlite.compose.deploy_keys import autoscale_labels
from swarmlite.compose.loader import Mark
from swarmlite.compose.model import LoadedStack, ServiceDef

DEFAULT_NETWORK = "default"


def scoped(stack: str, name: str, spec: dict[str, Any]) -> str:
    """The cluster name of a stack's network, volume, secret or config."""
    explicit = spec.get("name")
    if isinstance(explicit, str) and explicit:
        return explicit
    return name if spec.get("external") else f"{stack}_{name}"


def to_stack_deploy(loaded: LoadedStack, stack: str) -> StackDeploy:
    """The services, networks, secrets and configs of stack ``stack``, for the API."""
    label = {STACK_LABEL: stack}
    used_default = (
        any(not s.config.get("networks") for s in loaded.services.values())
        or DEFAULT_NETWORK in loaded.networks
    )
    networks: list[Network] = []
    net_defs = dict(loaded.networks)
    if used_default:
        net_defs.setdefault(DEFAULT_NETWORK, {})
    for name, spec in net_defs.items():
        if spec.get("external"):
            continue
        subnet = ""
        ipam = spec.get("ipam", {}).get("config", [])
        if ipam:
            subnet = str(ipam[0].get("subnet", ""))
        networks.append(
            Network(
                id="",
                spec=NetworkSpec(
                    name=scoped(stack, name, spec),
                    driver=str(spec.get("driver", "overlay")),
                    subnet=subnet,
                    labels={**spec.get("labels", {}), **label},
                    internal=bool(spec.get("internal", False)),
                    attachable=bool(spec.get("attachable", False)),
                ),
            )
        )
    secrets = [
        Secret(
            id="",
            spec=SecretSpec(
                name=scoped(stack, name, spec),
                data=_data(loaded, "secrets", name, spec),
                labels={**spec.get("labels", {}), **label},
            ),
        )
        for name, spec in loaded.secrets.items()
        if not spec.get("external")
    ]
    configs = [
        Config(
            id="",
            spec=ConfigSpec(
                name=scoped(stack, name, spec),
                data=_data(loaded, "configs", name, spec),
                labels={**spec.get("labels", {}), **label},
            ),
        )
        for name, spec in loaded.configs.items()
        if not spec.get("external")
    ]
    services = [_service(loaded, stack, s) for s in loaded.services.values()]
    return StackDeploy(
        name=stack, services=services, networks=networks, secrets=secrets, configs=configs
    )


def _data(loaded: LoadedStack, kind: str, name: str, spec: dict[str, Any]) -> bytes:
    mark = loaded.def_marks.get(f"{kind}.{name}", Mark("-", 0, 0))
    if "file" in spec:
        try:
            with open(spec["file"], "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise mark.error(
                f"{kind}.{name}.file: cannot read {spec['file']}: {exc.strerror or exc}"
            ) from exc
    if f"{kind}.{name}" in loaded.def_data:
        return loaded.def_data[f"{kind}.{name}"]
    if "environment" in spec:
        value = loaded.env.get(spec["environment"])
        if value is None:
            raise mark.error(
                f"{kind}.{name}.environment: variable {spec['environment']} is not set"
            )
        return value.encode()
    return str(spec.get("content", "")).encode()


def _seconds(value: Any, default: float) -> float:
    if value is None:
        return default
    seconds = parse_duration(str(value))
    return default if seconds is None else seconds


def _resources(spec: dict[str, Any]) -> Resources:
    return Resources(
        nano_cpus=round(float(spec.get("cpus", 0)) * 1e9),
        memory_bytes=int(spec.get("memory", 0)),
        pids=int(spec.get("pids", 0)),
        generic_resources=[
            DiscreteResource(kind=str(item["kind"]), value=int(item["value"]))
            for item in (
                entry["discrete_resource_spec"] for entry in spec.get("generic_resources", [])
            )
        ],
    )


def _update(spec: dict[str, Any] | None) -> UpdateConfig | None:
    if spec is None:
        return None
    return UpdateConfig(
        parallelism=int(spec.get("parallelism", 1)),
        delay=_seconds(spec.get("delay"), 0.0),
        failure_action=FailureAction(spec.get("failure_action", "pause")),
        monitor=_seconds(spec.get("monitor"), 5.0),
        max_failure_ratio=float(spec.get("max_failure_ratio", 0.0)),
        order=UpdateOrder(spec.get("order", "stop-first")),
    )


def _healthcheck(spec: dict[str, Any] | None) -> HealthCheck | None:
    if spec is None:
        return None
    test = list(spec.get("test", []))
    disable = bool(spec.get("disable", False)) or test[:1] == ["NONE"]
    if disable:
        return HealthCheck(test=["NONE"], disable=True)
    return HealthCheck(
        test=test,
        interval=_seconds(spec.get("interval"), 0.0),
        timeout=_seconds(spec.get("timeout"), 0.0),
        retries=int(spec.get("retries", 0)),
        start_period=_seconds(spec.get("start_period"), 0.0),
        start_interval=_seconds(spec.get("start_interval"), 0.0),
    )


def _log_driver(logging: dict[str, Any] | None) -> LogDriver | None:
    """``logging:`` as swarm keeps it; a driver left out is "" (the default's options)."""
    if logging is None:
        return None
    return LogDriver(name=str(logging.get("driver", "")), options=dict(logging.get("options", {})))


def _mounts(loaded: LoadedStack, stack: str, config: dict[str, Any]) -> list[Mount]:
    mounts = []
    for volume in config.get("volumes", []):
        kind = volume["type"]
        source = str(volume.get("source", ""))
        driver, labels = "local", {}
        if kind == "volume" and source:
            spec = loaded.volumes.get(source, {})
            driver = str(spec.get("driver", "local"))
            labels = {**spec.get("labels", {}), STACK_LABEL: stack}
            source = scoped(stack, source, spec)
        tmpfs = volume.get("tmpfs", {})
        mounts.append(
            Mount(
                type=kind,
                source=source,
                target=str(volume["target"]),
                read_only=bool(volume.get("read_only", False)),
                volume_driver=driver,
                volume_labels=labels,
                volume_nocopy=bool(volume.get("volume", {}).get("nocopy", False)),
                bind_propagation=str(volume.get("bind", {}).get("propagation", "")),
                tmpfs_size=int(tmpfs.get("size", 0)),
                tmpfs_mode=int(tmpfs.get("mode", 0)),
            )
        )
    for target in config.get("tmpfs", []):
        mounts.append(Mount(type="tmpfs", target=target))
    return mounts


def _refs(loaded: LoadedStack, stack: str, config: dict[str, Any], kind: str) -> list[FileRef]:
    defs = getattr(loaded, kind)
    return [
        FileRef(
            name=scoped(stack, ref["source"], defs.get(ref["source"], {})),
            target=str(ref["target"]),
            uid=str(ref.get("uid", "0")),
            gid=str(ref.get("gid", "0")),
            mode=int(ref.get("mode", 0o444)),
        )
        for ref in config.get(kind, [])
    ]


def _service(loaded: LoadedStack, stack: str, service: ServiceDef) -> ServiceSpec:
    config = service.config
    deploy = service.deploy
    label = {STACK_LABEL: stack}
    container = ContainerSpec(
        image=str(config["image"]),
        entrypoint=config.get("entrypoint"),
        command=config.get("command"),
        env=[f"{k}={v}" for k, v in sorted(config.get("environment", {}).items())],
        labels={**config.get("labels", {}), **label},
        working_dir=str(config.get("working_dir", "")),
        user=str(config.get("user", "")),
        groups=list(config.get("group_add", [])),
        hostname=str(config.get("hostname", "")),
        stop_signal=str(config.get("stop_signal", "")),
        stop_grace_period=_seconds(config.get("stop_grace_period"), 10.0),
        init=config.get("init"),
        read_only=bool(config.get("read_only", False)),
        tty=bool(config.get("tty", False)),
        stdin_open=bool(config.get("stdin_open", False)),
        cap_add=list(config.get("cap_add", [])),
        cap_drop=list(config.get("cap_drop", [])),
        sysctls=dict(config.get("sysctls", {})),
        ulimits=[
            Ulimit(name=k, soft=v["soft"], hard=v["hard"])
            for k, v in sorted(config.get("ulimits", {}).items())
        ],
        healthcheck=_healthcheck(config.get("healthcheck")),
        mounts=_mounts(loaded, stack, config),
        secrets=_refs(loaded, stack, config, "secrets"),
        configs=_refs(loaded, stack, config, "configs"),
        extra_hosts=list(config.get("extra_hosts", [])),
        dns=list(config.get("dns", [])),
    )
    resources = deploy.get("resources", {})
    restart = deploy.get("restart_policy", {})
    placement = deploy.get("placement", {})
    nets = config.get("networks") or {DEFAULT_NETWORK: {}}
    attachments = [
        NetworkAttachment(
            target=scoped(stack, name, loaded.networks.get(name, {})),
            aliases=[*spec.get("aliases", []), service.name],
        )
        for name, spec in sorted(nets.items())
    ]
    task = TaskTemplate(
        container=container,
        resources=ResourceRequirements(
            limits=_resources(resources.get("limits", {})),
            reservations=_resources(resources.get("reservations", {})),
        ),
        restart_policy=RestartPolicy(
            condition=RestartCondition(restart.get("condition", "any")),
            delay=_seconds(restart.get("delay"), 5.0),
            max_attempts=int(restart.get("max_attempts", 0)),
            window=_seconds(restart.get("window"), 0.0),
        ),
        placement=Placement(
            constraints=list(placement.get("constraints", [])),
            preferences=[p["spread"] for p in placement.get("preferences", [])],
            max_replicas_per_node=int(placement.get("max_replicas_per_node", 0)),
        ),
        networks=attachments,
        log_driver=_log_driver(config.get("logging")),
    )
    mode = ServiceMode(deploy.get("mode", "replicated"))
    replicas = int(deploy.get("replicas", config.get("scale", 1)))
    job = JobSpec()
    if mode is ServiceMode.REPLICATED_JOB:
        job = JobSpec(max_concurrent=replicas, total_completions=replicas)
    ports = [
        PortConfig(
            target=p["target"],
            published=p["published"],
            protocol=p["protocol"],
            mode=p["mode"],
            name=str(p.get("name", "")),
        )
        for p in config.get("ports", [])
    ]
    return ServiceSpec(
        name=f"{stack}_{service.name}",
        labels={
            **deploy.get("labels", {}),
            **autoscale_labels(deploy.get("x-autoscale", {})),
            **label,
        },
        task=task,
        mode=mode,
        replicas=1 if mode.is_global else replicas,
        job=job,
        update_config=_update(deploy.get("update_config")),
        rollback_config=_update(deploy.get("rollback_config")),
        endpoint=EndpointSpec(mode=str(deploy.get("endpoint_mode", "vip")), ports=ports),
    )
