"""Services and tasks through the Docker Engine API of real daemons, driven by the real
clients: the docker CLI 28.2.2 (/usr/local/bin/docker) and Debian's 20.10
(/usr/bin/docker), docker-py, and plain HTTP on the unix socket where no client sends the
request on purpose (a stale version).

The cluster is the harness's `small_cluster` (managers m1, m2 and worker w1) with no
container runtime: a task there is never running, so these tests assert what the API
shows of services and their tasks, keep tasks pending with a constraint no node meets
(they would be rejected and replaced over and over otherwise), and use `-d` or no
replicas where the CLI would wait for tasks to run. Running tasks (progress bars, logs)
are tests/integration/stacks/test_docker_progress.py's. Reference docker-engine-api.md
§11.3: A16, A18, A20-A25, A27, and the round trip of a service made with many flags.
Marked `integration` (tests/integration/conftest.py).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from swarmlite.api.control import NameRef, TaskFilter
from swarmlite.api.routes import SERVICE_INSPECT, TASK_LS

Cluster = Any  # conftest.Cluster, through the `small_cluster` fixture
Node = Any  # conftest.Node
T = TypeVar("T")

CLIS = {"28.2.2": "/usr/local/bin/docker", "20.10": "/usr/bin/docker"}
TIMEOUT = 60.0
NOWHERE = "node.labels.swl==nowhere"  # no node has it: tasks stay pending
REGISTRY_WARNING = "could not be accessed on a registry to record"

pytestmark = pytest.mark.timeout(300)


def docker_sock(node: Node) -> Path:
    return Path(node.data_dir) / "docker.sock"


class Docker:
    """One docker CLI binary pointed at one node, with an empty client config."""

    def __init__(self, version: str, binary: str, config_dir: Path, node: Node) -> None:
        self.version, self.binary, self.config_dir, self.node = version, binary, config_dir, node
        self.tag = version.split(".")[0]  # keeps the objects of the two CLIs' runs apart

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        environ |= {
            "DOCKER_HOST": f"unix://{docker_sock(self.node)}",
            "DOCKER_CONFIG": str(self.config_dir),
        }
        return subprocess.run(
            [self.binary, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=environ,
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, (
            f"docker {' '.join(args)} ({self.version}) exited {done.returncode}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return done.stdout

    def fails(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 1, (
            f"docker {' '.join(args)} ({self.version}) exited {done.returncode}, expected 1\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return done.stderr

    def inspect(self, service: str, template: str = "{{json .}}") -> Any:
        return json.loads(self.ok("service", "inspect", service, "--format", template))


@pytest.fixture(scope="module")
def small(small_cluster: Cluster) -> Cluster:
    small_cluster.heal()
    return small_cluster


@pytest.fixture(params=sorted(CLIS), scope="module")
def docker(
    request: pytest.FixtureRequest, small: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Docker:
    version: str = request.param
    binary = CLIS[version]
    if shutil.which(binary) is None:
        pytest.fail(
            f"{binary} (docker CLI {version}) is not installed; scripts/setup installs it",
            pytrace=False,
        )
    return Docker(version, binary, tmp_path_factory.mktemp("docker-config"), small.nodes["m1"])


def wait(what: str, check: Callable[[], T], timeout: float = TIMEOUT) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=TIMEOUT)
        self.path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect(self.path)
        self.sock = sock


def http_call(node: Node, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = UnixConnection(docker_sock(node))
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {} if payload is None else {"Content-Type": "application/json"}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data.strip() else None
    finally:
        conn.close()


def ls_rows(docker: Docker) -> dict[str, list[str]]:
    """`docker service ls`: name -> the row's columns."""
    rows = [line.split() for line in docker.ok("service", "ls").splitlines()[1:]]
    return {row[1]: row for row in rows}


# --------------------------------------------------------------------------- A16, A18, A23


