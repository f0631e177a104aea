"""One suite, three runtimes: FakeRuntime must behave as DockerDriver on a real dockerd does,
and DockerDriver on Podman's Docker-compatible API service as on dockerd.

Every test runs three times (``[fake]``, ``[docker]`` and ``[podman]``). Commands are
real busybox commands; `runtime.script` tells the fake what each one does, and the Docker
and Podman runs check that the description is true. Waits poll with a deadline; no test
sleeps to let things settle, and none asserts how long something took (a stop is judged
by the exit code it ends with).
The Docker and Podman thirds carry the `docker` marker: a plain `pytest` leaves them out,
`scripts/test` runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import pytest

from swarmlite.agent.driver import (
    LABEL_CLUSTER,
    LABEL_NODE,
    LABEL_SERVICE,
    LABEL_SLOT,
    LABEL_TASK,
    ContainerRequest,
    ContainerState,
    FileData,
    LogEntry,
    RuntimeDriver,
)
from swarmlite.api import (
    ContainerSpec,
    HealthCheck,
    Mount,
    ResourceRequirements,
    Resources,
    Task,
    TaskTemplate,
    Ulimit,
    new_id,
)
from swarmlite.errors import (
    AlreadyExists,
    ContainerFailed,
    ImageNotFound,
    NotFound,
    RuntimeFailure,
    RuntimeUnavailable,
)
from swarmlite.runtime.docker import DockerDriver
from swarmlite.runtime.taskfiles import memory_backed
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.dockerd import Dockerd, engine_json, engine_request
from swarmlite.testing.fakeruntime import DEAF, FakeImage, FakeProgram, FakeRuntime
from swarmlite.testing.images import WEB_READY, TestImages
from swarmlite.testing.podman import PodmanService

T = TypeVar("T")

DEADLINE = 15.0  # generous: the machine may be loaded
# A grace period no test outlives: a stop that waited it out would never return.
LONG_GRACE = 3600.0


@dataclass
class Harness:
    kind: str  # "fake" | "docker" | "podman"
    driver: RuntimeDriver
    new_driver: Callable[[], RuntimeDriver]
    read_file: Callable[[str, str], Awaitable[FileData | None]]
    fake: FakeRuntime | None = None
    images: TestImages = field(default_factory=TestImages)
    cluster_id: str = field(default_factory=new_id)
    node_id: str = field(default_factory=new_id)
    files_dir: Path | None = None
    _opened: list[RuntimeDriver] = field(default_factory=list)

    def script(self, argv: list[str], program: FakeProgram) -> list[str]:
        """Tell the fake what `argv` does (dockerd runs it for real); returns `argv`."""
        if self.fake is not None:
            self.fake.programs[tuple(argv)] = program
        return argv

    def another_driver(self) -> RuntimeDriver:
        driver = self.new_driver()
        self._opened.append(driver)
        return driver

    def host_files(self) -> dict[str, list[FileData]]:
        """The secret/config files on the node outside any container, by container name."""
        if self.fake is not None:
            return self.fake.host_files()
        assert self.files_dir is not None
        found: dict[str, list[FileData]] = {}
        if not self.files_dir.is_dir():
            return found
        for folder in sorted(self.files_dir.iterdir()):
            found[folder.name] = [
                FileData(
                    target=str(path),
                    data=path.read_bytes(),
                    uid=path.stat().st_uid,
                    gid=path.stat().st_gid,
                    mode=path.stat().st_mode & 0o7777,
                )
                for path in sorted(folder.iterdir())
            ]
        return found

    def leave_files(self, name: str, files: list[FileData]) -> None:
        """Files an earlier run of the agent left on the node for container `name`."""
        if self.fake is not None:
            self.fake.leave_files(name, files)
            return
        assert self.files_dir is not None
        folder = self.files_dir / name
        folder.mkdir(parents=True)
        for index, item in enumerate(files):
            (folder / str(index)).write_bytes(item.data)

    def request(
        self,
        *,
        image: str | None = None,
        labels: dict[str, str] | None = None,
        files: list[FileData] | None = None,
        resources: ResourceRequirements | None = None,
        **spec: object,
    ) -> ContainerRequest:
        """A request for a fresh task with a unique container name, on this harness's cluster."""
        task = Task(
            id=new_id(),
            service_id=new_id(),
            service_name="contract",
            slot=1,
            node_id=self.node_id,
            spec=TaskTemplate(
                container=ContainerSpec(image=image or self.images.busybox, **spec),  # type: ignore[arg-type]
                resources=resources or ResourceRequirements(),
            ),
        )
        return ContainerRequest(
            task=task,
            name=f"swl-contract-{uuid.uuid4().hex[:12]}",
            labels={LABEL_CLUSTER: self.cluster_id, **(labels or {})},
            files=list(files or []),
        )

    async def close(self) -> None:
        for driver in self._opened:
            await driver.close()
        await self.driver.close()


