"""Swarmlite's objects as Docker's JSON: what ``docker <noun> inspect`` prints, and what the
Docker Engine API returns for nodes, services, tasks, networks, secrets, configs and the swarm.

Owns the translation only: Docker's field names and nesting, its value forms (RFC 3339 UTC
times, integer nanosecond durations, lower-case state words, base64 bytes) and which fields
Docker leaves out when empty (Go's ``omitempty``), so that ``--format '{{.Spec.Name}}'``
scripts and Docker's clients read swarmlite as they read Swarm. Pure: no store, no I/O.

Invariants: a value swarmlite does not hold is left out, or given Docker's zero form where
Docker always prints the field, never made up; a secret's data never appears; the CA's
private key never appears. Where Docker names another object by id and swarmlite by name
(a service's networks, secrets and configs), ``Lookup`` supplies the ids; without it the
name stays (networks) or the id is empty (secrets, configs).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from swarmlite.api.cluster import Cluster
from swarmlite.api.control import ClusterEvent, ManagerStatus
from swarmlite.api.meta import Meta
from swarmlite.api.network import Network
from swarmlite.api.node import Node
from swarmlite.api.resources import GenericResource, NamedResource
from swarmlite.api.secret import Config, Secret
from swarmlite.api.service import (
    ContainerSpec,
    EndpointSpec,
    FileRef,
    HealthCheck,
    Mount,
    PortConfig,
    Resources,
    Service,
    ServiceMode,
    ServiceSpec,
    TaskTemplate,
    UpdateConfig,
    UpdateStatus,
)
from swarmlite.api.task import Attachment, Task, TaskStatus

JSON = dict[str, Any]

# What Go prints for a time.Time that was never set (Docker always prints these fields).
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_RUNTIME = "container"
_IPAM_DRIVER = "default"  # Docker's name for the built-in address allocator
_VXLAN_OPTION = "com.docker.network.driver.overlay.vxlanid_list"


def rfc3339(epoch_seconds: float, *, fixed: bool = False) -> str:
    """``1796593111.5`` -> ``"2026-12-06T21:38:31.5Z"``: UTC, as Go's JSON prints a time
    (RFC 3339 with up to nine fraction digits, trailing zeros dropped). ``fixed`` keeps
    all nine, as ``docker logs -t`` prints them. Swarmlite keeps seconds as floats, good to
    the microsecond at today's epoch, so the last three digits are always zeros."""
    micros = round(epoch_seconds * 1_000_000)
    whole, micro = divmod(micros, 1_000_000)
    moment = datetime.datetime.fromtimestamp(whole, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{micro * 1000:09d}"
    if not fixed:
        fraction = fraction.rstrip("0")
    return f"{moment}.{fraction}Z" if fraction else f"{moment}Z"


def nanoseconds(seconds: float) -> int:
    """A swarmlite duration (float seconds) as Docker's ``time.Duration`` (int nanoseconds)."""
    return round(seconds * 1_000_000_000)


@dataclass(frozen=True)
class Lookup:
    """The other objects a conversion may name: networks (by name or id), secrets and
    configs (by name), services (a task's mode). Pass what the caller has; all optional."""

    networks: Sequence[Network] = ()
    secrets: Sequence[Secret] = ()
    configs: Sequence[Config] = ()
    services: Sequence[Service] = ()

    @cached_property
    def _networks(self) -> dict[str, Network]:
        by_ref = {n.spec.name: n for n in self.networks}
        by_ref.update({n.id: n for n in self.networks})
        return by_ref

    @cached_property
    def _secret_ids(self) -> dict[str, str]:
        return {s.spec.name: s.id for s in self.secrets}

    @cached_property
    def _config_ids(self) -> dict[str, str]:
        return {c.spec.name: c.id for c in self.configs}

    @cached_property
    def _services(self) -> dict[str, Service]:
        return {s.id: s for s in self.services}

    def network(self, ref: str) -> Network | None:
        return self._networks.get(ref)

    def network_id(self, ref: str) -> str:
        """The id of the network named (or id'd) ``ref``; ``ref`` itself when unknown."""
        network = self._networks.get(ref)
        return network.id if network is not None else ref

    def secret_id(self, name: str) -> str:
        return self._secret_ids.get(name, "")

    def config_id(self, name: str) -> str:
        return self._config_ids.get(name, "")

    def service(self, service_id: str) -> Service | None:
        return self._services.get(service_id)


_NO_LOOKUP = Lookup()


# --------------------------------------------------------------------------- common parts


def _time(epoch_seconds: float) -> str:
    return rfc3339(epoch_seconds) if epoch_seconds else GO_ZERO_TIME


def _version(index: int) -> JSON:
    return {"Index": index} if index else {}


def _meta(obj: Meta) -> JSON:
    return {
        "ID": obj.id,
        "Version": _version(obj.version),
        "CreatedAt": _time(obj.created_at),
        "UpdatedAt": _time(obj.updated_at),
    }


def _some(**fields: Any) -> JSON:
    """Go's ``omitempty`` for a struct: fields that are None, "", 0, False, [] or {} left out."""
    return {
        key: value for key, value in fields.items() if value not in (None, "", 0, False, [], {})
    }


# --------------------------------------------------------------------------- nodes


def node_json(node: Node, manager_status: ManagerStatus | None = None) -> JSON:
    """``docker node inspect``: the node, with ``ManagerStatus`` for a manager whose raft
    membership the caller knows."""
    status = node.status
    out = {
        **_meta(node),
        "Spec": {
            "Labels": dict(node.spec.labels),
            "Role": node.spec.role.value,
            "Availability": node.spec.availability.value,
        },
        "Description": {
            **_some(Hostname=status.hostname),
            "Platform": _some(Architecture=status.arch, OS=status.os),
            "Resources": _some(
                NanoCPUs=status.nano_cpus,
                MemoryBytes=status.memory_bytes,
                GenericResources=generic_resources_json(status.generic_resources),
            ),
            "Engine": _some(EngineVersion=status.version),
            "TLSInfo": {},
        },
        "Status": _some(State=status.state.value, Message=status.message, Addr=_node_ip(node)),
    }
    if manager_status is not None:
        out["ManagerStatus"] = _some(
            Leader=manager_status.leader,
            Reachability=manager_status.reachability,
            Addr=manager_status.addr,
        )
    return out


def _node_ip(node: Node) -> str:
    """Docker's ``Status.Addr``: the node's IP address, without a port."""
    if node.status.addresses:
        return node.status.addresses[0]
    host, sep, _port = node.status.addr.rpartition(":")
    if not sep:
        return node.status.addr
    return host.removeprefix("[").removesuffix("]")


# --------------------------------------------------------------------------- services


def service_json(
    service: Service,
    *,
    lookup: Lookup | None = None,
    insert_defaults: bool = True,
    running: int | None = None,
    desired: int | None = None,
    completed: int = 0,
) -> JSON:
    """``docker service inspect``: the service. ``insert_defaults`` fills the update and
    rollback configs a spec left unset, as ``?insertDefaults=true`` (the CLI's inspect)
    does; ``running``/``desired``/``completed`` give ``ServiceStatus`` (``?status=true``)."""
    ids = lookup or _NO_LOOKUP
    out = {**_meta(service), "Spec": _service_spec(service.spec, ids, defaults=insert_defaults)}
    if service.previous_spec is not None:
        out["PreviousSpec"] = _service_spec(service.previous_spec, ids, defaults=False)
    endpoint: JSON = {"Spec": _endpoint_spec(service.spec.endpoint)}
    if service.endpoint.ports:
        endpoint["Ports"] = [_port(p) for p in service.endpoint.ports]
    if service.endpoint.vips:
        endpoint["VirtualIPs"] = [
            _some(NetworkID=vip.network_id, Addr=vip.address) for vip in service.endpoint.vips
        ]
    out["Endpoint"] = endpoint
    if service.update_status is not None:
        out["UpdateStatus"] = _update_status(service.update_status)
    if service.autoscale is not None:  # swarmlite's: Docker clients skip what they don't know
        status = service.autoscale
        out["AutoscaleStatus"] = {
            "Replicas": status.replicas,
            "PreviousReplicas": status.previous,
            "ChangedAt": _time(status.changed_at),
            "ByHand": status.by_hand,
            "Reason": status.reason,
        }
    if running is not None and desired is not None:
        out["ServiceStatus"] = {
            "RunningTasks": running,
            "DesiredTasks": desired,
            "CompletedTasks": completed,
        }
    if service.spec.mode.is_job:
        # Docker's progress bars match tasks to the service's job iteration.
        out["JobStatus"] = {"JobIteration": _version(service.job_iteration)}
    return out


def _service_spec(spec: ServiceSpec, ids: Lookup, *, defaults: bool) -> JSON:
    out: JSON = {
        **_some(Name=spec.name),
        "Labels": dict(spec.labels),
        "TaskTemplate": task_spec_json(spec.task, lookup=ids, insert_defaults=defaults),
        "Mode": _mode(spec),
    }
    for key, config in (
        ("UpdateConfig", spec.update_config),
        ("RollbackConfig", spec.rollback_config),
    ):
        if config is None and defaults:
            config = UpdateConfig()
        if config is not None:
            out[key] = _update_config(config)
    out["EndpointSpec"] = _endpoint_spec(spec.endpoint)
    return out


def _mode(spec: ServiceSpec) -> JSON:
    if spec.mode is ServiceMode.GLOBAL:
        return {"Global": {}}
    if spec.mode is ServiceMode.GLOBAL_JOB:
        return {"GlobalJob": {}}
    if spec.mode is ServiceMode.REPLICATED_JOB:
        return {
            "ReplicatedJob": {
                "MaxConcurrent": spec.job.max_concurrent,
                # 0 means "as many as replicas", as the orchestrator reads it
                "TotalCompletions": spec.job.total_completions or max(0, spec.replicas),
            }
        }
    return {"Replicated": {"Replicas": spec.replicas}}  # 0 too: clients dereference it


def _update_config(config: UpdateConfig) -> JSON:
    return {
        "Parallelism": config.parallelism,
        **_some(
            Delay=nanoseconds(config.delay),
            FailureAction=config.failure_action.value,
            Monitor=nanoseconds(config.monitor),
        ),
        "MaxFailureRatio": config.max_failure_ratio,
        "Order": config.order.value,
    }


def _update_status(status: UpdateStatus) -> JSON:
    return _some(
        State=status.state.value,
        StartedAt=rfc3339(status.started_at) if status.started_at else None,
        CompletedAt=rfc3339(status.completed_at) if status.completed_at else None,
        Message=status.message,
    )


def _endpoint_spec(spec: EndpointSpec) -> JSON:
    return _some(Mode=spec.mode, Ports=[_port(p) for p in spec.ports])


def _port(port: PortConfig) -> JSON:
    return _some(
        Name=port.name,
        Protocol=port.protocol,
        TargetPort=port.target,
        PublishedPort=port.published,
        PublishMode=port.mode,
    )


# --------------------------------------------------------------------------- task template


def task_spec_json(
    template: TaskTemplate, *, lookup: Lookup | None = None, insert_defaults: bool = False
) -> JSON:
    """Docker's ``TaskSpec`` (a service's ``Spec.TaskTemplate``, a task's ``Spec``)."""
    ids = lookup or _NO_LOOKUP
    resources = template.resources
    policy = template.restart_policy
    placement = template.placement
    out: JSON = {
        "ContainerSpec": _container_spec(template.container, ids, defaults=insert_defaults),
        "Resources": {
            "Limits": _resources(resources.limits, pids=True),
            "Reservations": _resources(resources.reservations, pids=False),
        },
        "RestartPolicy": {
            "Condition": policy.condition.value,
            "Delay": nanoseconds(policy.delay),
            "MaxAttempts": policy.max_attempts,
            "Window": nanoseconds(policy.window),
        },
        "Placement": _some(
            Constraints=list(placement.constraints),
            Preferences=[{"Spread": {"SpreadDescriptor": p}} for p in placement.preferences],
            MaxReplicas=placement.max_replicas_per_node,
            Platforms=[_some(Architecture=p.architecture, OS=p.os) for p in placement.platforms],
        ),
    }
    if template.networks:
        out["Networks"] = [
            _some(Target=ids.network_id(n.target), Aliases=list(n.aliases))
            for n in template.networks
        ]
    if template.log_driver is not None:  # swarm's *Driver: nil (left out) or {Name, Options}
        out["LogDriver"] = _some(
            Name=template.log_driver.name, Options=dict(template.log_driver.options)
        )
    out["ForceUpdate"] = template.force_update
    out["Runtime"] = _RUNTIME
    return out


def _resources(resources: Resources, *, pids: bool) -> JSON:
    out = _some(
        NanoCPUs=resources.nano_cpus,
        MemoryBytes=resources.memory_bytes,
        GenericResources=generic_resources_json(resources.generic_resources),
    )
    if pids and resources.pids:
        out["Pids"] = resources.pids
    return out


def generic_resources_json(resources: Sequence[GenericResource]) -> list[JSON]:
    """Docker's ``GenericResources``: ``{"NamedResourceSpec": {"Kind", "Value"}}`` or
    ``{"DiscreteResourceSpec": {"Kind", "Value"}}`` each."""
    out = []
    for resource in resources:
        key = "NamedResourceSpec" if isinstance(resource, NamedResource) else "DiscreteResourceSpec"
        out.append({key: {"Kind": resource.kind, "Value": resource.value}})
    return out


def _container_spec(spec: ContainerSpec, ids: Lookup, *, defaults: bool) -> JSON:
    out = _some(
        Image=spec.image,
        Labels=dict(spec.labels),
        Command=list(spec.entrypoint or []),  # Docker's Command is the entrypoint ...
        Args=list(spec.command or []),  # ... and its Args the command
        Hostname=spec.hostname,
        Env=list(spec.env),
        Dir=spec.working_dir,
        User=spec.user,
        Groups=list(spec.groups),
    )
    if spec.init is not None:
        out["Init"] = spec.init
    out.update(
        _some(
            StopSignal=spec.stop_signal,
            TTY=spec.tty,
            OpenStdin=spec.stdin_open,
            ReadOnly=spec.read_only,
            Mounts=[_mount(m) for m in spec.mounts],
        )
    )
    out["StopGracePeriod"] = nanoseconds(spec.stop_grace_period)
    if spec.healthcheck is not None:
        out["Healthcheck"] = _healthcheck(spec.healthcheck)
    if spec.extra_hosts:
        out["Hosts"] = [_host_entry(h) for h in spec.extra_hosts]
    if spec.dns or spec.dns_search or spec.dns_options or defaults:
        out["DNSConfig"] = _some(
            Nameservers=list(spec.dns), Search=list(spec.dns_search), Options=list(spec.dns_options)
        )
    out.update(
        _some(
            Secrets=[_file_ref(f, "Secret", ids.secret_id(f.name)) for f in spec.secrets],
            Configs=[_file_ref(f, "Config", ids.config_id(f.name)) for f in spec.configs],
            Sysctls=dict(spec.sysctls),
            CapabilityAdd=list(spec.cap_add),
            CapabilityDrop=list(spec.cap_drop),
            Ulimits=[{"Name": u.name, "Hard": u.hard, "Soft": u.soft} for u in spec.ulimits],
            OomScoreAdj=spec.oom_score_adj,
        )
    )
    return out


def _host_entry(entry: str) -> str:
    """Compose's ``host:ip`` (or ``host=ip``) as Docker's ``Hosts`` line ``ip host``."""
    host, sep, ip = entry.partition("=") if "=" in entry else entry.partition(":")
    return f"{ip} {host}" if sep else entry


def _healthcheck(check: HealthCheck) -> JSON:
    return _some(
        Test=["NONE"] if check.disable else list(check.test),
        Interval=nanoseconds(check.interval),
        Timeout=nanoseconds(check.timeout),
        StartPeriod=nanoseconds(check.start_period),
        StartInterval=nanoseconds(check.start_interval),
        Retries=check.retries,
    )


def _mount(mount: Mount) -> JSON:
    out = _some(Type=mount.type, Source=mount.source, Target=mount.target, ReadOnly=mount.read_only)
    if mount.type == "volume":
        options = _some(
            NoCopy=mount.volume_nocopy,
            Labels=dict(mount.volume_labels),
            DriverConfig=_some(Name=mount.volume_driver) or None,
        )
        if options:  # Docker leaves out a volume's options when it has none
            out["VolumeOptions"] = options
    elif mount.type == "bind" and mount.bind_propagation:
        out["BindOptions"] = {"Propagation": mount.bind_propagation}
    elif mount.type == "tmpfs" and (mount.tmpfs_size or mount.tmpfs_mode):
        out["TmpfsOptions"] = _some(SizeBytes=mount.tmpfs_size, Mode=mount.tmpfs_mode)
    return out


def _file_ref(ref: FileRef, kind: str, object_id: str) -> JSON:
    return {
        "File": {"Name": ref.target, "UID": ref.uid, "GID": ref.gid, "Mode": ref.mode},
        f"{kind}ID": object_id,
        f"{kind}Name": ref.name,
    }


# --------------------------------------------------------------------------- tasks


def task_json(task: Task, *, lookup: Lookup | None = None) -> JSON:
    """``docker inspect <task>``: the task. ``lookup`` gives network ids and objects (for
    ``NetworksAttachments``) and the task's service (a job's tasks carry ``JobIteration``)."""
    ids = lookup or _NO_LOOKUP
    out = {**_meta(task), "Labels": {}, "Spec": task_spec_json(task.spec, lookup=ids)}
    out.update(_some(ServiceID=task.service_id, Slot=task.slot, NodeID=task.node_id))
    out["Status"] = _task_status(task.status)
    out["DesiredState"] = task.desired_state.value
    if task.assigned_generic_resources:
        out["AssignedGenericResources"] = generic_resources_json(task.assigned_generic_resources)
    if task.networks:
        out["NetworksAttachments"] = [_attachment(a, ids) for a in task.networks]
    service = ids.service(task.service_id)
    if task.job_iteration or (service is not None and service.spec.mode.is_job):
        out["JobIteration"] = _version(task.job_iteration)
    return out


def _task_status(status: TaskStatus) -> JSON:
    return {
        "Timestamp": _time(status.timestamp),
        **_some(State=status.state.value, Message=status.message, Err=status.err),
        "ContainerStatus": _some(ContainerID=status.container_id, ExitCode=status.exit_code),
        "PortStatus": {},  # host-mode ports of the task: swarmlite does not record them
    }


def _attachment(attachment: Attachment, ids: Lookup) -> JSON:
    network = ids.network(attachment.network_id)
    shape = (
        _swarm_network(network)
        if network is not None
        else {
            "ID": attachment.network_id,
            "Version": {},
            "CreatedAt": GO_ZERO_TIME,
            "UpdatedAt": GO_ZERO_TIME,
            "Spec": {"Labels": {}},
            "DriverState": {},
        }
    )
    return {"Network": shape, "Addresses": [attachment.address]}


def _ipam_configs(network: Network) -> list[JSON]:
    subnet = network.status.subnet or network.spec.subnet
    gateway = network.status.gateway or network.spec.gateway
    return [_some(Subnet=subnet, Gateway=gateway)] if subnet else []


def _driver_options(network: Network) -> dict[str, str]:
    return {_VXLAN_OPTION: str(network.status.vni)} if network.status.vni else {}


def _swarm_network(network: Network) -> JSON:
    """A network as Swarm's API has it (inside a task's ``NetworksAttachments``)."""
    spec = network.spec
    ipam = {"Driver": {"Name": _IPAM_DRIVER}, **_some(Configs=_ipam_configs(network))}
    return {
        **_meta(network),
        "Spec": {
            **_some(Name=spec.name),
            "Labels": dict(spec.labels),
            "DriverConfiguration": {"Name": spec.driver},
            **_some(Internal=spec.internal, Attachable=spec.attachable, Ingress=spec.ingress),
            "IPAMOptions": ipam,
            "Scope": "swarm",
        },
        "DriverState": _some(Name=spec.driver, Options=_driver_options(network)),
        "IPAMOptions": ipam,
    }


# --------------------------------------------------------------------------- networks


def network_json(network: Network) -> JSON:
    """``docker network inspect``: a swarm-scoped overlay network (note ``Id``, not ``ID``)."""
    spec = network.spec
    return {
        "Name": spec.name,
        "Id": network.id,
        "Created": _time(network.created_at),
        "Scope": "swarm",
        "Driver": spec.driver,
        "EnableIPv4": True,
        "EnableIPv6": False,
        "IPAM": {"Driver": _IPAM_DRIVER, "Options": None, "Config": _ipam_configs(network)},
        "Internal": spec.internal,
        "Attachable": spec.attachable,
        "Ingress": spec.ingress,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": _containers(network),
        "Options": _driver_options(network),
        "Labels": dict(spec.labels),
    }


def _containers(network: Network) -> JSON:
    """The standalone containers on an attachable network (of every node), by id, as
    dockerd shows its endpoints; one still waiting for its address is left out."""
    return {
        att.container_id: {
            "Name": att.name,
            "EndpointID": "",
            "MacAddress": _attachment_mac(att.address),
            "IPv4Address": att.address,
            "IPv6Address": "",
        }
        for att in sorted(network.status.attachments, key=lambda a: a.container_id)
        if att.address
    }


def _attachment_mac(address: str) -> str:
    """02:42 and the four IPv4 bytes, as every node derives a container's MAC."""
    ip = address.split("/")[0]
    try:
        return "02:42:" + ":".join(f"{int(part):02x}" for part in ip.split("."))
    except ValueError:
        return ""


# --------------------------------------------------------------------------- secrets, configs


def secret_json(secret: Secret) -> JSON:
    """``docker secret inspect``: never the data."""
    return {**_meta(secret), "Spec": {"Name": secret.spec.name, "Labels": dict(secret.spec.labels)}}


def config_json(config: Config) -> JSON:
    """``docker config inspect``: with the data, base64 as Docker sends ``[]byte``."""
    return {
        **_meta(config),
        "Spec": {
            "Name": config.spec.name,
            "Labels": dict(config.spec.labels),
            "Data": base64.b64encode(config.spec.data).decode("ascii"),
        },
    }


# --------------------------------------------------------------------------- the swarm


def swarm_json(
    cluster: Cluster,
    *,
    worker_token: str | None = None,
    manager_token: str | None = None,
    default_addr_pool: Sequence[str] = (),
    subnet_size: int = 0,
    data_path_port: int = 0,
    election_tick: int = 0,
    heartbeat_tick: int = 0,
    node_cert_expiry: float = 0.0,
    autolock: bool = False,
    root_rotation: bool = False,
) -> JSON:
    """``docker swarm inspect`` (with the join tokens, when given) or, without them, the
    ``Cluster`` of ``docker info``. What the Cluster object does not hold (address pools,
    raft ticks, certificate lifetime, autolock; a root CA rotation when the caller has only
    a view of it) comes from the caller; 0/empty otherwise.
    The root CA's certificate is shown, its key never."""
    settings = cluster.spec.settings
    out: JSON = {
        **_meta(cluster),
        "Spec": {
            **_some(Name=cluster.spec.name),
            "Labels": dict(cluster.spec.labels),
            "Orchestration": {"TaskHistoryRetentionLimit": settings.task_history_limit},
            "Raft": {"ElectionTick": election_tick, "HeartbeatTick": heartbeat_tick},
            "Dispatcher": _some(HeartbeatPeriod=nanoseconds(settings.heartbeat_period)),
            "CAConfig": _some(NodeCertExpiry=nanoseconds(node_cert_expiry)),
            "TaskDefaults": {},
            "EncryptionConfig": {"AutoLockManagers": autolock},
        },
        "TLSInfo": _some(TrustRoot=cluster.root_ca.cert_pem.decode("ascii")),
        "RootRotationInProgress": root_rotation or cluster.root_ca.rotation is not None,
        "DefaultAddrPool": list(default_addr_pool),
        "SubnetSize": subnet_size,
        "DataPathPort": data_path_port,
    }
    if worker_token is not None or manager_token is not None:
        out["JoinTokens"] = {"Worker": worker_token or "", "Manager": manager_token or ""}
    return out


def event_json(event: ClusterEvent) -> JSON:
    """One cluster event as Docker's events message (``docker events --format '{{json .}}'``,
    the Engine API's ``/events`` stream): scope ``swarm``, the object as ``Actor``. Who asked
    and why ride along as the attributes ``by`` and ``reason`` (when known)."""
    attributes = dict(event.attributes)
    if event.actor:
        attributes["by"] = event.actor
    if event.message:
        attributes["reason"] = event.message
    nanos = round(event.time * 1_000_000) * 1000
    return {
        "Type": event.type,
        "Action": event.action,
        "Actor": {"ID": event.id, "Attributes": attributes},
        "scope": "swarm",
        "time": nanos // 1_000_000_000,
        "timeNano": nanos,
    }