def test_create_with_a_network_and_a_port(docker: Docker) -> None:
    """A16: the network's id is the Target, whatever the CLI sent; the registry warning is
    the CLI's own, after swarmlite's /distribution answered as an unreachable registry."""
    net, name = f"t1-{docker.tag}", f"s2-{docker.tag}"
    port = "9090" if docker.tag == "28" else "9091"
    net_id = docker.ok("network", "create", "-d", "overlay", net).strip()
    done = docker.run(
        "service", "create", "-d", "--name", name, "--network", net, "-p", f"{port}:80",
        "--replicas", "2", "--constraint", NOWHERE, "busybox",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    service_id = done.stdout.strip()
    assert len(service_id) == 25
    assert REGISTRY_WARNING in done.stderr
    assert docker.inspect(name, "{{json .Spec.TaskTemplate.Networks}}") == [{"Target": net_id}]
    assert docker.inspect(service_id, "{{json .Endpoint.Spec.Ports}}") == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": int(port), "PublishMode": "ingress"}
    ]
    row = wait("the tasks", lambda: (r := ls_rows(docker).get(name)) and r[3] == "0/2" and r)
    assert row[:5] == [service_id[:12], name, "replicated", "0/2", "busybox:latest"]
    assert f"*:{port}->80/tcp" in row
    names = wait(
        "two tasks",
        lambda: sorted(docker.ok("service", "ps", name, "--format", "{{.Name}}").split()),
    )
    assert names == [f"{name}.1", f"{name}.2"]
    states = docker.ok("service", "ps", name, "--format", "{{.CurrentState}}").splitlines()
    assert all(state.startswith("Pending") for state in states)


def test_scale(docker: Docker) -> None:
    """A18 detached (the progress bars need running tasks: the stacks module's)."""
    name = f"scaled-{docker.tag}"
    docker.ok("service", "create", "-d", "--name", name, "--constraint", NOWHERE, "busybox")
    before = docker.inspect(name, "{{.Version.Index}}")
    out = docker.ok("service", "scale", "-d", f"{name}=3")
    assert f"{name} scaled to 3" in out
    assert docker.inspect(name, "{{json .Spec.Mode}}") == {"Replicated": {"Replicas": 3}}
    assert docker.inspect(name, "{{.Version.Index}}") > before
    wait("0/3", lambda: ls_rows(docker)[name][3] == "0/3")


def test_ls_with_no_replicas_and_a_global_service(docker: Docker) -> None:
    """A23: `0/0` for a service of no replicas, and a global one's count, without a panic
    (20.10 and 28.2.2 read ServiceStatus; they crash when Replicas is missing)."""
    zero, every = f"zero-{docker.tag}", f"every-{docker.tag}"
    docker.ok("service", "create", "-d", "--name", zero, "--replicas", "0", "busybox")
    docker.ok("service", "create", "-d", "--name", every, "--mode", "global", "busybox")
    rows = ls_rows(docker)
    assert rows[zero][2:4] == ["replicated", "0/0"]
    assert rows[every][2] == "global"
    running, _, desired = rows[every][3].partition("/")
    assert running.isdigit() and desired.isdigit()


# --------------------------------------------------------------------------- A20-A22


def test_force_update(docker: Docker, small: Cluster) -> None:
    """A20: ForceUpdate goes up by one and the service's tasks are made again."""
    name = f"forced-{docker.tag}"
    docker.ok("service", "create", "-d", "--name", name, "--constraint", NOWHERE, "busybox")
    first = wait("a task", lambda: small.call(TASK_LS, TaskFilter(service=name)).tasks)
    docker.ok("service", "update", "-d", "--force", name)
    assert docker.inspect(name, "{{.Spec.TaskTemplate.ForceUpdate}}") == 1
    spec_version = small.call(SERVICE_INSPECT, NameRef(ref=name)).service.spec_version

    def replaced() -> bool:
        tasks = small.call(TASK_LS, TaskFilter(service=name)).tasks
        return any(t.spec_version == spec_version for t in tasks if t.id != first[0].id)

    wait("a task of the forced spec", replaced)
    docker.ok("service", "update", "-d", "--force", name)
    assert docker.inspect(name, "{{.Spec.TaskTemplate.ForceUpdate}}") == 2


def test_rollback(docker: Docker) -> None:
    """A21: `service rollback` brings the previous spec back (no replicas: nothing can
    pause the update or the rollback)."""
    name = f"rolled-{docker.tag}"
    docker.ok("service", "create", "-d", "--name", name, "--replicas", "0", "busybox:1.36")
    docker.ok("service", "update", "-d", "--image", "busybox:1.37", name)
    assert docker.inspect(name, "{{json .PreviousSpec.TaskTemplate.ContainerSpec.Image}}") == (
        "busybox:1.36"
    )
    docker.ok("service", "rollback", "-d", name)
    assert docker.inspect(name, "{{json .Spec.TaskTemplate.ContainerSpec.Image}}") == (
        "busybox:1.36"
    )
    assert docker.inspect(name, "{{json .UpdateStatus.State}}").startswith("rollback_")