def _docker_reader(socket: Path) -> Callable[[str, str], Awaitable[FileData | None]]:
    """Read one file out of a container through ``GET /containers/{id}/archive``."""

    def read(container_id: str, path: str) -> FileData | None:
        status, body = engine_request(
            socket, "GET", f"/containers/{quote(container_id)}/archive?path={quote(path)}"
        )
        if status == 404:
            return None
        assert status == 200, body
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            member = tar.next()
            assert member is not None
            handle = tar.extractfile(member)
            data = handle.read() if handle else b""
            return FileData(
                target=path, data=data, uid=member.uid, gid=member.gid, mode=member.mode & 0o7777
            )

    async def read_async(container_id: str, path: str) -> FileData | None:
        return await asyncio.to_thread(read, container_id, path)

    return read_async


def _podman_reader(socket: Path) -> Callable[[str, str], Awaitable[FileData | None]]:
    """Podman's ``/archive`` cannot read a file that is a bind mount of its own (it wants a
    directory there): such a file is read through the mount Podman reports for it (the same
    inode as the container sees), any other through ``/archive``."""
    archive = _docker_reader(socket)

    def through_mount(container_id: str, path: str) -> FileData | None:
        data = engine_json(socket, "GET", f"/containers/{quote(container_id)}/json")
        for mount in data.get("Mounts") or []:
            if mount.get("Destination") == path and mount.get("Type") == "bind":
                source = Path(mount["Source"])
                info = source.stat()
                return FileData(
                    target=path,
                    data=source.read_bytes(),
                    uid=info.st_uid,
                    gid=info.st_gid,
                    mode=info.st_mode & 0o7777,
                )
        return None

    async def read(container_id: str, path: str) -> FileData | None:
        found = await asyncio.to_thread(through_mount, container_id, path)
        return found if found is not None else await archive(container_id, path)

    return read


@pytest.fixture(
    params=[
        "fake",
        pytest.param("docker", marks=pytest.mark.docker),
        pytest.param("podman", marks=pytest.mark.docker),
    ]
)
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    if request.param == "fake":
        cluster_id, node_id = new_id(), new_id()
        fake = FakeRuntime.with_test_images(cluster_id=cluster_id, node_id=node_id)

        async def read_fake(container_id: str, path: str) -> FileData | None:
            return fake.read_file(container_id, path)

        harness = Harness(
            kind="fake",
            driver=fake,
            new_driver=fake.reconnect,
            read_file=read_fake,
            fake=fake,
            cluster_id=cluster_id,
            node_id=node_id,
        )
    else:
        # The same driver on either daemon: dockerd, or Podman's Docker-compatible service.
        daemon: Dockerd | PodmanService = request.getfixturevalue(
            "private_dockerd" if request.param == "docker" else "private_podman"
        )
        cluster_id, node_id = new_id(), new_id()
        files_dir = tmp_path / "files"

        def make() -> DockerDriver:
            return DockerDriver(
                str(daemon.socket), cluster_id=cluster_id, node_id=node_id, files_dir=files_dir
            )

        harness = Harness(
            kind=request.param,
            driver=make(),
            new_driver=make,
            read_file=(_docker_reader if request.param == "docker" else _podman_reader)(
                daemon.socket
            ),
            cluster_id=cluster_id,
            node_id=node_id,
            files_dir=files_dir,
        )
    try:
        yield harness
    finally:
        await harness.close()


async def eventually(
    probe: Callable[[], Awaitable[ContainerState]], check: Callable[[ContainerState], bool]
) -> ContainerState:
    """Poll until `check` holds (or fail with the last state seen)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        state = await probe()
        if check(state):
            return state
        assert time.monotonic() < deadline, f"condition never held; last state: {state}"
        await asyncio.sleep(0.05)


async def returns(call: Awaitable[T], what: str) -> T:
    """`call`'s result; fails naming `what` if it has not returned by DEADLINE."""
    deadline = asyncio.timeout(DEADLINE)
    try:
        async with deadline:
            return await call
    except TimeoutError:
        if not deadline.expired():
            raise
        raise AssertionError(f"timed out after {DEADLINE:g}s waiting for {what}") from None


async def collect(
    runtime: Harness, cid: str, *, follow: bool = False, tail: int = -1
) -> list[LogEntry]:
    return [entry async for entry in runtime.driver.logs(cid, follow=follow, tail=tail)]


