"""One swarmlite node: the daemon that `init`/`join` start and `swarmlite daemon` restarts.

Owns a node's state on disk and the wiring of its layers. The data dir holds::

    node.json        who this node is: ids, role, addresses, the managers it knows
    certs/           node.key (0600), node.crt, ca.crt
    raft/            the raft log and snapshots (managers only)
    swarmlite.pid    the running daemon's pid
    swarmlite.log    what a detached daemon logs

`init_cluster` and `join_cluster` write a node's first state (all or nothing: `node.json`
is written last and its presence means "this data dir holds a cluster");
`start_daemon` runs the daemon in the foreground or detached. A manager daemon runs the
raft member, the store and the manager's APIs on the cluster port; every daemon keeps a
session with the leader's dispatcher and serves the local CLI on a unix socket. When the
cluster changes this node's role, the daemon renews its certificate and starts again in
the new role, in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import ipaddress
import logging
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from swarmlite import __version__
from swarmlite import log as swl_log
from swarmlite.agent.driver import RuntimeDriver, RuntimeInfo
from swarmlite.agent.session import Session
from swarmlite.agent.worker import Worker
from swarmlite.api import (
    Cluster,
    ClusterSpec,
    JoinSecrets,
    Node,
    NodeRole,
    NodeSpec,
    NodeState,
    NodeStatus,
    RootCAMaterial,
    new_id,
)
from swarmlite.api.control import (
    CA_RENEW,
    INFO,
    JOIN,
    JOIN_TOKEN,
    LEAVE,
    NODE_INSPECT,
    NODE_LS,
    NODE_PS,
    NODE_RM,
    NODE_UPDATE,
    PUBLIC_PATHS,
    RAFT_JOIN,
    SERVICE_INSPECT,
    SERVICE_LS,
    SERVICE_RM,
    SERVICE_ROLLBACK,
    SERVICE_UPDATE,
    STACK_DEPLOY,
    STACK_LS,
    STACK_RM,
    TASK_LS,
    Empty,
    Info,
    JoinReply,
    JoinRequest,
    LeaveRequest,
    ManagerMessage,
    NodeUpdate,
    RaftJoinRequest,
    RenewReply,
    RenewRequest,
    SessionHello,
    SessionInfo,
)
from swarmlite.ca import (
    Identity,
    NodeCredentials,
    RootCA,
    client_context,
    csr_for_key,
    fetch_pinned_ca,
    issue_node_cert,
    new_key_and_csr,
    new_secret,
    parse_token,
    read_credentials,
    renewal_delay,
    server_context,
    write_credentials,
)
from swarmlite.clock import Clock, SystemClock
from swarmlite.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    SwarmliteError,
    Unavailable,
)
from swarmlite.log import kv
from swarmlite.manager.allocator import MESH_LABEL, POOL_LABEL, SIZE_LABEL
from swarmlite.manager.manager import Manager
from swarmlite.raft import Entry, EntryKind, Member, RaftCore, RaftStorage
from swarmlite.rpc import Peer, RpcClient, RpcServer
from swarmlite.runtime.docker import DockerDriver
from swarmlite.runtime.none import NoRuntime
from swarmlite.store import Tx

if TYPE_CHECKING:
    from swarmlite.network.node import NodeNetwork

log = logging.getLogger(__name__)

DEFAULT_PORT = 2377
DEFAULT_DATA_DIR = "/var/lib/swarmlite"
DEFAULT_SOCKET = "/run/swarmlite/swarmlite.sock"
_RESTART = 75  # run() asks its caller to start the daemon again (role changed)
_KERNEL_WIREGUARD = "/sys/module/wireguard"
MESH_KEY_ROTATION = 24 * 3600.0  # seconds between mesh key pairs ($SWARMLITE_MESH_KEY_ROTATION)
MESH_KEY_SPREAD = 5.0  # seconds for a next key to reach every peer before the switch


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
    # init only: where overlay subnets (and their size) and nodes' mesh addresses come from
    default_addr_pool: str | None = None  # default 10.0.0.0/8
    default_addr_pool_mask_length: int | None = None  # default 24
    mesh_pool: str | None = None  # default 100.96.0.0/16

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


# --------------------------------------------------------------------------- state on disk


def _node_file(data_dir: Path) -> Path:
    return data_dir / "node.json"


def _read_node(data_dir: Path) -> NodeFile:
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


def _write_node(data_dir: Path, state: NodeFile) -> None:
    path = _node_file(data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(state)))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


def load_options(data_dir: Path, socket: Path | None = None) -> NodeOptions:
    """The options saved at init/join, for `swarmlite daemon --data-dir`."""
    state = _read_node(data_dir)
    return NodeOptions(
        data_dir=data_dir,
        socket=socket or Path(state.socket),
        listen_addr=state.listen_addr,
        advertise_addr=state.advertise_addr,
        cert_expiry=state.cert_expiry,
        heartbeat_period=state.heartbeat_period,
        hostname=state.hostname,
        docker_host=state.docker_host,
    )


def _check_fresh(opts: NodeOptions) -> None:
    if _node_file(opts.data_dir).exists():
        state = _read_node(opts.data_dir)
        raise FailedPrecondition(
            f"{opts.data_dir} already holds a cluster (node {state.node_id}, cluster "
            f"{state.cluster_id})",
            hint=f"`swarmlite daemon --data-dir {opts.data_dir}` starts it again; "
            "`swarmlite leave --force` leaves that cluster",
        )


def _split(addr: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep:
        return addr, default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError as exc:
        raise InvalidArgument(f"address {addr!r} has a malformed port") from exc


def _check_listen(addr: str) -> None:
    host, port = _split(addr)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise FailedPrecondition(
                    f"listen address {addr} is already in use",
                    hint="another swarmlite (or other program) listens there; "
                    "choose another with --listen-addr",
                ) from exc
            raise InvalidArgument(f"cannot listen on {addr}: {exc.strerror}") from exc


def _hostname(opts: NodeOptions) -> str:
    return opts.hostname or os.environ.get("SWARMLITE_HOSTNAME") or socket.gethostname()


def _advertise(opts: NodeOptions) -> str:
    listen_host, listen_port = _split(opts.listen_addr)
    if opts.advertise_addr:
        host, port = _split(opts.advertise_addr, listen_port)
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
    _write_node(data_dir, state)


def init_cluster(opts: NodeOptions, *, force_new_cluster: bool = False) -> InitResult:
    """Write a new cluster's first state into opts.data_dir; the daemon is not started."""
    if force_new_cluster and _node_file(opts.data_dir).exists():
        return _force_new_cluster(opts)
    _check_fresh(opts)
    _check_listen(opts.listen_addr)
    advertise = _advertise(opts)
    node_id, cluster_id = new_id(), new_id()
    ca = RootCA.create(cluster_id)
    creds = issue_node_cert(
        ca,
        node_id,
        NodeRole.MANAGER.value,
        cluster_id,
        expiry_days=max(1, round(opts.cert_expiry / 86400)),
        addresses=[_split(advertise)[0]],
    )
    hostname = _hostname(opts)
    staging = _staging(opts.data_dir)
    try:
        write_credentials(staging / "certs", creds)
        storage = RaftStorage.open(staging / "raft")
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
                    cluster.spec.settings, heartbeat_period=opts.heartbeat_period
                ),
                labels=_pool_labels(opts),
            ),
        )
        node = Node(
            id=node_id,
            spec=NodeSpec(role=NodeRole.MANAGER),
            status=NodeStatus(
                state=NodeState.UNKNOWN,
                hostname=hostname,
                addresses=(_split(advertise)[0],),
                addr=advertise,
                version=__version__,
            ),
        )
        tx = Tx().create(cluster).create(node)
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
        )
        _commit_staging(staging, opts.data_dir, state)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("cluster initialised %s", kv(node=node_id, cluster=cluster_id, addr=advertise))
    return InitResult(node_id=node_id, cluster_id=cluster_id, advertise_addr=advertise)