def test_a_stale_version_is_update_out_of_sequence(small: Cluster) -> None:
    """A22: the second of two updates made from the same read fails, in dockerd's words
    and with its status (swarmkit's plain error: 500)."""
    m1 = small.nodes["m1"]
    body = {"Name": "stale", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}}
    status, created = http_call(m1, "POST", "/v1.47/services/create", {**body, "Mode": {}})
    assert status == 201, created
    _, service = http_call(m1, "GET", f"/v1.47/services/{created['ID']}")
    version = service["Version"]["Index"]
    update = {**body, "Mode": {"Replicated": {"Replicas": 0}}}
    path = f"/v1.47/services/{created['ID']}/update?version={version}"
    assert http_call(m1, "POST", path, update) == (200, {"Warnings": None})
    status, answer = http_call(m1, "POST", path, {**body, "Labels": {"late": "1"}})
    assert status == 500
    assert answer["message"].startswith("update out of sequence")
    _, now = http_call(m1, "GET", f"/v1.47/services/{created['ID']}")
    assert now["Spec"]["Labels"] == {}


# --------------------------------------------------------------------------- A24, A25


def test_rm_and_unknown_services(docker: Docker) -> None:
    """A24 (services) and A25."""
    one, two = f"rm1-{docker.tag}", f"rm2-{docker.tag}"
    for name in (one, two):
        docker.ok("service", "create", "-d", "--name", name, "--replicas", "0", "busybox")
    assert docker.ok("service", "rm", one, two).split() == [one, two]
    assert one not in ls_rows(docker)
    assert "no such service: nope" in docker.fails("service", "ps", "nope")
    refused = docker.fails("service", "rm", "nope")
    if docker.version == "20.10":
        assert "Error: No such service: nope" in refused
    else:
        assert "Error response from daemon: service nope not found" in refused
    assert "no such service" in docker.fails("service", "inspect", "nope").lower()


STACK = """\
version: "3.8"
services:
  web:
    image: busybox:1.36
    command: ["sleep", "1000"]
    networks: [front]
    secrets: [token]
    deploy:
      replicas: 0
  agent:
    image: busybox:1.36
    deploy:
      mode: global
      placement:
        constraints: ["node.labels.swl==nowhere"]
networks:
  front:
secrets:
  token:
    file: {secret}
"""


def test_stack_deploy_and_rm(docker: Docker, tmp_path: Path) -> None:
    """A24 (stacks): `docker stack deploy` creates each service with the stack's label
    (swarmlite makes it as a stack of one), a redeploy updates them, `stack rm` removes
    services, secret and networks."""
    stack = f"app{docker.tag}"
    token = tmp_path / "token"
    token.write_text("hush")
    compose = STACK.format(secret=token)
    out = docker.ok("stack", "deploy", "-c", "-", stack, stdin=compose)
    for line in (
        f"Creating network {stack}_front",
        f"Creating network {stack}_default",
        f"Creating secret {stack}_token",
        f"Creating service {stack}_web",
        f"Creating service {stack}_agent",
    ):
        assert line in out, out
    assert f"{stack} 2" in " ".join(docker.ok("stack", "ls").split())
    services = docker.ok("stack", "services", stack, "--format", "{{.Name}} {{.Replicas}}")
    assert f"{stack}_web 0/0" in services.splitlines()
    web = docker.inspect(f"{stack}_web", "{{json .Spec}}")
    assert web["Labels"]["com.docker.stack.namespace"] == stack
    assert web["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"] == f"{stack}_token"
    again = docker.ok("stack", "deploy", "-c", "-", stack, stdin=compose)
    assert f"Updating service {stack}_web" in again, again
    removed = docker.run("stack", "rm", stack)
    assert removed.returncode == 0, removed.stderr
    for line in (
        f"Removing service {stack}_web",
        f"Removing service {stack}_agent",
        f"Removing secret {stack}_token",
        f"Removing network {stack}_front",
    ):
        assert line in removed.stdout, removed.stdout
    assert "Failed to remove" not in removed.stderr, removed.stderr
    assert stack not in docker.ok("stack", "ls")


def test_logs_of_a_service_whose_tasks_never_ran(docker: Docker) -> None:
    name = f"quiet-{docker.tag}"
    docker.ok("service", "create", "-d", "--name", name, "--constraint", NOWHERE, "busybox")
    assert docker.ok("service", "logs", name) == ""


