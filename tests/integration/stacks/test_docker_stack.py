"""`docker stack deploy|ls|services|ps|rm` and a paused update, driven through the Docker
Engine API by the real docker CLIs (28.2.2 and 20.10), on tasks that run.

One manager (m1) and two workers (w1, w2), each with its own private dockerd (the `stacks`
fixture of this directory). Its nodes advertise loopback addresses, so overlay networking
is off: the stack's overlay network is made and named in the task specs, but no task is
attached to it and nothing listens on the published port (the tasks still run).

Reference docker-engine-api.md §11.3: A10-A15, A19 and A24 with each CLI, in that order,
on one stack `app` (`web`: 2 replicas on workers with a port, a secret, a config,
resources, restart policy and update config; `worker`: global); each step starts from
where the one before left the stack, and A10 first removes an `app` an earlier failure
left behind. Then compose-samples/ through `docker stack deploy` with CLI 28.2.2 only:
20.10 refuses a file without `version:` ("unsupported Compose file version: 1.0") and
knows no `replicated-job` mode, both of which are the CLI's own limits. The demo/ sample
is left out: its images come from the lab's registry (`${REGISTRY}`) and it needs the
routing mesh and an encrypted overlay, which this cluster does not have.

Marked `integration`; needs root, docker.io and busybox-static, as the other stack tests do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

CLIS = {"28.2.2": "/usr/local/bin/docker", "20.10": "/usr/bin/docker"}
TIMEOUT = 120.0
WAIT = 60.0
STACK_LABEL = "com.docker.stack.namespace"
SAMPLES = Path(__file__).resolve().parents[3] / "compose-samples"

pytestmark = pytest.mark.timeout(300)

StackCluster = Any  # conftest.StackCluster, through the `stacks` fixture
T = TypeVar("T")

APP = """\
version: "3.8"
services:
  web:
    image: swl/web:1
    ports: ["8080:80"]
    networks: [front]
    secrets: [dbpass]
    configs:
      - source: webconf
        target: /etc/web.conf
    deploy:
      replicas: 2
      resources:
        limits: {{cpus: "0.5", memory: 64M}}
      restart_policy: {{condition: on-failure, delay: 1s}}
      update_config: {{parallelism: 1, order: start-first, monitor: 1s}}
      placement:
        constraints: ["node.role == worker"]
{worker}networks:
  front:
secrets:
  dbpass:
    file: {dir}/dbpass
configs:
  webconf:
    file: {dir}/web.conf
"""
WORKER = """\
  worker:
    image: swl/busybox:1
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
    deploy:
      mode: global
