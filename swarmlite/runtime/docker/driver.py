"""The RuntimeDriver for Docker: a task becomes one container on the node's dockerd.

Owns the mapping from a Task (its ContainerSpec, resources and the request's files and
labels) to a container's create body, and the reading back of a container's state, logs
and the daemon's info. Talks to Docker only through `runtime.docker.engine`, which turns
Docker's errors into swarmlite's. Does not own networking: containers get
``NetworkMode: none`` and swarmlite attaches them to its overlays after start.

Choices, as Docker's swarm mode makes them where it has one:

- Identity labels (``swarmlite.cluster/.task/.service/.slot/.node``) are set on every
  container and win over user labels, so `list_containers` finds them after a restart.
- Secrets and configs (``ContainerRequest.files``) are written by ``runtime.taskfiles``
  to a per-container directory under ``files_dir`` (default ``/run/swarmlite/files``),
  which is memory-backed (a tmpfs is mounted on it when it is not), with their
  uid/gid/mode, and bind-mounted read-only, one file each. Never ``PUT /archive``: that
  writes them into the container's layer in dockerd's data root (on disk); a bind mount
  also works with ``read_only: true``. The host's copy is deleted as soon as the container
  has started (its mount keeps the file readable inside, and only there, until it ends),
  when a create or start fails, at `remove`, and by `remove_stale_files` at agent start.
  dockerd must see the driver's mounts (the same mount namespace, or one that had the
  files directory's tmpfs when it was made, as a lab's has).
- `pull` never contacts a registry for an image already present. Any failed pull of a
  missing image is ImageNotFound carrying the daemon's reason (unknown, denied or
  unreachable registry), so the task is rejected and replaced later, as in swarm. The
  service's registry credentials (`--with-registry-auth`) go as the pull's
  ``X-Registry-Auth``; a pull the registry refuses for credentials says which of "no
  credentials" or "credentials refused" and names the registry, never a credential.
- `stop` with no signal is Docker's own stop (the container's StopSignal, then SIGKILL
  after the grace period); with a signal, that signal, a wait of `grace`, then SIGKILL.
- Named volumes are created by Docker at container creation with the mount's labels
  plus the stack's (``com.docker.stack.namespace``); `remove` drops anonymous ones only.
- `stats` is one-shot (no second sample), read by ``runtime.docker.stats``.
- Podman's Docker-compatible service (``podman system service``) is driven the same way;
  where it differs (health checks it never runs without systemd, the ulimits it fills in,
  a taken name answered with 500, log lines in timestamped pieces, stats without a
  Content-Type), ``runtime.docker.podman`` says what the driver does instead. `info`
  names it "podman".
- The generic resources the scheduler assigned a task reach it as swarm's daemon gives
  them: ``DOCKER_RESOURCE_<KIND>=...`` (``api.resources.resource_env``) after the spec's
  environment.
- A container gets ``HostConfig.LogConfig``: the service's log driver, or, where the
  service names none and the runtime's own default is ``json-file`` (dockerd's, and
  always on Podman), swarmlite's default, a ``json-file`` rotated at 10m x 3
  (``api.logdriver`` says why), so that no task fills a node's disk. A dockerd given
  another default driver in its daemon.json keeps it (no LogConfig is sent). `logs` of a container
  whose driver keeps nothing to read (``none``, or a driver with dockerd's dual logging
  turned off) is a RuntimeFailure naming the driver, never an empty stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import math
import struct
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiodocker.containers import DockerContainer

from swarmlite.agent.driver import (
    LABEL_CLUSTER,
    LABEL_NODE,
    LABEL_SERVICE,
    LABEL_SLOT,
    LABEL_TASK,
    ContainerRequest,
    ContainerState,
    ContainerStats,
    LogEntry,
    RuntimeInfo,
)
from swarmlite.api import STACK_LABEL, ContainerSpec, HealthCheck, LogDriver, Mount
from swarmlite.api.logdriver import JSON_FILE, UNREADABLE, effective
from swarmlite.api.reference import parse_image
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.api.resources import resource_env
from swarmlite.errors import (
    ContainerFailed,
    ImageNotFound,
    InvalidArgument,
    NotFound,
    RuntimeFailure,
    RuntimeUnavailable,
    SwarmliteError,
)
from swarmlite.log import kv
from swarmlite.runtime.docker.engine import Engine
from swarmlite.runtime.docker.podman import (
    HealthTicker,
    fill_ulimits,
    health_interval,
    is_podman,
    strip_continuation,
)
from swarmlite.runtime.docker.stats import read_net_dev, stats_from_docker
from swarmlite.runtime.taskfiles import TaskFiles

log = logging.getLogger(__name__)

DEFAULT_FILES_DIR = "/run/swarmlite/files"
_NANO = 1_000_000_000
_STDOUT, _STDERR = 1, 2
_ZERO_TIME = "0001-01-01T00:00:00Z"


def identity_labels(request: ContainerRequest, *, cluster_id: str, node_id: str) -> dict[str, str]:
    """The labels that tie a container to its task, for adoption after a restart."""
    task = request.task
    return {
        LABEL_CLUSTER: cluster_id,
        LABEL_TASK: task.id,
        LABEL_SERVICE: task.service_id,
        LABEL_SLOT: str(task.slot),
        LABEL_NODE: node_id,
    }


def _nanos(seconds: float) -> int:
    return round(seconds * _NANO)


def healthcheck_config(check: HealthCheck) -> dict[str, Any]:
    """Docker's Healthcheck body; an empty test keeps the image's test, 0 its durations."""
    if check.disable:
        return {"Test": ["NONE"]}
    body: dict[str, Any] = {}
    if check.test:
        body["Test"] = list(check.test)
    for key, value in (
        ("Interval", check.interval),
        ("Timeout", check.timeout),
        ("StartPeriod", check.start_period),
        ("StartInterval", check.start_interval),  # API 1.44+; older daemons ignore it
    ):
        if value:
            body[key] = _nanos(value)
    if check.retries:
        body["Retries"] = check.retries
    return body


def mount_config(mount: Mount, *, stack: str | None) -> dict[str, Any]:
    """Docker's HostConfig.Mounts entry for one of the spec's mounts."""
    body: dict[str, Any] = {"Type": mount.type, "Target": mount.target}
    if mount.read_only:
        body["ReadOnly"] = True
    if mount.type == "volume":
        labels = dict(mount.volume_labels)
        if stack:
            labels.setdefault(STACK_LABEL, stack)
        if mount.source:
            body["Source"] = mount.source
        body["VolumeOptions"] = {
            "NoCopy": mount.volume_nocopy,
            "Labels": labels,
            "DriverConfig": {"Name": mount.volume_driver or "local"},
        }
    elif mount.type == "bind":
        body["Source"] = mount.source
        if mount.bind_propagation:
            body["BindOptions"] = {"Propagation": mount.bind_propagation}
    elif mount.type == "tmpfs":
        options: dict[str, int] = {}
        if mount.tmpfs_size:
            options["SizeBytes"] = mount.tmpfs_size
        if mount.tmpfs_mode:
            options["Mode"] = mount.tmpfs_mode
        if options:
            body["TmpfsOptions"] = options
    else:
        raise InvalidArgument(f"unknown mount type {mount.type!r} for {mount.target}")
    return body


def log_config(driver: LogDriver | None, node_default: str = JSON_FILE) -> dict[str, Any] | None:
    """Docker's HostConfig.LogConfig: the service's driver, or the node's default, with the
    default rotation filled in where it is json-file without a max-size; None (the runtime's
    own default, with its own options) where the service names nothing and the node's
    default driver is another."""
    named = driver is not None and (driver.name or driver.options)
    if not named and node_default != JSON_FILE:
        return None
    used = effective(driver, node_default)
    return {"Type": used.name, "Config": dict(used.options)}


_DENIED = (
    "no basic auth credentials",
    "unauthorized",
    "authentication required",
    "pull access denied",
    "access to the resource is denied",
    "incorrect username or password",
)


def denied(message: str) -> bool:
    """Whether dockerd's pull error says the registry wants (other) credentials."""
    text = message.lower()
    return any(words in text for words in _DENIED)