async def serving(runtime: Harness, cid: str) -> None:
    """Until a web image's script says its SIGTERM trap is in place."""
    async with (
        asyncio.timeout(DEADLINE),
        contextlib.aclosing(runtime.driver.logs(cid, follow=True)) as entries,
    ):
        async for entry in entries:
            if entry.line == WEB_READY:
                return
    raise AssertionError(f"{cid} ended before it served")


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


# -- life cycle ------------------------------------------------------------------------


async def test_create_start_wait_inspect_remove(runtime: Harness) -> None:
    argv = runtime.script(sh("exit 3"), FakeProgram.prints(exit_code=3))
    request = runtime.request(command=argv)
    cid = await runtime.driver.create(request)

    created = await runtime.driver.inspect(cid)
    assert created.status == "created"
    assert created.exit_code is None
    assert created.task_id == request.task.id
    assert created.started_at == 0.0

    await runtime.driver.start(cid)
    assert await runtime.driver.wait(cid) == 3
    exited = await runtime.driver.inspect(cid)
    assert exited.status == "exited"
    assert exited.exit_code == 3
    # Docker may stamp a very short run's end a hair before its start: allow a second.
    assert 0 < exited.started_at <= exited.finished_at + 1
    assert abs(exited.started_at - time.time()) < 60

    await runtime.driver.remove(cid)
    with pytest.raises(NotFound):
        await runtime.driver.inspect(cid)
    await runtime.driver.remove(cid)  # already gone: no error


async def test_exit_codes_are_reported_as_the_process_gave_them(runtime: Harness) -> None:
    for code in (0, 1, 42):
        argv = runtime.script(sh(f"exit {code}"), FakeProgram.prints(exit_code=code))
        cid = await runtime.driver.create(runtime.request(command=argv))
        await runtime.driver.start(cid)
        assert await runtime.driver.wait(cid) == code
        assert (await runtime.driver.inspect(cid)).exit_code == code
        await runtime.driver.remove(cid)


async def test_image_command_runs_when_the_spec_gives_none(runtime: Harness) -> None:
    # swl/web:1's own CMD serves until SIGTERM, on which it exits 0 at once.
    cid = await runtime.driver.create(runtime.request(image=runtime.images.web_v1))
    await runtime.driver.start(cid)
    await serving(runtime, cid)
    running = await runtime.driver.inspect(cid)
    assert running.status == "running"
    assert running.exit_code is None
    assert running.pid > 0  # what the network driver enters to attach interfaces
    assert running.health == ""  # the image has no health check

    # Its trap ends it on SIGTERM: the stop returns with the container exited by its own
    # hand (0), not killed (137) at the end of a grace period longer than any test.
    await returns(runtime.driver.stop(cid, grace=LONG_GRACE), "the stop of a server")
    stopped = await runtime.driver.inspect(cid)
    assert (stopped.status, stopped.exit_code, stopped.pid) == ("exited", 0, 0)
    await runtime.driver.stop(cid)  # already exited: no error
    await runtime.driver.remove(cid)


async def test_stop_waits_the_grace_period_then_kills(runtime: Harness) -> None:
    # PID 1 without a SIGTERM handler: the kernel ignores the signal. Within its grace
    # period this one ends by itself, with its own code (7), not SIGKILL's (137).
    argv = runtime.script(
        sh("sleep 1; exit 7"), FakeProgram(exit_after=1.0, exit_code=7, signals={})
    )
    patient = await runtime.driver.create(runtime.request(command=argv))
    await runtime.driver.start(patient)
    await returns(
        runtime.driver.stop(patient, grace=LONG_GRACE), "the stop of a container that exits"
    )
    ended = await runtime.driver.inspect(patient)
    assert (ended.status, ended.exit_code) == ("exited", 7)

    # `sleep` never ends by itself: once the grace period is over, SIGKILL.
    argv = runtime.script(["sleep", "60"], DEAF)
    cid = await runtime.driver.create(runtime.request(command=argv))
    await runtime.driver.start(cid)
    await returns(runtime.driver.stop(cid, grace=1), "the stop of a container deaf to SIGTERM")
    stopped = await runtime.driver.inspect(cid)
    assert (stopped.status, stopped.exit_code) == ("exited", 137)
    assert await runtime.driver.wait(cid) == 137
    for container in (patient, cid):
        await runtime.driver.remove(container)


