"""A node's own containers, images, volumes and exec through its swarmlite Docker API
socket, passed to its real dockerd, driven by the real docker CLIs: 28.2.2
(/usr/local/bin/docker, which negotiates 1.47 with swarmlite: the passthrough caps it at
the runtime's) and Debian's 20.10 (/usr/bin/docker, 1.41).

One manager (m1) with its own private dockerd (tests/integration/stacks/conftest.py,
loaded by path, with no workers) and the test images (`swl/busybox:1`, `swl/web:1`).
Everything goes through m1's ``docker.sock``: the container commands reach the dockerd,
the swarm commands (`node ls`, `service ls`) still reach swarmlite on the same socket.
`docker exec`, `docker run` (attached) and `docker exec -it` (under a pseudo-terminal)
are hijacked connections. Reference docker-engine-api.md §3 (P3 rows), §7.3, §11.3 B7.
Marked `integration`; needs root, docker.io and busybox-static, as the stack tests do.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from swarmlite.errors import FailedPrecondition
from swarmlite.testing.dockerd import engine_json, engine_request
from swarmlite.testing.loadfile import load_file

CLIS = {"28.2.2": "/usr/local/bin/docker", "20.10": "/usr/bin/docker"}
TIMEOUT = 60.0
IMAGE = "swl/busybox:1"
_STACKS_CONFTEST = Path(__file__).resolve().parent.parent / "stacks" / "conftest.py"

pytestmark = pytest.mark.timeout(600)

StackCluster = Any  # the stacks conftest's StackCluster


def _stack_harness() -> ModuleType:
    """tests/integration/stacks/conftest.py as a module of its own (as it loads the
    cluster harness): its one-node-per-dockerd cluster, without its fixtures' scope."""
    return load_file("swarmlite_stack_harness", _STACKS_CONFTEST)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackCluster]:
    """m1 alone, a manager whose runtime is a private dockerd; stopped afterwards."""
    harness = _stack_harness()
    try:
        made = harness.start_stack_cluster(
            tmp_path_factory.mktemp("passthrough").resolve(), workers=0
        )
    except FailedPrecondition as exc:
        pytest.fail(
            f"the passthrough test needs a private dockerd: {exc.message}\nhint: {exc.hint}",
            pytrace=False,
        )
    try:
        yield made
    finally:
        made.close()


def api_sock(node: StackCluster) -> Path:
    return Path(node.cluster.nodes["m1"].data_dir) / "docker.sock"


def runtime_sock(node: StackCluster) -> Path:
    return Path(node.dockerds["m1"].socket)


