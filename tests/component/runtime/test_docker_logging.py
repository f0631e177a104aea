"""Log drivers on a real dockerd: a chatty task's log files on disk stay within max-size x
max-file, the default (no driver named) rotates too, `logs` still reads the newest lines,
and a driver that keeps nothing says so instead of giving an empty log.

Runs the Docker driver against a private dockerd (testing.dockerd) and reads the files as
a user would: ``<data root>/containers/<id>/<id>-json.log*``. Marked `docker`: a plain
`pytest` leaves it out; run it under the shared lock (it starts a dockerd).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from swarmlite.agent.driver import ContainerRequest, LogEntry
from swarmlite.api import ContainerSpec, LogDriver, Task, TaskTemplate, new_id
from swarmlite.api.logdriver import parse_size
from swarmlite.errors import RuntimeFailure
from swarmlite.runtime.docker import DockerDriver
from swarmlite.testing.dockerd import Dockerd, engine_json
from swarmlite.testing.images import TestImages, ensure_test_images

pytestmark = [
    pytest.mark.docker,
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private dockerd needs root"),
]

DEADLINE = 120.0  # generous: the machine is shared
LINE = 200  # characters per line the chatty task writes


@pytest.fixture(scope="module")
def dockerd(running_engine: Any) -> Iterator[Dockerd]:
    with running_engine(Dockerd.in_temp_dir(), ensure_test_images, "the log tests") as daemon:
        yield daemon


@pytest.fixture
async def driver(dockerd: Dockerd, tmp_path: Path) -> AsyncIterator[DockerDriver]:
    runtime = DockerDriver(
        str(dockerd.socket), cluster_id=new_id(), node_id=new_id(), files_dir=tmp_path / "files"
    )
    try:
        yield runtime
    finally:
        await runtime.close()


def chatty(lines: int) -> list[str]:
    """``lines`` numbered lines of LINE characters on stdout, then sleep (still running)."""
    pad = "x" * (LINE - 12)
    return [
        "sh",
        "-c",
        f'i=0; while [ $i -lt {lines} ]; do echo "$(printf %010d $i) {pad}"; i=$((i+1)); done;'
        " exec sleep 3600",
    ]


async def run(driver: DockerDriver, command: list[str], log: LogDriver | None) -> str:
    spec = TaskTemplate(
        container=ContainerSpec(image=TestImages.busybox, command=command, stop_grace_period=1),
        log_driver=log,
    )
    task = Task(id=new_id(), service_id=new_id(), slot=1, spec=spec)
    name = f"swl-logging-{task.id[:12]}"
    container_id = await driver.create(ContainerRequest(task=task, name=name, labels={}))
    await driver.start(container_id)
    return container_id


def log_files(dockerd: Dockerd, container_id: str) -> dict[str, int]:
    """The container's json-file logs on disk, by name, with their sizes."""
    folder = dockerd.data_root / "containers" / container_id
    return {p.name: p.stat().st_size for p in folder.glob(f"{container_id}-json.log*")}


async def wait_for_last_line(driver: DockerDriver, container_id: str, number: int) -> LogEntry:
    """Poll (with a deadline) until the task's last line is line ``number``."""
    async with asyncio.timeout(DEADLINE):
        while True:
            last = [e async for e in driver.logs(container_id, tail=1)]
            if last and last[0].line.startswith(f"{number:010d} "):
                return last[0]
            await asyncio.sleep(0.2)


async def test_a_chatty_tasks_log_files_stay_within_max_size_times_max_file(
    driver: DockerDriver, dockerd: Dockerd
) -> None:
    max_size, max_file = "64k", 3
    lines = 5000  # about 1.7 MB of JSON lines: 9 times what the files may hold
    log = LogDriver(name="json-file", options={"max-size": max_size, "max-file": str(max_file)})
    container_id = await run(driver, chatty(lines), log)
    try:
        await wait_for_last_line(driver, container_id, lines - 1)
        files = log_files(dockerd, container_id)
        cap = parse_size(max_size)
        assert cap is not None
        assert f"{container_id}-json.log.{max_file - 1}" in files, files  # it did rotate
        assert len(files) <= max_file, files
        assert all(size <= cap for size in files.values()), files
        assert sum(files.values()) <= cap * max_file
        # `logs` reads what the files still hold: the newest lines, the oldest rotated away
        kept = [e.line async for e in driver.logs(container_id)]
        assert kept[-1].startswith(f"{lines - 1:010d} ")
        assert not kept[0].startswith(f"{0:010d} ")
        numbers = [int(line[:10]) for line in kept]
        assert numbers == list(range(numbers[0], lines))  # nothing lost in between
    finally:
        await driver.remove(container_id)


async def test_a_task_that_names_no_driver_gets_a_rotated_json_file(
    driver: DockerDriver, dockerd: Dockerd
) -> None:
    container_id = await run(driver, chatty(3), None)
    try:
        shown = engine_json(dockerd.socket, "GET", f"/containers/{container_id}/json")
        assert shown["HostConfig"]["LogConfig"] == {
            "Type": "json-file",
            "Config": {"max-size": "10m", "max-file": "3"},
        }
        await wait_for_last_line(driver, container_id, 2)
        assert list(log_files(dockerd, container_id)) == [f"{container_id}-json.log"]
    finally:
        await driver.remove(container_id)


async def test_a_driver_that_keeps_nothing_says_so(driver: DockerDriver) -> None:
    container_id = await run(driver, chatty(3), LogDriver(name="none"))
    try:
        with pytest.raises(RuntimeFailure) as refused:
            async for _ in driver.logs(container_id):
                pass
        assert 'its log driver is "none", which keeps nothing' in refused.value.message
    finally:
        await driver.remove(container_id)


async def test_a_driver_the_node_does_not_have_fails_the_task_naming_it(
    driver: DockerDriver,
) -> None:
    spec = TaskTemplate(
        container=ContainerSpec(image=TestImages.busybox, command=["true"]),
        log_driver=LogDriver(name="no-such-driver"),
    )
    task = Task(id=new_id(), service_id=new_id(), slot=1, spec=spec)
    request = ContainerRequest(task=task, name=f"swl-logging-{task.id[:12]}", labels={})
    with pytest.raises(RuntimeFailure) as failed:
        await driver.create(request)
    assert "no-such-driver" in failed.value.message


async def test_a_node_whose_dockerd_has_another_default_driver_keeps_it(
    running_engine: Any, tmp_path: Path
) -> None:
    # daemon.json's "log-driver" (here `--log-driver local`): a team's choice for the node,
    # which a service that names no driver keeps, as on a swarm node
    with running_engine(
        Dockerd.in_temp_dir(extra_args=["--log-driver", "local"]),
        ensure_test_images,
        "the node-default log test",
    ) as node:
        runtime = DockerDriver(
            str(node.socket), cluster_id=new_id(), node_id=new_id(), files_dir=tmp_path / "f"
        )
        try:
            container_id = await run(runtime, chatty(3), None)
            try:
                shown = engine_json(node.socket, "GET", f"/containers/{container_id}/json")
                assert shown["HostConfig"]["LogConfig"]["Type"] == "local"
                await wait_for_last_line(runtime, container_id, 2)  # and `logs` reads it
            finally:
                await runtime.remove(container_id)
        finally:
            await runtime.close()