async def test_stop_with_an_explicit_signal(runtime: Harness) -> None:
    # The web image's script traps INT as well as TERM.
    cid = await runtime.driver.create(runtime.request(image=runtime.images.web_v1))
    await runtime.driver.start(cid)
    await serving(runtime, cid)
    stop = runtime.driver.stop(cid, signal="SIGINT", grace=LONG_GRACE)
    await returns(stop, "the stop with SIGINT of a server that exits on it")
    assert (await runtime.driver.inspect(cid)).exit_code == 0  # its trap, not SIGKILL

    argv = runtime.script(["sleep", "61"], DEAF)
    deaf = await runtime.driver.create(runtime.request(command=argv))
    await runtime.driver.start(deaf)
    await runtime.driver.stop(deaf, signal="SIGUSR1", grace=0.5)
    assert (await runtime.driver.inspect(deaf)).exit_code == 137
    for container in (cid, deaf):
        await runtime.driver.remove(container)


async def test_removing_a_running_container_is_clean(runtime: Harness) -> None:
    secret = FileData(target="/run/secrets/token", data=b"s3cret\n", mode=0o400)
    request = runtime.request(image=runtime.images.web_v2, files=[secret])
    cid = await runtime.driver.create(request)
    await runtime.driver.start(cid)
    assert (await runtime.driver.inspect(cid)).status == "running"

    await runtime.driver.remove(cid)
    with pytest.raises(NotFound):
        await runtime.driver.inspect(cid)
    assert await runtime.driver.list_containers({LABEL_TASK: request.task.id}) == []
    if runtime.files_dir is not None:  # the Docker driver's secret files went with it
        assert not any(runtime.files_dir.iterdir())


# -- labels and adoption ---------------------------------------------------------------


async def test_labels_find_containers_again_after_an_agent_restart(runtime: Harness) -> None:
    first = runtime.request(image=runtime.images.web_v1, labels={"tier": "front"})
    second = runtime.request(command=runtime.script(sh("exit 0"), FakeProgram.prints()))
    ids = {}
    for request in (first, second):
        ids[request.task.id] = await runtime.driver.create(request)
    await runtime.driver.start(ids[first.task.id])
    await serving(runtime, ids[first.task.id])

    restarted = runtime.another_driver()
    found = await restarted.list_containers({LABEL_CLUSTER: runtime.cluster_id})
    by_task = {state.task_id: state for state in found}
    assert set(by_task) == {first.task.id, second.task.id}
    web = by_task[first.task.id]
    assert web.id == ids[first.task.id]
    assert web.status == "running"
    assert web.labels["tier"] == "front"
    assert web.labels[LABEL_SERVICE] == first.task.service_id
    assert web.labels[LABEL_SLOT] == "1"
    assert web.labels[LABEL_NODE] == runtime.node_id
    assert by_task[second.task.id].status == "created"

    only = await restarted.list_containers(
        {LABEL_CLUSTER: runtime.cluster_id, LABEL_TASK: second.task.id}
    )
    assert [state.id for state in only] == [ids[second.task.id]]
    front = await restarted.list_containers({LABEL_CLUSTER: runtime.cluster_id, "tier": "front"})
    assert [state.id for state in front] == [ids[first.task.id]]

    await restarted.stop(web.id, grace=5)
    for cid in ids.values():
        await restarted.remove(cid)
    assert await runtime.driver.list_containers({LABEL_CLUSTER: runtime.cluster_id}) == []


async def test_identity_labels_win_over_user_labels(runtime: Harness) -> None:
    request = runtime.request(labels={LABEL_TASK: "forged", LABEL_CLUSTER: "someone-else"})
    cid = await runtime.driver.create(request)
    state = await runtime.driver.inspect(cid)
    assert state.task_id == request.task.id
    assert state.labels[LABEL_TASK] == request.task.id
    assert state.labels[LABEL_CLUSTER] == runtime.cluster_id
    await runtime.driver.remove(cid)


# -- health ----------------------------------------------------------------------------


async def test_a_passing_health_check_makes_the_container_healthy(runtime: Harness) -> None:
    argv = runtime.script(["sleep", "62"], DEAF)
    check = HealthCheck(test=["CMD", "true"], interval=0.2, retries=2)
    cid = await runtime.driver.create(runtime.request(command=argv, healthcheck=check))
    await runtime.driver.start(cid)
    first = await runtime.driver.inspect(cid)
    assert first.health in ("starting", "healthy")
    await eventually(lambda: runtime.driver.inspect(cid), lambda s: s.health == "healthy")
    await runtime.driver.remove(cid)


