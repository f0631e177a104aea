"""One swarmlite node: the daemon that `init`/`join` start and `swarmlite daemon` restarts.

Owns the wiring of a node's layers and no behaviour of its own: it picks the implementations
(runtime driver, network), connects their callbacks and registers their routes; its state on
disk is `bootstrap`'s (re-exported here for the CLI). The data dir holds::

    node.json        who this node is: ids, role, addresses, the managers it knows
    certs/           node.key (0600), node.crt, ca.crt
    raft/            the raft log and snapshots (managers only)
    swarmlite.pid    the running daemon's pid
    swarmlite.log    what a detached daemon logs
    dashboard.token  the dashboard's access token (0600), made on its first start
    dashboard.addr   where the running dashboard listens

`init_cluster` and `join_cluster` (in `bootstrap`) write a node's first state;
`start_daemon` runs the daemon in the foreground or detached. A manager daemon runs the
raft member, the store and the manager's APIs on the cluster port (a worker does not even
load their code); every daemon keeps a session with the leader's dispatcher and serves the
local CLI on a unix socket. Every
daemon renews its certificate (`ca.CertRenewer`) and, with a mesh, rotates its mesh keys
(`network.rotation`); a new manager asks into the raft membership and a leaving one hands
over first (`manager.membership`). When the cluster changes this node's role, the daemon
renews its certificate and starts again in the new role, in the same process. With
`--metrics-addr` it serves Prometheus metrics there (`metrics`) and samples its tasks'
container stats; without, neither the listener nor the sampling exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from swarmlite import __version__
from swarmlite import log as swl_log
from swarmlite.agent.dockersocket import DockerSocketSwap
from swarmlite.agent.driver import RuntimeDriver, RuntimeInfo
from swarmlite.agent.session import Session
from swarmlite.agent.standalone import StandaloneNetworks
from swarmlite.agent.usage import UsageReporter
from swarmlite.agent.worker import Worker
from swarmlite.api import NodeRole
from swarmlite.api.control import (
    CONTROL,
    Empty,
    Info,
    LeaveRequest,
    ManagerMessage,
    SessionHello,
    SessionInfo,
    UnlockRequest,
    VersionInfo,
)
from swarmlite.api.routes import (
    INFO,
    LEAVE,
    NOT_A_MANAGER,
    PUBLIC_PATHS,
    ROUTES,
    UNLOCK,
    VERSION,
)
from swarmlite.bootstrap import (  # the CLI reaches the node's state through daemon
    DEFAULT_DATA_DIR,
    DEFAULT_PORT,
    DEFAULT_SOCKET,
    InitResult,
    JoinResult,
    NodeOptions,
    change_role,
    init_cluster,
    join_cluster,
    leave_local,
    load_options,
    read_node,
    remember_managers,
    split_addr,
)
from swarmlite.ca import CertRenewer
from swarmlite.clock import Clock, SystemClock
from swarmlite.dashboard import DashboardServer
from swarmlite.dashboard import check_addr as check_dashboard_addr
from swarmlite.dashboard import read_addr as read_dashboard_addr
from swarmlite.dashboard import read_token as read_dashboard_token
from swarmlite.dashboard import url as dashboard_url_for
from swarmlite.dockerapi import DockerApiServer, tls_context
from swarmlite.errors import FailedPrecondition, SwarmliteError, Unavailable
from swarmlite.log import kv
from swarmlite.malloc import MALLOC_ENV, daemon_environ, tune_glibc, use_daemon_malloc
from swarmlite.network.rotation import MESH_KEY_ROTATION, MeshKeyRotation
from swarmlite.rpc import Peer, RpcClient, RpcServer
from swarmlite.rpc.limits import shrink_tls_buffers
from swarmlite.runtime.docker import DockerDriver
from swarmlite.runtime.none import NoRuntime

if TYPE_CHECKING:
    from swarmlite.manager.manager import Manager
    from swarmlite.metrics import MetricsServer, NodeMetrics, TaskStatsSampler
    from swarmlite.network.node import NodeNetwork
    from swarmlite.raft.sealing import DataKeys

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_PORT",
    "DEFAULT_SOCKET",
    "Daemon",
    "InitResult",
    "JoinResult",
    "NodeOptions",
    "check_dashboard_addr",
    "check_metrics_addr",
    "dashboard_url",
    "init_cluster",
    "join_cluster",
    "leave_local",
    "load_options",
    "local_info",
    "start_daemon",
    "stop_running",
    "use_daemon_malloc",
]

log = logging.getLogger(__name__)

_RESTART = 75  # run() asks its caller to start the daemon again (role changed, disk back)
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_MIN_FREE_BYTES = 16 * 1024 * 1024  # free space before a manager whose disk filled starts again
_SPACE_POLL = 0.5  # seconds between looks at the free space


def _existing_dir(path: Path) -> Path:
    """The nearest directory at or above ``path`` that exists (where to look for space)."""
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


def _leaves(group: BaseExceptionGroup[SwarmliteError]) -> list[SwarmliteError]:
    """The errors of an exception group, however deeply nested."""
    found: list[SwarmliteError] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found += _leaves(exc)
        else:
            found.append(exc)
    return found


_KERNEL_WIREGUARD = "/sys/module/wireguard"
DOCKER_API_PORT = 2376  # dockerd's TLS port, when --docker-api-addr names none
LOG_FILE_ENV = "SWARMLITE_LOG_FILE"  # a detached daemon's log file, rotated by size


# --------------------------------------------------------------------------- starting


def check_metrics_addr(addr: str) -> None:
    """`--metrics-addr` is ADDR:PORT and free to listen on (see `metrics.check_addr`)."""
    from swarmlite.metrics import check_addr

    check_addr(addr)


def start_daemon(opts: NodeOptions, *, foreground: bool, timeout: float = 30.0) -> int:
    """Foreground: run until SIGTERM/SIGINT and return the exit code. Otherwise: spawn a
    detached daemon, wait until it is ready, and return its pid."""
    if foreground:
        level = os.environ.get("SWARMLITE_LOG_LEVEL", "INFO")
        log_to = os.environ.get(LOG_FILE_ENV)
        if log_to:  # detached by start_daemon: a size-rotated file (swarmlite.log)
            swl_log.setup_file(Path(log_to), level)
        else:
            swl_log.setup(level)
        logging.getLogger("aiohttp").setLevel(logging.ERROR)
        log.info("memory allocator %s", kv(malloc=os.environ.get(MALLOC_ENV, "python")))
        tune_glibc()
        tune_gc()
        shrink_tls_buffers()
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
            env={**daemon_environ(), LOG_FILE_ENV: str(log_path)},
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
            if info.state in ("active", "locked"):  # locked: up, waiting for `swarm unlock`
                return proc.pid
        time.sleep(0.1)
    raise Unavailable(
        f"the swarmlite daemon (pid {proc.pid}) was not ready within {timeout:g}s",
        hint=f"its log {log_path} ends with:\n{_tail(log_path)}",
    )


# The cyclic collector's thresholds (objects allocated less freed before a young pass; young
# passes before a middle one; middle passes before a full one). Python's defaults (700, 10,
# 10) suit a small heap; a manager holds every task of the cluster, and each full pass walks
# all of it: deploying 100,000 tasks on 1,000 nodes spent 12 s of 36 in 43 full passes
# (scripts/bench/scale.py). A full pass still runs when its objects grew by a quarter.
GC_THRESHOLDS = (20_000, 20, 100)


def tune_gc() -> None:
    """Collect cycles less often: the store's objects hold none (frozen structs), and
    what does (asyncio's futures and tracebacks) is found as before, later."""
    gc.set_threshold(*GC_THRESHOLDS)


def _tail(path: Path, lines: int = 10) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def stop_running(data_dir: Path, timeout: float = 30.0) -> int | None:
    """Stop the daemon that runs on ``data_dir`` (SIGTERM, as systemd would) and wait until
    it has exited; return its pid, or None if none runs. A daemon is the pid in the data
    dir's pid file whose command line names ``data_dir`` (so a reused pid is not touched)."""
    try:
        pid = int((data_dir / "swarmlite.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if not _runs_on(pid, data_dir):
        return None
    log.info("stopping the running daemon %s", kv(pid=pid, data_dir=data_dir))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _runs_on(pid, data_dir):
        if time.monotonic() > deadline:
            raise Unavailable(
                f"the swarmlite daemon of {data_dir} (pid {pid}) did not stop within {timeout:g}s",
                hint=f"stop it (`kill -9 {pid}`) and run the command again",
            )
        time.sleep(0.1)
    return pid


def _runs_on(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a live (not zombie) process whose command line names ``data_dir``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status and os.fsencode(str(data_dir)) in cmdline


def dashboard_url(data_dir: Path) -> str:
    """The URL, with its token, of the dashboard this node serves (`swarmlite dashboard`):
    where it runs now, else where node.json says it will."""
    state = read_node(data_dir)
    addr = read_dashboard_addr(data_dir) or state.dashboard_addr
    if not addr:
        raise FailedPrecondition(
            "this node serves no dashboard",
            hint="start it with `swarmlite daemon --dashboard-addr ADDR:PORT` (a manager's)",
        )
    if state.role is not NodeRole.MANAGER:
        raise FailedPrecondition(
            "this node is a worker: only managers serve the dashboard",
            hint="run `swarmlite dashboard` on a manager, or promote this node",
        )
    host = split_addr(state.advertise_addr)[0]
    return dashboard_url_for(addr, read_dashboard_token(data_dir), advertise_host=host)


async def local_info(socket_path: Path) -> Info:
    client = RpcClient("http://localhost", None, unix_socket=str(socket_path), timeout=2.0)
    try:
        return await client.request(INFO, Empty())
    finally:
        await client.close()


# --------------------------------------------------------------------------- the daemon


class Daemon:
    def __init__(self, opts: NodeOptions, *, clock: Clock | None = None) -> None:
        self.opts = opts
        self.clock = clock or SystemClock()
        self.state = read_node(opts.data_dir)
        self._rng = random.Random()
        self.certs = CertRenewer(
            opts.data_dir / "certs", lambda: self.state.managers, self.clock, rng=self._rng
        )
        self.manager: Manager | None = None
        self._session: Session | None = None
        self._exit_code = 0
        self._stop = asyncio.Event()
        self._leaving = False
        self._net: NodeNetwork | None = None
        self._runtime_name = ""  # "docker 20.10.24", once the runtime has answered
        self._disk_full: Path | None = None  # raft's disk ran out of space: wait, start again
        self._signalled = False  # SIGTERM/SIGINT: stop for good

    def _on_signal(self) -> None:
        self._signalled = True
        self._stop.set()

    # ------------------------------------------------------------------ run

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal)
        pid_file = self.opts.data_dir / "swarmlite.pid"
        pid_file.write_text(f"{os.getpid()}\n")
        keys, unlock_key = None, ""
        if self.state.role is NodeRole.MANAGER:  # a worker loads no manager code
            from swarmlite.raft.sealing import is_locked

            if is_locked(self.opts.data_dir / "raft"):
                unlocked = await self._locked()
                if unlocked is None:  # stopped while locked
                    with contextlib.suppress(FileNotFoundError):
                        pid_file.unlink()
                    return 0
                keys, unlock_key = unlocked
        local = RpcServer(None)
        local.add_route(INFO, self.info)
        local.add_route(UNLOCK, _not_locked)
        local.add_route(VERSION, self.version)
        local.add_route(LEAVE, self.leave)
        cluster_server: RpcServer | None = None
        role = self.state.role
        metrics = self._metrics()
        metrics_server: MetricsServer | None = None
        if role is NodeRole.MANAGER:
            from swarmlite.manager.manager import Manager

            self.manager = Manager(
                node_id=self.state.node_id,
                cluster_id=self.state.cluster_id,
                addr=self.state.advertise_addr,
                raft_dir=self.opts.data_dir / "raft",
                client_ssl=self.certs.client_ssl,
                clock=self.clock,
                version=__version__,
                managers=lambda: self.state.managers,
                keys=keys,
                unlock_key=unlock_key,
            )
            cluster_server = RpcServer(
                self.certs.server_ssl,
                public_paths=PUBLIC_PATHS,
                cluster_id=self.state.cluster_id,
                authorize=self.manager.authorize,
            )
            cluster_server.add_route(INFO, self.info)
            cluster_server.add_route(VERSION, self.version)
            self.manager.register(cluster_server)
            self.manager.register_control(local)
            if metrics is not None:
                manager = self.manager
                metrics.add_manager(
                    raft=manager.raft,
                    memory=manager.memory,
                    loops=manager.loop_stats,
                    sessions=lambda: len(manager.dispatcher.sessions),
                    heartbeats=lambda: manager.heartbeats.received,
                )
        else:
            for route in ROUTES:
                if route.role == "manager":
                    local.add_route(
                        route, _not_a_manager_stream if route.stream else _not_a_manager
                    )
        docker_api = self._docker_api()
        dashboard = self._dashboard()
        await local.start_unix(str(self.opts.socket_path))
        try:
            if metrics is not None:  # first: a held port stops the daemon before it joins in
                from swarmlite.metrics import MetricsServer

                metrics_server = MetricsServer(metrics.registry, self.opts.metrics_addr)
                await metrics_server.start()
            if dashboard is not None:  # as early: a held port stops the daemon at once
                await dashboard.start()
            await docker_api.start()
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
                        generic_resources=list(self.state.generic_resources),
                        mesh_public_key=network.public_key if network else "",
                        mesh_next_key=network.next_key if network else "",
                        mesh_endpoint=network.endpoint if network else "",
                    ),
                    self.state.managers,
                    self.certs.client_ssl,
                    self.clock,
                    self._on_info,
                    on_message=on_message,
                )
                self._session = session
                worker = Worker(
                    self.state.node_id,
                    self.state.cluster_id,
                    driver,
                    self.clock,
                    session.send,
                    network=network,
                    docker_socket=self._docker_socket_swap(docker_api.socket_path),
                )
                # `docker run --network <attachable overlay>` on this node's Docker API
                docker_api.set_standalone(StandaloneNetworks(session.request, network, self.clock))

                async def announce_mesh_keys(public_key: str, next_key: str) -> None:
                    hello = msgspec.structs.replace(
                        session.hello, mesh_public_key=public_key, mesh_next_key=next_key
                    )
                    await session.rehello(hello)

                rotation: MeshKeyRotation | None = None
                if network is not None:
                    interval = os.environ.get("SWARMLITE_MESH_KEY_ROTATION", MESH_KEY_ROTATION)
                    rotation = MeshKeyRotation(
                        network.mesh,
                        announce_mesh_keys,
                        self.clock,
                        interval=float(interval),
                        rng=self._rng,
                    )
                    tasks.create_task(rotation.run())
                usage = UsageReporter(
                    lambda: worker.tasks,
                    driver,
                    session.send,
                    self.clock,
                    requests=network.mesh_requests if network is not None else None,
                )
                helpers = [
                    tasks.create_task(session.run()),
                    tasks.create_task(worker.run()),
                    tasks.create_task(usage.run()),
                ]
                if metrics is not None:
                    sampler = self._task_stats(metrics, worker, driver)
                    helpers.append(tasks.create_task(sampler.run()))
                tasks.create_task(self.certs.run())
                if dashboard is not None:
                    tasks.create_task(dashboard.run())
                if self.manager is not None:
                    running = tasks.create_task(self._run_manager(self.manager))
                await self._stop.wait()
                for task in helpers:
                    task.cancel()
                self.certs.stop()
                if dashboard is not None:
                    dashboard.stop()
                if rotation is not None:
                    rotation.stop()
                if self.manager is not None:
                    await self.manager.shutdown()  # hands leadership over, then raft stops
                    await running
        finally:
            if self._net is not None:
                with contextlib.suppress(SwarmliteError):
                    await self._net.close()
            if cluster_server is not None:
                await cluster_server.stop()
            await docker_api.stop()
            if dashboard is not None:
                await dashboard.close()
            if metrics_server is not None:
                await metrics_server.stop()
            await local.stop()
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
        if self._leaving:
            leave_local(self.opts)
            log.info("left the cluster %s", kv(node=self.state.node_id))
        log.info("swarmlite daemon stopped %s", kv(node=self.state.node_id))
        if self._disk_full is not None and not self._signalled:
            return await self._wait_for_space(self._disk_full)
        return self._exit_code

    async def _run_manager(self, manager: Manager) -> None:
        """The manager, until it stops; a full disk under its Raft data stops the daemon
        (not the process): it starts again by itself once there is space (see run)."""
        try:
            await manager.run()
        except* SwarmliteError as group:
            full = [e for e in _leaves(group) if e.details.get("errno") in _NO_SPACE]
            if not full:
                raise
            path = str(full[0].details.get("path", self.opts.data_dir))
            log.error(
                "the manager stopped: no space left for its raft data %s",
                kv(path=path, error=full[0].message),
            )
            self._disk_full = Path(path)
            self._stop.set()

    async def _wait_for_space(self, path: Path) -> int:
        """Wait until the file system of ``path`` has room again, then ask to be started
        again (the raft state is recovered from disk; nothing acknowledged was lost: a
        write is acknowledged only once it is on disk)."""
        where = _existing_dir(path)
        last_said = -math.inf
        while not self._signalled:
            try:
                stats = os.statvfs(where)
                free = stats.f_bavail * stats.f_frsize
            except OSError:
                free = 0
            if free >= _MIN_FREE_BYTES:
                log.info("disk space is back: starting again %s", kv(path=where, free=free))
                return _RESTART
            now = time.monotonic()
            if now - last_said >= 10:
                log.warning(
                    "waiting for disk space; the node starts again by itself %s",
                    kv(path=where, free=free, needed=_MIN_FREE_BYTES),
                )
                last_said = now
            await asyncio.sleep(_SPACE_POLL)
        return self._exit_code

    def _metrics(self) -> NodeMetrics | None:
        """This node's metrics registry, when --metrics-addr asks for one (the metrics
        layer and prometheus_client are loaded only then)."""
        if not self.opts.metrics_addr:
            return None
        from swarmlite.metrics import NodeMetrics

        return NodeMetrics(
            node_id=self.state.node_id,
            hostname=self.state.hostname,
            role=self.state.role.value,
            version=__version__,
        )

    def _task_stats(
        self, metrics: NodeMetrics, worker: Worker, driver: RuntimeDriver
    ) -> TaskStatsSampler:
        """The sampler of this node's running tasks' container stats (run while it runs)."""
        return metrics.add_tasks(lambda: worker.tasks.values(), driver, self.clock)

    def _docker_api(self) -> DockerApiServer:
        """The Docker Engine API beside the local socket; on TCP too when asked (with TLS
        that requires client certificates). A worker serves it as well: its manager calls
        answer "not a manager" through the control API."""
        opts = self.opts
        tcp, context = None, None
        if opts.docker_api_addr:
            tcp = split_addr(opts.docker_api_addr, DOCKER_API_PORT)
            context = tls_context(
                Path(opts.docker_api_tls_cert),
                Path(opts.docker_api_tls_key),
                Path(opts.docker_api_tls_ca),
            )
        return DockerApiServer(
            opts.socket_path,
            tcp_addr=tcp,
            ssl_context=context,
            version=__version__,
            docker_host=self.state.docker_host,
        )

    def _dashboard(self) -> DashboardServer | None:
        """The read-only dashboard, on a manager asked for one: it reads the cluster
        through this node's control socket."""
        addr = self.opts.dashboard_addr
        if not addr:
            return None
        if self.state.role is not NodeRole.MANAGER:
            log.info("no dashboard: only managers serve it %s", kv(addr=addr))
            return None
        return DashboardServer(self.opts.socket_path, addr, self.opts.data_dir, clock=self.clock)

    def _docker_socket_swap(self, api_socket: Path) -> DockerSocketSwap:
        """Tasks that bind the runtime's socket get this node's Docker API socket there:
        the runtime's is this node's --docker-host (as given, and with links resolved) as
        well as Docker's usual paths (api.dockersocket)."""
        path = self.state.docker_host.removeprefix("unix://")  # tcp://... names no path
        paths = [path, os.path.realpath(path)] if path.startswith("/") else []
        return DockerSocketSwap.for_node(str(api_socket), paths)

    async def _runtime(self) -> tuple[RuntimeDriver, RuntimeInfo | None]:
        """This node's container runtime, or one that refuses every task if there is none."""
        path = self.state.docker_host.removeprefix("unix://")
        # Secrets and configs are bind-mounted from a memory-backed directory beside the
        # socket: /run/swarmlite/files in production; where that is on a disk the driver
        # mounts a tmpfs on it (a lab mounts one before its dockerd starts).
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
        self._runtime_name = f"{info.name} {info.version}"
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

    # ------------------------------------------------------------------ session events

    async def _on_info(self, info: SessionInfo) -> None:
        remember_managers(self.opts.data_dir, self.state, info.managers)
        # A root CA rotation: trust what the cluster trusts now, renew if it is due.
        self.certs.follow_ca(
            root_pem=info.ca_cert_pem,
            trust_pem=info.ca_trust_pem,
            chain_pem=info.ca_chain_pem,
            via=info.leader_addr,
        )
        if info.role is not self.state.role:
            log.info(
                "the cluster changed this node's role %s",
                kv(old=self.state.role.value, new=info.role.value),
            )
            await self.certs.renew(info.leader_addr)
            change_role(self.opts.data_dir, self.state, info.role)
            self._exit_code = _RESTART
            self._stop.set()

    # ------------------------------------------------------------------ local API

    async def version(self, req: Empty, peer: Peer) -> VersionInfo:
        return VersionInfo(
            version=__version__,
            api_version=CONTROL.rsplit("/", 1)[-1],
            python=platform.python_version(),
            os=platform.system().lower(),
            arch=platform.machine(),
            runtime=self._runtime_name,
        )

    async def _locked(self) -> tuple[DataKeys, str] | None:
        """A locked manager (autolock): serve only `swarm unlock` (and INFO, saying
        "locked") on the local socket until the right key comes; every other call is
        refused, saying so. None when the daemon is stopped first."""
        from swarmlite.raft.sealing import load_keys, parse_unlock_key

        raft_dir = self.opts.data_dir / "raft"
        unlocked: asyncio.Future[tuple[DataKeys, str]] = asyncio.get_running_loop().create_future()

        async def unlock(req: UnlockRequest, peer: Peer) -> Empty:
            keys = load_keys(raft_dir, parse_unlock_key(req.key))  # PermissionDenied if wrong
            if not unlocked.done():
                unlocked.set_result((keys, req.key.strip()))
            log.info("unlocked %s", kv(node=self.state.node_id))
            return Empty()

        async def info(req: Empty, peer: Peer) -> Info:
            return msgspec.structs.replace(await self.info(req, peer), state="locked")

        server = RpcServer(None)
        server.add_route(UNLOCK, unlock)
        server.add_route(INFO, info)
        server.add_route(VERSION, self.version)
        for route in ROUTES:
            if route not in (UNLOCK, INFO, VERSION):
                server.add_route(route, _locked_stream if route.stream else _locked_call)
        await server.start_unix(str(self.opts.socket_path))
        log.warning(
            "this manager is locked: run `swarmlite swarm unlock` on it %s",
            kv(node=self.state.node_id),
        )
        stopping: asyncio.Future[bool] = asyncio.ensure_future(self._stop.wait())
        waiting: set[asyncio.Future[object]] = {unlocked, stopping}  # type: ignore[arg-type]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            await server.stop()
        return unlocked.result() if unlocked.done() else None

    async def info(self, req: Empty, peer: Peer) -> Info:
        # A manager is ready once its control API can answer; a worker once a manager
        # has answered its session.
        if self.manager is not None:
            leader, ready = self.manager.raft.leader_id, self.manager.ready
        else:
            leader, ready = None, self._session is not None and self._session.informed
        return Info(
            version=__version__,
            runtime=self._runtime_name,
            data_dir=str(self.opts.data_dir),
            node_id=self.state.node_id,
            cluster_id=self.state.cluster_id,
            role=self.state.role,
            hostname=self.state.hostname,
            addr=self.state.advertise_addr,
            managers=list(self.state.managers),
            leader=leader,
            state="active" if ready else "pending",
        )

    async def leave(self, req: LeaveRequest, peer: Peer) -> Empty:
        if self.manager is not None:
            await self.manager.leave(force=req.force, peer=peer)
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


def _worker_refusal() -> FailedPrecondition:
    return FailedPrecondition(
        "this node is not a manager: workers can't be used to view or modify cluster state",
        hint="run this command on a manager, or promote this node to a manager",
        details={"refusal": NOT_A_MANAGER},
    )


def _locked_refusal() -> FailedPrecondition:
    return FailedPrecondition(
        "this manager is locked: it serves nothing until it is unlocked",
        hint="run `swarmlite swarm unlock` on this node and give the cluster's unlock key "
        "(`swarmlite swarm unlock-key` on another manager shows it)",
        details={"refusal": "locked"},
    )


async def _locked_call(req: msgspec.Struct, peer: Peer) -> msgspec.Struct:
    raise _locked_refusal()


async def _locked_stream(req: msgspec.Struct, peer: Peer) -> AsyncIterator[msgspec.Struct]:
    nothing: tuple[msgspec.Struct, ...] = ()
    for item in nothing:
        yield item
    raise _locked_refusal()


async def _not_locked(req: UnlockRequest, peer: Peer) -> Empty:
    raise FailedPrecondition("this node is not locked", hint="there is nothing to unlock")


async def _not_a_manager(req: msgspec.Struct, peer: Peer) -> msgspec.Struct:
    raise _worker_refusal()


async def _not_a_manager_stream(req: msgspec.Struct, peer: Peer) -> AsyncIterator[msgspec.Struct]:
    nothing: tuple[msgspec.Struct, ...] = ()
    for item in nothing:  # an async generator whose first step is the refusal
        yield item
    raise _worker_refusal()
