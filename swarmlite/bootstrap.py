"""A node's state on disk: what `init`, `join` and `leave` write, and what a restart reads.

Owns the data dir's layout (see `daemon`), the options a node keeps (`NodeOptions`, saved
in `node.json`; the listen and metrics addresses and the generic resources are checked
before anything is written),
and the first state of a node: `init_cluster` (a new cluster: CA, node certificate, raft
log with the cluster's first objects; with a `Backup`, also the objects a restore keeps:
`restored_objects`), `join_cluster` (the CA pinned by the token, a certificate signed by
the leader), `_force_new_cluster` (a surviving manager alone, its store kept) and
`leave_local`; later changes to `node.json`
(`remember_managers`, `change_role`). All or nothing: everything is made in a staging
directory and moved in place, `node.json` last; its presence means "this data dir holds a
cluster". Runs nothing: `daemon.start_daemon` runs the node.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec

from swarmlite import __version__
from swarmlite.api import (
    Cluster,
    ClusterSpec,
    Config,
    GenericResource,
    JoinSecrets,
    Network,
    Node,
    NodeRole,
    NodeSpec,
    NodeState,
    NodeStatus,
    Object,
    RootCAMaterial,
    Secret,
    Service,
    new_id,
)
from swarmlite.api.control import Backup, JoinReply, JoinRequest
from swarmlite.api.resources import check_node_resources
from swarmlite.api.routes import JOIN
from swarmlite.ca import (
    NodeCredentials,
    RootCA,
    fetch_pinned_ca,
    issue_node_cert,
    new_key_and_csr,
    new_secret,
    parse_token,
    write_credentials,
)
from swarmlite.dashboard import check_addr as check_dashboard_addr
from swarmlite.errors import FailedPrecondition, InvalidArgument
from swarmlite.log import kv
from swarmlite.rpc import RpcClient
from swarmlite.rpc.listen import probe_listen

log = logging.getLogger(__name__)

DEFAULT_PORT = 2377
DEFAULT_DATA_DIR = "/var/lib/swarmlite"
DEFAULT_SOCKET = "/run/swarmlite/swarmlite.sock"


@dataclass(frozen=True)
class NodeOptions:
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    socket: Path | None = None
    listen_addr: str = f"0.0.0.0:{DEFAULT_PORT}"
    advertise_addr: str | None = None
    cert_expiry: float = 90 * 86400.0
    heartbeat_period: float = 1.0
    hostname: str | None = None  # default: $SWARMLITE_HOSTNAME, else the host's name
    docker_host: str = "unix:///var/run/docker.sock"  # the runtime's Engine API socket
    metrics_addr: str = ""  # ADDR:PORT of the Prometheus listener; "": no metrics
    dashboard_addr: str = ""  # ADDR:PORT of the read-only dashboard (managers); "": none
    # init only: where overlay subnets (and their size) and nodes' mesh addresses come from
    default_addr_pool: str | None = None  # default 10.0.0.0/8
    default_addr_pool_mask_length: int | None = None  # default 24
    mesh_pool: str | None = None  # default 100.96.0.0/16
    autolock: bool = False  # init: seal the managers' raft keys with an unlock key
    # --node-generic-resource: what the node advertises beyond CPU and memory (checked
    # before anything is written; kept in node.json, sent in every session hello)
    generic_resources: tuple[GenericResource, ...] = ()
    # `swarmlite daemon` only: the Docker Engine API on TCP too, with TLS requiring client
    # certificates signed by the CA (the unix socket beside `socket_path` is always served)
    docker_api_addr: str | None = None  # HOST:PORT
    docker_api_tls_cert: str = ""
    docker_api_tls_key: str = ""
    docker_api_tls_ca: str = ""

    @property
    def socket_path(self) -> Path:
        if self.socket is not None:
            return self.socket
        if str(self.data_dir) == DEFAULT_DATA_DIR:
            return Path(DEFAULT_SOCKET)
        return self.data_dir / "swarmlite.sock"


@dataclass(frozen=True)
class InitResult:
    node_id: str
    cluster_id: str
    advertise_addr: str


@dataclass(frozen=True)
class JoinResult:
    node_id: str
    cluster_id: str
    role: NodeRole
    managers: list[str]


class NodeFile(msgspec.Struct, kw_only=True):
    """node.json: what a node needs to start again after a restart."""

    node_id: str
    cluster_id: str
    role: NodeRole
    hostname: str
    listen_addr: str
    advertise_addr: str
    socket: str
    managers: list[str]
    cert_expiry: float
    heartbeat_period: float
    docker_host: str = "unix:///var/run/docker.sock"
    metrics_addr: str = ""
    dashboard_addr: str = ""
    generic_resources: list[GenericResource] = []


# --------------------------------------------------------------------------- state on disk


def _node_file(data_dir: Path) -> Path:
    return data_dir / "node.json"


def read_node(data_dir: Path) -> NodeFile:
    path = _node_file(data_dir)
    try:
        return msgspec.json.decode(path.read_bytes(), type=NodeFile)
    except FileNotFoundError as exc:
        raise FailedPrecondition(
            f"{data_dir} holds no swarmlite node",
            hint="run `swarmlite init` or `swarmlite join` first",
        ) from exc
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"{path} is malformed: {exc}") from exc


def write_node(data_dir: Path, state: NodeFile) -> None:
    path = _node_file(data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(state)))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


def remember_managers(data_dir: Path, state: NodeFile, managers: list[str]) -> None:
    """Keep the managers the cluster last named (for the next start), if they changed."""
    known = [m for m in managers if m]
    if known and known != state.managers:
        state.managers = known
        write_node(data_dir, state)


def change_role(data_dir: Path, state: NodeFile, role: NodeRole) -> None:
    """Record the role the cluster gave this node, to start in it next; a worker keeps no
    raft log."""
    if role is NodeRole.WORKER:
        shutil.rmtree(data_dir / "raft", ignore_errors=True)
    state.role = role
    write_node(data_dir, state)


def load_options(data_dir: Path, socket: Path | None = None) -> NodeOptions:
    """The options saved at init/join, for `swarmlite daemon --data-dir`."""
    state = read_node(data_dir)
    return NodeOptions(
        data_dir=data_dir,
        socket=socket or Path(state.socket),
        listen_addr=state.listen_addr,
        advertise_addr=state.advertise_addr,
        cert_expiry=state.cert_expiry,
        heartbeat_period=state.heartbeat_period,
        hostname=state.hostname,
        docker_host=state.docker_host,
        metrics_addr=state.metrics_addr,
        dashboard_addr=state.dashboard_addr,
        generic_resources=tuple(state.generic_resources),
    )


def _check_fresh(opts: NodeOptions) -> None:
    if _node_file(opts.data_dir).exists():
        state = read_node(opts.data_dir)
        raise FailedPrecondition(
            f"{opts.data_dir} already holds a cluster (node {state.node_id}, cluster "
            f"{state.cluster_id})",
            hint=f"`swarmlite daemon --data-dir {opts.data_dir}` starts it again; "
            "`swarmlite leave --force` leaves that cluster",
        )


# sun_path holds 108 bytes on Linux, the last one a NUL.
_MAX_UNIX_PATH = 107


def _check_paths(opts: NodeOptions) -> None:
    """The data dir and the local socket can be made where they are asked for, checked
    before init/join write anything, so that a refused one can simply be run again."""
    data_dir = opts.data_dir
    if data_dir.exists() and not data_dir.is_dir():
        raise FailedPrecondition(f"--data-dir {data_dir} exists and is not a directory")
    _check_writable(_nearest_existing(data_dir), f"--data-dir {data_dir}")
    path = opts.socket_path
    if len(os.fsencode(path)) > _MAX_UNIX_PATH:
        raise InvalidArgument(
            f"--socket {path} is {len(os.fsencode(path))} bytes long, more than the "
            f"{_MAX_UNIX_PATH} a unix socket's path may have",
            hint="choose a shorter --socket (or --data-dir)",
        )
    parent = path.parent
    if parent != data_dir:  # init/join create the data dir; any other must exist
        if not parent.is_dir():
            raise FailedPrecondition(
                f"--socket {path}: the directory {parent} does not exist",
                hint=f"create it first (mkdir -p {parent}), or choose another --socket",
            )
        _check_writable(parent, f"--socket {path}")
    if path.exists() and not path.is_socket():
        raise FailedPrecondition(f"--socket {path} exists and is not a socket")
    if path.exists():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                return  # a stale socket of a dead daemon: the new one replaces it
        raise FailedPrecondition(
            f"a daemon is already listening on {path}",
            hint="stop it first, or choose another --socket",
        )


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _check_writable(directory: Path, what: str) -> None:
    if not os.access(directory, os.W_OK | os.X_OK):
        raise FailedPrecondition(
            f"{what}: this user may not write in {directory}",
            hint="run as a user that may (root for the default paths), or choose another path",
        )


def split_addr(addr: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep:
        return addr, default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError as exc:
        raise InvalidArgument(f"address {addr!r} has a malformed port") from exc


def _check_listen(addr: str) -> None:
    host, port = split_addr(addr)
    probe_listen(host, port, flag="--listen-addr", what="the cluster port")


def _check_metrics(opts: NodeOptions) -> None:
    if opts.metrics_addr:
        from swarmlite.metrics import check_addr  # loaded only by a node that has metrics

        check_addr(opts.metrics_addr)


def _check_dashboard(opts: NodeOptions) -> None:
    if opts.dashboard_addr:
        check_dashboard_addr(opts.dashboard_addr)


def _check_generic_resources(opts: NodeOptions) -> None:
    check_node_resources(opts.generic_resources, flag="--node-generic-resource")


def _hostname(opts: NodeOptions) -> str:
    return opts.hostname or os.environ.get("SWARMLITE_HOSTNAME") or socket.gethostname()


def _advertise(opts: NodeOptions) -> str:
    listen_host, listen_port = split_addr(opts.listen_addr)
    if opts.advertise_addr:
        host, port = split_addr(opts.advertise_addr, listen_port)
        return f"{host}:{port}"
    if listen_host not in ("0.0.0.0", "", "::"):
        return f"{listen_host}:{listen_port}"
    try:
        host = socket.gethostbyname(socket.gethostname())
    except OSError:
        host = "127.0.0.1"
    return f"{host}:{listen_port}"


def _staging(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=data_dir))


def _commit_staging(staging: Path, data_dir: Path, state: NodeFile) -> None:
    for item in staging.iterdir():
        target = data_dir / item.name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        item.replace(target)
    staging.rmdir()
    write_node(data_dir, state)


def init_cluster(
    opts: NodeOptions, *, force_new_cluster: bool = False, restore: Backup | None = None
) -> InitResult:
    """Write a new cluster's first state into opts.data_dir; the daemon is not started.
    With ``restore``, the new cluster starts with what `restored_objects` keeps of a backup
    and the backup's cluster settings (a new cluster id, CA and join tokens all the same)."""
    from swarmlite.raft import Entry, EntryKind, Member, RaftCore, RaftStorage
    from swarmlite.raft.sealing import load_keys, new_unlock_key
    from swarmlite.store import Tx

    if force_new_cluster and _node_file(opts.data_dir).exists():
        return _force_new_cluster(opts)
    _check_fresh(opts)
    _check_paths(opts)
    restored: tuple[ClusterSpec, list[Object]] | None = None
    if restore is not None:
        restored = restored_objects(restore)  # checked whole before anything is written
        settings = restored[0].settings
        opts = replace(
            opts, heartbeat_period=settings.heartbeat_period, cert_expiry=settings.cert_expiry
        )
    _check_listen(opts.listen_addr)
    _check_metrics(opts)
    _check_dashboard(opts)
    _check_generic_resources(opts)
    advertise = _advertise(opts)
    node_id, cluster_id = new_id(), new_id()
    ca = RootCA.create(cluster_id)
    creds = issue_node_cert(
        ca,
        node_id,
        NodeRole.MANAGER.value,
        cluster_id,
        expiry_days=max(1, round(opts.cert_expiry / 86400)),
        addresses=[split_addr(advertise)[0]],
    )
    hostname = _hostname(opts)
    staging = _staging(opts.data_dir)
    try:
        write_credentials(staging / "certs", creds)
        storage = RaftStorage.open(staging / "raft", keys=load_keys(staging / "raft"))
        storage.recover()
        hard_state, entries = RaftCore.bootstrap([Member(node_id, advertise, True)])
        cluster = Cluster(
            id=cluster_id,
            spec=ClusterSpec(),
            root_ca=RootCAMaterial(cert_pem=ca.cert_pem, key_pem=ca.key_pem),
            join=JoinSecrets(worker=new_secret(), manager=new_secret()),
        )
        cluster = msgspec.structs.replace(
            cluster,
            spec=msgspec.structs.replace(
                cluster.spec,
                settings=msgspec.structs.replace(
                    cluster.spec.settings,
                    heartbeat_period=opts.heartbeat_period,
                    cert_expiry=opts.cert_expiry,
                    autolock=opts.autolock,
                ),
                labels=_pool_labels(opts),
            ),
            # The daemon seals its raft keys with it as soon as it starts (manager.py).
            unlock_key=new_unlock_key() if opts.autolock else "",
        )
        node = Node(
            id=node_id,
            spec=NodeSpec(role=NodeRole.MANAGER),
            status=NodeStatus(
                state=NodeState.UNKNOWN,
                hostname=hostname,
                addresses=(split_addr(advertise)[0],),
                addr=advertise,
                version=__version__,
                generic_resources=list(opts.generic_resources),
            ),
        )
        if restored is not None:  # autolock is this init's (--autolock), with its own key
            spec = restored[0]
            settings = msgspec.structs.replace(spec.settings, autolock=opts.autolock)
            cluster = msgspec.structs.replace(
                cluster, spec=msgspec.structs.replace(spec, settings=settings)
            )
        tx = Tx().create(cluster).create(node)
        for obj in restored[1] if restored is not None else ():
            tx.create(obj)
        entries.append(Entry(1, 2, EntryKind.NORMAL, tx.encode(now=time.time())))
        storage.write(hard_state, entries)
        storage.close()
        state = NodeFile(
            node_id=node_id,
            cluster_id=cluster_id,
            role=NodeRole.MANAGER,
            hostname=hostname,
            listen_addr=opts.listen_addr,
            advertise_addr=advertise,
            socket=str(opts.socket_path),
            managers=[advertise],
            cert_expiry=opts.cert_expiry,
            heartbeat_period=opts.heartbeat_period,
            docker_host=opts.docker_host,
            metrics_addr=opts.metrics_addr,
            dashboard_addr=opts.dashboard_addr,
            generic_resources=list(opts.generic_resources),
        )
        _commit_staging(staging, opts.data_dir, state)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("cluster initialised %s", kv(node=node_id, cluster=cluster_id, addr=advertise))
    return InitResult(node_id=node_id, cluster_id=cluster_id, advertise_addr=advertise)