async def test_a_failing_health_check_makes_the_container_unhealthy(runtime: Harness) -> None:
    # swl/web:bad's own check (`false`, 1 retry); the spec only shortens the interval.
    check = HealthCheck(interval=0.2)
    request = runtime.request(image=runtime.images.web_bad, healthcheck=check)
    cid = await runtime.driver.create(request)
    await runtime.driver.start(cid)
    state = await eventually(lambda: runtime.driver.inspect(cid), lambda s: s.health == "unhealthy")
    assert state.status == "running"  # unhealthy is not dead: the agent decides
    await runtime.driver.remove(cid)


async def test_a_disabled_health_check_reports_no_health(runtime: Harness) -> None:
    check = HealthCheck(disable=True)
    cid = await runtime.driver.create(
        runtime.request(image=runtime.images.web_bad, healthcheck=check)
    )
    await runtime.driver.start(cid)
    assert (await runtime.driver.inspect(cid)).health == ""
    await runtime.driver.remove(cid)


# -- logs ------------------------------------------------------------------------------


async def test_logs_keep_stdout_and_stderr_apart(runtime: Harness) -> None:
    argv = runtime.script(
        sh("echo out1; echo err1 >&2; echo out2"),
        FakeProgram.prints(stdout=["out1", "out2"], stderr=["err1"]),
    )
    cid = await runtime.driver.create(runtime.request(command=argv))
    await runtime.driver.start(cid)
    assert await runtime.driver.wait(cid) == 0
    entries = await collect(runtime, cid)
    assert [e.line for e in entries if e.stream == "stdout"] == ["out1", "out2"]
    assert [e.line for e in entries if e.stream == "stderr"] == ["err1"]
    assert all(abs(e.timestamp - time.time()) < 60 for e in entries)
    await runtime.driver.remove(cid)


async def test_logs_tail_gives_the_last_lines(runtime: Harness) -> None:
    argv = runtime.script(sh("echo a; echo b; echo c"), FakeProgram.prints(stdout=["a", "b", "c"]))
    cid = await runtime.driver.create(runtime.request(command=argv))
    await runtime.driver.start(cid)
    await runtime.driver.wait(cid)
    assert [e.line for e in await collect(runtime, cid, tail=2)] == ["b", "c"]
    assert [e.line for e in await collect(runtime, cid, tail=0)] == []
    stamps = [e.timestamp for e in await collect(runtime, cid)]
    assert stamps == sorted(stamps)
    await runtime.driver.remove(cid)


async def test_logs_follow_until_the_container_exits(runtime: Harness) -> None:
    argv = runtime.script(
        sh("echo one; sleep 1; echo two"),
        FakeProgram(output=((0.0, "stdout", "one"), (1.0, "stdout", "two")), exit_after=1.0),
    )
    cid = await runtime.driver.create(runtime.request(command=argv))
    await runtime.driver.start(cid)
    seen: list[str] = []
    async with asyncio.timeout(DEADLINE):
        async for entry in runtime.driver.logs(cid, follow=True):
            seen.append(entry.line)
    assert seen == ["one", "two"]  # and the stream ended by itself when the process did
    assert (await runtime.driver.inspect(cid)).status == "exited"
    await runtime.driver.remove(cid)


# -- files -----------------------------------------------------------------------------


async def test_secret_and_config_files_are_in_the_container_with_their_mode(
    runtime: Harness,
) -> None:
    secret = FileData(target="/run/secrets/db_password", data=b"hunter2\n", mode=0o400)
    config = FileData(target="/etc/app/app.conf", data=b"port=80\n", uid=1000, gid=1000)
    argv = runtime.script(
        sh("cat /run/secrets/db_password /etc/app/app.conf"),
        FakeProgram.prints(stdout=["hunter2", "port=80"]),
    )
    request = runtime.request(command=argv, files=[secret, config], read_only=True)
    cid = await runtime.driver.create(request)

    for wanted in (secret, config):
        seen = await runtime.read_file(cid, wanted.target)
        assert seen is not None, wanted.target
        assert (seen.data, seen.mode, seen.uid, seen.gid) == (
            wanted.data,
            wanted.mode,
            wanted.uid,
            wanted.gid,
        )
    await runtime.driver.start(cid)
    assert await runtime.driver.wait(cid) == 0  # readable by the process, read-only rootfs
    assert [e.line for e in await collect(runtime, cid)] == ["hunter2", "port=80"]
    await runtime.driver.remove(cid)


