"""A whole cluster on one machine: ``up``, ``down``, ``status`` and ``exec_command``;
``kill_host`` and ``restart_daemon`` for failure tests.

Owns the order of things. ``up`` checks what the lab needs, picks a free /24 of
198.18.0.0/15, makes a switch namespace with the underlay bridge, a registry namespace and
one namespace per host (IPv6 off before eth0 exists, IPv4 forwarding on), starts every
host's dockerd and the registry, pushes the test images, then makes the cluster with the
real CLI: ``init`` on h1, ``join`` with the manager token on h2..hM and the worker token on
the rest, and waits until every node is READY. Any failure on the way tears down what was
made and raises the failure.

``down`` removes everything the lab made, in an order that lets each thing stop cleanly:
swarmlite daemons (SIGTERM), containers (through each dockerd, else SIGKILL in their
cgroups), dockerds and the registry (SIGTERM, then SIGKILL), then anything still in the
lab's cgroups or namespaces (SIGKILL: containerd, shims, stray ``lab exec`` shells), mounts
under the lab dir, namespaces and their links, cgroup directories, and the files ``up``
made. It works from lab.json and also from the lab's names (``swl-<id>-*``), so it cleans
up after a crash of ``up`` or of any process, and it is idempotent.

Does not own the kernel calls (``lab.netns``, ``lab.procs``), the daemons' command lines
(``lab.daemons``) nor any printing (``cli.commands.lab``).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from swarmlite.api import NodeState
from swarmlite.api.control import ListRequest
from swarmlite.api.routes import NODE_LS
from swarmlite.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SwarmliteError,
    Unavailable,
)
from swarmlite.lab import daemons, netns, procs
from swarmlite.lab.state import (
    DEFAULT_DIR,
    DIR_ENV,
    MAX_NODES,
    METRICS_PORT,
    REGISTRY_HOST_OCTET,
    REGISTRY_PORT,
    SOCKET_LIMIT,
    Host,
    Journal,
    LabState,
    Proc,
    lab_id,
    load,
    name_prefix,
    remove_state,
)
from swarmlite.log import kv
from swarmlite.rpc import ControlClient as Client
from swarmlite.runtime.taskfiles import mount_tmpfs
from swarmlite.testing import podman
from swarmlite.testing.cleanup import mounts_under, remove_cgroup_tree, unmount_under
from swarmlite.testing.images import busybox_path

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

# program -> Debian package that provides it
REQUIRED = {
    "dockerd": "docker.io",
    "containerd": "containerd",
    "runc": "runc",
    "docker-registry": "docker-registry",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "setsid": "util-linux",
}
READY_TIMEOUT = 60.0
LAB_FILES_SOURCE = "swl-lab-files"  # not taskfiles' own: a daemon never unmounts it
_LONGEST_SOCKET = "h999/exec/containerd/containerd.sock.ttrpc"


def resolve_dir(directory: str | os.PathLike[str] | None) -> Path:
    """The lab directory: the one given, else $SWARMLITE_LAB_DIR, else the default."""
    return Path(directory or os.environ.get(DIR_ENV) or DEFAULT_DIR).absolute()


def _nothing(message: str) -> None:
    return None


# --------------------------------------------------------------------------- checks


def require_root() -> None:
    if os.geteuid() != 0:
        raise PermissionDenied(
            "swarmlite lab needs root (network namespaces, cgroups, dockerd)",
            hint="run it as root: sudo swarmlite lab ...",
        )


def check_prerequisites() -> None:
    """Root and the programs the lab runs; one error naming every missing package."""
    require_root()
    missing = {prog: pkg for prog, pkg in REQUIRED.items() if shutil.which(prog) is None}
    packages = sorted(set(missing.values()))
    try:
        busybox_path()
    except FailedPrecondition:
        missing["busybox (static)"] = "busybox-static"
        packages = sorted({*packages, "busybox-static"})
    if missing:
        names = ", ".join(f"{prog} (package {pkg})" for prog, pkg in missing.items())
        raise FailedPrecondition(
            f"swarmlite lab needs programs that are not installed: {names}",
            hint=f"install them: apt-get install -y {' '.join(packages)}",
        )


PODMAN_REQUIRED = {"podman": "podman", "conmon": "conmon", "catatonit": "catatonit"}


def _check_podman() -> None:
    """What a Podman host needs: podman, conmon, and catatonit for tasks with `init`."""
    missing = {prog: pkg for prog, pkg in PODMAN_REQUIRED.items() if shutil.which(prog) is None}
    if missing:
        names = ", ".join(f"{prog} (package {pkg})" for prog, pkg in missing.items())
        raise FailedPrecondition(
            f"a lab with Podman hosts needs programs that are not installed: {names}",
            hint=f"install them: apt-get install -y {' '.join(sorted(set(missing.values())))}",
        )


def _check_dir(directory: Path, nodes: int) -> None:
    if directory == Path("/run") or Path("/run") in directory.parents:
        raise InvalidArgument(
            f"the lab dir {directory} is under /run, which each lab dockerd replaces with "
            "its own tmpfs",
            hint="choose another --dir (the default is /var/lib/swarmlite-lab)",
        )
    longest = directory / _LONGEST_SOCKET.replace("999", str(nodes))
    if len(os.fsencode(str(longest))) >= SOCKET_LIMIT:
        raise InvalidArgument(
            f"the lab dir {directory} is too long for the unix sockets under it "
            f"({longest} has {len(str(longest))} bytes, the limit is {SOCKET_LIMIT})",
            hint="choose a shorter --dir",
        )


def _choose_subnet(ident: str) -> ipaddress.IPv4Network:
    """A /24 of 198.18.0.0/24..198.18.254.0/24 that no other lab or interface uses."""
    used = netns.used_subnets()
    start = int(ident, 16) % 254
    for step in range(254):
        third = 1 + (start + step) % 254
        candidate = ipaddress.IPv4Network(f"198.18.{third}.0/24")
        if candidate not in used:
            return candidate
    raise FailedPrecondition(
        "every lab subnet of 198.18.0.0/16 is in use", hint="take some labs down first"
    )


def _check_free(directory: Path, prefix: str) -> None:
    """No lab recorded in ``directory`` and nothing left by an earlier one."""
    existing = load(directory)
    if existing is not None:
        raise FailedPrecondition(
            f"a lab is already up in {directory} ({existing.nodes} hosts on "
            f"{existing.subnet}, {existing.phase})",
            hint=f"`swarmlite lab down --dir {directory}` tears it down; or choose another --dir",
        )
    found = netns.with_prefix(prefix)
    found += [str(d) for d in procs.cgroup_dirs(_cgroup_match(prefix))]
    if found:
        raise FailedPrecondition(
            f"leftovers of an earlier lab in {directory}: {', '.join(found)}",
            hint=f"`swarmlite lab down --dir {directory}` removes them",
        )


def _cgroup_match(prefix: str) -> Callable[[str], bool]:
    own = prefix.rstrip("-")
    return lambda name: name == own or name.startswith(prefix)


# --------------------------------------------------------------------------- up


def up(
    directory: Path,
    *,
    nodes: int = 3,
    managers: int = 1,
    metrics: bool = False,
    podman: int = 0,
    progress: Progress = _nothing,
) -> LabState:
    """Start a lab of ``nodes`` hosts, the first ``managers`` of them managers (with
    ``metrics``, each daemon serves Prometheus metrics on its address, port 9323); the
    last ``podman`` hosts run Podman's API service instead of dockerd."""
    if not 1 <= managers <= nodes <= MAX_NODES:
        raise InvalidArgument(
            f"a lab needs 1 <= managers <= nodes <= {MAX_NODES} "
            f"(got {nodes} nodes, {managers} managers)"
        )
    if not 0 <= podman < nodes:
        raise InvalidArgument(
            f"--podman {podman} of {nodes} hosts: h1 builds and pushes the test images with "
            f"dockerd, so at most {nodes - 1} hosts (the last ones) can run Podman",
            hint=f"`--nodes {max(podman + 1, 2)} --podman {max(podman, 1)}`, say",
        )
    if podman:
        _check_podman()
    check_prerequisites()
    _check_dir(directory, nodes)
    ident = lab_id(directory)
    prefix = name_prefix(ident)
    created_dir = not directory.exists()
    journal: Journal | None = None
    try:
        with netns.allocation_lock():  # another `up` in the same dir waits, then sees ours
            _check_free(directory, prefix)
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            subnet = _choose_subnet(ident)
            base = subnet.network_address
            state = LabState(
                dir=str(directory),
                lab_id=ident,
                subnet=str(subnet),
                registry=f"{base + REGISTRY_HOST_OCTET}:{REGISTRY_PORT}",
                nodes=nodes,
                managers=managers,
                created_dir=created_dir,
            )
            for i in range(1, nodes + 1):
                name = f"h{i}"
                state.hosts.append(
                    Host(
                        name=name,
                        netns=prefix + name,
                        addr=str(base + i),
                        role="manager" if i <= managers else "worker",
                        dir=str(directory / name),
                        cgroup_parent=prefix + name,
                        metrics_addr=f"{base + i}:{METRICS_PORT}" if metrics else "",
                        runtime="podman" if i > nodes - podman else "docker",
                    )
                )
            journal = Journal(state)
            journal.save()
            _make_network(journal, subnet.prefixlen)
        progress(f"network: {nodes} hosts on {subnet}, bridge in {state.switch_netns}")
        _start_dockerds(journal)
        runtimes = ", ".join(f"{h.name} {h.runtime}" for h in state.hosts)
        progress(f"runtime: one per host ({runtimes})")
        _start_registry(journal)
        pushed = daemons.push_test_images(state.hosts[0], state.registry)
        progress(f"registry: {state.registry} holds {', '.join(pushed)}")
        _make_cluster(journal, progress)
        _wait_ready(state)
        journal.phase("up")
        progress(f"cluster: {nodes} nodes READY")
        return state
    except BaseException as exc:
        log.error("lab up failed; tearing down %s", kv(dir=directory, error=repr(exc)))
        if journal is not None:
            with contextlib.suppress(SwarmliteError, OSError):
                down(directory)
        if created_dir:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def _make_network(journal: Journal, prefixlen: int) -> None:
    state = journal.state
    switch = state.switch_netns
    journal.namespace(switch)
    netns.create(switch)
    netns.make_switch(switch)
    plugs = [(h.netns, h.name, h.addr) for h in state.hosts]
    plugs.append((state.registry_netns, "reg", state.registry_addr))
    for ns, port, addr in plugs:
        journal.namespace(ns)
        netns.create(ns)
        # Before eth0 exists, so that it never sends router solicitations or ND.
        netns.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")
        netns.sysctl(ns, "net.ipv4.ip_forward", "1")
        journal.link(switch, port)
        netns.plug(switch, port, ns, addr, prefixlen)


