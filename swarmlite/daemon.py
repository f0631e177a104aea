"""One swarmlite node: the daemon that `init`/`join` start and `swarmlite daemon` restarts.

Owns the wiring of a node's layers; its state on disk is `bootstrap`'s (re-exported here for
the CLI). The data dir holds::

    node.json        who this node is: ids, role, addresses, the managers it knows
    certs/           node.key (0600), node.crt, ca.crt
    raft/            the raft log and snapshots (managers only)
    swarmlite.pid    the running daemon's pid
    swarmlite.log    what a detached daemon logs

`init_cluster` and `join_cluster` (in `bootstrap`) write a node's first state;
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
import logging
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import time
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
    NodeRole,
)
from swarmlite.api.control import (
    CA_RENEW,
    CONFIG_PATHS,
    INFO,
    JOIN_TOKEN,
    LEAVE,
    NETWORK_CREATE,
    NETWORK_INSPECT,
    NETWORK_LS,
    NETWORK_RM,
    NODE_INSPECT,
    NODE_LS,
    NODE_PS,
    NODE_RM,
    NODE_UPDATE,
    PUBLIC_PATHS,
    RAFT_JOIN,
    SECRET_PATHS,
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
    LeaveRequest,
    ManagerMessage,
    NodeUpdate,
    RaftJoinRequest,
    RenewReply,
    RenewRequest,
    SessionHello,
    SessionInfo,
)
from swarmlite.bootstrap import (  # the CLI reaches the node's state through daemon
    DEFAULT_DATA_DIR,
    DEFAULT_PORT,
    DEFAULT_SOCKET,
    InitResult,
    JoinResult,
    NodeOptions,
    init_cluster,
    join_cluster,
    leave_local,
    load_options,
    read_node,
    split_addr,
    write_node,
)
from swarmlite.ca import (
    Identity,
    NodeCredentials,
    client_context,
    csr_for_key,
    read_credentials,
    renewal_delay,
    server_context,
    write_credentials,
)
from swarmlite.clock import Clock, SystemClock
from swarmlite.errors import (
    FailedPrecondition,
    PermissionDenied,
    SwarmliteError,
    Unavailable,
)
from swarmlite.log import kv
from swarmlite.manager.manager import Manager
from swarmlite.rpc import Peer, RpcClient, RpcServer
from swarmlite.runtime.docker import DockerDriver
from swarmlite.runtime.none import NoRuntime

if TYPE_CHECKING:
    from swarmlite.network.node import NodeNetwork

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_PORT",
    "DEFAULT_SOCKET",
    "Daemon",
    "InitResult",
    "JoinResult",
    "NodeOptions",
    "init_cluster",
    "join_cluster",
    "leave_local",
    "load_options",
    "local_info",
    "start_daemon",
]

log = logging.getLogger(__name__)

_RESTART = 75  # run() asks its caller to start the daemon again (role changed)
_KERNEL_WIREGUARD = "/sys/module/wireguard"
MESH_KEY_ROTATION = 24 * 3600.0  # seconds between mesh key pairs ($SWARMLITE_MESH_KEY_ROTATION)
MESH_KEY_SPREAD = 5.0  # seconds for a next key to reach every peer before the switch


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
        self.state = read_node(opts.data_dir)
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
                host, port = split_addr(self.state.listen_addr)
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
        host = split_addr(self.state.advertise_addr)[0]
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
        """Give the mesh a new key pair every MESH_KEY_ROTATION seconds (give or take a
        tenth, so that nodes started together do not switch together), without a gap:
        peers learn the next key first (through the leader), then this node switches."""
        interval = float(os.environ.get("SWARMLITE_MESH_KEY_ROTATION", MESH_KEY_ROTATION))
        while True:
            await self.clock.sleep(interval * random.uniform(0.9, 1.1))
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
            write_node(self.opts.data_dir, self.state)
        if info.role is not self.state.role:
            log.info(
                "the cluster changed this node's role %s",
                kv(old=self.state.role.value, new=info.role.value),
            )
            await self._renew(info.leader_addr)
            if info.role is NodeRole.WORKER:
                shutil.rmtree(self.opts.data_dir / "raft", ignore_errors=True)
            self.state.role = info.role
            write_node(self.opts.data_dir, self.state)
            self._exit_code = _RESTART
            self._stop.set()

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
    NETWORK_CREATE,
    NETWORK_LS,
    NETWORK_INSPECT,
    NETWORK_RM,
    *SECRET_PATHS,
    *CONFIG_PATHS,
)


async def _not_a_manager(req: Empty, peer: Peer) -> None:
    raise FailedPrecondition(
        "this node is not a manager: workers can't be used to view or modify cluster state",
        hint="run this command on a manager, or promote this node to a manager",
    )


def _utcnow(clock: Clock) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(clock.wall(), tz=datetime.UTC)