async def test_files_live_in_memory_and_leave_the_host_once_the_container_runs(
    runtime: Harness,
) -> None:
    secret = FileData(target="/run/secrets/token", data=b"s3cret", uid=1000, gid=1001, mode=0o400)
    argv = runtime.script(
        sh("stat -f -c %T /run/secrets/token; cat /run/secrets/token; echo; sleep 3600"),
        FakeProgram(output=((0.0, "stdout", "tmpfs"), (0.0, "stdout", "s3cret"))),
    )
    request = runtime.request(command=argv, files=[secret])
    cid = await runtime.driver.create(request)

    # Created: on the node (as the reference says, in memory, root's dirs only) for it.
    staged = runtime.host_files()
    assert list(staged) == [request.name]
    [held] = staged[request.name]
    assert (held.data, held.uid, held.gid, held.mode) == (b"s3cret", 1000, 1001, 0o400)
    if runtime.files_dir is not None:
        assert memory_backed(runtime.files_dir)
        for folder in (runtime.files_dir, runtime.files_dir / request.name):
            info = folder.stat()
            assert (info.st_mode & 0o777, info.st_uid) == (0o700, 0), folder

    await runtime.driver.start(cid)
    # Running: only the container's own mount holds it, still on a tmpfs.
    assert runtime.host_files() == {}
    lines: list[str] = []
    async with (
        asyncio.timeout(DEADLINE),
        contextlib.aclosing(runtime.driver.logs(cid, follow=True)) as entries,
    ):
        async for entry in entries:
            lines.append(entry.line)
            if len(lines) == 2:
                break
    assert lines == ["tmpfs", "s3cret"]

    await runtime.driver.stop(cid, grace=0.5)
    await runtime.driver.remove(cid)
    assert runtime.host_files() == {}


async def test_files_of_a_container_that_cannot_start_leave_the_host(runtime: Harness) -> None:
    secret = FileData(target="/run/secrets/token", data=b"s3cret", mode=0o400)
    request = runtime.request(command=["/no/such/program"], files=[secret])
    cid = await runtime.driver.create(request)
    assert list(runtime.host_files()) == [request.name]
    if runtime.fake is not None:  # the fake runs no executable: say what dockerd answers
        runtime.fake.fail_next("start", ContainerFailed("no such file or directory"))
    with pytest.raises(ContainerFailed) as failed:
        await runtime.driver.start(cid)
    assert b"s3cret".decode() not in failed.value.message
    assert runtime.host_files() == {}
    await runtime.driver.remove(cid)


async def test_a_failed_create_leaves_no_files_and_touches_none_of_another(
    runtime: Harness,
) -> None:
    secret = FileData(target="/run/secrets/token", data=b"s3cret", mode=0o400)
    with pytest.raises(ImageNotFound):
        await runtime.driver.create(runtime.request(image="swl/absent:1", files=[secret]))
    assert runtime.host_files() == {}

    first = runtime.request(files=[secret])
    cid = await runtime.driver.create(first)
    other = FileData(target="/run/secrets/token", data=b"other", mode=0o400)
    again = runtime.request(files=[other])
    with pytest.raises(AlreadyExists):
        await runtime.driver.create(replace(again, name=first.name))
    assert [f.data for f in runtime.host_files()[first.name]] == [b"s3cret"]
    await runtime.driver.remove(cid)
    assert runtime.host_files() == {}


async def test_an_agent_start_removes_stale_files_but_those_of_created_containers(
    runtime: Harness,
) -> None:
    secret = FileData(target="/run/secrets/token", data=b"s3cret", mode=0o444)
    argv = runtime.script(sh("cat /run/secrets/token"), FakeProgram.prints(stdout=["s3cret"]))
    waiting = runtime.request(command=argv, files=[secret])
    waiting_id = await runtime.driver.create(waiting)
    running = runtime.request(image=runtime.images.web_v1)
    running_id = await runtime.driver.create(running)
    await runtime.driver.start(running_id)
    # The agent died between a start and its clean-up, and after a create of a container
    # that is gone now.
    runtime.leave_files(running.name, [secret])
    runtime.leave_files("swl-contract-gone", [secret])
    assert set(runtime.host_files()) == {waiting.name, running.name, "swl-contract-gone"}

    restarted = runtime.another_driver()
    await restarted.remove_stale_files()
    assert list(runtime.host_files()) == [waiting.name]
    await restarted.start(waiting_id)  # what it waited for is still there
    assert await restarted.wait(waiting_id) == 0
    assert [e.line for e in await collect(runtime, waiting_id)] == ["s3cret"]
    assert runtime.host_files() == {}
    for cid in (waiting_id, running_id):
        await restarted.remove(cid)


