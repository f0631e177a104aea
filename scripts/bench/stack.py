"""Benchmark stacks on one node: swarmlite against Docker swarm mode, same images, same file.

For each system, in the same run and one after the other, on a private dockerd of its own
(swarmlite.testing.dockerd: its own socket, data root, exec root and cgroup parent; no
bridge, no iptables changes) holding the test images (swarmlite.testing.images):

- swarmlite: one `swarmlite init --docker-host` node (a manager that runs its tasks),
  driven by the `swarmlite` CLI, or with `--client docker` by the `docker` CLI on the
  node's Docker API socket (`<node data dir>/docker.sock`);
- swarm: `docker swarm init` on that dockerd, driven by the `docker` CLI.

The `docker` CLI is /usr/local/bin/docker, pointed at its socket by DOCKER_HOST with an
empty DOCKER_CONFIG; with `--client docker` both systems get the same docker commands.

Both deploy compose-samples/bench.yml (REPLICAS and IMAGE come from the environment) and
are timed by the same observer: the dockerd's container list, polled every 50 ms through
the Engine API, filtered by the stack label both set on containers
(`com.docker.stack.namespace`). A time starts when the command is started (its CLI start-up
included: about 0.4 s for Python's `swarmlite`, a few ms for Go's `docker`) and ends when the
observer sees the outcome. Commands are run detached (`-d`), so neither system's own
convergence check is waited for. Measurements:

1. deploy of a new stack until all of its 1, 10, 50 replicas run;
2. scale 10 -> 50 until 50 run;
3. rolling update of 10 replicas (swl/web:1 -> swl/web:2, parallelism 5, stop-first, no
   delay) until 10 containers of swl/web:2 run and none of swl/web:1 does;
4. `docker kill` of a replica's container until a new container runs in its place
   (restart delay 0).
Every measurement uses a fresh stack name; the previous stack is removed and its containers
are gone before the next one starts. Prints a table, then, as its last line, one JSON object
`{metric: {"swarmlite": seconds, "swarm": seconds}}` (medians over the rounds; null for a
system that could not run, with the reason on stderr).

Owns the two systems on one node and what observes them; the rows, their clock and the
output are the measurement core's (`_stackbench.py`, shared with `stack_lab.py`). The
swarmlite node is started by the stack integration test's harness
(tests/integration/stacks/conftest.py, loaded by path).

    python scripts/bench/stack.py [--quick] [--only swarmlite|swarm] [--client native|docker]
                                  [--keep-dir]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from _harness import STACKS, load
from _stackbench import (
    METRICS,
    STACK_LABEL,
    Commands,
    DockerCli,
    Observer,
    Result,
    Runner,
    Seen,
    SwarmliteCli,
    measure_system,
    note,
    report,
    summary,
)

from swarmlite.testing.dockerd import Dockerd, engine_json
from swarmlite.testing.images import ensure_test_images

_ROOT = Path(__file__).resolve().parents[2]
COMPOSE = _ROOT / "compose-samples" / "bench.yml"
V1, V2 = "swl/web:1", "swl/web:2"


# --------------------------------------------------------------------------- the observer


class OneDockerd(Observer):
    """The system's one dockerd; a container's image is the ref it was created from."""

    def __init__(self, dockerd: Dockerd) -> None:
        self._socket = dockerd.socket

    def containers(self, stack: str) -> list[Seen]:
        filters = quote(json.dumps({"label": [f"{STACK_LABEL}={stack}"]}))
        listed = engine_json(self._socket, "GET", f"/containers/json?all=1&filters={filters}")
        return [Seen("", c["Id"], c["State"], c["Image"]) for c in listed or []]

    def socket_of(self, host: str) -> Path:
        return self._socket


# --------------------------------------------------------------------------- the systems


class System(Protocol):
    name: str

    @property
    def dockerd(self) -> Dockerd: ...

    def start(self, root: Path) -> Commands:
        """Bring the system up; what drives it."""
        ...

    def close(self) -> None: ...


class Swarmlite:
    name = "swarmlite"

    def __init__(self, client: str) -> None:
        self._client = client
        self._made: Any = None

    @property
    def dockerd(self) -> Dockerd:
        daemon: Dockerd = self._made.dockerds["m1"]
        return daemon

    def start(self, root: Path) -> Commands:
        harness = load(STACKS)
        self._made = harness.StackCluster(harness.harness.Cluster(root))
        node = self._made.init("m1")
        self._made.cluster.heal()
        if self._client == "docker":
            sock = Path(node.data_dir) / "docker.sock"
            return DockerCli(f"unix://{sock}", root / "docker-config", COMPOSE)
        return SwarmliteCli(self._made.cluster.nodes["m1"].host, COMPOSE)

    def close(self) -> None:
        if self._made is not None:
            self._made.close()


class Swarm:
    name = "swarm"

    def __init__(self) -> None:
        self.dockerd = Dockerd.in_temp_dir()
        self._docker: DockerCli | None = None
        self._made_gwbridge = False

    @property
    def docker(self) -> DockerCli:
        assert self._docker is not None, "start() first"
        return self._docker

    def start(self, root: Path) -> Commands:
        # `swarm init` makes docker_gwbridge in this (the root) namespace; close() removes
        # it again, but only if this run made it.
        self._made_gwbridge = not _link_exists(_GWBRIDGE)
        self._docker = DockerCli(self.dockerd.url, root / "docker-config", COMPOSE)
        self.dockerd.start()
        ensure_test_images(self.dockerd.socket)
        port = load(STACKS).harness.free_port()
        listen = f"127.0.0.1:{port}"
        self.docker.ok("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", listen)
        return self.docker

    def close(self) -> None:
        if self._docker is not None:
            with contextlib.suppress(Exception):
                self._docker.ok("swarm", "leave", "--force")
        self.dockerd.stop()
        if self._made_gwbridge and _link_exists(_GWBRIDGE):
            subprocess.run(["ip", "link", "del", _GWBRIDGE], check=False, capture_output=True)


_GWBRIDGE = "docker_gwbridge"


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


# --------------------------------------------------------------------------- measurements


@dataclass(frozen=True)
class Params:
    rounds: int


def _runner(system: System, root: Path) -> Runner:
    commands = system.start(root)
    return Runner(system.name, commands, OneDockerd(system.dockerd), V1, V2, prefix="b")


def run(systems: list[System], params: Params, root: Path) -> Result:
    result: Result = {m: {} for m in METRICS}
    for system in systems:
        try:
            start = functools.partial(_runner, system, root / system.name)
            found = measure_system(system.name, start, params.rounds)
        finally:
            system.close()
        for metric in METRICS:
            result[metric][system.name] = found[metric]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description="stacks: swarmlite vs Docker swarm mode")
    parser.add_argument("--quick", action="store_true", help="1 round instead of 3")
    parser.add_argument("--only", choices=("swarmlite", "swarm"), help="run one system")
    parser.add_argument(
        "--client",
        choices=("native", "docker"),
        default="native",
        help="drive swarmlite with the swarmlite CLI (native) or the docker CLI on its docker.sock",
    )
    parser.add_argument("--keep-dir", action="store_true", help="keep data dirs and logs")
    args = parser.parse_args()
    params = Params(rounds=1 if args.quick else 3)
    makers: dict[str, Callable[[], System]] = {
        "swarmlite": lambda: Swarmlite(args.client),
        "swarm": Swarm,
    }
    names = [args.only] if args.only else list(makers)
    root = Path(tempfile.mkdtemp(prefix="swarmlite-bench-stack-")).resolve()
    try:
        result = run([makers[n]() for n in names], params, root)
    finally:
        if args.keep_dir:
            note(f"data dirs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report(result, names, missing="failed")
    summary(result)
    failed = any(v is None for values in result.values() for v in values.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