# --------------------------------------------------------------------------- the round trip


def _flags(tag: str, cli: str) -> list[str]:
    """`service create` flags for nearly every field swarmlite holds."""
    flags = [
        "--label", "a=b", "--container-label", "c=d", "--env", "A=1", "--env", "B=2",
        "--workdir", "/w", "--user", "1000:1000", "--group", "2000", "--hostname", "h",
        "--stop-signal", "SIGTERM", "--stop-grace-period", "20s", "--init", "--read-only",
        "--tty", "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD",
        "--sysctl", "net.core.somaxconn=1024", "--ulimit", "nofile=1024:2048",
        "--health-cmd", "true", "--health-interval", "5s", "--health-timeout", "2s",
        "--health-retries", "3", "--health-start-period", "1s",
        "--mount", "type=volume,source=v1,target=/data",
        "--mount", "type=bind,source=/tmp,target=/host,readonly",
        "--mount", "type=tmpfs,target=/tmpfs,tmpfs-size=1048576",
        "--secret", f"s1-{tag}", "--secret", f"source=s1-{tag},target=other,mode=0400",
        "--config", f"source=c1-{tag},target=/etc/c1",
        "--host", "example.com:10.0.0.9", "--dns", "8.8.8.8", "--dns-search", "example.com",
        "--dns-option", "ndots:2", "--limit-cpu", "0.5", "--limit-memory", "64M",
        "--limit-pids", "100", "--reserve-cpu", "0.1", "--reserve-memory", "32M",
        "--restart-condition", "on-failure", "--restart-delay", "3s",
        "--restart-max-attempts", "4", "--restart-window", "10s",
        "--constraint", "node.role==worker", "--placement-pref", "spread=node.labels.zone",
        "--replicas-max-per-node", "2", "--network", f"t2-{tag}",
        "--network", f"name=t3-{tag},alias=x", "--replicas", "0",
        "--update-parallelism", "2", "--update-delay", "10s",
        "--update-failure-action", "rollback", "--update-monitor", "7s",
        "--update-max-failure-ratio", "0.2", "--update-order", "start-first",
        "--rollback-parallelism", "1", "--rollback-delay", "1s",
        "--rollback-failure-action", "continue", "--rollback-monitor", "2s",
        "--rollback-order", "stop-first", "--endpoint-mode", "vip",
        "--publish", f"{8180 if tag == '28' else 8181}:80",
        "--publish", f"published={9180 if tag == '28' else 9181},target=90,protocol=udp,mode=host",
        "--entrypoint", "/bin/sh",
        "--log-driver", "json-file", "--log-opt", "max-size=5m", "--log-opt", "max-file=2",
    ]  # fmt: skip
    if cli == "28.2.2":  # flags 20.10 does not have
        flags += ["--health-start-interval", "1s", "--oom-score-adj", "100"]
    return flags