def _tracking_cgroup(journal: Journal, name: str) -> Path | None:
    own = journal.state.prefix.rstrip("-")
    journal.cgroup(own)
    return procs.make_cgroup(f"{own}/{name}")


def _start_dockerds(journal: Journal) -> None:
    state = journal.state
    started: list[tuple[Host, int]] = []
    for host in state.hosts:
        hdir = journal.mkdir(Path(host.dir))
        hdir.chmod(0o700)
        (journal.path(hdir / "daemon.json")).write_text("{}\n")
        journal.mkdir(host.docker_etc)
        journal.mkdir(host.docker_certs_dir)
        _mount_task_files(journal, hdir / "files")
        journal.cgroup(host.cgroup_parent)
        cgroup = _tracking_cgroup(journal, host.name)
        log_path = journal.path(host.runtime_log)
        argv, env = daemons.dockerd_argv(host, state.registry), None
        if host.runtime == "podman":  # its storage goes below: recorded before it is made
            journal.mkdir(host.podman_dir)
            argv, env = daemons.podman_argv(host), daemons.podman_env(host, state.registry)
        pid = procs.launch(
            daemons.with_own_etc(host, argv),
            netns_name=host.netns,
            cgroup=cgroup,
            log_path=log_path,
            env=env,
            private_run=True,
        )
        # "dockerd" is the record's name for a host's runtime, whichever serves its socket.
        journal.process(_proc("dockerd", host.name, pid))
        started.append((host, pid))
    for host, pid in started:
        daemons.wait_dockerd(host, pid)