async def test_a_spec_with_every_option_runs(runtime: Harness) -> None:
    argv = runtime.script(
        sh('echo "$GREETING"; pwd; hostname; id -u; ls -d /data /scratch'),
        FakeProgram.prints(stdout=["hello", "/tmp", "web-1", "1000", "/data", "/scratch"]),
    )
    request = runtime.request(
        command=argv,
        env=["GREETING=hello"],
        working_dir="/tmp",
        user="1000",
        groups=["100"],
        hostname="web-1",
        stop_signal="SIGINT",
        stop_grace_period=2.0,
        init=True,
        read_only=True,
        cap_drop=["NET_RAW"],
        ulimits=[Ulimit(name="nofile", soft=1024, hard=2048)],
        extra_hosts=["db=10.0.0.5"],
        dns=["10.0.0.53"],
        mounts=[
            Mount(type="volume", source=f"contract_{runtime.cluster_id}", target="/data"),
            Mount(type="tmpfs", target="/scratch", tmpfs_size=1 << 20),
        ],
        labels={"com.docker.stack.namespace": "shop"},
        resources=ResourceRequirements(
            limits=Resources(nano_cpus=500_000_000, memory_bytes=64 << 20, pids=64),
            reservations=Resources(memory_bytes=16 << 20),
        ),
    )
    cid = await runtime.driver.create(request)
    await runtime.driver.start(cid)
    assert await runtime.driver.wait(cid) == 0
    lines = [e.line for e in await collect(runtime, cid) if e.stream == "stdout"]
    assert lines == ["hello", "/tmp", "web-1", "1000", "/data", "/scratch"]
    await runtime.driver.remove(cid)


# -- errors ----------------------------------------------------------------------------


async def test_a_missing_image_is_image_not_found(runtime: Harness) -> None:
    with pytest.raises(ImageNotFound):
        await runtime.driver.create(runtime.request(image="swl/missing:1"))
    with pytest.raises(ImageNotFound):
        # A registry on a closed loopback port: refused, never the internet.
        pull = runtime.driver.pull("127.0.0.1:9/swl/missing:1")
        await returns(pull, "a pull from a closed port to fail")


async def test_pulling_a_present_image_contacts_no_registry(runtime: Harness) -> None:
    progress: list[str] = []
    await runtime.driver.pull(runtime.images.web_v1, progress.append)
    assert progress == []