"""


class Docker:
    """One docker CLI binary pointed at m1's Docker API socket, with an empty config."""

    def __init__(self, version: str, config_dir: Path, sock: Path) -> None:
        self.version, self.binary = version, CLIS[version]
        self.config_dir, self.sock = config_dir, sock

    def run(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        environ |= {"DOCKER_HOST": f"unix://{self.sock}", "DOCKER_CONFIG": str(self.config_dir)}
        return subprocess.run(
            [self.binary, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=environ | (env or {}),
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
        done = self.run(*args, stdin=stdin, env=env)
        assert done.returncode == 0, (
            f"docker {' '.join(args)} ({self.version}) exited {done.returncode}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return done.stdout

    def rows(self, *args: str) -> list[str]:
        """A table's rows under its header, each with its runs of blanks made one space."""
        return [" ".join(line.split()) for line in self.ok(*args).splitlines()[1:]]


def docker_for(version: str, stacks: StackCluster, config_dir: Path) -> Docker:
    if shutil.which(CLIS[version]) is None:
        pytest.fail(
            f"{CLIS[version]} (docker CLI {version}) is missing: the machine has 28.2.2, "
            "scripts/setup installs 20.10",
            pytrace=False,
        )
    sock = Path(stacks.cluster.nodes["m1"].data_dir) / "docker.sock"
    return Docker(version, config_dir, sock)


def wait_equal(what: str, read: Callable[[], T], wanted: T, timeout: float = WAIT) -> None:
    """Wait until `read()` equals `wanted`; on a timeout, assert it (pytest shows the diff)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read() == wanted:
            return
        time.sleep(0.2)
    assert read() == wanted, f"timed out waiting for {what}"


def no_containers(stacks: StackCluster, *names: str) -> None:
    """Wait until no dockerd holds a container (running or not) of these stacks."""
    wait_equal(
        f"no container of {', '.join(names)}",
        lambda: [c for n in names for c in stacks.all_containers(**{STACK_LABEL: n})],
        [],
    )


@dataclass(frozen=True)
class App:
    """The compose files of the stack `app`: all of it, without `worker`, and on web:2."""

    full: str
    web_only: str
    web_v2: str


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    files = tmp_path_factory.mktemp("app")
    (files / "dbpass").write_text("hush")
    (files / "web.conf").write_text("listen 80;\n")
    web_only = APP.format(worker="", dir=files)
    return App(
        full=APP.format(worker=WORKER, dir=files),
        web_only=web_only,
        web_v2=web_only.replace("swl/web:1", "swl/web:2"),
    )


@pytest.fixture(params=sorted(CLIS), scope="module")
def docker(
    request: pytest.FixtureRequest, stacks: StackCluster, tmp_path_factory: pytest.TempPathFactory
) -> Docker:
    return docker_for(request.param, stacks, tmp_path_factory.mktemp("docker-config"))


def ps_rows(docker: Docker, *args: str) -> list[tuple[str, bool, str, str, str, str, str]]:
    """`docker service|stack ps` rows: (id, is a `\\_` history row, name, image, node,
    desired state, current state)."""
    pattern = re.compile(r"^(\w{12}) (\\_ )?(\S+) (\S+) (\S+) (\w+) (\w+ .*? ago)")
    found = []
    for row in docker.rows(*args):
        match = pattern.match(row)
        assert match, f"`docker {' '.join(args)}` row not understood: {row!r}"
        task_id, history, name, image, node, desired, current = match.groups()
        found.append((task_id, bool(history), name, image, node, desired, current))
    return found


# --------------------------------------------------------------------------- compose-samples


def test_compose_samples_converge_and_go(
    stacks: StackCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """web.yml, shop.yml and bench.yml as written: every replicated service runs its
    replicas, the global one a task per node, the job completes; `stack rm` leaves no
    container, network or stack behind."""
    docker = docker_for("28.2.2", stacks, tmp_path_factory.mktemp("samples-config"))
    bench = {"REPLICAS": "4", "IMAGE": "swl/web:1"}  # what scripts/bench/stack.py sets
    for name in ("web", "shop", "bench"):
        sample = str(SAMPLES / f"{name}.yml")
        done = docker.ok("stack", "deploy", "-d", "-c", sample, name, env=bench)
        assert f"Creating network {name}_default" in done, done
    wanted = {
        "web_web": "replicated 3/3",
        "shop_web": "replicated 2/2",
        "shop_agent": "global 3/3",
        "shop_migrate": "replicated job 0/1 (1/1 completed)",
        "bench_web": "replicated 4/4",
    }

    def listed() -> dict[str, str]:
        out = docker.ok("service", "ls", "--format", "{{.Name}}|{{.Mode}} {{.Replicas}}")
        return dict(line.split("|") for line in out.splitlines())

    wait_equal("every sample converged", listed, wanted)
    workers = {"w1", "w2"}
    assert {row[4] for row in ps_rows(docker, "service", "ps", "shop_web")} <= workers

    removed = docker.run("stack", "rm", "web", "shop", "bench")
    assert removed.returncode == 0 and "Failed to remove" not in removed.stderr, removed
    for line in ("Removing service shop_migrate", "Removing network bench_default"):
        assert line in removed.stdout, removed.stdout
    assert docker.rows("stack", "ls") == []
    networks = docker.ok("network", "ls", "--format", "{{.Name}}").split()
    assert not [n for n in networks if n.split("_")[0] in ("web", "shop", "bench")], networks
    no_containers(stacks, "web", "shop", "bench")


# --------------------------------------------------------------------------- the app stack


def test_a10_deploy_from_stdin(docker: Docker, stacks: StackCluster, app: App) -> None:
    """A10: one line per object made, on stdout; the spec carries what the file says."""
    if "app" in docker.ok("stack", "ls", "--format", "{{.Name}}").split():
        docker.ok("stack", "rm", "app")  # what a failure of the other CLI's run left
        no_containers(stacks, "app")
    done = docker.run("stack", "deploy", "-c", "-", "app", stdin=app.full)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == [
        "Creating config app_webconf",
        "Creating network app_default",
        "Creating network app_front",
        "Creating secret app_dbpass",
        "Creating service app_web",
        "Creating service app_worker",
    ]
    spec = stacks.inspect("app_web")["spec"]
    assert spec["replicas"] == 2 and spec["labels"][STACK_LABEL] == "app"
    assert [(p["published"], p["target"]) for p in spec["endpoint"]["ports"]] == [(8080, 80)]
    assert spec["task"]["placement"]["constraints"] == ["node.role == worker"]
    assert spec["update_config"]["order"] == "start-first"
    assert spec["task"]["restart_policy"]["condition"] == "on-failure"
    assert spec["task"]["resources"]["limits"]["memory_bytes"] == 64 * 1024 * 1024


def test_a11_stack_ls_and_services(docker: Docker, stacks: StackCluster) -> None:
    """A11: the stack counts its two services; both converge (3 nodes: `global 3/3`)."""
    assert any(row.startswith("app 2") for row in docker.rows("stack", "ls"))
    ids = {name: stacks.inspect(name)["id"][:12] for name in ("app_web", "app_worker")}
    wanted = {
        f"{ids['app_web']} app_web replicated 2/2 swl/web:1 *:8080->80/tcp",
        f"{ids['app_worker']} app_worker global 3/3 swl/busybox:1",
    }
    wait_equal(
        "both services converged", lambda: set(docker.rows("stack", "services", "app")), wanted
    )


def test_a12_stack_ps_and_service_ps(docker: Docker, stacks: StackCluster) -> None:
    """A12: slots for the replicated service, node ids for the global one; NODE is the
    hostname of the node that runs the task."""
    hosts = stacks.node_names()
    tasks = {row[2]: row for row in ps_rows(docker, "stack", "ps", "app")}
    assert sorted(tasks) == ["app_web.1", "app_web.2", *sorted(f"app_worker.{n}" for n in hosts)]
    for node_id, hostname in hosts.items():
        assert tasks[f"app_worker.{node_id}"][4] == hostname
    assert {tasks[f"app_web.{slot}"][4] for slot in (1, 2)} <= {"w1", "w2"}
    assert {(row[1], row[5], row[6].split()[0]) for row in tasks.values()} == {
        (False, "Running", "Running")
    }
    web = ps_rows(docker, "service", "ps", "app_web")
    assert sorted(row[2:5] for row in web) == sorted(
        tasks[name][2:5] for name in ("app_web.1", "app_web.2")
    )


def test_a13_redeploy_restarts_nothing(docker: Docker, stacks: StackCluster, app: App) -> None:
    """A13: the same file again updates each service with a spec that replaces no task."""
    before = {row[0] for row in ps_rows(docker, "stack", "ps", "app")}
    versions = {name: stacks.inspect(name)["spec_version"] for name in ("app_web", "app_worker")}
    done = docker.ok("stack", "deploy", "-c", "-", "app", stdin=app.full)
    for name in ("app_web", "app_worker"):
        assert re.search(rf"^Updating service {name} \(id: \w{{25}}\)$", done, re.M), done
        assert stacks.inspect(name)["spec_version"] == versions[name]  # nothing to roll
    assert {row[0] for row in ps_rows(docker, "stack", "ps", "app")} == before


def test_a14_prune_removes_the_service_left_out(
    docker: Docker, stacks: StackCluster, app: App
) -> None:
    """A14."""
    done = docker.ok("stack", "deploy", "--prune", "-c", "-", "app", stdin=app.web_only)
    assert "Removing service app_worker" in done.splitlines(), done
    assert "Updating service app_web (id: " in done, done
    services = docker.ok("stack", "services", "app", "--format", "{{.Name}}")
    assert services.split() == ["app_web"]


def test_a15_a_new_image_replaces_each_slot(docker: Docker, app: App) -> None:
    """A15: each slot gets a task of swl/web:2; the old one stays below it as history."""
    done = docker.ok("stack", "deploy", "--prune", "-c", "-", "app", stdin=app.web_v2)
    assert "Updating service app_web (id: " in done, done

    def shown() -> list[tuple[bool, str, str, str, str]]:
        rows = ps_rows(docker, "service", "ps", "app_web")
        return [(r[1], r[2], r[3], r[5], r[6].split()[0]) for r in rows]

    wait_equal(
        "two new tasks over two old ones",
        shown,
        [
            (False, "app_web.1", "swl/web:2", "Running", "Running"),
            (True, "app_web.1", "swl/web:1", "Shutdown", "Shutdown"),
            (False, "app_web.2", "swl/web:2", "Running", "Running"),
            (True, "app_web.2", "swl/web:1", "Shutdown", "Shutdown"),
        ],
    )
    state = "{{.UpdateStatus.State}}"
    wait_equal(
        "the update completed",
        lambda: docker.ok("service", "inspect", "app_web", "-f", state).strip(),
        "completed",
    )


def test_a19_failed_update_pauses(docker: Docker) -> None:
    """A19: the CLI waits on the update and stops with the paused UpdateStatus's message
    (swarmkit's says `update paused due to failure or early termination of task <id>`,
    swarmlite's `update paused due to failure of task <name> (<id>) running: unhealthy`)."""
    done = docker.run(
        "service", "update", "--image", "swl/web:bad",
        "--update-failure-action", "pause", "--update-monitor", "2s", "app_web",
    )  # fmt: skip
    assert done.returncode == 1, done
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("service update paused: update paused due to failure"), last
    assert "overall progress:" in done.stdout
    status = docker.ok(
        "service", "inspect", "app_web", "-f", "{{.UpdateStatus.State}}|{{.UpdateStatus.Message}}"
    )
    assert status.strip() == f"paused|{last.removeprefix('service update paused: ')}"


def test_a24_stack_rm(docker: Docker, stacks: StackCluster) -> None:
    """A24: every object of the stack named as it goes, networks too, right after the
    services (whose tasks may still be stopping); nothing of it left on any node."""
    done = docker.run("stack", "rm", "app")
    assert done.returncode == 0, done
    assert sorted(done.stdout.splitlines()) == [
        "Removing config app_webconf",
        "Removing network app_default",
        "Removing network app_front",
        "Removing secret app_dbpass",
        "Removing service app_web",
    ]
    assert "Failed to remove" not in done.stderr, done.stderr
    assert "app" not in docker.ok("stack", "ls", "--format", "{{.Name}}").split()
    no_containers(stacks, "app")
