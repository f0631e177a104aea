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

Owns the runs and the output; the swarmlite node is started by the stack integration
test's harness (tests/integration/stacks/conftest.py, loaded by path).

    python scripts/bench/stack.py [--quick] [--only swarmlite|swarm] [--client native|docker]
                                  [--keep-dir]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import quote

from swarmlite.testing.dockerd import Dockerd, engine_json, engine_request
from swarmlite.testing.images import ensure_test_images

_ROOT = Path(__file__).resolve().parents[2]
_STACK_HARNESS = _ROOT / "tests" / "integration" / "stacks" / "conftest.py"
COMPOSE = _ROOT / "compose-samples" / "bench.yml"
DOCKER = Path("/usr/local/bin/docker")  # docker CLI 28.2.2 (scripts/setup)
STACK_LABEL = "com.docker.stack.namespace"
V1, V2 = "swl/web:1", "swl/web:2"
POLL = 0.05
LIMIT = 300.0  # one measurement
METRICS = (
    "deploy_1_s",
    "deploy_10_s",
    "deploy_50_s",
    "scale_10_to_50_s",
    "rolling_update_10_s",
    "kill_to_replacement_s",
)


def _note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _load(path: Path, name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARMLITE_", "DOCKER_"))}
    env.update(extra)
    return env


# --------------------------------------------------------------------------- the observer


@dataclass(frozen=True)
class Seen:
    id: str
    state: str
    image: str


def _containers(dockerd: Dockerd, stack: str) -> list[Seen]:
    filters = quote(json.dumps({"label": [f"{STACK_LABEL}={stack}"]}))
    listed = engine_json(dockerd.socket, "GET", f"/containers/json?all=1&filters={filters}")
    return [Seen(c["Id"], c["State"], c["Image"]) for c in listed or []]


def _until(what: str, check: Callable[[], bool], started: float) -> float:
    """Seconds from `started` until `check()` holds (polled every POLL s)."""
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > LIMIT:
            raise RuntimeError(f"timed out after {LIMIT:g} s waiting for {what}")
        time.sleep(POLL)


def _running(dockerd: Dockerd, stack: str, image: str) -> list[Seen]:
    return [c for c in _containers(dockerd, stack) if c.state == "running" and c.image == image]


# --------------------------------------------------------------------------- the systems


class System(Protocol):
    name: str

    @property
    def dockerd(self) -> Dockerd: ...

    def start(self, root: Path) -> None: ...
    def deploy(self, stack: str, replicas: int, image: str) -> subprocess.Popen[bytes]: ...
    def scale(self, stack: str, replicas: int) -> subprocess.Popen[bytes]: ...
    def rm(self, stack: str) -> None: ...
    def close(self) -> None: ...


def _popen(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _finish(proc: subprocess.Popen[bytes], what: str) -> None:
    out, err = proc.communicate(timeout=LIMIT)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}: {err.decode()} {out.decode()}")


class DockerCli:
    """The docker CLI on one Engine API socket (DOCKER_HOST), with an empty client config."""

    def __init__(self, host: str, config: Path) -> None:
        if not DOCKER.is_file():
            raise RuntimeError(f"{DOCKER} (the docker CLI) is not installed; see scripts/setup")
        config.mkdir(parents=True, exist_ok=True)
        self._env = {"DOCKER_HOST": host, "DOCKER_CONFIG": str(config)}

    def popen(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        return _popen([str(DOCKER), *args], _env(**self._env, **env))

    def ok(self, *args: str) -> None:
        _finish(self.popen(*args), f"docker {' '.join(args)}")

    def deploy(self, stack: str, replicas: int, image: str) -> subprocess.Popen[bytes]:
        args = ("stack", "deploy", "--detach=true", "-c", str(COMPOSE), stack)
        return self.popen(*args, REPLICAS=str(replicas), IMAGE=image)

    def scale(self, stack: str, replicas: int) -> subprocess.Popen[bytes]:
        return self.popen("service", "scale", "--detach", f"{stack}_web={replicas}")

    def rm(self, stack: str) -> None:
        """`docker stack rm`, again while swarm refuses it because the stack's network is
        still "in use by task": it removes the network while the tasks on it stop."""
        deadline = time.monotonic() + LIMIT
        while True:
            try:
                self.ok("stack", "rm", stack)
                return
            except RuntimeError as exc:
                if "in use" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


class Swarmlite:
    name = "swarmlite"

    def __init__(self, client: str) -> None:
        self._client = client
        self._made: Any = None
        self._docker: DockerCli | None = None

    @property
    def dockerd(self) -> Dockerd:
        daemon: Dockerd = self._made.dockerds["m1"]
        return daemon

    def start(self, root: Path) -> None:
        harness = _load(_STACK_HARNESS, "swarmlite_stack_harness")
        self._made = harness.StackCluster(harness.harness.Cluster(root))
        node = self._made.init("m1")
        self._made.cluster.heal()
        if self._client == "docker":
            sock = Path(node.data_dir) / "docker.sock"
            self._docker = DockerCli(f"unix://{sock}", root / "docker-config")

    def _cli(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        host = self._made.cluster.nodes["m1"].host
        return _popen([sys.executable, "-m", "swarmlite", "-H", host, *args], _env(**env))

    def deploy(self, stack: str, replicas: int, image: str) -> subprocess.Popen[bytes]:
        if self._docker is not None:
            return self._docker.deploy(stack, replicas, image)
        return self._cli(
            "stack", "deploy", "-d", "-c", str(COMPOSE), stack, REPLICAS=str(replicas), IMAGE=image
        )

    def scale(self, stack: str, replicas: int) -> subprocess.Popen[bytes]:
        if self._docker is not None:
            return self._docker.scale(stack, replicas)
        return self._cli("service", "scale", "-d", f"{stack}_web={replicas}")

    def rm(self, stack: str) -> None:
        if self._docker is not None:
            self._docker.rm(stack)
            return
        _finish(self._cli("stack", "rm", stack), f"swarmlite stack rm {stack}")

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

    def start(self, root: Path) -> None:
        # `swarm init` makes docker_gwbridge in this (the root) namespace; close() removes
        # it again, but only if this run made it.
        self._made_gwbridge = not _link_exists(_GWBRIDGE)
        self._docker = DockerCli(self.dockerd.url, root / "docker-config")
        self.dockerd.start()
        ensure_test_images(self.dockerd.socket)
        port = _load(_STACK_HARNESS, "swarmlite_stack_harness").harness.free_port()
        listen = f"127.0.0.1:{port}"
        self.docker.ok("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", listen)

    def deploy(self, stack: str, replicas: int, image: str) -> subprocess.Popen[bytes]:
        return self.docker.deploy(stack, replicas, image)

    def scale(self, stack: str, replicas: int) -> subprocess.Popen[bytes]:
        return self.docker.scale(stack, replicas)

    def rm(self, stack: str) -> None:
        self.docker.rm(stack)

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


class Runner:
    def __init__(self, system: System) -> None:
        self.system = system
        self._stacks = (f"b{i}" for i in range(1, 10_000))

    @contextlib.contextmanager
    def stack(self) -> Iterator[str]:
        """A fresh stack name; the stack is removed, and its containers gone, afterwards."""
        name = next(self._stacks)
        try:
            yield name
        finally:
            self.system.rm(name)
            _until(
                f"no container of {name}",
                lambda: not _containers(self.system.dockerd, name),
                time.monotonic(),
            )

    def _deploy(self, stack: str, replicas: int, image: str = V1) -> float:
        dockerd = self.system.dockerd
        started = time.monotonic()
        proc = self.system.deploy(stack, replicas, image)
        took = _until(
            f"{replicas} running",
            lambda: len(_running(dockerd, stack, image)) == replicas,
            started,
        )
        _finish(proc, f"{self.system.name} deploy {stack}")
        return took

    def deploy(self, replicas: int) -> float:
        with self.stack() as stack:
            return self._deploy(stack, replicas)

    def scale(self, before: int, after: int) -> float:
        with self.stack() as stack:
            self._deploy(stack, before)
            started = time.monotonic()
            proc = self.system.scale(stack, after)
            took = _until(
                f"{after} running",
                lambda: len(_running(self.system.dockerd, stack, V1)) == after,
                started,
            )
            _finish(proc, f"{self.system.name} scale {stack}")
            return took

    def rolling_update(self, replicas: int) -> float:
        with self.stack() as stack:
            self._deploy(stack, replicas)
            dockerd = self.system.dockerd

            def updated() -> bool:
                running = [c for c in _containers(dockerd, stack) if c.state == "running"]
                return len(running) == replicas and all(c.image == V2 for c in running)

            started = time.monotonic()
            proc = self.system.deploy(stack, replicas, V2)
            took = _until(f"{replicas} running {V2}", updated, started)
            _finish(proc, f"{self.system.name} update {stack}")
            return took

    def kill(self) -> float:
        with self.stack() as stack:
            self._deploy(stack, 1)
            dockerd = self.system.dockerd
            [victim] = _running(dockerd, stack, V1)
            started = time.monotonic()
            status, body = engine_request(dockerd.socket, "POST", f"/containers/{victim.id}/kill")
            if status != 204:
                raise RuntimeError(f"kill {victim.id}: {status} {body!r}")
            return _until(
                "a replacement running",
                lambda: any(c.id != victim.id for c in _running(dockerd, stack, V1)),
                started,
            )


@dataclass(frozen=True)
class Params:
    rounds: int


def measure(system: System, params: Params, root: Path) -> dict[str, float]:
    runner = Runner(system)
    _note(f"{system.name}: starting")
    system.start(root)
    rounds: dict[str, list[float]] = {m: [] for m in METRICS}
    steps: list[tuple[str, Callable[[], float]]] = [
        ("deploy_1_s", lambda: runner.deploy(1)),
        ("deploy_10_s", lambda: runner.deploy(10)),
        ("deploy_50_s", lambda: runner.deploy(50)),
        ("scale_10_to_50_s", lambda: runner.scale(10, 50)),
        ("rolling_update_10_s", lambda: runner.rolling_update(10)),
        ("kill_to_replacement_s", runner.kill),
    ]
    for index in range(params.rounds):
        for metric, step in steps:
            took = step()
            rounds[metric].append(took)
            _note(f"{system.name} round {index + 1}: {metric} = {took:.2f}")
    return {m: statistics.median(v) for m, v in rounds.items()}


def run(systems: list[System], params: Params, root: Path) -> dict[str, dict[str, float | None]]:
    result: dict[str, dict[str, float | None]] = {m: {} for m in METRICS}
    for system in systems:
        try:
            found: dict[str, float | None] = dict(measure(system, params, root / system.name))
        except Exception:  # report the system as failed, still measure the others
            _note(f"{system.name} failed:\n{traceback.format_exc()}")
            found = dict.fromkeys(METRICS)
        finally:
            system.close()
        for metric in METRICS:
            result[metric][system.name] = found[metric]
    return result


def _report(result: dict[str, dict[str, float | None]], names: list[str]) -> None:
    def cell(value: float | None) -> str:
        return "failed" if value is None else f"{value:.2f} s"

    print("| measurement | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for metric, values in result.items():
        print(f"| {metric} | " + " | ".join(cell(values.get(n)) for n in names) + " |")


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
            _note(f"data dirs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    _report(result, names)
    summary = {
        m: {n: (None if v is None else round(v, 3)) for n, v in values.items()}
        for m, values in result.items()
    }
    print(json.dumps(summary), flush=True)
    failed = any(v is None for values in result.values() for v in values.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