def test_a_service_made_with_many_flags_reads_back_the_same(docker: Docker, small: Cluster) -> None:
    """What `service create` sent is what `docker service inspect` shows, and what
    `swarmlite service inspect` shows too: no field dropped or changed on the way."""
    tag = docker.tag
    docker.ok("secret", "create", f"s1-{tag}", "-", stdin="pw")
    docker.ok("config", "create", f"c1-{tag}", "-", stdin="conf")
    for net in (f"t2-{tag}", f"t3-{tag}"):
        docker.ok("network", "create", "-d", "overlay", net)
    name = f"full-{tag}"
    docker.ok(
        "service", "create", "-d", "--name", name, *_flags(tag, docker.version),
        "busybox:1.36", "-c", "sleep 1000",
    )  # fmt: skip
    shown = docker.inspect(name, "{{json .Spec}}")
    container = shown["TaskTemplate"]["ContainerSpec"]
    assert container["Command"] == ["/bin/sh"] and container["Args"] == ["-c", "sleep 1000"]
    assert container["Hosts"] == ["10.0.0.9 example.com"]
    assert container["DNSConfig"] == {
        "Nameservers": ["8.8.8.8"],
        "Search": ["example.com"],
        "Options": ["ndots:2"],
    }
    assert [m["Type"] for m in container["Mounts"]] == ["volume", "bind", "tmpfs"]
    secret_id = docker.ok("secret", "inspect", f"s1-{tag}", "--format", "{{.ID}}").strip()
    # The docker CLI gathers --secret flags in a Go map: the order it sends is not defined.
    assert sorted(
        (s["SecretID"], s["File"]["Name"], s["File"]["Mode"]) for s in container["Secrets"]
    ) == sorted(
        [
            (secret_id, f"s1-{tag}", 0o444),
            (secret_id, "other", 0o400),
        ]
    )
    assert shown["TaskTemplate"]["Placement"]["MaxReplicas"] == 2
    assert shown["UpdateConfig"]["FailureAction"] == "rollback"
    assert shown["EndpointSpec"]["Ports"][1]["Protocol"] == "udp"
    assert shown["Mode"] == {"Replicated": {"Replicas": 0}}
    assert shown["TaskTemplate"]["LogDriver"] == {
        "Name": "json-file",
        "Options": {"max-size": "5m", "max-file": "2"},
    }
    if docker.version == "28.2.2":
        assert container["OomScoreAdj"] == 100
        assert container["Healthcheck"]["StartInterval"] == 1_000_000_000
    # swarmlite's own CLI shows the same document.
    own = small.ok(
        "service", "inspect", name, "--format", "{{json .Spec}}", host=small.nodes["m1"].host
    )
    assert json.loads(own) == shown
    # and what a client sends back unchanged (an update that changes nothing) changes nothing.
    version = docker.inspect(name, "{{.Version.Index}}")
    service_id = docker.inspect(name, "{{json .ID}}")
    status, _ = http_call(
        small.nodes["m1"], "POST", f"/v1.47/services/{service_id}/update?version={version}", shown
    )
    assert status == 200
    assert docker.inspect(name, "{{json .Spec}}") == shown


def test_a_field_swarmlite_cannot_honour_is_refused_by_name(small: Cluster) -> None:
    body = {
        "Name": "plugin",
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox"},
            "PluginSpec": {"Name": "vieux/sshfs", "Remote": "vieux/sshfs:latest"},
        },
    }
    status, answer = http_call(small.nodes["m1"], "POST", "/v1.47/services/create", body)
    assert (status, answer) == (
        400,
        {"message": "TaskTemplate.PluginSpec is not supported by swarmlite"},
    )


def test_a_log_driver_that_can_never_work_is_refused_naming_the_field(small: Cluster) -> None:
    body = {
        "Name": "badlog",
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox"},
            "LogDriver": {"Name": "json-file", "Options": {"max-size": "10q"}},
        },
    }
    status, answer = http_call(small.nodes["m1"], "POST", "/v1.47/services/create", body)
    assert status == 400
    assert answer["message"] == (
        'service badlog: logging.options.max-size must be a size such as "10m" or "1g", got "10q"'
    )


# --------------------------------------------------------------------------- docker-py (A27)


def test_docker_py(small: Cluster) -> None:
    """A27: services.create with ServiceMode("replicated", 1) (sent as lower-case
    "replicated"), scale, tasks, remove."""
    import docker as docker_py
    import docker.types as types

    client = docker_py.DockerClient(base_url=f"unix://{docker_sock(small.nodes['m1'])}")
    try:
        service = client.services.create(
            "busybox",
            command=["sleep", "100"],
            name="pysvc",
            mode=types.ServiceMode("replicated", 1),
            constraints=[NOWHERE],
        )
        assert service.attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 1}}
        assert client.services.get("pysvc").id == service.id
        wait("slot 1", lambda: {t["Slot"] for t in service.tasks()} == {1})
        service.scale(2)
        service.reload()
        assert service.attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 2}}
        wait("slots 1 and 2", lambda: {t["Slot"] for t in service.tasks()} == {1, 2})
        running = service.tasks(filters={"desired-state": "running"})
        assert {t["Status"]["State"] for t in running} == {"pending"}
        listed = client.services.list(filters={"name": "pysvc"})
        assert [s.id for s in listed] == [service.id]
        stale = service.version - 1
        with pytest.raises(docker_py.errors.APIError, match="update out of sequence"):
            client.api.update_service(service.id, stale, mode=types.ServiceMode("replicated", 3))
        assert list(service.logs(stdout=True, stderr=True)) == []
        service.remove()
        assert "pysvc" not in [s.name for s in client.services.list()]
        with pytest.raises(docker_py.errors.NotFound):
            client.services.get("pysvc")
    finally:
        client.close()
