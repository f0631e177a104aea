"""Wire shapes of the cluster's APIs: control (the CLI), join, CA and dispatcher sessions.

Owns requests and replies only; the manager's controlapi, dispatcher and join service
serve them, the CLI and the agent call them. The control calls' paths, roles and types are
declared once, in ``api/routes.py``; the join, CA and session paths are here.
"""

from __future__ import annotations

import msgspec

from swarmlite.api.cluster import ClusterSpec
from swarmlite.api.network import ContainerAttachment, Network, NetworkSpec
from swarmlite.api.node import Node
from swarmlite.api.objects import Object
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.api.resources import GenericResource
from swarmlite.api.secret import Config, Secret
from swarmlite.api.service import Service, ServiceSpec
from swarmlite.api.states import NodeAvailability, NodeRole
from swarmlite.api.task import Task, TaskStatus

# --------------------------------------------------------------------------- paths

CONTROL = "/control/v1"  # the control calls themselves are declared in api/routes.py

JOIN_CA = "/join/v1/ca"  # public: no client certificate needed
JOIN = "/join/v1/join"  # public: the token is the credential
RAFT_JOIN = "/join/v1/raft"  # a manager's new certificate asks to become a raft voter
CA_RENEW = "/ca/v1/renew"
SESSION = "/dispatcher/v1/session"

# --------------------------------------------------------------------------- control