def pull_denied(registry: str, image: str, reason: str, auth: RegistryAuth | None) -> ImageNotFound:
    """The error of a pull its registry refused: for want of credentials, or refusing
    the ones given. Names the registry and never a credential (``reason`` is dockerd's,
    which names none either)."""
    if auth is None:
        why = "no credentials (deploy with --with-registry-auth)"
        hint = (
            f"log in to {registry} (`docker login {registry}`), then deploy with "
            "--with-registry-auth"
        )
    else:
        why = "credentials refused"
        hint = f"log in to {registry} again, then update the service with --with-registry-auth"
    return ImageNotFound(
        f"pull access denied for registry {registry}: {why}",
        hint=hint,
        details={"image": image, "registry": registry, "reason": reason},
    )


def _extra_host(entry: str) -> str:
    # Compose accepts "host=ip" as well as Docker's "host:ip".
    name, sep, addr = entry.partition("=")
    return f"{name}:{addr}" if sep else entry


def container_config(
    request: ContainerRequest,
    *,
    cluster_id: str,
    node_id: str,
    file_binds: Sequence[str] = (),
    log_default: str = JSON_FILE,
) -> dict[str, Any]:
    """The ``POST /containers/create`` body for a request (name goes in the query);
    ``log_default``: the runtime's default log driver."""
    task = request.task
    spec: ContainerSpec = task.spec.container
    resources = task.spec.resources
    labels = {**spec.labels, **request.labels}
    labels.update(identity_labels(request, cluster_id=cluster_id, node_id=node_id))
    stack = labels.get(STACK_LABEL)

    host: dict[str, Any] = {
        "NetworkMode": "none",
        "RestartPolicy": {"Name": "no"},  # restarts are new tasks, made by the manager
        "ReadonlyRootfs": spec.read_only,
        "Mounts": [mount_config(m, stack=stack) for m in spec.mounts],
        "Binds": list(file_binds),
        "CapAdd": list(spec.cap_add) or None,
        "CapDrop": list(spec.cap_drop) or None,
        "Sysctls": dict(spec.sysctls) or None,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in spec.ulimits],
        "ExtraHosts": [_extra_host(h) for h in spec.extra_hosts] or None,
        "Dns": list(spec.dns) or None,
        "DnsOptions": list(spec.dns_options) or None,
        "DnsSearch": list(spec.dns_search) or None,
        "GroupAdd": list(spec.groups) or None,
        "NanoCpus": resources.limits.nano_cpus,
        "Memory": resources.limits.memory_bytes,
        "MemoryReservation": resources.reservations.memory_bytes,
    }
    logging = log_config(task.spec.log_driver, log_default)
    if logging is not None:
        host["LogConfig"] = logging
    if resources.limits.pids:
        host["PidsLimit"] = resources.limits.pids
    if spec.init is not None:
        host["Init"] = spec.init
    if spec.oom_score_adj:
        host["OomScoreAdj"] = spec.oom_score_adj

    config: dict[str, Any] = {
        "Image": spec.image,
        # swarm's: what the scheduler assigned, after the spec's (so it wins)
        "Env": [*spec.env, *resource_env(task.assigned_generic_resources)],
        "Labels": labels,
        "Tty": spec.tty,
        "OpenStdin": spec.stdin_open,
        "StopTimeout": math.ceil(spec.stop_grace_period),
        "NetworkDisabled": False,
        "HostConfig": host,
    }
    if spec.entrypoint is not None:
        config["Entrypoint"] = list(spec.entrypoint)
    if spec.command is not None:
        config["Cmd"] = list(spec.command)
    for key, value in (
        ("WorkingDir", spec.working_dir),
        ("User", spec.user),
        ("Hostname", spec.hostname),
        ("StopSignal", spec.stop_signal),
    ):
        if value:
            config[key] = value
    if spec.healthcheck is not None:
        config["Healthcheck"] = healthcheck_config(spec.healthcheck)
    return config