RESTORED_KINDS: tuple[type[Object], ...] = (Service, Network, Secret, Config)


def restored_objects(backup: Backup) -> tuple[ClusterSpec, list[Object]]:
    """What a restore keeps of a backup: the cluster's spec (settings, address pools,
    labels) and every service, network, secret (with its content) and config, each to be
    created anew (a new version, in the new cluster's first entry). Nodes and tasks are
    not kept: the old nodes are not part of the new cluster, and the orchestrator makes
    each service's tasks again on the new nodes (a job runs again). The old CA, cluster id
    and join secrets are not kept either: a restored cluster trusts no certificate of the
    old one. Raises InvalidArgument if the backup cannot start a cluster."""
    from swarmlite.store import MemoryStore, Tx

    clusters = [obj for obj in backup.objects if isinstance(obj, Cluster)]
    if len(clusters) != 1:
        raise InvalidArgument(
            f"the backup holds {len(clusters)} cluster objects; a backup of a cluster holds one"
        )
    kept = [obj for obj in backup.objects if isinstance(obj, RESTORED_KINDS)]
    trial = MemoryStore()  # the same checks the new cluster's first entry will meet
    tx = Tx()
    for obj in kept:
        tx.create(obj)
    result = trial.apply(1, tx.encode(now=0.0))
    if result.error is not None:
        raise InvalidArgument(
            f"the backup's objects cannot be restored: {result.error.message}"
        ) from result.error
    return clusters[0].spec, kept


