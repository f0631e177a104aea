"""`swarmlite lab`: a three-host cluster on this machine, driven through the CLI as a user would.

One lab (h1 manager, h2 and h3 workers) is shared by the tests of this module and torn
down by the last one; the fixture tears it down again whatever happened, so a failing
test leaves nothing behind. Each host is a network namespace with its own dockerd and
swarmlite daemon; the lab's registry holds the test images.

Marked `integration` (by tests/integration/conftest.py): `scripts/test` runs it, a plain
`pytest` does not. It needs root, docker.io, docker-registry and busybox-static (.ci/run
installs them) and the whole module runs in well under a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pyroute2 import IPRoute, netns  # type: ignore[import-untyped]

from swarmlite.api import Task, TaskState
from swarmlite.api.control import ListRequest, NameRef, NodeView, TaskFilter
from swarmlite.api.routes import NODE_LS, SERVICE_INSPECT, TASK_LS
from swarmlite.lab import can_connect, in_netns, load
from swarmlite.rpc import ControlClient
from swarmlite.testing.labkit import Lab, force_down, lab_up, ok, short_dir, swarmlite
from swarmlite.testing.netprobe import http_bodies

TIMEOUT = 150.0


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with lab_up("--nodes", "3", "--managers", "1", "--metrics") as made:
        assert "swarmlite lab down --dir" in made.shown  # it says how to tear it down
        yield made


def _nodes(lab: Lab) -> list[NodeView]:
    """NODE_LS on h1's unix socket (reachable from here: a socket is a file), sorted by
    hostname."""
    client = ControlClient.unix(lab.state.host("h1").swarmlite_socket, timeout=TIMEOUT)
    return sorted(client.call(NODE_LS, ListRequest()).nodes, key=lambda v: v.node.status.hostname)


def test_three_hosts_form_one_cluster(lab: Lab) -> None:
    views = _nodes(lab)
    assert [v.node.status.hostname for v in views] == ["h1", "h2", "h3"]
    assert all(v.node.status.state.value == "ready" for v in views), views
    assert [v.node.spec.role.value for v in views] == ["manager", "worker", "worker"]
    leaders = [v.node.status.hostname for v in views if v.manager and v.manager.leader]
    assert leaders == ["h1"]
    # `lab exec` points the CLI at the host's own daemon.
    ids = lab.exec("h1", "swarmlite", "node", "ls", "-q").split()
    assert sorted(ids) == sorted(v.node.id for v in views)


def test_a_second_up_in_the_same_dir_is_refused(lab: Lab) -> None:
    done = swarmlite("lab", "up", "--dir", str(lab.dir))
    assert done.returncode == 1
    assert f"a lab is already up in {lab.dir}" in done.stderr
    assert "swarmlite lab down" in done.stderr
    assert _nodes(lab)  # and the running lab is untouched


def test_every_dockerd_pulls_from_the_lab_registry(lab: Lab) -> None:
    image = f"{lab.state.registry}/swl/web:1"
    for host in lab.state.hosts:
        docker = ["docker", "-H", host.docker_host]
        pulled = subprocess.run(
            [*docker, "pull", image], capture_output=True, text=True, timeout=60, check=False
        )
        assert pulled.returncode == 0, f"{host.name}: {pulled.stderr}"
        listed = subprocess.run(
            [*docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert image in listed.stdout.split()


def test_hosts_reach_each_other_on_the_underlay(lab: Lab) -> None:
    h1, h2, h3 = lab.state.hosts

    def listen() -> socket.socket:
        server = socket.socket()
        server.bind((h2.addr, 0))
        server.listen()
        return server

    server = in_netns(h2.netns, listen)
    try:
        assert can_connect(h1.netns, h2.addr, server.getsockname()[1])
    finally:
        server.close()
    # The workers reach the manager's cluster port, which h1's daemon listens on.
    assert can_connect(h2.netns, h1.addr, 2377)
    assert can_connect(h3.netns, h1.addr, 2377)


DEMO = Path(__file__).resolve().parents[2] / "compose-samples" / "demo" / "compose.yml"
DOCKER = "/usr/local/bin/docker"  # the docker CLI 28.2.2 of the machine


def test_the_docker_cli_deploys_the_demo_through_the_lab_s_docker_socket(
    lab: Lab, tmp_path: Path
) -> None:
    """The stock docker CLI on h1's swarmlite docker.sock: `docker stack deploy` of the
    README's demo converges (web 3/3, api 2/2), and `docker stack rm` takes it away."""
    if not os.path.exists(DOCKER):
        pytest.fail(f"{DOCKER} (docker CLI 28.2.2) is missing on this machine", pytrace=False)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DOCKER_HOST": f"unix://{Path(lab.state.host('h1').dir) / 'docker.sock'}",
        "DOCKER_CONFIG": str(tmp_path),
        "REGISTRY": lab.state.registry,
    }

    def docker(*args: str) -> str:
        done = subprocess.run(
            [DOCKER, *args], capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False
        )
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
        return done.stdout

    deployed = docker("stack", "deploy", "--detach=true", "-c", str(DEMO), "demo")
    assert "Creating service demo_web" in deployed and "Creating service demo_api" in deployed
    want = {"demo_web 3/3", "demo_api 2/2"}
    deadline = time.monotonic() + TIMEOUT
    seen: set[str] = set()
    while time.monotonic() < deadline and not want <= seen:
        seen = set(docker("service", "ls", "--format", "{{.Name}} {{.Replicas}}").splitlines())
        time.sleep(0.5)
    assert want <= seen, f"the demo did not converge: {sorted(seen)}"
    removed = docker("stack", "rm", "demo")
    assert "Removing service demo_web" in removed and "Removing service demo_api" in removed
    assert docker("service", "ls", "-q") == ""