async def test_unknown_containers_and_taken_names(runtime: Harness) -> None:
    unknown = "0" * 64
    for call in (
        runtime.driver.inspect(unknown),
        runtime.driver.start(unknown),
        runtime.driver.wait(unknown),
        runtime.driver.stop(unknown),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(NotFound):
        await collect(runtime, unknown)
    await runtime.driver.remove(unknown)  # nothing to remove: no error

    request = runtime.request()
    cid = await runtime.driver.create(request)
    with pytest.raises(AlreadyExists):
        await runtime.driver.create(request)
    await runtime.driver.remove(cid)


async def test_info_describes_the_runtime(runtime: Harness) -> None:
    info = await runtime.driver.info()
    assert info.name == runtime.kind  # Podman says it is Podman, not Docker
    assert info.version
    assert info.os == "linux"
    assert info.arch
    assert info.nano_cpus >= 1_000_000_000
    assert info.memory_bytes > 0


async def test_stats_of_a_running_container_and_of_one_that_is_not(runtime: Harness) -> None:
    limits = ResourceRequirements(limits=Resources(memory_bytes=64 << 20))
    cid = await runtime.driver.create(
        runtime.request(image=runtime.images.web_v1, resources=limits)
    )
    with pytest.raises(NotFound):
        await runtime.driver.stats(cid)  # created, not running
    await runtime.driver.start(cid)
    await serving(runtime, cid)
    stats = await runtime.driver.stats(cid)
    assert stats.memory_bytes > 0
    assert stats.memory_limit_bytes == 64 << 20
    assert stats.cpu_seconds >= 0
    assert stats.rx_bytes >= 0 and stats.tx_bytes >= 0  # no interface but loopback here
    await runtime.driver.remove(cid)
    with pytest.raises(NotFound):
        await runtime.driver.stats(cid)


# -- what only one side can show -------------------------------------------------------


async def test_an_unreachable_daemon_is_runtime_unavailable() -> None:
    driver = DockerDriver("/nonexistent/docker.sock", cluster_id="c", node_id="n")
    try:
        for call in (driver.info(), driver.inspect("x"), driver.pull("swl/busybox:1")):
            with pytest.raises(RuntimeUnavailable) as caught:
                await call
            assert caught.value.retryable
    finally:
        await driver.close()


async def test_the_fakes_knobs_fail_exit_and_pull() -> None:
    fake = FakeRuntime.with_test_images(cluster_id="c", node_id="n")
    harness = Harness(
        kind="fake", driver=fake, new_driver=fake.reconnect, read_file=_no_file, fake=fake
    )
    fake.fail_next("create", RuntimeFailure("disk full"))
    with pytest.raises(RuntimeFailure, match="disk full"):
        await fake.create(harness.request())
    cid = await fake.create(harness.request(image=harness.images.web_v1))  # failed only once
    await fake.start(cid)
    fake.exit(cid, 139)
    assert await fake.wait(cid) == 139
    assert fake.names() == ["create", "create", "start", "wait"]

    fake.add_to_registry(FakeImage(ref="shop/web:2", cmd=["web"]))
    progress: list[str] = []
    await fake.pull("shop/web:2", progress.append)
    assert progress
    assert "shop/web:2" in fake.images
    fake.fail_next("pull", ImageNotFound("registry says no"))
    with pytest.raises(ImageNotFound, match="registry says no"):
        await fake.pull("shop/web:2")


async def test_the_fake_runs_on_an_injected_clock() -> None:
    clock = FakeClock()
    fake = FakeRuntime.with_test_images(clock)
    harness = Harness(
        kind="fake", driver=fake, new_driver=fake.reconnect, read_file=_no_file, fake=fake
    )
    argv = harness.script(["sleep", "63"], DEAF)
    check = HealthCheck(test=["CMD", "true"], interval=5.0)
    cid = await fake.create(harness.request(command=argv, healthcheck=check))
    await fake.start(cid)
    assert (await fake.inspect(cid)).health == "starting"
    await clock.run_for(5.0)
    assert (await fake.inspect(cid)).health == "healthy"

    stopping = asyncio.ensure_future(fake.stop(cid, grace=30.0))
    for _ in range(100):  # until it sent SIGTERM (ignored) and began its grace period
        if clock.sleepers:
            break
        await asyncio.sleep(0)
    assert clock.sleepers == 1
    await clock.run_for(29.0)
    assert not stopping.done()  # still inside the grace period, on virtual time
    await clock.run_for(1.0)
    await stopping
    state = await fake.inspect(cid)
    assert state.exit_code == 137
    assert state.finished_at - state.started_at == pytest.approx(35.0)


async def _no_file(container_id: str, path: str) -> FileData | None:
    return None


@pytest.mark.docker
async def test_docker_gets_resources_limits_and_stack_labelled_volumes(
    private_dockerd: Dockerd, tmp_path: Path
) -> None:
    # What the fake cannot show: the daemon's own record of the mapped settings.
    cluster_id = new_id()
    driver = DockerDriver(
        str(private_dockerd.socket), cluster_id=cluster_id, node_id="n1", files_dir=tmp_path
    )
    harness = Harness(
        kind="docker",
        driver=driver,
        new_driver=lambda: driver,
        read_file=_no_file,
        cluster_id=cluster_id,
    )
    volume = f"shop_data_{cluster_id}"
    request = harness.request(
        command=["true"],
        labels={"com.docker.stack.namespace": "shop"},
        mounts=[Mount(type="volume", source=volume, target="/data", volume_labels={"k": "v"})],
        healthcheck=HealthCheck(test=["CMD", "true"], interval=2.5, retries=4),
        stop_signal="SIGINT",
        stop_grace_period=2.5,
        resources=ResourceRequirements(
            limits=Resources(nano_cpus=250_000_000, memory_bytes=32 << 20, pids=50),
            reservations=Resources(memory_bytes=8 << 20),
        ),
    )
    try:
        cid = await driver.create(request)
        config = await asyncio.to_thread(
            engine_json, private_dockerd.socket, "GET", f"/containers/{cid}/json"
        )
        host = config["HostConfig"]
        assert (host["NanoCpus"], host["Memory"], host["MemoryReservation"], host["PidsLimit"]) == (
            250_000_000,
            32 << 20,
            8 << 20,
            50,
        )
        assert host["NetworkMode"] == "none"
        assert config["Config"]["StopSignal"] == "SIGINT"
        assert config["Config"]["StopTimeout"] == 3
        assert config["Config"]["Healthcheck"] == {
            "Test": ["CMD", "true"],
            "Interval": 2_500_000_000,
            "Retries": 4,
        }
        labels = await asyncio.to_thread(
            engine_json, private_dockerd.socket, "GET", f"/volumes/{volume}"
        )
        assert labels["Labels"] == {"k": "v", "com.docker.stack.namespace": "shop"}
        await driver.remove(cid)
        # A named volume outlives its container, as in swarm (`docker volume rm` removes it).
        await asyncio.to_thread(engine_json, private_dockerd.socket, "DELETE", f"/volumes/{volume}")
    finally:
        await driver.close()
