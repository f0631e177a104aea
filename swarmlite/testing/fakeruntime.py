"""FakeRuntime: the RuntimeDriver in memory, for agent tests that need no dockerd.

Owns a pretend daemon (images, containers, their logs, health and files) and the knobs
tests turn: which images are present or pullable, what a command prints and when it exits
(`FakeProgram`, keyed by the container's argv, entrypoint + command as Docker joins them),
how a health check's probes go (`health_results`), an exit forced now (`exit`), and the
next call of an operation failing with a given error (`fail_next`). The contract suite
(tests/contract) runs the same scenarios here and on a real dockerd, so that the fake
stays honest.

Time comes from the injected Clock: a container's state is worked out from its start time
when asked (no background tasks), so a FakeClock makes exits, output and health
deterministic; waiters sleep on the Clock until the next thing can happen.

Secrets and configs follow the contract's rule as the Docker driver does: a container's
files are on the pretend node (`host_files`) from `create` until it starts (or fails to),
is removed, or `remove_stale_files` finds it not "created"; the container itself sees them
(`read_file`) while it is created or running.

Does not own the Protocol (`agent.driver`). Invariants: errors are swarmlite's, with the
same classes the Docker driver raises; a container never leaves "exited" except by
`start` again; the exit code of a kill is 137, as Docker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from swarmlite.agent.driver import (
    LABEL_CLUSTER,
    LABEL_NODE,
    LABEL_SERVICE,
    LABEL_SLOT,
    LABEL_TASK,
    ContainerRequest,
    ContainerState,
    ContainerStats,
    FileData,
    LogEntry,
    RuntimeInfo,
)
from swarmlite.api import HealthCheck
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.clock import Clock, SystemClock
from swarmlite.errors import (
    AlreadyExists,
    ImageNotFound,
    InvalidArgument,
    NotFound,
    RuntimeUnavailable,
    SwarmliteError,
)
from swarmlite.testing.images import TEST_IMAGES, WEB_COMMAND, WEB_READY

KILLED = 137  # 128 + SIGKILL, as Docker reports it
FAKE_MEMORY = 1 << 20  # what a running container uses, unless `set_stats` says otherwise
FAKE_CPU_SHARE = 0.01  # CPU seconds per second of running, likewise
DEFAULT_INTERVAL = 30.0
DEFAULT_RETRIES = 3


@dataclass(frozen=True)
class FakeProgram:
    """What a command does: timed output, when it exits by itself, how it takes signals."""

    output: tuple[tuple[float, str, str], ...] = ()  # (seconds after start, stream, line)
    exit_after: float | None = None  # None: runs until stopped
    exit_code: int = 0
    # Signal -> exit code; any other signal is ignored (PID 1 has no default handlers).
    signals: Mapping[str, int] = field(default_factory=lambda: {"SIGTERM": 0, "SIGINT": 0})

    @classmethod
    def prints(
        cls, stdout: Iterable[str] = (), stderr: Iterable[str] = (), *, exit_code: int = 0
    ) -> FakeProgram:
        """A command that prints its lines at once and exits with `exit_code`."""
        lines = [(0.0, "stdout", s) for s in stdout] + [(0.0, "stderr", s) for s in stderr]
        return cls(output=tuple(lines), exit_after=0.0, exit_code=exit_code)


SERVER = FakeProgram()  # runs until SIGTERM/SIGINT, then exits 0
DEAF = FakeProgram(signals={})  # ignores every signal but SIGKILL (like `sleep` as PID 1)


@dataclass(frozen=True)
class FakeImage:
    ref: str
    cmd: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None
    healthcheck: HealthCheck | None = None
    stop_signal: str = ""


def normalize(ref: str) -> str:
    """``name`` -> ``name:latest``; references with a tag or digest are kept."""
    last = ref.rsplit("/", 1)[-1]
    return ref if (":" in last or "@" in ref) else f"{ref}:latest"


@dataclass
class FakeContainer:
    id: str
    name: str
    request: ContainerRequest
    image: FakeImage
    argv: tuple[str, ...]
    program: FakeProgram
    labels: dict[str, str]
    files: dict[str, FileData]
    healthcheck: HealthCheck | None
    status: str = "created"
    exit_code: int | None = None
    error: str = ""
    started_mono: float = 0.0
    started_wall: float = 0.0
    pid: int = 0  # a made-up pid, new on every start (no real process behind it)
    ended_mono: float | None = None  # set when the process ended (by itself or a signal)
    finished_wall: float = 0.0
    written: list[LogEntry] = field(default_factory=list)  # lines added by `write_log`
    stats: ContainerStats | None = None  # set by `set_stats`
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Daemon:
    """The state every FakeRuntime connected to one pretend daemon shares."""

    images: dict[str, FakeImage] = field(default_factory=dict)
    registry: dict[str, FakeImage] = field(default_factory=dict)
    containers: dict[str, FakeContainer] = field(default_factory=dict)
    failures: dict[str, list[SwarmliteError]] = field(default_factory=dict)
    pids: int = 1000  # the last pid handed out
    # The node's memory-backed files directory: container name -> its files.
    staged: dict[str, list[FileData]] = field(default_factory=dict)


class FakeRuntime:
    """`RuntimeDriver` in memory. ``FakeRuntime.with_test_images()`` knows testing.images'."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        images: Iterable[FakeImage] = (),
        registry: Iterable[FakeImage] = (),
        programs: Mapping[tuple[str, ...], FakeProgram] | None = None,
        default_program: FakeProgram = SERVER,
        health_results: Mapping[tuple[str, ...], list[bool]] | None = None,
        rng: random.Random | None = None,
        nano_cpus: int = 2_000_000_000,
        memory_bytes: int = 4 << 30,
        cluster_id: str = "",
        node_id: str = "",
        _daemon: _Daemon | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.cluster_id, self.node_id = cluster_id, node_id
        self._daemon = _daemon or _Daemon()
        for image in images:
            self.add_image(image)
        for image in registry:
            self._daemon.registry[normalize(image.ref)] = image
        self.programs: dict[tuple[str, ...], FakeProgram] = dict(programs or {})
        self.default_program = default_program
        # Probe results per health-check test, in order; the last one repeats. Unknown
        # tests pass, except the usual always-failing ones.
        self.health_results: dict[tuple[str, ...], list[bool]] = {
            ("CMD", "false"): [False],
            ("CMD-SHELL", "false"): [False],
            ("CMD-SHELL", "exit 1"): [False],
            **dict(health_results or {}),
        }
        self._rng = rng or random.Random()
        self.nano_cpus, self.memory_bytes = nano_cpus, memory_bytes
        self.closed = False
        self.calls: list[tuple[object, ...]] = []  # (operation, *arguments), in call order
        self.pull_auth: dict[str, RegistryAuth | None] = {}  # image -> the last pull's auth

    @classmethod
    def with_test_images(
        cls, clock: Clock | None = None, *, cluster_id: str = "", node_id: str = ""
    ) -> FakeRuntime:
        """A fake holding the images `testing.images.ensure_test_images` builds."""
        fake = cls(clock, cluster_id=cluster_id, node_id=node_id)
        for image in TEST_IMAGES:
            fake.add_image(FakeImage(ref=image.ref, cmd=image.cmd, healthcheck=image.healthcheck))
        fake.programs.setdefault(
            tuple(WEB_COMMAND), FakeProgram(output=((0.0, "stdout", WEB_READY),))
        )
        fake.programs.setdefault(("sh",), FakeProgram.prints())  # no stdin: exits at once
        return fake

    def reconnect(self) -> FakeRuntime:
        """Another driver on the same pretend daemon (an agent restarted; containers ran on)."""
        other = FakeRuntime(
            self.clock, cluster_id=self.cluster_id, node_id=self.node_id, _daemon=self._daemon
        )
        other.programs, other.default_program = self.programs, self.default_program
        other.health_results = self.health_results
        return other

    # -- knobs ---------------------------------------------------------------------------

    def add_image(self, image: FakeImage) -> None:
        self._daemon.images[normalize(image.ref)] = image

    def add_to_registry(self, image: FakeImage) -> None:
        """Make `image` pullable (not present until pulled)."""
        self._daemon.registry[normalize(image.ref)] = image

    def fail_next(self, operation: str, error: SwarmliteError, times: int = 1) -> None:
        """The next `times` calls of `operation` ("create", "start", "pull", ...) raise `error`."""
        self._daemon.failures.setdefault(operation, []).extend([error] * times)

    def names(self) -> list[str]:
        """The operations called on this driver so far, in order."""
        return [str(call[0]) for call in self.calls]

    def exit(self, container_id: str, code: int) -> None:
        """The container's process exits now with `code` (a crash, an OOM kill, ...)."""
        container = self._get(container_id)
        self._refresh(container)
        if container.status == "running":
            self._end(container, code, self.clock.monotonic())

    def write_log(self, container_id: str, stream: str, line: str) -> None:
        container = self._get(container_id)
        container.written.append(LogEntry(stream=stream, timestamp=self.clock.wall(), line=line))
        self._notify(container)

    def set_stats(self, container_id: str, stats: ContainerStats | None) -> None:
        """What `stats` reports for the container while it runs (None: the made-up use)."""
        self._get(container_id).stats = stats

    def container(self, container_id: str) -> FakeContainer:
        """The fake's record of a container (its request, files, argv, ...)."""
        return self._get(container_id)

    def read_file(self, container_id: str, path: str) -> FileData | None:
        """A secret/config file as the container sees it at `path`, if there is one (only
        while it is created or running: a container that ended has no mounts)."""
        container = self._get(container_id)
        self._refresh(container)
        if container.status not in ("created", "running"):
            return None
        return container.files.get(path)

    def leave_files(self, name: str, files: Iterable[FileData]) -> None:
        """Files an earlier run of the agent left on the node for container `name`."""
        self._daemon.staged[name] = list(files)

    def host_files(self) -> dict[str, list[FileData]]:
        """The secret/config files on the node itself (outside any container), by the
        name of the container they wait for."""
        return {name: list(files) for name, files in self._daemon.staged.items()}

    @property
    def images(self) -> set[str]:
        return set(self._daemon.images)

    # -- RuntimeDriver -------------------------------------------------------------------

    async def info(self) -> RuntimeInfo:
        self._maybe_fail("info")
        return RuntimeInfo(
            name="fake",
            version="1.0",
            os="linux",
            arch="x86_64",
            nano_cpus=self.nano_cpus,
            memory_bytes=self.memory_bytes,
        )

    async def pull(
        self,
        image: str,
        progress: Callable[[str], None] | None = None,
        *,
        auth: RegistryAuth | None = None,
    ) -> None:
        self.pull_auth[image] = auth
        self._maybe_fail("pull", image)
        ref = normalize(image)
        if ref in self._daemon.images:
            return
        found = self._daemon.registry.get(ref)
        if found is None:
            raise ImageNotFound(
                f"image {image} could not be pulled: not in the fake registry",
                details={"image": image},
            )
        if progress is not None:
            progress(f"Pulling from {ref}")
            progress("Download complete")
        self._daemon.images[ref] = found
        await asyncio.sleep(0)

    async def create(self, request: ContainerRequest) -> str:
        self._maybe_fail("create", request.name)
        spec = request.task.spec.container
        image = self._daemon.images.get(normalize(spec.image))
        if image is None:
            raise ImageNotFound(f"image {spec.image} not found", details={"image": spec.image})
        if any(c.name == request.name for c in self._daemon.containers.values()):
            raise AlreadyExists(f'the container name "/{request.name}" is already in use')
        for item in request.files:
            if not item.target.startswith("/"):
                raise InvalidArgument(f"file target must be absolute: {item.target!r}")
        if spec.entrypoint is not None:
            argv = [*spec.entrypoint, *(spec.command or [])]
        else:
            argv = [*(image.entrypoint or []), *(spec.command or image.cmd)]
        container_id = f"{self._rng.getrandbits(256):064x}"
        task = request.task
        labels = {**spec.labels, **request.labels}
        # The identity labels, as the Docker driver sets them (and they win over the user's).
        labels.update(
            {LABEL_TASK: task.id, LABEL_SERVICE: task.service_id, LABEL_SLOT: str(task.slot)}
        )
        if self.cluster_id:
            labels[LABEL_CLUSTER] = self.cluster_id
        if self.node_id:
            labels[LABEL_NODE] = self.node_id
        container = FakeContainer(
            id=container_id,
            name=request.name,
            request=request,
            image=image,
            argv=tuple(argv),
            program=self.programs.get(tuple(argv), self.default_program),
            labels=labels,
            files={f.target: f for f in request.files},
            healthcheck=_merge_health(spec.healthcheck, image.healthcheck),
        )
        self._daemon.containers[container_id] = container
        if request.files:
            self._daemon.staged[request.name] = list(request.files)
        return container_id

    async def start(self, container_id: str) -> None:
        try:
            self._maybe_fail("start", container_id)
        except SwarmliteError as exc:
            found = self._find(container_id)
            if found is not None and not exc.retryable:
                self._daemon.staged.pop(found.name, None)  # it cannot start: files go
            raise
        container = self._get(container_id)
        self._refresh(container)
        self._daemon.staged.pop(container.name, None)  # only the container's mounts hold them
        if container.status == "running":
            return
        container.status, container.exit_code, container.error = "running", None, ""
        container.started_mono, container.started_wall = self.clock.monotonic(), self.clock.wall()
        container.ended_mono, container.written = None, []
        self._daemon.pids += 1
        container.pid = self._daemon.pids
        self._notify(container)
        await asyncio.sleep(0)

    async def inspect(self, container_id: str) -> ContainerState:
        self._maybe_fail("inspect", container_id)
        return self._state(self._get(container_id))

    def _state(self, container: FakeContainer) -> ContainerState:
        self._refresh(container)
        return ContainerState(
            id=container.id,
            task_id=container.labels.get(LABEL_TASK, ""),
            labels=dict(container.labels),
            status=container.status,
            exit_code=container.exit_code,
            health=self._health(container),
            error=container.error,
            started_at=container.started_wall,
            finished_at=container.finished_wall,
            pid=container.pid if container.status == "running" else 0,
        )

    async def wait(self, container_id: str) -> int:
        self._maybe_fail("wait", container_id)
        container = self._get(container_id)
        while True:
            self._refresh(container)
            if container.status != "running":
                return container.exit_code if container.exit_code is not None else 0
            await self._until_change(container, self._next_event(container))

    async def stop(self, container_id: str, *, signal: str = "", grace: float = 10.0) -> None:
        self._maybe_fail("stop", container_id, signal, grace)
        container = self._get(container_id)
        self._refresh(container)
        if container.status != "running":
            return
        spec_signal = container.request.task.spec.container.stop_signal
        chosen = signal or spec_signal or container.image.stop_signal or "SIGTERM"
        if chosen in ("SIGKILL", "KILL", "9"):
            self._end(container, KILLED, self.clock.monotonic())
            return
        code = container.program.signals.get(chosen)
        if code is not None:
            self._end(container, code, self.clock.monotonic())
            return
        with contextlib.suppress(TimeoutError):
            await self._wait_for(container, grace)
        self._refresh(container)
        if container.status == "running":
            self._end(container, KILLED, self.clock.monotonic())

    async def remove(self, container_id: str) -> None:
        self._maybe_fail("remove", container_id)
        container = self._find(container_id)
        if container is None:
            return
        self._refresh(container)
        if container.status == "running":
            self._end(container, KILLED, self.clock.monotonic())
        container.status = "removed"
        del self._daemon.containers[container.id]
        self._daemon.staged.pop(container.name, None)
        self._notify(container)

    async def remove_stale_files(self) -> None:
        self._maybe_fail("remove_stale_files")
        for name in list(self._daemon.staged):
            container = self._find(name)
            if container is None or self._state(container).status != "created":
                del self._daemon.staged[name]

    async def list_containers(self, labels: dict[str, str]) -> list[ContainerState]:
        self._maybe_fail("list_containers", dict(labels))
        return [
            self._state(c)
            for c in self._daemon.containers.values()
            if all(c.labels.get(k) == v for k, v in labels.items())
        ]

    async def logs(
        self, container_id: str, *, follow: bool = False, tail: int = -1, since: float = 0.0
    ) -> AsyncIterator[LogEntry]:
        self._maybe_fail("logs", container_id, follow, tail)
        container = self._get(container_id)
        self._refresh(container)
        entries = self._entries(container)
        recent = [e for e in entries if e.timestamp >= since]
        shown = recent if tail < 0 else recent[len(recent) - tail :] if tail else []
        for entry in shown:
            yield entry
        seen = len(entries)
        while follow:
            self._refresh(container)
            entries = self._entries(container)
            for entry in entries[seen:]:
                yield entry
            seen = len(entries)
            if container.status != "running":
                return
            await self._until_change(container, self._next_event(container))

    async def stats(self, container_id: str) -> ContainerStats:
        self._maybe_fail("stats", container_id)
        container = self._get(container_id)
        self._refresh(container)
        if container.status != "running":
            raise NotFound(f"container {container_id} is not running")
        if container.stats is not None:
            return container.stats
        limits = container.request.task.spec.resources.limits
        return ContainerStats(
            cpu_seconds=FAKE_CPU_SHARE * self._elapsed(container),
            memory_bytes=FAKE_MEMORY,
            memory_limit_bytes=limits.memory_bytes,
            rx_bytes=0,
            tx_bytes=0,
        )

    async def close(self) -> None:
        self.closed = True

    # -- the pretend process -------------------------------------------------------------

    def _maybe_fail(self, operation: str, *args: object) -> None:
        self.calls.append((operation, *args))
        if self.closed:
            raise RuntimeUnavailable("the fake runtime was closed")
        pending = self._daemon.failures.get(operation)
        if pending:
            raise pending.pop(0)

    def _find(self, container_id: str) -> FakeContainer | None:
        daemon = self._daemon
        found = daemon.containers.get(container_id)
        if found is None:
            found = next((c for c in daemon.containers.values() if c.name == container_id), None)
        return found

    def _get(self, container_id: str) -> FakeContainer:
        found = self._find(container_id)
        if found is None:
            raise NotFound(f"container {container_id} not found: No such container")
        return found

    def _refresh(self, container: FakeContainer) -> None:
        """Let the program exit by itself if its time has come."""
        program = container.program
        if container.status != "running" or program.exit_after is None:
            return
        end = container.started_mono + program.exit_after
        if self.clock.monotonic() >= end:
            self._end(container, program.exit_code, end)

    def _end(self, container: FakeContainer, code: int, at: float) -> None:
        container.status, container.exit_code, container.ended_mono = "exited", code, at
        container.finished_wall = container.started_wall + (at - container.started_mono)
        self._notify(container)

    def _notify(self, container: FakeContainer) -> None:
        container.changed.set()
        container.changed = asyncio.Event()

    def _elapsed(self, container: FakeContainer) -> float:
        end = container.ended_mono if container.ended_mono is not None else self.clock.monotonic()
        return end - container.started_mono

    def _entries(self, container: FakeContainer) -> list[LogEntry]:
        if not container.started_wall:
            return []
        elapsed = self._elapsed(container)
        printed = [
            LogEntry(stream=stream, timestamp=container.started_wall + at, line=line)
            for at, stream, line in container.program.output
            if at <= elapsed
        ]
        return sorted(printed + container.written, key=lambda e: e.timestamp)

    def _next_event(self, container: FakeContainer) -> float | None:
        """Seconds until the next output line or exit of a running container, if any."""
        elapsed = self._elapsed(container)
        times = [at for at, _, _ in container.program.output if at > elapsed]
        if container.program.exit_after is not None:
            times.append(container.program.exit_after)
        ahead = [t - elapsed for t in times if t >= elapsed]
        return min(ahead) if ahead else None

    async def _until_change(self, container: FakeContainer, timeout: float | None) -> None:
        waiter = asyncio.ensure_future(container.changed.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(timeout)) if timeout is not None else None
        try:
            await asyncio.wait([t for t in (waiter, sleeper) if t], return_when="FIRST_COMPLETED")
        finally:
            for task in (waiter, sleeper):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _wait_for(self, container: FakeContainer, grace: float) -> None:
        """Until the container is no longer running; TimeoutError after `grace` (Clock)."""
        deadline = self.clock.monotonic() + grace
        while True:
            self._refresh(container)
            if container.status != "running":
                return
            left = deadline - self.clock.monotonic()
            if left <= 0:
                raise TimeoutError
            upcoming = self._next_event(container)
            await self._until_change(container, left if upcoming is None else min(left, upcoming))

    def _health(self, container: FakeContainer) -> str:
        check = container.healthcheck
        if check is None or container.status == "created":
            return ""
        interval = check.interval or DEFAULT_INTERVAL
        retries = check.retries or DEFAULT_RETRIES
        results = self.health_results.get(tuple(check.test), [True])
        probes = int(self._elapsed(container) // interval)
        status, failures = "starting", 0
        for number in range(1, probes + 1):
            passed = results[min(number, len(results)) - 1]
            if passed:
                status, failures = "healthy", 0
            elif number * interval > check.start_period:
                failures += 1
                if failures >= retries:
                    status = "unhealthy"
        return status


def _merge_health(own: HealthCheck | None, image: HealthCheck | None) -> HealthCheck | None:
    """Docker's rule: the container's check, with the image's values where it has none."""
    if own is None:
        return image
    if own.disable or own.test == ["NONE"]:
        return None
    if image is None:
        return own if own.test else None
    return HealthCheck(
        test=own.test or image.test,
        interval=own.interval or image.interval,
        timeout=own.timeout or image.timeout,
        retries=own.retries or image.retries,
        start_period=own.start_period or image.start_period,
        start_interval=own.start_interval or image.start_interval,
    )