def _mount_task_files(journal: Journal, path: Path) -> None:
    """The tmpfs where the host's swarmlite daemon keeps its tasks' secrets and configs
    (beside its socket), mounted before dockerd starts: dockerd's private mount namespace
    is a copy of ours made then, so it sees this tmpfs and every file written there later,
    but would never see one the daemon mounted itself afterwards."""
    journal.mkdir(path).chmod(0o700)
    try:
        mount_tmpfs(path, source=LAB_FILES_SOURCE)
    except OSError as exc:
        raise FailedPrecondition(f"cannot mount a tmpfs on {path}: {exc}") from exc


def _proc(what: str, host: str, pid: int) -> Proc:
    return Proc(what=what, host=host, pid=pid, start=procs.start_time(pid) or 0)


def _start_registry(journal: Journal) -> None:
    state = journal.state
    rdir = journal.mkdir(Path(state.dir) / "registry")
    config = journal.path(rdir / "config.yml")
    config.write_text(daemons.registry_config(state, rdir))
    log_path = journal.path(rdir / "registry.log")
    pid = procs.launch(
        ["docker-registry", "serve", str(config)],
        netns_name=state.registry_netns,
        cgroup=_tracking_cgroup(journal, "registry"),
        log_path=log_path,
    )
    journal.process(_proc("registry", "registry", pid))
    daemons.wait_registry(state, pid, log_path)