def parse_time(text: str) -> float:
    """Seconds since the epoch from Docker's RFC 3339 (nanosecond) times; 0.0 for 'never'."""
    if not text or text.startswith("0001-01-01"):
        return 0.0
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.timestamp()


def state_from_inspect(data: dict[str, Any]) -> ContainerState:
    """A ContainerState from ``GET /containers/{id}/json``."""
    state = data.get("State") or {}
    labels = (data.get("Config") or {}).get("Labels") or {}
    status = str(state.get("Status", ""))
    error = str(state.get("Error") or "")
    finished = status in ("exited", "dead") or bool(error)
    return ContainerState(
        id=str(data["Id"]),
        task_id=labels.get(LABEL_TASK, ""),
        labels=dict(labels),
        status=status,
        exit_code=int(state.get("ExitCode", 0)) if finished else None,
        health=str((state.get("Health") or {}).get("Status", "")),
        error=error,
        started_at=parse_time(str(state.get("StartedAt", ""))),
        finished_at=parse_time(str(state.get("FinishedAt", ""))),
        pid=int(state.get("Pid") or 0) if status == "running" else 0,
    )


class DockerDriver:
    """`RuntimeDriver` over a dockerd's unix socket."""

    def __init__(
        self,
        socket_path: str,
        *,
        cluster_id: str,
        node_id: str,
        files_dir: str | Path = DEFAULT_FILES_DIR,
    ) -> None:
        self.engine = Engine(socket_path)
        self.cluster_id = cluster_id
        self.node_id = node_id
        self.files_dir = Path(files_dir)
        self._files = TaskFiles(self.files_dir)
        self._names: dict[str, str] = {}  # container id -> name, for those with files
        self._podman: bool | None = None  # Podman's compatible API (known once asked)
        self._log_driver: str | None = None  # the runtime's default log driver (once asked)
        self._health = HealthTicker(self.engine)

    async def close(self) -> None:
        self._files.close()
        await self._health.close()
        await self.engine.close()

    async def _is_podman(self) -> bool:
        if self._podman is None:
            version = await self.engine.call("", "daemon", self.engine.docker.version())
            self._podman = is_podman(version)
        return self._podman

    async def _log_default(self) -> str:
        """The runtime's default log driver: dockerd's daemon.json ``log-driver`` (asked
        once); json-file on Podman, whose compatible API maps it to its own file driver."""
        if self._log_driver is None:
            if await self._is_podman():
                self._log_driver = JSON_FILE
            else:
                info = await self.engine.call("", "daemon", self.engine.docker.system.info())
                self._log_driver = str(info.get("LoggingDriver") or JSON_FILE)
        return self._log_driver

    async def info(self) -> RuntimeInfo:
        docker = self.engine.docker
        info = await self.engine.call("", "daemon", docker.system.info())
        version = await self.engine.call("", "daemon", docker.version())
        return RuntimeInfo(
            name="podman" if is_podman(version) else "docker",
            version=str(version.get("Version", "")),
            os=str(info.get("OSType", "")),
            arch=str(info.get("Architecture", "")),
            nano_cpus=int(info.get("NCPU", 0)) * _NANO,
            memory_bytes=int(info.get("MemTotal", 0)),
        )

    async def pull(
        self,
        image: str,
        progress: Callable[[str], None] | None = None,
        *,
        auth: RegistryAuth | None = None,
    ) -> None:
        if await self._image_present(image):
            return
        log.info("pulling image %s", kv(image=image, with_auth=auth is not None))
        try:
            ref = parse_image(image)
        except InvalidArgument as exc:
            raise ImageNotFound(exc.message, details={"image": image}) from exc
        tag = "" if ref.tag or ref.digest else "latest"  # no tag at all: every tag, to dockerd
        try:
            events = self.engine.pull(
                image, tag, registry_auth=auth.header() if auth is not None else ""
            )
            async for event in events:
                if progress is not None:
                    progress(_progress_line(event))
        except RuntimeUnavailable:
            raise
        except SwarmliteError as exc:
            if denied(exc.message):
                raise pull_denied(ref.domain, image, exc.message, auth) from exc
            # Unknown repository, registry unreachable: the image is not to be had.
            raise ImageNotFound(
                f"image {image} could not be pulled: {exc.message}", details={"image": image}
            ) from exc
        if not await self._image_present(image):
            raise ImageNotFound(f"image {image} is still missing after a pull")

    async def _image_present(self, image: str) -> bool:
        try:
            await self.engine.call(image, "image", self.engine.docker.images.inspect(image))
        except ImageNotFound:
            return False
        return True

    async def create(self, request: ContainerRequest) -> str:
        log_default = await self._log_default()
        binds = self._files.write(request.name, request.files)
        config = container_config(
            request,
            cluster_id=self.cluster_id,
            node_id=self.node_id,
            file_binds=binds,
            log_default=log_default,
        )
        try:
            if await self._is_podman():
                fill_ulimits(config["HostConfig"])
            container = await self.engine.call(
                request.name,
                "container",
                self.engine.docker.containers.create(config, name=request.name),
            )
        except SwarmliteError:
            self._files.drop(request.name)
            raise
        if binds:
            self._names[container.id] = request.name
        log.info("container created %s", kv(task=request.task.id, id=container.id[:12]))
        return container.id

    async def _drop_files(self, container_id: str) -> None:
        """The container started or cannot start: its files leave the host."""
        name = self._names.pop(container_id, None)
        if name is None:  # created by an earlier run of the agent
            if not self._files.names():
                return
            try:
                data = await self.engine.call(
                    container_id, "container", self._container(container_id).show()
                )
            except SwarmliteError:
                return  # gone, or the daemon is away: `remove_stale_files` sees to it
            name = str(data.get("Name", ""))
        self._files.drop(name)

    async def remove_stale_files(self) -> None:
        on_disk = not self._files.memory_backed()
        for name in self._files.names():
            if not on_disk:
                try:
                    data = await self.engine.call(name, "container", self._container(name).show())
                except NotFound:
                    data = {}
                if (data.get("State") or {}).get("Status") == "created":
                    continue  # still to be started: it needs them
            # Left on a disk by an older version, or its container ran or is gone.
            self._files.drop(name)
            log.info("stale task files removed %s", kv(container=name))

    def _container(self, container_id: str) -> DockerContainer:
        return self.engine.docker.containers.container(container_id)

    async def start(self, container_id: str) -> None:
        try:
            await self.engine.call(container_id, "container", self._container(container_id).start())
        except RuntimeUnavailable:
            raise  # it may start on the next try: its files stay until then
        except NotFound:
            await self._drop_files(container_id)  # removed behind our back
            raise
        except RuntimeFailure as exc:
            # The daemon could not start the process (missing executable, bad mount, ...).
            await self._drop_files(container_id)
            raise ContainerFailed(exc.message, details=exc.details) from exc
        await self._drop_files(container_id)
        if await self._is_podman():
            await self.inspect(container_id)  # which starts its health checks

    async def inspect(self, container_id: str) -> ContainerState:
        data = await self.engine.call(
            container_id, "container", self._container(container_id).show()
        )
        if (data.get("State") or {}).get("Running") and await self._is_podman():
            interval = health_interval(data)  # Podman runs none by itself: we do
            if interval is not None:
                self._health.watch(str(data["Id"]), interval)
        return state_from_inspect(data)

    async def wait(self, container_id: str) -> int:
        result = await self.engine.call(
            container_id, "container", self._container(container_id).wait(condition="not-running")
        )
        return int(result.get("StatusCode", -1))

    async def stop(self, container_id: str, *, signal: str = "", grace: float = 10.0) -> None:
        container = self._container(container_id)
        if not signal:
            await self.engine.call(
                container_id, "container", container.stop(t=max(0, math.ceil(grace)))
            )
            return
        if not await self._kill(container_id, signal):
            return
        try:
            async with asyncio.timeout(grace):
                await self.wait(container_id)
        except TimeoutError:
            log.info("container ignored %s, killing it %s", signal, kv(id=container_id[:12]))
            if await self._kill(container_id, "SIGKILL"):
                await self.wait(container_id)

    async def _kill(self, container_id: str, signal: str) -> bool:
        """Send `signal`; False when the container was not running."""
        try:
            await self.engine.call(
                container_id, "container", self._container(container_id).kill(signal=signal)
            )
        except RuntimeFailure as exc:
            if exc.details.get("status") == 409:  # "is not running"
                return False
            raise
        return True

    async def remove(self, container_id: str) -> None:
        try:
            state = await self.engine.call(
                container_id, "container", self._container(container_id).show()
            )
        except NotFound:
            return
        with contextlib.suppress(NotFound):  # removed by someone else meanwhile
            await self.engine.call(
                container_id, "container", self._container(container_id).delete(force=True, v=True)
            )
        self._names.pop(container_id, None)
        self._health.forget(str(state.get("Id", container_id)))
        self._files.drop(str(state.get("Name", "")))
        log.info("container removed %s", kv(id=container_id[:12]))

    async def list_containers(self, labels: dict[str, str]) -> list[ContainerState]:
        filters = json.dumps({"label": [f"{k}={v}" for k, v in sorted(labels.items())]})
        found = await self.engine.call(
            "", "daemon", self.engine.docker.containers.list(all=True, filters=filters)
        )
        states = []
        for container in found:
            try:
                states.append(await self.inspect(container.id))
            except NotFound:  # removed between the list and the inspect
                continue
        return states

    async def stats(self, container_id: str) -> ContainerStats:
        data = await self.engine.call(
            container_id, "container", self._container(container_id).show()
        )
        state = data.get("State") or {}
        if not state.get("Running"):
            raise NotFound(f"container {container_id} is not running")
        params = {"stream": "0", "one-shot": "1"}
        raw = await self.engine.get_json(
            f"containers/{container_id}/stats", params, what=container_id, subject="container"
        )
        net = read_net_dev(int(state.get("Pid") or 0))
        return stats_from_docker(raw if isinstance(raw, dict) else {}, data, net)

    async def logs(
        self, container_id: str, *, follow: bool = False, tail: int = -1, since: float = 0.0
    ) -> AsyncIterator[LogEntry]:
        data = await self.engine.call(
            container_id, "container", self._container(container_id).show()
        )
        tty = bool((data.get("Config") or {}).get("Tty"))
        driver = str(((data.get("HostConfig") or {}).get("LogConfig") or {}).get("Type", ""))
        if driver in UNREADABLE:
            raise RuntimeFailure(
                f"the log of container {container_id[:12]} cannot be read: its log driver "
                f'is "{driver}", which keeps nothing',
                details={"container": container_id, "log_driver": driver},
            )
        params: dict[str, str | int | bool] = {
            "stdout": True,
            "stderr": True,
            "timestamps": True,
            "follow": follow,
            "tail": "all" if tail < 0 else tail,
        }
        if since > 0:
            params["since"] = f"{since:.9f}"  # Docker takes fractional epoch seconds
        stream = self.engine.stream(
            f"containers/{container_id}/logs", params, what=container_id, subject="container"
        )
        try:
            async with stream as response:
                lines = LineSplitter()
                try:
                    async for kind, chunk in _frames(response, tty=tty):
                        for entry in lines.feed(kind, chunk, frame=not tty):
                            yield entry
                except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                    raise RuntimeUnavailable(f"log stream of {container_id} broke: {exc}") from exc
                for entry in lines.flush():
                    yield entry
        except RuntimeFailure as exc:
            if exc.details.get("status") != 501:  # dockerd: "does not support reading"
                raise
            raise RuntimeFailure(
                f"the log of container {container_id[:12]} cannot be read: its log driver "
                f'"{driver}" keeps nothing dockerd can read back ({exc.message})',
                details={"container": container_id, "log_driver": driver},
            ) from exc


