"""What runs on a lab's hosts: a dockerd each, the lab's image registry, and swarmlite nodes.

Owns the command lines and readiness checks of each lab daemon:

* dockerd per host, inside the host's network namespace and a private mount namespace
  with its own /run (so it starts its own containerd even where the machine runs one),
  with every path under the host's directory, no bridge, no iptables, no forwarding, its
  containers' cgroups under ``/swl-<id>-hN``, and the lab registry marked insecure; its
  /etc/docker is the host's own ``Host.docker_etc`` (``certs.d`` there: registries' CAs);
* or, on a Podman host, ``podman system service`` the same way (``testing.podman``: its own
  configuration and storage under the host's ``podman/``, runc, cgroupfs, the lab registry
  insecure) on the same socket path, so that everything else treats both alike;
* the registry (``docker-registry serve``) in a namespace of its own, listening only on
  its lab address (never the packaged config, which listens on ``:5000`` everywhere);
* the test images (``testing.images``), built on h1's dockerd and pushed to the registry
  through the underlay, so every host can pull ``<registry>/swl/web:1``;
* the swarmlite nodes, made with the real CLI (``init``, ``join-token``, ``join``) run
  inside each host's namespace, and started again from their data dir
  (``swarmlite daemon``) after one died.

Does not own namespaces (``lab.netns``), process bookkeeping (``lab.procs``) nor the order
of things (``lab.lab``). Foreign errors (Engine API failures, CLI exit codes, timeouts)
become Unavailable or RuntimeFailure naming the host and the log to read.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import astuple
from pathlib import Path
from urllib.parse import quote, urlencode

from swarmlite.api.control import Empty
from swarmlite.api.routes import INFO
from swarmlite.errors import RuntimeFailure, RuntimeUnavailable, SwarmliteError, Unavailable
from swarmlite.lab import netns, procs
from swarmlite.lab.state import REGISTRY_PORT, Host, LabState
from swarmlite.log import kv
from swarmlite.rpc import ControlClient
from swarmlite.testing.dockerd import engine_request, private_dockerd_argv
from swarmlite.testing.images import ensure_test_images
from swarmlite.testing.podman import service_argv, write_config

log = logging.getLogger(__name__)

DOCKERD_TIMEOUT = 60.0
CLI_TIMEOUT = 90.0
_ENV_DROP = ("SWARMLITE_HOST", "SWARMLITE_SOCKET", "SWARMLITE_CERT_DIR", "SWARMLITE_DATA_DIR")


# --------------------------------------------------------------------------- dockerd


def dockerd_argv(host: Host, registry: str) -> list[str]:
    hdir = Path(host.dir)
    return [
        *private_dockerd_argv(
            "dockerd",
            host_url=host.docker_host,
            data_root=hdir / "docker",
            exec_root=hdir / "exec",
            pidfile=hdir / "docker.pid",
            cgroup_parent=host.cgroup_parent,
        ),
        "--config-file",  # our own, so the machine's /etc/docker/daemon.json never applies
        str(hdir / "daemon.json"),
        "--insecure-registry",
        registry,
    ]


# In dockerd's private mount namespace (``procs.launch(private_run=True)``): the host's own
# /etc/docker, then dockerd itself (exec'd: the pid stays dockerd's).
_OWN_ETC = 'mkdir -p /etc/docker && mount --bind "$1" /etc/docker && shift && exec "$@"'


def with_own_etc(host: Host, argv: list[str]) -> list[str]:
    """``argv`` (dockerd's) run with ``host.docker_etc`` as its /etc/docker."""
    return ["sh", "-c", _OWN_ETC, "sh", str(host.docker_etc), *argv]


def docker_ready(host: Host) -> bool:
    try:
        status, body = engine_request(host.docker_socket, "GET", "/_ping", timeout=2.0)
    except RuntimeUnavailable:
        return False
    return status == 200 and body == b"OK"


def podman_argv(host: Host) -> list[str]:
    """A Podman host's runtime: Podman's API service on the host's runtime socket."""
    return service_argv("podman", host.docker_host)


def podman_env(host: Host, registry: str) -> dict[str, str]:
    """Write a Podman host's own configuration (``testing.podman``: runc, cgroupfs, its
    storage under ``host.podman_dir``, the lab registry insecure); the environment that
    makes its service read it."""
    return {**os.environ, **write_config(host.podman_dir, insecure_registries=[registry])}


def wait_dockerd(host: Host, pid: int, timeout: float = DOCKERD_TIMEOUT) -> None:
    """Wait until the host's runtime (dockerd, or Podman's service) answers ``/_ping``."""
    log_path = host.runtime_log
    what = "the Podman service" if host.runtime == "podman" else "dockerd"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if docker_ready(host):
            log.info("runtime ready %s", kv(host=host.name, pid=pid, runtime=host.runtime))
            return
        if not procs.alive(pid):
            raise RuntimeUnavailable(
                f"{what} of {host.name} exited at start-up",
                hint=f"its log {log_path} ends with:\n{procs.tail(log_path)}",
            )
        time.sleep(0.1)
    raise RuntimeUnavailable(
        f"{what} of {host.name} did not answer within {timeout:g}s",
        hint=f"its log {log_path} ends with:\n{procs.tail(log_path)}",
    )


def remove_containers(host: Host) -> int:
    """Force-remove every container of the host's dockerd, if it answers; how many."""
    try:
        status, body = engine_request(
            host.docker_socket, "GET", "/containers/json?all=1", timeout=5.0
        )
    except RuntimeUnavailable:
        return 0
    if status != 200:
        return 0
    removed = 0
    for container in json.loads(body or b"[]"):
        cid = quote(container["Id"])
        try:
            engine_request(
                host.docker_socket, "DELETE", f"/containers/{cid}?force=1&v=1", timeout=15.0
            )
            removed += 1
        except RuntimeUnavailable as exc:
            log.warning("container not removed %s", kv(host=host.name, id=cid, error=exc))
    return removed


# --------------------------------------------------------------------------- registry


def registry_config(state: LabState, directory: Path) -> str:
    """The registry's own configuration (JSON strings are YAML strings)."""
    return "\n".join(
        [
            "version: 0.1",
            "log:",
            "  level: warn",
            "storage:",
            "  cache:",
            "    blobdescriptor: inmemory",
            "  filesystem:",
            f"    rootdirectory: {json.dumps(str(directory / 'data'))}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {json.dumps(state.registry)}",
            "  headers:",
            "    X-Content-Type-Options: [nosniff]",
            "",
        ]
    )


def wait_registry(state: LabState, pid: int, log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if netns.can_connect(state.registry_netns, state.registry_addr, REGISTRY_PORT):
            log.info("registry ready %s", kv(addr=state.registry, pid=pid))
            return
        if not procs.alive(pid):
            break
        time.sleep(0.1)
    raise Unavailable(
        f"the lab registry did not listen on {state.registry}",
        hint=f"its log {log_path} ends with:\n{procs.tail(log_path)}",
    )


def push_test_images(host: Host, registry: str) -> list[str]:
    """Build the test images on ``host``'s dockerd and push them; the registry's refs."""
    images = ensure_test_images(host.docker_socket)
    pushed: list[str] = []
    auth = base64.urlsafe_b64encode(b"{}").decode()
    for ref in astuple(images):
        repo, _, tag = str(ref).rpartition(":")
        target = f"{registry}/{repo}"
        query = urlencode({"repo": target, "tag": tag})
        status, body = engine_request(
            host.docker_socket, "POST", f"/images/{quote(str(ref))}/tag?{query}"
        )
        if status >= 300:
            raise RuntimeFailure(f"tagging {ref} as {target}:{tag} failed: {status} {body!r}")
        status, body = engine_request(
            host.docker_socket,
            "POST",
            f"/images/{quote(target, safe='/:')}/push?{urlencode({'tag': tag})}",
            headers={"X-Registry-Auth": auth},
            timeout=120.0,
        )
        if status >= 300 or b'"error' in body:
            raise RuntimeFailure(
                f"pushing {target}:{tag} from {host.name} failed: {status} "
                f"{body.decode(errors='replace')[-500:]}"
            )
        pushed.append(f"{target}:{tag}")
        log.info("image pushed %s", kv(image=f"{target}:{tag}"))
    return pushed


# --------------------------------------------------------------------------- swarmlite


def cli_env(host: Host | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env["PYTHONUNBUFFERED"] = "1"
    if host is not None:
        env["SWARMLITE_HOSTNAME"] = host.name
    return env


def swarmlite(host: Host, args: list[str], *, cgroup: Path | None, inside: bool = True) -> str:
    """``swarmlite args...`` as the host runs it (in its namespace); returns stdout."""
    argv = [sys.executable, "-m", "swarmlite", *args]
    if inside:
        argv = procs.wrap_command(argv, netns_name=host.netns, cgroup=cgroup)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            env=cli_env(host),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(
            f"`swarmlite {' '.join(args[:1])}` on {host.name} took over {CLI_TIMEOUT:g}s",
            hint=_daemon_log_hint(host),
        ) from exc
    if done.returncode != 0:
        raise Unavailable(
            f"`swarmlite {' '.join(args[:1])}` on {host.name} failed: "
            f"{done.stderr.strip() or done.stdout.strip()}",
            hint=_daemon_log_hint(host),
        )
    return done.stdout


def _daemon_log_hint(host: Host) -> str:
    path = host.swarmlite_dir / "swarmlite.log"
    return f"the daemon's log {path} ends with:\n{procs.tail(path)}"


def node_flags(host: Host) -> list[str]:
    flags = [
        "--data-dir",
        str(host.swarmlite_dir),
        "--socket",
        str(host.swarmlite_socket),
        "--listen-addr",
        host.cluster_addr,
        "--docker-host",
        host.docker_host,
    ]
    if host.metrics_addr:
        flags += ["--metrics-addr", host.metrics_addr]
    return flags


# Every address a lab uses stays inside 198.18.0.0/15, the range for simulated hosts: the
# underlays take 198.18.X.0/24, overlays and the mesh take these.
LAB_ADDR_POOL = "198.19.0.0/17"
LAB_MESH_POOL = "198.19.240.0/20"


def init_node(host: Host, cgroup: Path | None) -> None:
    pools = ["--default-addr-pool", LAB_ADDR_POOL, "--mesh-pool", LAB_MESH_POOL]
    swarmlite(host, ["init", *node_flags(host), *pools], cgroup=cgroup)


def join_token(first: Host, role: str) -> str:
    args = ["-H", first.swarmlite_host, "join-token", "-q", role]
    return swarmlite(first, args, cgroup=None, inside=False).strip()


def join_node(host: Host, token: str, manager: Host, cgroup: Path | None) -> None:
    swarmlite(
        host, ["join", "--token", token, *node_flags(host), manager.cluster_addr], cgroup=cgroup
    )


def daemon_pid(host: Host) -> int | None:
    try:
        return int((host.swarmlite_dir / "swarmlite.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def launch_daemon(host: Host, cgroup: Path | None) -> int:
    """Start ``host``'s swarmlite daemon again from its data dir (``node.json`` keeps its
    socket, addresses and runtime), detached in its namespace and ``cgroup``, logging to
    the file ``init`` left it; returns its pid at once (``wait_daemon`` waits for it)."""
    from swarmlite.daemon import LOG_FILE_ENV  # here: the whole daemon is slow to import

    log_path = host.swarmlite_dir / "swarmlite.log"
    argv = [sys.executable, "-m", "swarmlite", "daemon", "--data-dir", str(host.swarmlite_dir)]
    argv += ["--socket", str(host.swarmlite_socket)]
    env = {**cli_env(host), LOG_FILE_ENV: str(log_path)}
    return procs.launch(argv, netns_name=host.netns, cgroup=cgroup, log_path=log_path, env=env)


def wait_daemon(host: Host, pid: int, timeout: float = CLI_TIMEOUT) -> str:
    """Wait until ``host``'s daemon ``pid`` answers on its socket; its state: ``active``,
    or ``locked`` (an autolocked manager, up and waiting for ``swarm unlock``)."""
    client = ControlClient.unix(host.swarmlite_socket, timeout=5.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procs.alive(pid):
            raise Unavailable(
                f"the swarmlite daemon of {host.name} exited at start-up",
                hint=_daemon_log_hint(host),
            )
        try:
            state = client.call(INFO, Empty()).state
        except SwarmliteError:  # not listening yet (a killed daemon leaves its socket file)
            state = ""
        if state in ("active", "locked"):
            return state
        time.sleep(0.1)
    raise Unavailable(
        f"the swarmlite daemon of {host.name} (pid {pid}) did not answer within {timeout:g}s",
        hint=_daemon_log_hint(host),
    )