def _make_cluster(journal: Journal, progress: Progress) -> None:
    state = journal.state
    first = state.hosts[0]
    for host in state.hosts:
        journal.path(host.swarmlite_dir)
        journal.path(host.swarmlite_socket)
    daemons.init_node(first, _tracking_cgroup(journal, first.name))
    _record_daemon(journal, first)
    progress(f"{first.name}: swarmlite init (manager, leader) at {first.cluster_addr}")
    tokens = {role: daemons.join_token(first, role) for role in ("manager", "worker")}
    for host in state.hosts[1:]:
        daemons.join_node(host, tokens[host.role], first, _tracking_cgroup(journal, host.name))
        _record_daemon(journal, host)
        progress(f"{host.name}: swarmlite join as a {host.role} at {host.cluster_addr}")


def _record_daemon(journal: Journal, host: Host) -> None:
    pid = daemons.daemon_pid(host)
    if pid is not None:
        journal.process(_proc("swarmlite", host.name, pid))


def _wait_ready(state: LabState, timeout: float = READY_TIMEOUT) -> None:
    client = Client.unix(state.hosts[0].swarmlite_socket)
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        try:
            views = client.call(NODE_LS, ListRequest()).nodes
        except SwarmliteError as exc:
            seen = exc.message
        else:
            ready = {
                v.node.status.hostname for v in views if v.node.status.state is NodeState.READY
            }
            if ready >= {h.name for h in state.hosts}:
                return
            seen = f"ready: {', '.join(sorted(ready)) or 'none'}"
        time.sleep(0.2)
    raise Unavailable(
        f"the lab's {state.nodes} nodes were not all READY within {timeout:g}s ({seen})",
        hint=f"see the daemons' logs under {state.dir}/h*/swarmlite/swarmlite.log",
    )


# --------------------------------------------------------------------------- down


@dataclass
class DownReport:
    """What ``down`` removed (empty lists: there was nothing to remove)."""

    processes: int = 0
    containers: int = 0
    namespaces: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # what could not be removed

    @property
    def anything(self) -> bool:
        return bool(
            self.processes
            or self.containers
            or self.namespaces
            or self.mounts
            or self.cgroups
            or self.files
        )