async def _frames(
    response: aiohttp.ClientResponse, *, tty: bool
) -> AsyncIterator[tuple[int, bytes]]:
    """Docker's log stream as (stream, bytes): 8-byte headers unless the container has a TTY."""
    if tty:
        async for chunk in response.content.iter_any():
            yield _STDOUT, chunk
        return
    while True:
        try:
            header = await response.content.readexactly(8)
            kind, size = struct.unpack(">BxxxL", header)
            payload = await response.content.readexactly(size) if size else b""
        except asyncio.IncompleteReadError:
            return
        yield kind, payload


class LineSplitter:
    """Cuts each stream's bytes into log lines, ``<RFC 3339 time> <text>`` each."""

    def __init__(self) -> None:
        self._pending: dict[int, bytes] = {}

    def feed(self, stream: int, chunk: bytes, *, frame: bool = False) -> list[LogEntry]:
        """``frame``: `chunk` is one whole log frame, whose timestamp goes when it only
        continues a line (Podman's pieces of a line each have one)."""
        pending = self._pending.pop(stream, b"")
        data = pending + (strip_continuation(pending, chunk) if frame else chunk)
        *complete, rest = data.split(b"\n")
        if rest:
            self._pending[stream] = rest
        return [_entry(stream, line) for line in complete]

    def flush(self) -> list[LogEntry]:
        pending, self._pending = self._pending, {}
        return [_entry(stream, line) for stream, line in sorted(pending.items())]


def _entry(stream: int, raw: bytes) -> LogEntry:
    text = raw.decode("utf-8", errors="replace").removesuffix("\r")
    stamp, _, line = text.partition(" ")
    try:
        when = parse_time(stamp)
    except ValueError:  # no timestamp: keep the whole text
        when, line = 0.0, text
    return LogEntry(stream="stderr" if stream == _STDERR else "stdout", timestamp=when, line=line)


def _progress_line(event: dict[str, Any]) -> str:
    parts = [str(event.get(k, "")) for k in ("id", "status", "progress")]
    return " ".join(p for p in parts if p)