def _pool_labels(opts: NodeOptions) -> dict[str, str]:
    """The cluster labels the allocator reads its pools from (checked here, at init)."""
    from swarmlite.manager.allocator import MESH_LABEL, POOL_LABEL, SIZE_LABEL

    labels: dict[str, str] = {}
    for label, value in (
        (POOL_LABEL, opts.default_addr_pool),
        (MESH_LABEL, opts.mesh_pool),
    ):
        if value is None:
            continue
        try:
            ipaddress.IPv4Network(value)
        except ValueError as exc:
            raise InvalidArgument(f"{value!r} is not an IPv4 network (CIDR): {exc}") from exc
        labels[label] = value
    size = opts.default_addr_pool_mask_length
    if size is not None:
        if not 8 <= size <= 29:
            raise InvalidArgument(f"--default-addr-pool-mask-length {size} must be 8 to 29")
        labels[SIZE_LABEL] = str(size)
    return labels


def _force_new_cluster(opts: NodeOptions) -> InitResult:
    """Lost quorum: restart this manager's raft as a one-member cluster, keeping the store."""
    from swarmlite.raft import EntryKind, RaftStorage
    from swarmlite.raft.sealing import load_keys
    from swarmlite.store import MemoryStore

    state = read_node(opts.data_dir)
    if state.role is not NodeRole.MANAGER:
        raise FailedPrecondition("--force-new-cluster needs a manager's data dir")
    raft_dir = opts.data_dir / "raft"
    storage = RaftStorage.open(raft_dir, keys=load_keys(raft_dir))  # Locked: unlock first
    recovered = storage.recover()
    storage.close()
    memory = MemoryStore()
    index = term = 0
    if recovered.snapshot is not None:
        memory.restore(recovered.snapshot.data, recovered.snapshot.meta.index)
        index, term = recovered.snapshot.meta.index, recovered.snapshot.meta.term
    for entry in recovered.entries:
        if entry.kind is EntryKind.NORMAL:
            memory.apply(entry.index, entry.data)
        index, term = entry.index, entry.term
    from swarmlite.raft import HardState, Member, Membership, Snapshot, SnapshotMeta

    advertise = _advertise(
        replace(opts, advertise_addr=opts.advertise_addr or state.advertise_addr)
    )
    membership = Membership((Member(state.node_id, advertise, True),))
    staging = _staging(opts.data_dir)
    try:
        fresh = RaftStorage.open(staging / "raft", keys=load_keys(staging / "raft"))
        fresh.recover()
        fresh.save_snapshot(Snapshot(SnapshotMeta(index, term, membership), memory.snapshot()))
        fresh.write(HardState(term=recovered.hard_state.term + 1), [])
        fresh.close()
        state.managers = [advertise]
        state.advertise_addr = advertise
        _commit_staging(staging, opts.data_dir, state)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.warning("forced a new one-manager cluster %s", kv(node=state.node_id, index=index))
    return InitResult(node_id=state.node_id, cluster_id=state.cluster_id, advertise_addr=advertise)