class Docker:
    """One docker CLI binary pointed at m1's swarmlite Docker API socket, with an empty
    client config."""

    def __init__(self, version: str, binary: str, config_dir: Path, sock: Path) -> None:
        self.version, self.binary, self.config_dir, self.sock = version, binary, config_dir, sock
        self.tag = version.split(".")[0]  # keeps the objects of the two CLIs' runs apart

    def env(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        return environ | {
            "DOCKER_HOST": f"unix://{self.sock}",
            "DOCKER_CONFIG": str(self.config_dir),
        }

    def run(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=self.env() | (env or {}),
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
        done = self.run(*args, stdin=stdin, env=env)
        assert done.returncode == 0, (
            f"docker {' '.join(args)} ({self.version}) exited {done.returncode}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return done.stdout


@pytest.fixture(params=sorted(CLIS), scope="module")
def docker(
    request: pytest.FixtureRequest, node: StackCluster, tmp_path_factory: pytest.TempPathFactory
) -> Docker:
    version: str = request.param
    binary = CLIS[version]
    if shutil.which(binary) is None:
        pytest.fail(
            f"{binary} (docker CLI {version}) is not installed; scripts/setup installs it",
            pytrace=False,
        )
    return Docker(version, binary, tmp_path_factory.mktemp("docker-config"), api_sock(node))


@pytest.fixture
def container(docker: Docker) -> Iterator[str]:
    """A running busybox container named for this CLI, removed afterwards."""
    name = f"pt-{docker.tag}"
    docker.run("rm", "-f", name)
    out = docker.ok(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo started; sleep 60",
    )
    assert len(out.strip()) == 64, out  # the container's ID
    try:
        yield name
    finally:
        docker.run("rm", "-f", name)


# --------------------------------------------------------------------------- listings


def test_ps_images_and_volumes_are_the_runtimes(docker: Docker, node: StackCluster) -> None:
    docker.ok("ps", "-a")
    images = docker.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert {IMAGE, "swl/web:1"} <= set(images), images
    assert json.loads(docker.ok("image", "inspect", IMAGE, "--format", "{{json .RepoTags}}")) == [
        IMAGE
    ]
    volume = f"pt-vol-{docker.tag}"
    assert docker.ok("volume", "create", volume).strip() == volume
    try:
        assert volume in docker.ok("volume", "ls", "-q").split()
        on_runtime = engine_json(runtime_sock(node), "GET", "/volumes")["Volumes"]
        assert volume in {v["Name"] for v in on_runtime}
    finally:
        assert docker.ok("volume", "rm", volume).strip() == volume


# --------------------------------------------------------------------------- containers


def test_run_logs_exec_and_rm(docker: Docker, node: StackCluster, container: str) -> None:
    rows = docker.ok("ps", "--format", "{{.Names}} {{.Image}}").splitlines()
    assert f"{container} {IMAGE}" in rows
    ours = engine_json(runtime_sock(node), "GET", f"/containers/{container}/json")
    assert ours["State"]["Running"] is True

    deadline = time.monotonic() + TIMEOUT
    while "started" not in docker.ok("logs", container) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert docker.ok("logs", container) == "started\n"

    assert docker.ok("exec", container, "echo", "hi") == "hi\n"
    # stdin's end is a half-close: cat sees EOF and its output still comes back
    assert docker.ok("exec", "-i", container, "cat", stdin="piped\nlines\n") == "piped\nlines\n"
    done = docker.run("exec", container, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")

    image = f"swl/pt-commit:{docker.tag}"
    assert docker.ok("commit", container, image).startswith("sha256:")  # a POST with no body
    assert (
        docker.ok("run", "--rm", "--network", "none", image, "echo", "committed") == "committed\n"
    )
    docker.ok("rmi", image)

    assert docker.ok("rm", "-f", container).strip() == container
    assert container not in docker.ok("ps", "-a", "--format", "{{.Names}}").split()
    status, _ = engine_request(runtime_sock(node), "GET", f"/containers/{container}/json")
    assert status == 404


def test_run_attached_streams_the_output(docker: Docker) -> None:
    out = docker.ok("run", "--rm", "--network", "none", IMAGE, "sh", "-c", "echo one; echo two")
    assert out == "one\ntwo\n"
    done = docker.run(
        "run", "--rm", "-i", "--network", "none", IMAGE, "wc", "-l", stdin="a\nb\nc\n"
    )
    assert (done.returncode, done.stdout.strip()) == (0, "3"), done.stderr


def test_exec_it_under_a_terminal(docker: Docker, container: str) -> None:
    """`docker exec -it`: a TTY on both ends, keystrokes in and the shell's echo out."""
    out = _in_terminal(
        [docker.binary, "exec", "-it", container, "sh"],
        docker.env(),
        [b"echo $((6*7))-answer\r", b"exit 5\r"],
        until=b"42-answer",
    )
    assert b"42-answer" in out.output, out.output
    assert out.exit_code == 5, out.output


class _Terminal:
    def __init__(self, output: bytes, exit_code: int) -> None:
        self.output, self.exit_code = output, exit_code


def _in_terminal(
    argv: list[str], env: dict[str, str], keys: list[bytes], until: bytes
) -> _Terminal:
    """Run ``argv`` on a pseudo-terminal, type ``keys`` (the later ones once ``until``
    has been printed) and collect what it prints until it exits."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    output = b""
    pending = list(keys)
    deadline = time.monotonic() + TIMEOUT
    try:
        os.write(leader, pending.pop(0))
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    data = os.read(leader, 4096)
                except OSError:  # EIO: the terminal's other end is closed
                    break
                if not data:
                    break
                output += data
                if until in output and pending:
                    os.write(leader, pending.pop(0))
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return _Terminal(output, code)


def test_build_streams_its_context_and_progress(docker: Docker, tmp_path: Path) -> None:
    """The context goes up as a stream, the progress comes back as one; Debian's CLI with
    BuildKit also opens its session, an h2c upgrade, through the same socket."""
    (tmp_path / "Dockerfile").write_text(
        f'FROM {IMAGE}\nCOPY greeting /greeting\nCMD ["cat", "/greeting"]\n'
    )
    (tmp_path / "greeting").write_text("built here\n")
    image = f"swl/pt-built:{docker.tag}"
    builders = ["0", "1"] if docker.version == "20.10" else [""]
    for builder in builders:
        env = {"DOCKER_BUILDKIT": builder} if builder else {}
        docker.ok("build", "--network", "none", "-t", image, str(tmp_path), env=env)
        out = docker.ok("run", "--rm", "--network", "none", image)
        assert out == "built here\n", f"DOCKER_BUILDKIT={builder}: {out}"
        docker.ok("rmi", image)


# --------------------------------------------------------------------------- streams


def test_events_until_now_end(docker: Docker, node: StackCluster) -> None:
    since = int(time.time())
    docker.ok("volume", "create", f"pt-ev-{docker.tag}")
    docker.ok("volume", "rm", f"pt-ev-{docker.tag}")
    until = int(time.time()) + 1
    query = f"since={since}&until={until}"
    status, body = engine_request(api_sock(node), "GET", f"/v1.47/events?{query}", timeout=30)
    assert status == 200
    events = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    actions = [(e["Type"], e["Action"]) for e in events]
    assert ("volume", "create") in actions and ("volume", "destroy") in actions, actions
    # the CLI's own `docker events` with a bound ends as well
    out = docker.ok("events", "--since", str(since), "--until", str(until), "--format", "{{.Type}}")
    assert "volume" in out.split()


# --------------------------------------------------------------------------- swarm still


def test_the_swarm_is_still_swarmlites_on_the_same_socket(docker: Docker) -> None:
    rows = docker.ok("node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}").splitlines()
    assert rows == ["m1 Leader"]
    assert docker.ok("service", "ls", "-q") == ""
    info = json.loads(docker.ok("info", "--format", "{{json .Swarm}}"))
    assert info["LocalNodeState"] == "active" and info["ControlAvailable"] is True