class Empty(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    pass


Filters = dict[str, list[str]]  # Docker's list filters: key -> values (api/filters.py)


class ListRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A listing (`node ls`, `network ls`, `secret ls`, ...) with Docker's filters."""

    filters: Filters = {}


class ManagerStatus(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    addr: str
    leader: bool = False
    reachability: str = "unknown"  # reachable | unreachable | unknown


class NodeView(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A node as `node ls`/`inspect` show it: the stored object plus live manager status."""

    node: Node
    manager: ManagerStatus | None = None
    self: bool = False  # the node answering the call
    last_heartbeat: float = 0.0  # wall time the leader last heard from the node; 0: not yet


class NodeList(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    nodes: list[NodeView]


class NodeRef(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    ref: str  # id, unique id prefix, or hostname


class TaskList(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    tasks: list[Task] = []


class NodeTasks(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """`node ps`: the tasks on these nodes ([] = the node answering the CLI)."""

    refs: list[str] = []
    filters: Filters = {}


class NodeUpdate(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    ref: str
    availability: NodeAvailability | None = None
    role: NodeRole | None = None
    label_add: dict[str, str] = {}
    label_rm: list[str] = []
    force: bool = False  # allow a demotion that loses quorum


class NodeRemove(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    ref: str
    force: bool = False


class StackDeploy(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A whole stack, applied in one store transaction: all of it, or nothing."""

    name: str
    services: list[ServiceSpec]
    networks: list[Network] = []  # specs only; ids are assigned by the manager
    secrets: list[Secret] = []
    configs: list[Config] = []
    prune: bool = False  # remove the stack's services that `services` no longer names
    # `--with-registry-auth`: by service name, the credentials for its image's registry
    # (a service not named keeps what it has)
    registry_auth: dict[str, RegistryAuth] = {}


class StackDeployReply(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    created: list[str] = []  # service names
    updated: list[str] = []
    unchanged: list[str] = []
    removed: list[str] = []
    kept: list[str] = []  # stack rm: "network <name>: in use by <service>, ..."


class StackInfo(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    name: str
    services: int


class StackList(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    stacks: list[StackInfo]


class NameRef(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    ref: str  # a name, an id, or a unique id prefix


class NetworkCreate(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    spec: NetworkSpec


class NetworkView(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A network as `network ls`/`inspect` show it: the stored object and who uses it."""

    network: Network
    services: list[str] = []  # names of the services attached to it, sorted


class NetworkList(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    networks: list[NetworkView]


class NetworkAttach(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A node puts a standalone container on an attachable network (`docker run --network`):
    ``check`` only asks whether it may (at create), otherwise the attachment is recorded (at
    start; again for the same container is the same attachment)."""

    network: str  # a name, an id, or a unique id prefix
    container_id: str
    name: str = ""  # the container's name, for DNS
    check: bool = False


class NetworkAttachReply(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    network_id: str
    name: str
    gateway: str = ""  # where this node's DNS server answers on it ("10.0.1.1")
    attachment: ContainerAttachment | None = None  # its address is "" until allocated


class NetworkDetach(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The container is removed: its attachments (on every network) go."""

    container_id: str


class BlobCreate(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """`secret create` and `config create`: the content, whole."""

    name: str
    data: bytes
    labels: dict[str, str] = {}


class BlobView(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A secret or config as `ls`/`inspect` show it: the stored object (a secret without its
    content, which never leaves the cluster but for the nodes whose tasks use it) and the
    services that use it."""

    object: Secret | Config
    services: list[str] = []  # names, sorted


class BlobList(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    items: list[BlobView]


class ServiceFilter(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    stack: str | None = None
    names: list[str] = []  # refs; [] = all
    filters: Filters = {}


class ServiceCreate(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    spec: ServiceSpec
    registry_auth: RegistryAuth | None = None  # `--with-registry-auth`


class ServiceView(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    service: Service
    running: int  # tasks RUNNING (and healthy, when there is a healthcheck)
    desired: int  # tasks that should be running (completions left, for jobs)


class ServiceList(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    services: list[ServiceView]


class ServiceUpdate(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    ref: str
    spec: ServiceSpec  # the whole new spec (the CLI edits what it read)
    version: int = 0  # the Service.version it was read at (0: do not check)
    registry_auth: RegistryAuth | None = None  # `--with-registry-auth`; None: keep the old


class ServiceScale(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """``service scale``: a merge of one field, applied to the service as it is then (no
    version: concurrent scales and other updates never make it fail with Conflict)."""

    ref: str
    replicas: int  # a replicated service's replicas, a replicated job's total completions


class TaskFilter(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    service: str | None = None  # ref
    stack: str | None = None
    node: str | None = None  # ref
    all: bool = True  # False: only tasks whose desired state is running
    filters: Filters = {}


class LogsRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    service: str  # ref
    follow: bool = False
    tail: int = -1  # -1: all
    timestamps: bool = False
    since: float = 0.0  # epoch seconds; 0: from the start


class LogLine(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    task_id: str
    task_name: str
    node_id: str
    stream: str  # stdout | stderr
    timestamp: float
    line: str


class EventsRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """``swarmlite events``: the events kept from ``since`` on, then (unless ``until`` has
    passed) every new one until ``until``; without either, only new events, for ever."""

    since: float | None = None  # epoch seconds
    until: float | None = None  # epoch seconds; the stream ends when it passes
    filters: Filters = {}  # Docker's events filters (api/filters.py EVENT)


class ClusterEvent(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One change to the cluster's objects, in Docker's words (``type``, ``action``,
    the actor's ``id`` and ``attributes``), plus who asked for it and why."""

    seq: int  # this event's place in the manager's event log; increases by one
    time: float  # epoch seconds, when the change applied on the answering manager
    index: int  # the raft index of the change
    type: str  # service | task | node | network | secret | config
    action: str  # create | update | remove
    id: str
    attributes: dict[str, str]  # name, and "<field>.old"/"<field>.new" for what changed
    actor: str = ""  # who asked: "admin@<node>", "docker-api@<node>", a manager loop...
    message: str = ""  # why, when the change says: a task's error, an update's pause


class JoinTokenRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    role: NodeRole
    rotate: bool = False


class JoinTokenReply(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    token: str
    managers: list[str]  # advertise addresses to join through


class Info(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    node_id: str
    cluster_id: str
    role: NodeRole
    hostname: str
    addr: str
    managers: list[str]
    leader: str | None = None  # leader's node id, when this node knows it
    state: str = "active"  # active | pending | locked | inactive
    version: str = ""  # the daemon's swarmlite version
    runtime: str = ""  # the container runtime, "docker 20.10.24"
    data_dir: str = ""


class VersionInfo(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """`swarmlite version`: the answering daemon's build and platform."""

    version: str
    api_version: str
    python: str
    os: str
    arch: str
    runtime: str = ""


class SwarmView(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """`swarm inspect`: the cluster object without anything secret (no CA key, no tokens)."""

    id: str
    version: int
    created_at: float
    updated_at: float
    spec: ClusterSpec
    ca_cert_pem: bytes
    nodes: int = 0
    managers: int = 0
    ca_rotation: bool = False  # a root CA rotation is under way (`swarm ca --rotate`)


class SwarmUpdate(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """`swarm update`: the settings to change (None: keep)."""

    heartbeat_period: float | None = None
    task_history_limit: int | None = None
    cert_expiry: float | None = None
    autolock: bool | None = None


class CARequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """`swarm ca`: show the root CA; ``rotate`` starts a rotation to a new root first."""

    rotate: bool = False


class CAView(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The cluster's root CA and, during a rotation, how far it is."""

    cert_pem: bytes  # the root every node trusts (the old one until a rotation ends)
    rotating: bool = False
    new_cert_pem: bytes = b""  # during a rotation: the root it rotates to
    started_at: float = 0.0
    renewed: int = 0  # nodes that hold a certificate from the new root
    pending: list[str] = []  # hostnames (or ids) of the nodes it still waits for


class UnlockKeyRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    rotate: bool = False  # make a new unlock key first


class UnlockKey(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    key: str  # "" when autolock is off


class UnlockRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """`swarm unlock`: the key, to a locked manager's own socket."""

    key: str


class LeaveRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    force: bool = False


class Backup(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """`swarm backup`: the whole store as of one raft index (every object, secrets' content
    and the CA key included), what `init --restore` starts a new cluster from. Secret: the
    CLI seals it under a passphrase (`ca.backup`) before it touches a disk."""

    cluster_id: str = ""
    index: int = 0  # every object is as of this raft index
    taken_at: float = 0.0  # wall time on the leader
    version: str = ""  # the swarmlite version of the leader that took it
    objects: list[Object] = []


# --------------------------------------------------------------------------- join and CA


class CAReply(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    cert_pem: bytes


class JoinRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    token: str
    csr_pem: bytes
    hostname: str
    addr: str  # advertise address (host:port) of the cluster port
    version: str = ""


class JoinReply(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    node_id: str
    cluster_id: str
    role: NodeRole
    cert_pem: bytes
    ca_cert_pem: bytes
    managers: list[str]  # advertise addresses of the managers


class RaftJoinRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    addr: str  # where this manager's raft transport listens


class RenewRequest(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    csr_pem: bytes
    # Set only by a manager that forwards a node's renewal to the leader: the node it is
    # for (the leader signs for the caller's own certificate otherwise).
    node_id: str = ""


class RenewReply(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    cert_pem: bytes
    role: NodeRole


# --------------------------------------------------------------------------- sessions


class SessionHello(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="hello"):
    node_id: str
    hostname: str
    addr: str
    mesh_public_key: str = ""
    mesh_next_key: str = ""
    mesh_endpoint: str = ""
    version: str = ""
    runtime: str = ""  # "docker 20.10.24", "" before the node has a runtime
    os: str = ""
    arch: str = ""
    nano_cpus: int = 0
    memory_bytes: int = 0
    generic_resources: list[GenericResource] = []  # its --node-generic-resource flags


class Heartbeat(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="heartbeat"):
    pass


class TaskUpdate(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    task_id: str
    status: TaskStatus


class StatusReport(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="status"):
    """From the agent: what happened to its tasks, in order, batched."""

    updates: list[TaskUpdate]


class TaskUsage(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    task_id: str
    cpu: float  # CPU cores used, on average since the task's previous reading (1.0: one core)
    memory_bytes: int  # in use now, less the page cache the kernel can drop


class UsageReport(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="usage"):
    """From the agent, every few seconds while it runs tasks of autoscaled services: what
    those tasks use, and the requests the routing mesh on this node passed to each such
    service (new connections, counted by the mesh) since the previous report."""

    interval: float  # the seconds this report covers
    tasks: list[TaskUsage] = []
    requests: dict[str, int] = {}  # service id -> requests over `interval`


class Assignments(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="assignments"):
    """From the manager: every task this node should know of, with the secrets and configs
    they use. Tasks missing from the set are no longer assigned (remove them)."""

    tasks: list[Task]
    secrets: list[Secret] = []
    configs: list[Config] = []
    # By service id, the registry credentials of those of its tasks that are to run here.
    registry_auth: dict[str, RegistryAuth] = {}


class AssignmentChanges(
    msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="assignment_changes"
):
    """From the manager: what changed in this node's set since its last message, which
    `applied_to` the node's whole set gives the `Assignments` it would have been sent
    instead. A session always starts with a whole `Assignments`.

    ``tasks``: tasks new to the node or whose desired state changed (they replace those of
    the same id); ``removed``: ids no longer assigned; ``secrets``/``configs``: those the
    tasks above use that the node may not hold yet (by name); ``registry_auth``: the node's
    whole new map of credentials, or None when it did not change."""

    tasks: list[Task] = []
    removed: list[str] = []
    secrets: list[Secret] = []
    configs: list[Config] = []
    registry_auth: dict[str, RegistryAuth] | None = None

    def applied_to(self, whole: Assignments) -> Assignments:
        """``whole`` with these changes: tasks in the order they were first told (new ones
        last), and only the secrets and configs the resulting tasks use."""
        gone = set(self.removed)
        news = {task.id: task for task in self.tasks}
        tasks = [news.pop(t.id, t) for t in whole.tasks if t.id not in gone or t.id in news]
        tasks.extend(news.values())
        secret_names = {ref.name for t in tasks for ref in t.spec.container.secrets}
        config_names = {ref.name for t in tasks for ref in t.spec.container.configs}
        secrets = {s.spec.name: s for s in (*whole.secrets, *self.secrets)}
        configs = {c.spec.name: c for c in (*whole.configs, *self.configs)}
        return Assignments(
            tasks=tasks,
            secrets=[s for name, s in secrets.items() if name in secret_names],
            configs=[c for name, c in configs.items() if name in config_names],
            registry_auth=whole.registry_auth if self.registry_auth is None else self.registry_auth,
        )


class LogsQuery(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="logs_query"):
    """From the manager: send the logs of these tasks (answered with LogChunk messages)."""

    query_id: str
    task_ids: list[str]
    follow: bool = False
    tail: int = -1
    since: float = 0.0  # epoch seconds; 0: from the start
    cancel: bool = False  # stop a follow


class LogChunk(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="log_chunk"):
    query_id: str
    lines: list[LogLine]
    done: bool = False


class SessionInfo(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="info"):
    """From the manager: whom to reconnect to, how often to beat, what role to hold, which
    CA to trust."""

    managers: list[str]
    heartbeat_period: float
    role: NodeRole
    leader_addr: str | None = None
    # The cluster's CA, as the node should follow it (empty from an older manager): the root
    # that signs certificates now, every root to trust (both during a rotation) and the
    # chain new certificates come with (the cross-signed root, during a rotation).
    ca_cert_pem: bytes = b""
    ca_trust_pem: bytes = b""
    ca_chain_pem: bytes = b""


class MeshPeer(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    node_id: str
    public_key: str  # WireGuard, base64
    endpoint: str  # underlay host:port
    mesh_address: str  # "198.18.128.2" (no prefix)
    next_key: str = ""  # during a key rotation: the key the peer is switching to


class MeshState(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="mesh"):
    """From the manager: this node's mesh address and every other node to peer with."""

    address: str  # this node's mesh address with its prefix, "198.18.128.1/20"
    peers: list[MeshPeer]


class MeshChanges(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="mesh_changes"):
    """From the manager: what changed among this node's peers since its last mesh message,
    which `applied_to` the node's last whole `MeshState` gives the one it would have been
    sent instead (its address unchanged). A session's first mesh message is whole.

    ``peers``: peers new to the node or changed (they replace those of the same node id);
    ``removed``: node ids no longer peers."""

    peers: list[MeshPeer] = []
    removed: list[str] = []

    def applied_to(self, whole: MeshState) -> MeshState:
        """``whole`` with these changes, peers in node id order (as a whole one has them)."""
        peers = {peer.node_id: peer for peer in whole.peers}
        for node_id in self.removed:
            peers.pop(node_id, None)
        peers.update((peer.node_id, peer) for peer in self.peers)
        return MeshState(address=whole.address, peers=[peers[k] for k in sorted(peers)])


class FdbEntry(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    mac: str
    vtep: str  # the mesh address of the node where that MAC lives


class NetworkInfo(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    network_id: str
    name: str
    vni: int
    subnet: str  # "10.0.1.0/24"
    gateway: str  # "10.0.1.1" (this node's bridge address and DNS server)
    ingress: bool = False
    address: str = ""  # ingress only: this node's own address on it, "10.0.0.3/24"
    vteps: list[str] = []  # mesh addresses of the other nodes on this network (flooding)
    fdb: list[FdbEntry] = []  # every remote task MAC on this network
    internal: bool = False  # nothing crosses in or out of it but DNS (network/isolation.py)


class EndpointInfo(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A service as one network sees it: for DNS and VIP load balancing."""

    network_id: str
    service_id: str
    names: list[str]  # "web", "shop_web" (and aliases)
    mode: str  # vip | dnsrr
    vip: str = ""  # "10.0.1.2" (vip mode)
    backends: list[str] = []  # addresses of its tasks in rotation (running, healthy)
    tasks: list[str] = []  # addresses of all its running tasks (for tasks.<name>)
    ports: list[int] = []  # target ports the VIP forwards (all, when empty)


class PublishedPort(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    published: int
    protocol: str  # tcp | udp
    target: int
    mode: str  # ingress | host
    backends: list[str]  # ingress: tasks' ingress-network addresses; host: local task addresses
    service_id: str = ""  # the service publishing it ("" from managers before it was sent)


class NetworkState(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="networks"):
    """From the manager: what this node's networking must look like now."""

    networks: list[NetworkInfo]
    endpoints: list[EndpointInfo]
    ports: list[PublishedPort]


AgentMessage = SessionHello | Heartbeat | StatusReport | LogChunk | UsageReport
ManagerMessage = (
    SessionInfo
    | Assignments
    | AssignmentChanges
    | LogsQuery
    | MeshState
    | MeshChanges
    | NetworkState
)