def _pool_labels(opts: NodeOptions) -> dict[str, str]:
    """The cluster labels the allocator reads its pools from (checked here, at init)."""
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
    from swarmlite.store import MemoryStore

    state = _read_node(opts.data_dir)
    if state.role is not NodeRole.MANAGER:
        raise FailedPrecondition("--force-new-cluster needs a manager's data dir")
    raft_dir = opts.data_dir / "raft"
    storage = RaftStorage.open(raft_dir)
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
    from swarmlite.raft import HardState, Membership, Snapshot, SnapshotMeta

    advertise = _advertise(
        replace(opts, advertise_addr=opts.advertise_addr or state.advertise_addr)
    )
    membership = Membership((Member(state.node_id, advertise, True),))
    staging = _staging(opts.data_dir)
    try:
        fresh = RaftStorage.open(staging / "raft")
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
    parsed = parse_token(token)
    host, port = _split(manager)
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
            reply = await client.call(
                JOIN,
                JoinRequest(
                    token=token,
                    csr_pem=csr_pem,
                    hostname=hostname,
                    addr=advertise,
                    version=__version__,
                ),
                JoinReply,
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


# --------------------------------------------------------------------------- starting


def start_daemon(opts: NodeOptions, *, foreground: bool, timeout: float = 30.0) -> int:
    """Foreground: run until SIGTERM/SIGINT and return the exit code. Otherwise: spawn a
    detached daemon, wait until it is ready, and return its pid."""
    if foreground:
        swl_log.setup(os.environ.get("SWARMLITE_LOG_LEVEL", "INFO"))
        logging.getLogger("aiohttp").setLevel(logging.ERROR)
        while True:
            code = asyncio.run(Daemon(opts).run())
            if code != _RESTART:
                return code
            log.info("starting again in the node's new role")
    log_path = opts.data_dir / "swarmlite.log"
    argv = [
        sys.executable,
        "-m",
        "swarmlite",
        "daemon",
        "--data-dir",
        str(opts.data_dir),
        "--socket",
        str(opts.socket_path),
    ]
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(
                f"the swarmlite daemon exited with status {proc.returncode}",
                hint=f"its log {log_path} ends with:\n{_tail(log_path)}",
            )
        with contextlib.suppress(SwarmliteError):
            info = asyncio.run(local_info(opts.socket_path))
            if info.state == "active":
                return proc.pid
        time.sleep(0.1)
    raise Unavailable(
        f"the swarmlite daemon (pid {proc.pid}) was not ready within {timeout:g}s",
        hint=f"its log {log_path} ends with:\n{_tail(log_path)}",
    )


def _tail(path: Path, lines: int = 10) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


async def local_info(socket_path: Path) -> Info:
    client = RpcClient("http://localhost", None, unix_socket=str(socket_path), timeout=2.0)
    try:
        return await client.call(INFO, Empty(), Info)
    finally:
        await client.close()


# --------------------------------------------------------------------------- the daemon


class Daemon:
    def __init__(self, opts: NodeOptions, *, clock: Clock | None = None) -> None:
        self.opts = opts
        self.clock = clock or SystemClock()
        self.state = _read_node(opts.data_dir)
        self.certs_dir = opts.data_dir / "certs"
        self.creds = read_credentials(self.certs_dir)
        self._client_ssl = client_context(self.creds)
        self._server_ssl = server_context(self.creds, require_client_cert=False)
        self.manager: Manager | None = None
        self._ready = False
        self._exit_code = 0
        self._stop = asyncio.Event()
        self._rng = random.Random()
        self._leaving = False
        self._net: NodeNetwork | None = None

    def client_ssl(self) -> ssl.SSLContext:
        return self._client_ssl

    # ------------------------------------------------------------------ run

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        pid_file = self.opts.data_dir / "swarmlite.pid"
        pid_file.write_text(f"{os.getpid()}\n")
        local = RpcServer(None)
        local.add_unary(INFO, Empty, self.info)
        local.add_unary(LEAVE, LeaveRequest, self.leave)
        cluster_server: RpcServer | None = None
        role = self.state.role
        if role is NodeRole.MANAGER:
            self.manager = Manager(
                node_id=self.state.node_id,
                cluster_id=self.state.cluster_id,
                addr=self.state.advertise_addr,
                raft_dir=self.opts.data_dir / "raft",
                client_ssl=self.client_ssl,
                clock=self.clock,
                cert_expiry_days=self.state.cert_expiry / 86400,
                version=__version__,
            )
            cluster_server = RpcServer(
                self._server_ssl,
                public_paths=PUBLIC_PATHS,
                cluster_id=self.state.cluster_id,
                authorize=self._authorize,
            )
            self.manager.register(cluster_server)
            self.manager.register_control(local)
        else:
            for path in MANAGER_ONLY:
                local.add_unary(path, Empty, _not_a_manager)
        await local.start_unix(str(self.opts.socket_path))
        try:
            if cluster_server is not None:
                host, port = _split(self.state.listen_addr)
                await cluster_server.start(host, port)
            log.info(
                "swarmlite daemon started %s",
                kv(node=self.state.node_id, role=role.value, addr=self.state.advertise_addr),
            )
            async with asyncio.TaskGroup() as tasks:
                driver, runtime = await self._runtime()
                network = await self._network()
                worker: Worker | None = None

                async def on_message(message: ManagerMessage) -> None:
                    if worker is not None:
                        await worker.on_message(message)

                session = Session(
                    SessionHello(
                        node_id=self.state.node_id,
                        hostname=self.state.hostname,
                        addr=self.state.advertise_addr,
                        version=__version__,
                        runtime=f"{runtime.name} {runtime.version}" if runtime else "",
                        os=runtime.os if runtime else "",
                        arch=runtime.arch if runtime else "",
                        nano_cpus=runtime.nano_cpus if runtime else 0,
                        memory_bytes=runtime.memory_bytes if runtime else 0,
                        mesh_public_key=network.public_key if network else "",
                        mesh_next_key=network.next_key if network else "",
                        mesh_endpoint=network.endpoint if network else "",
                    ),
                    self.state.managers,
                    self.client_ssl,
                    self.clock,
                    self._on_info,
                    on_refused=self._on_refused,
                    on_message=on_message,
                )
                worker = Worker(
                    self.state.node_id,
                    self.state.cluster_id,
                    driver,
                    self.clock,
                    session.send,
                    network=network,
                )
                helpers = [
                    tasks.create_task(session.run()),
                    tasks.create_task(self._renew_loop()),
                    tasks.create_task(worker.run()),
                ]
                if network is not None:
                    helpers.append(tasks.create_task(self._rotate_mesh_keys(network, session)))
                if self.manager is not None:
                    running = tasks.create_task(self.manager.run())
                    if not self.manager.has_raft_state:
                        helpers.append(tasks.create_task(self._join_raft()))
                await self._stop.wait()
                for task in helpers:
                    task.cancel()
                if self.manager is not None:
                    await self.manager.shutdown()  # hands leadership over, then raft stops
                    await running
        finally:
            if self._net is not None:
                with contextlib.suppress(SwarmliteError):
                    await self._net.close()
            if cluster_server is not None:
                await cluster_server.stop()
            await local.stop()
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
        if self._leaving:
            leave_local(self.opts)
            log.info("left the cluster %s", kv(node=self.state.node_id))
        log.info("swarmlite daemon stopped %s", kv(node=self.state.node_id))
        return self._exit_code

    async def _runtime(self) -> tuple[RuntimeDriver, RuntimeInfo | None]:
        """This node's container runtime, or one that refuses every task if there is none."""
        path = self.state.docker_host.removeprefix("unix://")
        # Secrets and configs are bind-mounted from beside the socket: /run/swarmlite (a
        # tmpfs: never on disk) in production, the node's own directory in a lab.
        driver = DockerDriver(
            path,
            cluster_id=self.state.cluster_id,
            node_id=self.state.node_id,
            files_dir=self.opts.socket_path.parent / "files",
        )
        try:
            async with asyncio.timeout(10):
                info = await driver.info()
        except (SwarmliteError, TimeoutError) as exc:
            log.warning(
                "no container runtime: this node will refuse tasks %s",
                kv(docker_host=self.state.docker_host, error=getattr(exc, "message", repr(exc))),
            )
            await driver.close()
            return NoRuntime(self.state.docker_host), None
        log.info("container runtime %s", kv(name=info.name, version=info.version))
        return driver, info

    async def _network(self) -> NodeNetwork | None:
        """This node's mesh and overlays, when it can have them: a node on a loopback
        address shares its host with the others (tests, benchmarks), and a mesh needs root
        and WireGuard (the kernel's, or wireguard-go)."""
        host = _split(self.state.advertise_addr)[0]
        why = _no_overlay_because(host)
        if why:
            log.info("overlay networking is off %s", kv(reason=why))
            return None
        from swarmlite.network.node import NodeNetwork  # loaded only where it can run

        network = NodeNetwork(self.state.node_id, self.opts.data_dir, underlay_addr=host)
        await network.start()
        self._net = network
        log.info("overlay networking is on %s", kv(endpoint=network.endpoint))
        return network

    async def _rotate_mesh_keys(self, network: NodeNetwork, session: Session) -> None:
        """Give the mesh a new key pair every MESH_KEY_ROTATION seconds, without a gap:
        peers learn the next key first (through the leader), then this node switches."""
        interval = float(os.environ.get("SWARMLITE_MESH_KEY_ROTATION", MESH_KEY_ROTATION))
        while True:
            await self.clock.sleep(interval)
            try:
                next_key = network.mesh.begin_rotation()
                await session.rehello(
                    msgspec.structs.replace(session.hello, mesh_next_key=next_key)
                )
                await self.clock.sleep(MESH_KEY_SPREAD)  # every peer gets the next key
                key = await network.mesh.finish_rotation()
                hello = msgspec.structs.replace(
                    session.hello, mesh_public_key=key, mesh_next_key=""
                )
                await session.rehello(hello)
                log.info("mesh key rotated %s", kv(public_key=key))
            except SwarmliteError as exc:
                log.warning(
                    "mesh key rotation failed; trying again later %s", kv(error=exc.message)
                )

    def _authorize(self, identity: Identity) -> None:
        if self.manager is not None and self.manager.removed(identity.node_id):
            raise PermissionDenied(
                f"node {identity.node_id} was removed from the cluster; its certificate is revoked"
            )

    # ------------------------------------------------------------------ joining raft

    async def _join_raft(self) -> None:
        """A new manager asks the leader to add it to the raft membership."""
        while True:
            for address in self.state.managers:
                if address == self.state.advertise_addr:
                    continue
                client = RpcClient(f"https://{address}", self.client_ssl(), timeout=60.0)
                try:
                    await client.call(
                        RAFT_JOIN, RaftJoinRequest(addr=self.state.advertise_addr), Empty
                    )
                    log.info("joined the raft membership %s", kv(via=address))
                    self._ready = True
                    return
                except SwarmliteError as exc:
                    log.info("raft join not done yet %s", kv(via=address, error=exc.message))
                finally:
                    await client.close()
            await self.clock.sleep(1.0)

    # ------------------------------------------------------------------ session events

    async def _on_info(self, info: SessionInfo) -> None:
        if self.state.role is NodeRole.WORKER:
            self._ready = True
        managers = [m for m in info.managers if m]
        if managers and managers != self.state.managers:
            self.state.managers = managers
            _write_node(self.opts.data_dir, self.state)
        if info.role is not self.state.role:
            log.info(
                "the cluster changed this node's role %s",
                kv(old=self.state.role.value, new=info.role.value),
            )
            await self._renew(info.leader_addr)
            if info.role is NodeRole.WORKER:
                shutil.rmtree(self.opts.data_dir / "raft", ignore_errors=True)
            self.state.role = info.role
            _write_node(self.opts.data_dir, self.state)
            self._exit_code = _RESTART
            self._stop.set()

    async def _on_refused(self, exc: PermissionDenied) -> None:
        log.error("this node was refused by the cluster %s", kv(error=exc.message))

    # ------------------------------------------------------------------ certificates

    async def _renew_loop(self) -> None:
        while True:
            delay = renewal_delay(
                self.creds.cert_pem,
                now=_utcnow(self.clock),
                rng=self._rng,
            )
            await self.clock.sleep(max(delay, 1.0))
            try:
                await self._renew(None)
            except SwarmliteError as exc:
                log.warning("certificate renewal failed; retrying %s", kv(error=exc.message))
                await self.clock.sleep(30.0)

    async def _renew(self, via: str | None) -> None:
        csr_pem = csr_for_key(self.creds.key_pem)
        addresses = [a for a in [via, *self.state.managers] if a]
        last: SwarmliteError | None = None
        for address in addresses:
            client = RpcClient(f"https://{address}", self.client_ssl(), timeout=10.0)
            try:
                reply = await client.call(CA_RENEW, RenewRequest(csr_pem=csr_pem), RenewReply)
            except SwarmliteError as exc:
                last = exc
                continue
            finally:
                await client.close()
            self.creds = NodeCredentials(
                cert_pem=reply.cert_pem,
                key_pem=self.creds.key_pem,
                ca_cert_pem=self.creds.ca_cert_pem,
            )
            write_credentials(self.certs_dir, self.creds)
            self._client_ssl = client_context(self.creds)
            self._server_ssl.load_cert_chain(
                self.certs_dir / "node.crt", self.certs_dir / "node.key"
            )
            log.info("certificate renewed %s", kv(role=reply.role.value))
            return
        raise last or Unavailable("no manager to renew the certificate with")

    # ------------------------------------------------------------------ local API

    async def info(self, req: Empty, peer: Peer) -> Info:
        leader = None
        if self.manager is not None:
            leader = self.manager.raft.leader_id
        return Info(
            node_id=self.state.node_id,
            cluster_id=self.state.cluster_id,
            role=self.state.role,
            hostname=self.state.hostname,
            addr=self.state.advertise_addr,
            managers=list(self.state.managers),
            leader=leader,
            state="active" if self._is_ready() else "pending",
        )

    def _is_ready(self) -> bool:
        """A worker once its first session is up; a manager once it is a raft member that
        knows a leader and holds the cluster's state (so its control API can answer)."""
        manager = self.manager
        if manager is None:
            return self._ready
        return (
            manager.raft.core.is_voter()
            and manager.raft.leader_id is not None
            and bool(manager.memory.list(Cluster))
        )

    async def leave(self, req: LeaveRequest, peer: Peer) -> Empty:
        if self.state.role is NodeRole.MANAGER:
            manager = self.manager
            assert manager is not None
            others = manager.raft.core.membership.voters - {self.state.node_id}
            if not req.force:
                raise FailedPrecondition(
                    "this node is a manager: leaving "
                    + (
                        f"leaves {len(others)} managers; without a raft quorum the cluster "
                        "is inaccessible"
                        if others
                        else "erases the cluster's whole state"
                    ),
                    hint="demote it first (`swarmlite node demote`), or use `--force`",
                )
            if others:
                # Hand leadership over and leave the raft membership before stopping.
                request = NodeUpdate(ref=self.state.node_id, role=NodeRole.WORKER, force=True)
                await manager.nodes.update(request, peer)
        self._exit_code = 0
        asyncio.get_running_loop().call_later(0.1, self._leave_now)
        return Empty()

    def _leave_now(self) -> None:
        self._leaving = True
        self._stop.set()


def _no_overlay_because(host: str) -> str:
    """Why this node cannot run the mesh and overlays ("" when it can)."""
    if host.startswith("127.") or host == "::1":
        return "the node advertises a loopback address"
    if os.geteuid() != 0:
        return "the daemon does not run as root"
    if shutil.which("wireguard-go") is None and not os.path.exists(_KERNEL_WIREGUARD):
        return "neither kernel WireGuard nor wireguard-go is available"
    return ""


MANAGER_ONLY = (
    NODE_LS,
    NODE_INSPECT,
    NODE_UPDATE,
    NODE_RM,
    NODE_PS,
    JOIN_TOKEN,
    STACK_DEPLOY,
    STACK_LS,
    STACK_RM,
    SERVICE_LS,
    SERVICE_INSPECT,
    SERVICE_UPDATE,
    SERVICE_ROLLBACK,
    SERVICE_RM,
    TASK_LS,
)


async def _not_a_manager(req: Empty, peer: Peer) -> None:
    raise FailedPrecondition(
        "this node is not a manager: workers can't be used to view or modify cluster state",
        hint="run this command on a manager, or promote this node to a manager",
    )


def _utcnow(clock: Clock) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(clock.wall(), tz=datetime.UTC)