def down(directory: Path) -> DownReport:
    """Remove every process, namespace, link, mount, cgroup and file of the lab in ``directory``."""
    report = DownReport()
    state = load(directory)
    ident = state.lab_id if state is not None else lab_id(directory)
    prefix = name_prefix(ident)
    if state is not None and state.phase != "stopping":
        journal = Journal(state)
        with contextlib.suppress(OSError):
            journal.phase("stopping")
    names = sorted(set(netns.with_prefix(prefix)) | set(state.namespaces if state else []))
    match = _cgroup_match(prefix)

    def belongs(pid: int) -> bool:
        return procs.in_cgroup(pid, match) or netns.same_netns(pid, names)

    recorded = state.processes if state is not None else []

    def ours(what: str) -> set[int]:
        return {p.pid for p in recorded if p.what == what and procs.alive(p.pid, p.start)}

    def recorded_or_member(pid: int) -> bool:
        return belongs(pid) or any(p.pid == pid and procs.alive(p.pid, p.start) for p in recorded)

    hosts = state.hosts if state is not None else []
    # 1. The swarmlite daemons, so that none restarts a task while the rest goes away.
    daemon_pids = ours("swarmlite") | {
        pid for pid in (daemons.daemon_pid(h) for h in hosts) if pid is not None
    }
    report.processes += len(procs.end(daemon_pids, belongs, grace=5.0))
    # 2. Containers, through their dockerd while it answers.
    for host in hosts:
        report.containers += daemons.remove_containers(host)
    parents = {h.cgroup_parent for h in hosts}  # containers whose dockerd did not answer
    tops = procs.cgroup_dirs(parents.__contains__)
    report.processes += len(procs.end(procs.pids_in_cgroups(tops), belongs, grace=0))
    for host in hosts:  # a Podman's containers are in Podman's cgroups, not the lab's
        if host.runtime == "podman":
            pids = procs.pids_in_cgroups(podman.container_cgroups(host.podman_dir))
            held = functools.partial(podman.holds, host.podman_dir)
            report.processes += len(procs.end(pids, held, grace=0))
    # 3. dockerd (it stops its containerd) and the registry.
    report.processes += len(
        procs.end(ours("dockerd") | ours("registry"), recorded_or_member, grace=15.0)
    )
    # 4. Whatever is left in the lab's cgroups or namespaces: containerd, shims, shells.
    for _ in range(3):
        tops = procs.cgroup_dirs(match)
        left = procs.pids_in_cgroups(tops) | netns.pids_in(names)
        left -= procs.protected()
        if not left:
            break
        report.processes += len(procs.end(left, belongs, grace=0))
    # 5. Mounts under the lab dir: each host's task files tmpfs (dockerd's are its own).
    report.mounts = unmount_under(directory)
    # 6. Namespaces, the switch last (its veth ends go with their peers).
    switch = prefix + "sw"
    for name in sorted(names, key=lambda n: n == switch):
        netns.remove(name)
        report.namespaces.append(name)
    # 7. cgroup directories.
    for top in procs.cgroup_dirs(match):
        left_over = remove_cgroup_tree(top)
        report.cgroups.append(str(top))
        report.left += [str(p) for p in left_over]
    for host in hosts:
        if host.runtime == "podman":
            report.left += [str(p) for p in podman.remove_container_cgroups(host.podman_dir)]
    # 8. Files.
    report.files = _remove_files(directory, state, report)
    return report


def kill_host(directory: Path, name: str) -> int:
    """A host dies: SIGKILL its swarmlite daemon, dockerd, containerd, WireGuard and every
    container, at once (nothing gets to stop cleanly). Returns how many processes died.
    Its namespace and files stay, so `down` still removes them."""
    state = require(directory)
    host = next((h for h in state.hosts if h.name == name), None)
    if host is None:
        raise NotFound(
            f"the lab has no host {name!r}",
            hint=f"its hosts are {', '.join(h.name for h in state.hosts)}",
        )
    containers = procs.cgroup_dirs(host.cgroup_parent.__eq__)
    if host.runtime == "podman":  # its containers are in Podman's cgroups, not the lab's
        containers += podman.container_cgroups(host.podman_dir)
    pids = netns.pids_in([host.netns]) | procs.pids_in_cgroups(containers)

    def belongs(pid: int) -> bool:
        own = host.cgroup_parent
        if host.runtime == "podman" and podman.holds(host.podman_dir, pid):
            return True
        return netns.same_netns(pid, [host.netns]) or procs.in_cgroup(pid, own.__eq__)

    return len(procs.end(pids, belongs, grace=0))


