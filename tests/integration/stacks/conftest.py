"""A cluster whose nodes run tasks: the CLI cluster harness plus one private dockerd per node.

`StackCluster` composes the harness of tests/integration/conftest.py (loaded by path, as
scripts/bench/cluster.py does; that file is not changed) with one `Dockerd` per node, and
starts each node with `--docker-host` pointing at its own dockerd. All dockerds live in the
root network namespace: tasks run with NetworkMode none, so they cannot collide. It reads
containers straight from each node's dockerd (by the labels the docker driver sets) and the
cluster through the control API, with the client the CLI uses (`Cluster.call`); tests drive
the cluster through the CLI, and read its output only where what it prints is the point.

Invariant: `close()` SIGKILLs every daemon the harness saw and stops every dockerd this
object started (which removes their containers, mounts, cgroups and directories).

scripts/bench/stack.py loads this file by path too.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import msgspec
import pytest

from swarmlite.api.control import NameRef, TaskFilter
from swarmlite.api.routes import SERVICE_INSPECT, TASK_LS, Rep, Req, Route
from swarmlite.errors import FailedPrecondition
from swarmlite.testing.dockerd import Dockerd, engine_json, engine_request
from swarmlite.testing.images import ensure_test_images
from swarmlite.testing.loadfile import load_file

HERE = Path(__file__).resolve().parent
_HARNESS = HERE.parent / "conftest.py"

LABEL_SERVICE = "swarmlite.service"
LABEL_TASK = "swarmlite.task"
LABEL_STACK = "com.docker.stack.namespace"


def load_harness() -> ModuleType:
    """tests/integration/conftest.py as a module of its own (Cluster, Node, free_port, ...)."""
    return load_file("swarmlite_cluster_harness", _HARNESS)


harness = load_harness()


@dataclass(frozen=True)
class Container:
    """One container as a node's dockerd lists it."""

    id: str
    node: str  # the harness's node name whose dockerd runs it
    state: str  # running, exited, created, ...
    image: str
    labels: dict[str, str]

    @property
    def task(self) -> str:
        return self.labels.get(LABEL_TASK, "")

    @property
    def service(self) -> str:
        return self.labels.get(LABEL_SERVICE, "")


