"""Service: a named group of identical tasks, and how to run, place, restart and update them.

Owns the Service object's shape, close to swarm mode's ServiceSpec so that a compose file
and `docker service inspect` users find the same words. ``spec.name`` is unique among
services; a stack's objects carry the label ``com.docker.stack.namespace=<stack>``.
Durations are seconds (float); sizes are bytes; CPUs are nano-CPUs (1e9 = one CPU).
"""

from __future__ import annotations

import enum
from typing import ClassVar

import msgspec

from swarmlite.api.meta import Meta
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.api.resources import DiscreteResource

STACK_LABEL = "com.docker.stack.namespace"


class ServiceMode(enum.Enum):
    REPLICATED = "replicated"  # `replicas` tasks, one per slot 1..replicas
    GLOBAL = "global"  # one task per eligible node
    REPLICATED_JOB = "replicated-job"  # run to completion, `replicas` completions in all
    GLOBAL_JOB = "global-job"  # run to completion once on every eligible node

    @property
    def is_job(self) -> bool:
        return self in (ServiceMode.REPLICATED_JOB, ServiceMode.GLOBAL_JOB)

    @property
    def is_global(self) -> bool:
        return self in (ServiceMode.GLOBAL, ServiceMode.GLOBAL_JOB)


class HealthCheck(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    test: list[str] = []  # ["CMD", ...] | ["CMD-SHELL", "..."] | ["NONE"]; [] = the image's
    interval: float = 0.0  # 0: the default (30 s)
    timeout: float = 0.0
    retries: int = 0
    start_period: float = 0.0
    start_interval: float = 0.0
    disable: bool = False


class Ulimit(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    name: str
    soft: int
    hard: int


class Mount(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    type: str = "volume"  # volume | bind | tmpfs
    source: str = ""  # volume name (stack-scoped) or host path; "" for tmpfs/anonymous
    target: str = ""
    read_only: bool = False
    volume_driver: str = "local"
    volume_labels: dict[str, str] = {}
    volume_nocopy: bool = False
    bind_propagation: str = ""
    tmpfs_size: int = 0
    tmpfs_mode: int = 0


class FileRef(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A secret or config given to a task as a file."""

    name: str  # the secret's/config's name in the cluster
    target: str  # file path in the container (secrets: relative to /run/secrets)
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444


class ContainerSpec(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    image: str = ""
    entrypoint: list[str] | None = None  # None: the image's
    command: list[str] | None = None  # None: the image's
    env: list[str] = []  # "KEY=value"
    labels: dict[str, str] = {}  # container labels
    working_dir: str = ""
    user: str = ""
    groups: list[str] = []
    hostname: str = ""
    stop_signal: str = ""
    stop_grace_period: float = 10.0
    init: bool | None = None
    read_only: bool = False
    tty: bool = False
    stdin_open: bool = False
    cap_add: list[str] = []
    cap_drop: list[str] = []
    sysctls: dict[str, str] = {}
    ulimits: list[Ulimit] = []
    healthcheck: HealthCheck | None = None
    mounts: list[Mount] = []
    secrets: list[FileRef] = []
    configs: list[FileRef] = []
    extra_hosts: list[str] = []
    dns: list[str] = []
    dns_options: list[str] = []  # resolv.conf options: "ndots:2", "timeout:1"
    dns_search: list[str] = []  # search domains
    oom_score_adj: int = 0  # -1000..1000; 0: the kernel's default


class Resources(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    nano_cpus: int = 0
    memory_bytes: int = 0
    pids: int = 0
    # reservations only: a count of each kind a node advertises (api.resources)
    generic_resources: list[DiscreteResource] = []


class ResourceRequirements(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    limits: Resources = msgspec.field(default_factory=Resources)
    reservations: Resources = msgspec.field(default_factory=Resources)


class RestartCondition(enum.Enum):
    NONE = "none"
    ON_FAILURE = "on-failure"
    ANY = "any"


class RestartPolicy(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    condition: RestartCondition = RestartCondition.ANY
    delay: float = 5.0
    max_attempts: int = 0  # 0: no limit
    window: float = 0.0  # 0: attempts counted over the task's whole history


class Platform(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A platform a task's image runs on, as Docker names it ("linux", "amd64")."""

    os: str = ""  # "": any
    architecture: str = ""  # "": any


class Placement(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    constraints: list[str] = []  # "node.labels.zone==b", "node.role!=manager", ...
    preferences: list[str] = []  # "node.labels.zone": spread over its values
    max_replicas_per_node: int = 0  # 0: no limit
    platforms: list[Platform] = []  # []: any; else only nodes of one of these


class FailureAction(enum.Enum):
    PAUSE = "pause"
    CONTINUE = "continue"
    ROLLBACK = "rollback"


class UpdateOrder(enum.Enum):
    STOP_FIRST = "stop-first"
    START_FIRST = "start-first"


class UpdateConfig(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    parallelism: int = 1  # 0: all at once
    delay: float = 0.0
    failure_action: FailureAction = FailureAction.PAUSE
    monitor: float = 5.0
    max_failure_ratio: float = 0.0
    order: UpdateOrder = UpdateOrder.STOP_FIRST


class PortConfig(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    target: int
    published: int = 0  # 0: none (or assigned, in ingress mode)
    protocol: str = "tcp"  # tcp | udp
    mode: str = "ingress"  # ingress | host
    name: str = ""


class EndpointSpec(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    mode: str = "vip"  # vip | dnsrr
    ports: list[PortConfig] = []


class NetworkAttachment(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    target: str  # network name
    aliases: list[str] = []


class LogDriver(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """Where a task's output goes (swarm's ``TaskTemplate.LogDriver``): a runtime log
    driver and its options. ``name`` "": the default driver with these options. The
    rules and the default (a rotated json-file) are api/logdriver.py's."""

    name: str = ""  # "json-file", "local", "syslog", "none", a plugin's name...
    options: dict[str, str] = {}  # the driver's options: "max-size": "10m", ...


class TaskTemplate(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    container: ContainerSpec = msgspec.field(default_factory=ContainerSpec)
    resources: ResourceRequirements = msgspec.field(default_factory=ResourceRequirements)
    restart_policy: RestartPolicy = msgspec.field(default_factory=RestartPolicy)
    placement: Placement = msgspec.field(default_factory=Placement)
    networks: list[NetworkAttachment] = []
    force_update: int = 0  # bump to redeploy every task without changing anything else
    log_driver: LogDriver | None = None  # None: the runtime's default (rotated json-file)


class JobSpec(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    max_concurrent: int = 1
    total_completions: int = 1


class ServiceSpec(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    name: str = ""
    labels: dict[str, str] = {}
    task: TaskTemplate = msgspec.field(default_factory=TaskTemplate)
    mode: ServiceMode = ServiceMode.REPLICATED
    replicas: int = 1  # replicated: the number of slots
    job: JobSpec = msgspec.field(default_factory=JobSpec)  # jobs only
    update_config: UpdateConfig | None = None  # None: the default UpdateConfig
    rollback_config: UpdateConfig | None = None
    endpoint: EndpointSpec = msgspec.field(default_factory=EndpointSpec)

    @property
    def image(self) -> str:
        return self.task.container.image

    @property
    def stack(self) -> str | None:
        return self.labels.get(STACK_LABEL)


class UpdateState(enum.Enum):
    UPDATING = "updating"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLBACK_STARTED = "rollback_started"
    ROLLBACK_PAUSED = "rollback_paused"
    ROLLBACK_COMPLETED = "rollback_completed"


class UpdateStatus(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    state: UpdateState = UpdateState.COMPLETED
    message: str = ""
    started_at: float = 0.0
    completed_at: float = 0.0


class VirtualIP(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    network_id: str
    address: str  # "10.0.1.2/24"


class EndpointStatus(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """What the allocator gave the service: its VIPs and its published ports."""

    vips: list[VirtualIP] = []
    ports: list[PortConfig] = []  # with `published` chosen when the spec left it 0


class AutoscaleStatus(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The autoscaler's record of a service (api/autoscale.py): its last change of the
    replicas, or a user's, and why. Written only when the replicas change."""

    replicas: int  # the replicas after the last change
    previous: int  # the replicas before it
    changed_at: float  # wall time of the change
    by_hand: bool = False  # a user changed them (`service scale`), not the autoscaler
    reason: str = ""  # in words: "cpu 93% per task, target 70%: 2 -> 3 replicas"


class Service(Meta, frozen=True, kw_only=True, tag="service"):
    KIND: ClassVar[str] = "service"
    NAMED: ClassVar[bool] = True

    spec: ServiceSpec = msgspec.field(default_factory=ServiceSpec)
    # Incremented on every change of `spec`; each task records the one it was made from.
    spec_version: int = 1
    previous_spec: ServiceSpec | None = None  # what a rollback returns to
    update_status: UpdateStatus | None = None
    job_iteration: int = 0  # jobs: bumped to run the job again
    endpoint: EndpointStatus = msgspec.field(default_factory=EndpointStatus)
    autoscale: AutoscaleStatus | None = None  # set by the autoscaler (labels declare it)
    # `--with-registry-auth`: credentials for the image's registry, sent only to the nodes
    # that run the service's tasks; never shown (the control API's views leave them out).
    registry_auth: RegistryAuth | None = None

    def unique_name(self) -> str | None:
        return self.spec.name
