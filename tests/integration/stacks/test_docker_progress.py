"""Services whose tasks run, driven through the Docker Engine API by the real docker CLIs
(28.2.2 and 20.10) and docker-py: the progress bars of `service create|scale|update|
rollback` without `-d`, which poll the service and its `_up-to-date` tasks until every
slot runs and then watch them for `UpdateConfig.Monitor` (5 s), and service logs.

One manager (m1) and two workers (w1, w2), each with its own private dockerd (the
`stacks` fixture of this directory); the image is `swl/web:1` (busybox httpd, prints
"serving on :80"). Reference docker-engine-api.md §11.3: A17, A18, A20, A21 with running
tasks, B1-B6. Marked `integration`; needs root, docker.io and busybox-static, as the
other stack tests do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

CLIS = {"28.2.2": "/usr/local/bin/docker", "20.10": "/usr/bin/docker"}
TIMEOUT = 120.0
IMAGE, IMAGE_V2 = "swl/web:1", "swl/web:2"
LABEL_SERVICE = "swarmlite.service"  # what swarmlite's docker driver labels containers with

pytestmark = pytest.mark.timeout(600)

StackCluster = Any  # conftest.StackCluster, through the `stacks` fixture
T = TypeVar("T")


class Docker:
    """One docker CLI binary pointed at m1's Docker API socket, with an empty config."""

    def __init__(self, version: str, binary: str, config_dir: Path, sock: Path) -> None:
        self.version, self.binary, self.config_dir, self.sock = version, binary, config_dir, sock
        self.tag = version.split(".")[0]

    def run(self, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        environ |= {"DOCKER_HOST": f"unix://{self.sock}", "DOCKER_CONFIG": str(self.config_dir)}
        return subprocess.run(
            [self.binary, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environ,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (
            f"docker {' '.join(args)} ({self.version}) exited {done.returncode}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return done.stdout

    def inspect(self, service: str, template: str) -> Any:
        return json.loads(self.ok("service", "inspect", service, "--format", template))


def m1_sock(stacks: StackCluster) -> Path:
    return Path(stacks.cluster.nodes["m1"].data_dir) / "docker.sock"


@pytest.fixture(params=sorted(CLIS), scope="module")
def docker(
    request: pytest.FixtureRequest, stacks: StackCluster, tmp_path_factory: pytest.TempPathFactory
) -> Docker:
    version: str = request.param
    binary = CLIS[version]
    if shutil.which(binary) is None:
        pytest.fail(
            f"{binary} (docker CLI {version}) is not installed; scripts/setup installs it",
            pytrace=False,
        )
    return Docker(version, binary, tmp_path_factory.mktemp("docker-config"), m1_sock(stacks))


def wait(what: str, check: Callable[[], T], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def converged(out: str, replicas: int) -> None:
    """The end of a progress display: every task counted, then the stability check."""
    assert f"overall progress: {replicas} out of {replicas} tasks" in out, out
    assert "verify: Service" in out and "converged" in out.splitlines()[-1], out


def running_ids(stacks: StackCluster, service: str) -> set[str]:
    """The ids of the containers of `service` running on any node's dockerd."""
    service_id = stacks.inspect(service)["id"]
    return {c.id for c in stacks.running(**{LABEL_SERVICE: service_id})}


def ls_row(docker: Docker, name: str) -> list[str]:
    rows = [line.split() for line in docker.ok("service", "ls").splitlines()[1:]]
    return next(row for row in rows if row[1] == name)


# --------------------------------------------------------------------------- progress


def test_create_scale_force_and_rollback_wait_for_their_tasks(
    docker: Docker, stacks: StackCluster
) -> None:
    """A17, A18, A20, A21: each command without `-d` shows its progress and returns once
    the tasks run (and stayed up for the monitor period)."""
    name = f"prog-{docker.tag}"
    created = docker.run("service", "create", "--name", name, "--replicas", "2", IMAGE)
    assert created.returncode == 0, created.stderr
    converged(created.stdout, 2)
    assert len(running_ids(stacks, name)) == 2

    scaled = docker.ok("service", "scale", f"{name}=3")
    assert f"{name} scaled to 3" in scaled
    converged(scaled, 3)
    assert ls_row(docker, name)[3] == "3/3"

    before = running_ids(stacks, name)
    forced = docker.ok("service", "update", "--force", name)
    converged(forced, 3)
    assert docker.inspect(name, "{{.Spec.TaskTemplate.ForceUpdate}}") == 1
    after = wait(
        "three new containers", lambda: (ids := running_ids(stacks, name)) - before and ids
    )
    assert len(after) == 3 and not after & before
    history = docker.ok("service", "ps", name, "--format", "{{.Name}} {{.DesiredState}}")
    assert history.count(" Shutdown") == 3 and history.count(" Running") == 3, history

    docker.ok("service", "update", "-d", "--image", IMAGE_V2, name)
    wait(
        "the update to finish",
        lambda: docker.inspect(name, "{{json .UpdateStatus.State}}") == "completed",
    )
    rolled = docker.run("service", "rollback", name)
    assert rolled.returncode == 0, rolled.stderr
    assert "rollback" in rolled.stdout.lower()
    assert docker.inspect(name, "{{json .Spec.TaskTemplate.ContainerSpec.Image}}") == IMAGE
    images = {c.image for c in stacks.running(**{LABEL_SERVICE: stacks.inspect(name)["id"]})}
    assert images == {IMAGE}

    # After an update, a scale shows its own progress (the last update's state is cleared,
    # as swarm clears it) and can itself be rolled back.
    rescaled = docker.ok("service", "scale", f"{name}=2")
    converged(rescaled, 2)
    assert docker.inspect(name, "{{json .UpdateStatus}}") is None
    assert docker.inspect(name, "{{json .PreviousSpec.Mode.Replicated.Replicas}}") == 3


# --------------------------------------------------------------------------- logs


@pytest.fixture(scope="module")
def web(stacks: StackCluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A service of two running tasks, made once for the log tests."""
    version = next(v for v in sorted(CLIS, reverse=True) if shutil.which(CLIS[v]))
    cli = Docker(version, CLIS[version], tmp_path_factory.mktemp("config"), m1_sock(stacks))
    cli.ok("service", "create", "--name", "logged", "--replicas", "2", IMAGE)
    wait("both lines", lambda: cli.ok("service", "logs", "--raw", "logged").count("serving") == 2)
    return "logged"


def test_service_logs(docker: Docker, stacks: StackCluster, web: str) -> None:
    """B1, B2: each line prefixed with its task and node, as dockerd's details let the CLI
    write them; timestamps, tail, raw, no task ids."""
    lines = docker.ok("service", "logs", web).splitlines()
    hostnames = set(stacks.node_names().values())
    pattern = re.compile(rf"^{web}\.([12])\.([a-z0-9]{{12}})@(\S+)\s+\| serving on :80$")
    found = [pattern.match(line) for line in lines]
    assert len(found) == 2 and all(found), lines
    assert {m[1] for m in found if m} == {"1", "2"}
    assert {m[3] for m in found if m} <= hostnames
    stamped = docker.ok("service", "logs", "-t", "--tail", "1", web).splitlines()
    assert len(stamped) == 2
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", line) for line in stamped)
    assert docker.ok("service", "logs", "--raw", web).splitlines() == ["serving on :80"] * 2
    bare = docker.ok("service", "logs", "--no-task-ids", web).splitlines()
    assert all(re.match(rf"^{web}\.[12]@\S+\s+\| serving", line) for line in bare), bare
    # --details shows the attributes beyond swarm's own context: there are none.
    detailed = docker.ok("service", "logs", "--details", web).splitlines()
    assert all(line.endswith("|  serving on :80") for line in detailed), detailed


def test_task_logs_and_follow(docker: Docker, web: str) -> None:
    """B3, B4: `service logs <task id>` falls back to the task's logs; `-f` streams until
    the client leaves."""
    task_id = docker.ok("service", "ps", "-q", "--filter", "desired-state=running", web).split()[0]
    lines = docker.ok("service", "logs", task_id).splitlines()
    assert len(lines) == 1 and lines[0].endswith("| serving on :80")
    assert f".{task_id[:12]}@" in lines[0]
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        docker.run("service", "logs", "-f", web, timeout=4)
    out = caught.value.stdout or b""
    text = out.decode() if isinstance(out, bytes) else out
    assert text.count("serving on :80") == 2, text
    assert docker.ok("service", "logs", "--raw", web).count("serving") == 2  # still served


def test_tty_service_logs_are_raw_only(docker: Docker, stacks: StackCluster) -> None:
    """B5: a TTY service's stream has no frames; the CLI then wants --raw."""
    name = f"tty-{docker.tag}"
    docker.ok("service", "create", "--name", name, "--tty", IMAGE)
    refused = docker.run("service", "logs", name)
    assert refused.returncode == 1
    assert "tty service logs only supported with --raw" in refused.stderr
    raw = wait("its line", lambda: docker.ok("service", "logs", "--raw", name))
    assert raw.strip() == "serving on :80"


def test_docker_py_logs(stacks: StackCluster, web: str) -> None:
    """B6: docker-py demultiplexes the frames into lines."""
    import docker as docker_py

    client = docker_py.DockerClient(base_url=f"unix://{m1_sock(stacks)}")
    try:
        service = client.services.get(web)
        lines = list(service.logs(stdout=True, stderr=True, follow=False))
        assert lines == [b"serving on :80\n"] * 2
        assert len(service.tasks(filters={"desired-state": "running"})) == 2
    finally:
        client.close()