def join_cluster(opts: NodeOptions, token: str, manager: str) -> JoinResult:
    """Join through `manager` with `token`; writes this node's state, does not start it."""
    _check_fresh(opts)
    _check_paths(opts)
    _check_metrics(opts)
    _check_dashboard(opts)
    _check_generic_resources(opts)
    parsed = parse_token(token)
    host, port = split_addr(manager)
    manager_addr = f"{host}:{port}"
    advertise = _advertise(opts)
    hostname = _hostname(opts)

    async def contact() -> tuple[bytes, JoinReply]:
        ca_pem = await fetch_pinned_ca(manager_addr, parsed.ca_digest_hex)
        key_pem, csr_pem = new_key_and_csr()
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem.decode())
        context.check_hostname = False
        client = RpcClient(f"https://{manager_addr}", context, timeout=30.0)
        try:
            reply = await client.request(
                JOIN,
                JoinRequest(
                    token=token,
                    csr_pem=csr_pem,
                    hostname=hostname,
                    addr=advertise,
                    version=__version__,
                ),
            )
        finally:
            await client.close()
        return key_pem, reply

    key_pem, reply = asyncio.run(contact())
    if reply.role is NodeRole.MANAGER:
        _check_listen(opts.listen_addr)
    staging = _staging(opts.data_dir)
    try:
        write_credentials(
            staging / "certs",
            NodeCredentials(
                cert_pem=reply.cert_pem, key_pem=key_pem, ca_cert_pem=reply.ca_cert_pem
            ),
        )
        state = NodeFile(
            node_id=reply.node_id,
            cluster_id=reply.cluster_id,
            role=reply.role,
            hostname=hostname,
            listen_addr=opts.listen_addr,
            advertise_addr=advertise,
            socket=str(opts.socket_path),
            managers=reply.managers or [manager_addr],
            cert_expiry=opts.cert_expiry,
            heartbeat_period=opts.heartbeat_period,
            docker_host=opts.docker_host,
            metrics_addr=opts.metrics_addr,
            dashboard_addr=opts.dashboard_addr,
            generic_resources=list(opts.generic_resources),
        )
        _commit_staging(staging, opts.data_dir, state)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return JoinResult(
        node_id=reply.node_id, cluster_id=reply.cluster_id, role=reply.role, managers=state.managers
    )


def leave_local(opts: NodeOptions) -> None:
    """After the daemon stopped: forget the cluster (the data dir can init or join again)."""
    for name in ("node.json", "certs", "raft", "swarmlite.pid"):
        path = opts.data_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