def restart_daemon(directory: Path, name: str) -> tuple[int, str]:
    """Start host ``name``'s swarmlite daemon again after it died (its dockerd and
    containers kept), as ``up`` started it: in the host's namespace and tracking cgroup,
    recorded in lab.json so that ``down`` ends it. Returns its pid and state once it
    answers: ``active``, or ``locked`` (an autolocked manager waiting for its key)."""
    state = require(directory)
    host = state.host(name)
    running = [
        p.pid
        for p in state.processes
        if p.what == "swarmlite" and p.host == name and procs.alive(p.pid, p.start)
    ]
    if running:
        raise FailedPrecondition(
            f"the swarmlite daemon of {name} runs already (pid {running[-1]})",
            hint="stop or kill it first",
        )
    journal = Journal(state)
    pid = daemons.launch_daemon(host, _tracking_cgroup(journal, name))
    journal.process(_proc("swarmlite", name, pid))
    return pid, daemons.wait_daemon(host, pid)


def _remove_files(directory: Path, state: LabState | None, report: DownReport) -> list[str]:
    if state is None:
        return []
    still_mounted = mounts_under(directory)
    if still_mounted:
        report.left += still_mounted
        log.error("files kept: mounts remain %s", kv(mounts=still_mounted))
        return []
    removed: list[str] = []
    for rel in reversed(state.paths):
        path = directory / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if path.exists():
            report.left.append(str(path))
        else:
            removed.append(str(path))
    remove_state(directory)
    removed.append(str(directory / "lab.json"))
    if state.created_dir:
        try:
            directory.rmdir()
            removed.append(str(directory))
        except OSError as exc:
            log.info("lab dir kept %s", kv(dir=directory, error=exc))
    return removed


# --------------------------------------------------------------------------- status, exec


@dataclass(frozen=True)
class HostStatus:
    host: Host
    netns_exists: bool
    dockerd_pid: int | None
    dockerd_up: bool
    swarmlite_pid: int | None
    swarmlite_up: bool


@dataclass(frozen=True)
class LabStatus:
    state: LabState
    hosts: list[HostStatus]
    registry_pid: int | None
    registry_up: bool


def require(directory: Path) -> LabState:
    state = load(directory)
    if state is None:
        raise FailedPrecondition(
            f"no lab in {directory}",
            hint="`swarmlite lab up` starts one (--dir or $SWARMLITE_LAB_DIR for another dir)",
        )
    return state


def status(directory: Path) -> LabStatus:
    state = require(directory)

    def pid_of(what: str, host: str) -> tuple[int | None, bool]:
        for proc in reversed(state.processes):
            if proc.what == what and proc.host == host:
                return proc.pid, procs.alive(proc.pid, proc.start)
        return None, False

    hosts: list[HostStatus] = []
    for host in state.hosts:
        dpid, dup = pid_of("dockerd", host.name)
        spid = daemons.daemon_pid(host)
        hosts.append(
            HostStatus(
                host=host,
                netns_exists=netns.path_of(host.netns).exists(),
                dockerd_pid=dpid,
                dockerd_up=dup and daemons.docker_ready(host),
                swarmlite_pid=spid,
                swarmlite_up=spid is not None and procs.alive(spid),
            )
        )
    rpid, rup = pid_of("registry", "registry")
    return LabStatus(state=state, hosts=hosts, registry_pid=rpid, registry_up=rup)


def exec_command(
    directory: Path, host_name: str, command: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run ``command`` inside host ``host_name``'s namespace."""
    state = require(directory)
    host = state.host(host_name)
    if not netns.path_of(host.netns).exists():
        raise FailedPrecondition(
            f"host {host_name} has no network namespace ({host.netns})",
            hint=f"the lab is {state.phase}; `swarmlite lab down --dir {directory}` and up again",
        )
    env = dict(os.environ)
    for name in ("SWARMLITE_SOCKET", "SWARMLITE_CERT_DIR"):
        env.pop(name, None)
    env["SWARMLITE_HOST"] = host.swarmlite_host
    env["SWARMLITE_HOSTNAME"] = host.name
    env["DOCKER_HOST"] = host.docker_host
    argv = ["nsenter", f"--net={netns.path_of(host.netns)}", "--", *command]
    return argv, env