@dataclass
class StackCluster:
    """Nodes started through the CLI, each on its own dockerd; see the module docstring."""

    cluster: Any  # harness.Cluster
    dockerds: dict[str, Dockerd] = field(default_factory=dict)

    # ------------------------------------------------------------------ nodes

    def _dockerd(self, name: str) -> Dockerd:
        daemon = Dockerd.in_temp_dir()
        self.dockerds[name] = daemon  # stopped by close() even if start fails halfway
        daemon.start()
        ensure_test_images(daemon.socket)
        return daemon

    def _new_node(self, name: str) -> Any:
        assert name not in self.cluster.nodes, f"node {name} exists already"
        node = harness.Node(name=name, data_dir=self.cluster.root / name, port=harness.free_port())
        self.cluster.nodes[name] = node
        return node

    def init(self, name: str, *extra: str) -> Any:
        """`swarmlite init` of a first manager that runs its tasks on its own dockerd;
        `extra` are more flags for init."""
        daemon = self._dockerd(name)
        node = self._new_node(name)
        try:
            self.cluster.ok(
                "init",
                "--data-dir",
                str(node.data_dir),
                "--listen-addr",
                node.addr,
                "--docker-host",
                daemon.url,
                *extra,
                name=name,
            )
        finally:
            with contextlib.suppress(OSError, ValueError):
                self.cluster.pid(node)  # the harness remembers it, to kill it in close()
        return node

    def join(self, name: str, role: str, via: Any, *extra: str) -> Any:
        """`swarmlite join` of a node that runs its tasks on its own dockerd; `extra` are
        more flags for join."""
        daemon = self._dockerd(name)
        token = self.cluster.token(role, via)
        node = self._new_node(name)
        try:
            self.cluster.ok(
                "join",
                "--token",
                token,
                "--data-dir",
                str(node.data_dir),
                "--listen-addr",
                node.addr,
                "--docker-host",
                daemon.url,
                *extra,
                via.addr,
                name=name,
            )
        finally:
            with contextlib.suppress(OSError, ValueError):
                self.cluster.pid(node)
        return node

    def close(self) -> None:
        try:
            self.cluster.close()
        finally:
            for daemon in self.dockerds.values():
                daemon.stop()

    # ------------------------------------------------------------------ the CLI

    def swl(
        self, *args: str, timeout: float = harness.CLI_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """`swarmlite -H <a live manager> args...`; never raises on a failed command."""
        done: subprocess.CompletedProcess[str] = self.cluster.cli(
            *args, host=self.cluster.a_manager().host, timeout=timeout
        )
        return done

    def ok(self, *args: str, timeout: float = harness.CLI_TIMEOUT) -> str:
        done = self.swl(*args, timeout=timeout)
        assert done.returncode == 0, (
            f"`swarmlite {' '.join(args)}` exited {done.returncode}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return done.stdout

    def deploy(
        self, stack: str, *files: Path, timeout: str = "120s"
    ) -> subprocess.CompletedProcess[str]:
        args = ["stack", "deploy", "--timeout", timeout]
        for path in files:
            args += ["-c", str(path)]
        return self.swl(*args, stack, timeout=300)

    # ------------------------------------------------------------------ the control API

    def call(self, route: Route[Req, Rep], request: Req) -> Rep:
        """One control call on a live manager, with the client the CLI uses."""
        reply: Rep = self.cluster.call(route, request)
        return reply

    def tasks(self, *services: str) -> list[dict[str, Any]]:
        """Every task of `services` (TASK_LS, history included), as plain dicts."""
        found: list[dict[str, Any]] = [
            msgspec.to_builtins(task)
            for service in services
            for task in self.call(TASK_LS, TaskFilter(service=service)).tasks
        ]
        return found

    def inspect(self, service: str) -> dict[str, Any]:
        """The stored service (SERVICE_INSPECT), as a plain dict."""
        found: dict[str, Any] = msgspec.to_builtins(
            self.call(SERVICE_INSPECT, NameRef(ref=service)).service
        )
        return found

    def node_names(self) -> dict[str, str]:
        """Node id -> hostname, from NODE_LS."""
        return {row.id: row.hostname for row in self.cluster.node_ls()}

    # ------------------------------------------------------------------ the dockerds

    def containers(self, name: str, **labels: str) -> list[Container]:
        """Every container (running or not) on node `name`'s dockerd with these labels."""
        filters = json.dumps({"label": [f"{k}={v}" for k, v in sorted(labels.items())]})
        listed = engine_json(
            self.dockerds[name].socket, "GET", f"/containers/json?all=1&filters={quote(filters)}"
        )
        return [
            Container(
                id=c["Id"],
                node=name,
                state=c["State"],
                image=c["Image"],
                labels=c.get("Labels") or {},
            )
            for c in listed or []
        ]

    def all_containers(self, **labels: str) -> list[Container]:
        return [c for name in self.dockerds for c in self.containers(name, **labels)]

    def running(self, **labels: str) -> list[Container]:
        return [c for c in self.all_containers(**labels) if c.state == "running"]

    def kill_container(self, container: Container) -> None:
        """`docker kill` on the container's own dockerd."""
        status, body = engine_request(
            self.dockerds[container.node].socket, "POST", f"/containers/{container.id}/kill"
        )
        assert status == 204, f"kill {container.id}: {status} {body!r}"


def start_stack_cluster(root: Path, workers: int = 2) -> StackCluster:
    """One manager (m1) and `workers` workers (w1, ...), each on its own dockerd."""
    made = StackCluster(harness.Cluster(root))
    try:
        m1 = made.init("m1")
        for i in range(1, workers + 1):
            made.join(f"w{i}", "worker", via=m1)
        made.cluster.heal()
    except BaseException:
        made.close()
        raise
    return made


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackCluster]:
    """m1 (manager), w1 and w2 (workers), each with a private dockerd; all stopped afterwards."""
    try:
        made = start_stack_cluster(tmp_path_factory.mktemp("stacks").resolve())
    except FailedPrecondition as exc:
        pytest.fail(
            f"the stack integration test needs private dockerds: {exc.message}\nhint: {exc.hint}",
            pytrace=False,
        )
    try:
        yield made
    finally:
        made.close()