def _deploy(lab: Lab, name: str, compose: str, tmp_path: Path) -> None:
    """`stack deploy` of ``compose`` (which may name ${REGISTRY}) on h1, from here."""
    path = tmp_path / f"{name}.yml"
    path.write_text(compose)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARMLITE_")}
    done = subprocess.run(
        [sys.executable, "-m", "swarmlite", "-H", lab.state.host("h1").swarmlite_host,
         "stack", "deploy", "-c", str(path), name],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
        env={**env, "REGISTRY": lab.state.registry},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _get(netns: str, addr: str, port: int, count: int) -> int:
    """``count`` HTTP requests from inside ``netns``; how many were answered (200)."""
    return len(in_netns(netns, lambda: http_bodies(addr, port, count)))


def _scrape(lab: Lab, host: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a host's metrics (GET from inside its namespace)."""
    addr = lab.state.host(host).metrics_addr

    def get() -> str:
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as response:
            return str(response.read().decode())

    text = in_netns(lab.state.host(host).netns, get)
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def test_every_daemon_serves_metrics_that_match_service_ps(lab: Lab, tmp_path: Path) -> None:
    """`lab up --metrics`: with a stack serving requests through the routing mesh, the
    leader's tasks by service and state match `service ps`, h1 alone leads, and each running
    task is reported by its own node, the ones that answered requests with the bytes their
    network received."""
    _deploy(lab, "met", "services:\n  web:\n    image: ${REGISTRY}/swl/web:1\n"
            "    ports: ['8091:80']\n    deploy: {replicas: 2}\n", tmp_path)  # fmt: skip
    try:
        _check_metrics(lab)
    finally:
        ok("-H", lab.state.host("h1").swarmlite_host, "stack", "rm", "met")


def _check_metrics(lab: Lab) -> None:
    client = ControlClient.unix(lab.state.host("h1").swarmlite_socket, timeout=TIMEOUT)

    def running() -> list[Task]:
        tasks = client.call(TASK_LS, TaskFilter(service="met_web")).tasks
        return [t for t in tasks if t.status.state is TaskState.RUNNING]

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and len(running()) < 2:
        time.sleep(0.5)
    tasks = running()
    assert len(tasks) == 2
    # Both tasks answer through h2's mesh (a task on another host is reachable once the
    # overlay between the hosts is up): then 20 requests, all answered.
    client_ns, entry = lab.state.host("h3").netns, lab.state.host("h2").addr
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and _get(client_ns, entry, 8091, 4) < 4:
        time.sleep(0.5)
    assert _get(client_ns, entry, 8091, 20) == 20
    hosts = {v.node.id: v.node.status.hostname for v in _nodes(lab)}

    def received() -> dict[str, float] | None:
        """Task id -> network bytes received, from the node that runs it, once every
        running task is reported (the sampler reads every 5 s)."""
        seen: dict[str, float] = {}
        for task in tasks:
            for name, labels, value in _scrape(lab, hosts[task.node_id]):
                mine = labels.get("task") == task.id and labels.get("service") == "met_web"
                if name == "swarmlite_task_network_receive_bytes_total" and mine:
                    seen[task.id] = value
        return seen if len(seen) == 2 and sum(seen.values()) > 0 else None

    deadline = time.monotonic() + TIMEOUT
    seen = received()
    while seen is None and time.monotonic() < deadline:
        time.sleep(1)
        seen = received()
    assert seen is not None, "the running tasks' network bytes were not reported"
    leader = _scrape(lab, "h1")
    states = {
        labels["state"]: value
        for name, labels, value in leader
        if name == "swarmlite_tasks" and labels["service"] == "met_web"
    }
    assert states["running"] == len(running()) == 2
    assert sum(states.values()) == len(client.call(TASK_LS, TaskFilter(service="met_web")).tasks)
    for host in ("h1", "h2", "h3"):
        samples = _scrape(lab, host)
        leading = [v for n, _, v in samples if n == "swarmlite_raft_is_leader"]
        assert leading == ([1.0] if host == "h1" else []), (host, leading)  # h1: the manager


def test_a_service_autoscales_on_the_requests_the_routing_mesh_counts(
    lab: Lab, tmp_path: Path
) -> None:
    """HTTP requests through the routing mesh (sent from h3, to h2's address, where the
    connection enters the mesh) grow a service with an rps target to its maximum; once they
    stop, it shrinks to its minimum, and each change says it was the requests."""
    _deploy(
        lab,
        "rps",
        "services:\n  web:\n    image: ${REGISTRY}/swl/web:1\n"
        "    ports: ['8090:80']\n    deploy:\n      replicas: 1\n"
        "      x-autoscale: {min: 1, max: 3, rps: 5, cooldown_up: 2s, cooldown_down: 6s}\n",
        tmp_path,
    )
    try:
        _autoscale_on_requests(lab)
    finally:
        ok("-H", lab.state.host("h1").swarmlite_host, "stack", "rm", "rps")


def _autoscale_on_requests(lab: Lab) -> None:
    client = ControlClient.unix(lab.state.host("h1").swarmlite_socket, timeout=TIMEOUT)
    target = lab.state.host("h2").addr
    stop = threading.Event()
    served: list[int] = []

    def load() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection((target, 8090), timeout=2) as conn:
                    conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    if conn.recv(64).startswith(b"HTTP/1."):
                        served.append(1)
            except OSError:
                pass
            time.sleep(0.02)

    def replicas() -> int:
        view = client.call(SERVICE_INSPECT, NameRef(ref="rps_web"))
        return view.service.spec.replicas

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and replicas() != count:
            time.sleep(0.5)
        assert replicas() == count, f"rps_web has {replicas()} replicas, not {count}"

    since = time.time() - 1
    loader = threading.Thread(target=in_netns, args=(lab.state.host("h3").netns, load))
    loader.start()
    try:
        wait_for(3)
    finally:
        stop.set()
        loader.join(timeout=30)
    assert served, "no request was answered through the routing mesh"
    wait_for(1)
    out = ok(
        "-H", lab.state.host("h1").swarmlite_host, "events", "--since", f"{since:.3f}",
        "--until", f"{time.time():.3f}", "--filter", "service=rps_web", "--filter",
        "type=service", "--format", "{{json .Actor.Attributes}}",
    )  # fmt: skip
    said = [json.loads(line).get("reason", "") for line in out.splitlines()]
    reasons = [reason for reason in said if " -> " in reason]
    assert reasons[0].startswith("rps ") and "target 5 req/s" in reasons[0], out
    assert reasons[-1].startswith("rps ") and reasons[-1].endswith(" -> 1 replicas"), out


def test_status_shows_every_host_and_the_nodes(lab: Lab) -> None:
    out = ok("lab", "status", "--dir", str(lab.dir))
    for host in lab.state.hosts:
        line = next(row for row in out.splitlines() if row.startswith(host.name + " "))
        assert host.addr in line and host.netns in line
        assert line.count("running") == 1 and line.endswith("active"), line
    assert "Leader" in out and out.count("Ready") == 3


def test_down_leaves_nothing_behind(lab: Lab) -> None:
    prefix = lab.state.prefix
    before = _lab_processes(lab.dir)
    assert len(before) >= 7  # 3 dockerd, 3 containerd, 3 swarmlite, the registry
    lab.exec("h3", "docker", "run", "-d", "--network", "none", f"{lab.state.registry}/swl/web:1")

    out = ok("lab", "down", "--dir", str(lab.dir))
    assert "1 containers" in out

    assert [n for n in netns.listnetns() if n.startswith(prefix)] == []
    assert _lab_processes(lab.dir) == []
    assert all(not _alive(pid) for pid in before)
    with IPRoute() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    assert [n for n in names if n.startswith(prefix) or n.startswith("swl-")] == []
    assert [m for m in _mounts() if m.startswith(str(lab.dir))] == []
    assert _cgroups(prefix.rstrip("-")) == []
    assert not (lab.dir / "lab.json").exists()
    assert not lab.dir.exists() or list(lab.dir.iterdir()) == []
    # Again: nothing to do, and no error.
    assert "No lab to remove" in ok("lab", "down", "--dir", str(lab.dir))


def test_down_after_a_crash_finds_the_lab_by_its_names() -> None:
    directory = short_dir()
    try:
        ok("lab", "up", "--nodes", "1", "--dir", str(directory))
        state = load(directory)
        assert state is not None
        # Everything dies at once and the record is lost.
        for proc in state.processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        (directory / "lab.json").unlink()
        assert [n for n in netns.listnetns() if n.startswith(state.prefix)]

        out = ok("lab", "down", "--dir", str(directory))
        assert "namespaces" in out

        assert [n for n in netns.listnetns() if n.startswith(state.prefix)] == []
        assert _lab_processes(directory) == []
        assert _cgroups(state.prefix.rstrip("-")) == []
    finally:
        force_down(directory)


# --------------------------------------------------------------------------- helpers


def _lab_processes(directory: Path) -> list[int]:
    """Live processes whose command line mentions the lab dir."""
    found: list[int] = []
    needle = os.fsencode(str(directory))
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _mounts() -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines]


def _cgroups(name: str) -> list[str]:
    root = Path("/sys/fs/cgroup")  # v2: cgroups right here; v1: one hierarchy per controller
    hierarchies = [root, *(d for d in root.iterdir() if (d / "cgroup.procs").exists())]
    return sorted({str(d) for hierarchy in hierarchies for d in hierarchy.glob(f"{name}*")})
