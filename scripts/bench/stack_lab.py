"""Benchmark stacks on a 3-host lab: swarmlite against Docker swarm mode, every task on an overlay.

One `swarmlite lab` of three hosts (h1 manager, h2 and h3 workers; each a network namespace
with its own dockerd and swarmlite daemon, the WireGuard mesh and overlays on), brought up
with `swarmlite.testing.labkit.lab_up` and always torn down. On it, one after the other and
never with both stacks at once:

- swarmlite: the lab's own cluster, driven by the docker CLI on h1's swarmlite Docker API
  socket (`<h1 dir>/docker.sock`), or with `--client native` by the `swarmlite` CLI on
  h1's control socket;
- swarm: `docker swarm init` on h1's dockerd, `docker swarm join` on h2's and h3's (the
  lab hosts' own dockerds; cluster port 2378 and data-path port 4790, clear of swarmlite's
  2377 and 4789), driven by the docker CLI on h1's dockerd; `docker swarm leave --force`
  on every host before the lab goes down;
- docker run (a baseline, while swarm is up): 50 `docker run -d` started at once, 17/17/16
  on the three hosts' dockerds, on an attachable swarm overlay network (`docker network
  create -d overlay --attachable`), so each container gets the same kind of attachment
  (VXLAN, an address from the swarm manager) as a swarm task, without a service; with
  `--baseline bridge`, after swarm has left, on a bridge network of each host's dockerd
  instead (no overlay: what plain container starts cost on these dockerds).

The docker CLI is /usr/local/bin/docker (28), with an empty DOCKER_CONFIG. Both systems
deploy compose-samples/bench-overlay.yml (bench.yml with an overlay network and
`endpoint_mode: dnsrr`; REPLICAS and IMAGE, the lab registry's swl/web:1 or :2, from the
environment). The images are pulled on every dockerd before anything is timed.

One observer times everything: every host's dockerd container list (Engine API on its unix
socket, polled in turn every 50 ms), filtered by the stack label `com.docker.stack.namespace`
(the docker run containers carry it too), counting running containers of an image (by image
id) across the hosts. Once the containers are there, a stack's row also waits until the
system's own task list (GET /tasks on the Engine API socket of its manager, what `docker
service ps` reads) shows as many tasks running: swarmlite gives a container its overlay
interface just after the container starts (swarm before), so the dockerd's state alone would
stop swarmlite's clock before its tasks are on their network. A time starts when the command
is started (its CLI start-up included) and ends when the observer sees the outcome; commands
are detached. Rows, medians of
`--rounds` (3; `--quick` 1): deploy of a new stack until 1, 10, 50 replicas run; scale
10 -> 50; rolling update of 10 replicas (web:1 -> web:2, parallelism 5, stop-first) until 10
run web:2; `docker kill` of a replica's container until another one runs. The docker run
baseline is deploy_50's counterpart: its column is empty on the other rows. Each measurement
uses a new stack, removed with its containers before the next. Prints a table, then as its
last line one JSON object `{metric: {"swarmlite": s, "swarm": s, "docker_run": s | null}}`
(null: no counterpart, not measured, or failed with the reason on stderr; exit status 1 for
a failure).

Owns the observer of the lab hosts, swarm mode on them and the baseline's containers; the
rows, their clock and the output are the measurement core's (`_stackbench.py`, shared with
`stack.py`); the lab is `swarmlite lab`'s (`lab_up`). Needs root and what `scripts/setup`
installs.

    python scripts/bench/stack_lab.py [--quick | --rounds N] [--only swarmlite|swarm]
                                      [--client docker|native] [--baseline overlay|bridge]
                                      [--logs DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import quote, urlencode

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
    finish,
    measure_system,
    note,
    report,
    summary,
    until,
)

from swarmlite.lab import Host
from swarmlite.testing.dockerd import engine_json, engine_request
from swarmlite.testing.labkit import Lab, lab_up

_ROOT = Path(__file__).resolve().parents[2]
COMPOSE = _ROOT / "compose-samples" / "bench-overlay.yml"
SWARM_PORT = 2378  # swarmlite's daemons hold 2377 on the same addresses
SWARM_DATA_PORT = 4790  # and swarmlite's VXLAN 4789
BASELINE = 50
BASELINE_NETWORK = "bench_attach"
ROWS = {
    "deploy_1_s": "deploy until all run, 1 replica",
    "deploy_10_s": "deploy until all run, 10 replicas",
    "deploy_50_s": "deploy until all run, 50 replicas",
    "scale_10_to_50_s": "scale 10 -> 50 until 50 run",
    "rolling_update_10_s": "rolling update of 10 replicas (web:1 -> web:2)",
    "kill_to_replacement_s": "`docker kill` of a replica until its replacement runs",
}
SYSTEMS = ("swarmlite", "swarm", "docker_run")


# --------------------------------------------------------------------------- the observer


class Hosts(Observer):
    """Every lab host's dockerd, read through its own Engine API socket; a container's image
    is its image id (``images``: each ref's). With ``api``, a stack has converged only once
    the system's own task list there agrees."""

    def __init__(self, hosts: list[Host], images: dict[str, str], api: Path | None = None) -> None:
        self.hosts = hosts
        self._images = images
        self._ids = {images[v]: images[f"{v}_id"] for v in ("v1", "v2")}
        self._api = api

    def of_system(self, api: Path) -> Hosts:
        """The same hosts, also asking the task list of the system whose manager is ``api``."""
        return Hosts(self.hosts, self._images, api)

    def containers(self, stack: str) -> list[Seen]:
        filters = quote(json.dumps({"label": [f"{STACK_LABEL}={stack}"]}))
        found: list[Seen] = []
        for host in self.hosts:
            path = f"/containers/json?all=1&filters={filters}"
            for c in engine_json(host.docker_socket, "GET", path) or []:
                found.append(Seen(host.name, c["Id"], c["State"], c["ImageID"]))
        return found

    def image_key(self, image: str) -> str:
        return self._ids[image]

    def agrees(self, stack: str, replicas: int) -> bool:
        return self._api is None or self.tasks_running(self._api, f"{stack}_web") == replicas

    def tasks_running(self, api: Path, service: str) -> int:
        """How many of ``service``'s tasks the system's own task list (GET /tasks on its
        Engine API, what `docker service ps` shows) has running, of those meant to run."""
        filters = quote(json.dumps({"service": [service], "desired-state": ["running"]}))
        tasks = engine_json(api, "GET", f"/tasks?filters={filters}") or []
        return sum(1 for t in tasks if t["Status"]["State"] == "running")

    def socket_of(self, host: str) -> Path:
        return next(h.docker_socket for h in self.hosts if h.name == host)


def pull(host: Host, ref: str) -> str:
    """``ref`` pulled on ``host``'s dockerd (from the lab registry); its image id."""
    repo, _, tag = ref.rpartition(":")
    query = urlencode({"fromImage": repo, "tag": tag})
    status, body = engine_request(host.docker_socket, "POST", f"/images/create?{query}")
    if status != 200 or b'"error"' in body:
        raise RuntimeError(f"pull {ref} on {host.name}: {status} {body[-300:]!r}")
    shown = engine_json(host.docker_socket, "GET", f"/images/{quote(ref, safe='')}/json")
    return str(shown["Id"])


# --------------------------------------------------------------------------- the systems


def swarmlite_commands(lab: Lab, client: str, config: Path) -> tuple[Commands, Path]:
    """What drives the lab's own swarmlite cluster (the lab made it), through h1: the docker
    CLI on h1's swarmlite Docker API socket (``docker``) or the swarmlite CLI on its control
    socket; and that Docker API socket, whose /tasks the observer reads."""
    h1 = lab.state.host("h1")
    api = Path(h1.dir) / "docker.sock"
    if client == "docker":
        return DockerCli(f"unix://{api}", config, COMPOSE), api
    return SwarmliteCli(h1.swarmlite_host, COMPOSE), api


class Swarm:
    """Docker swarm mode on the lab hosts' own dockerds: h1 the manager, the others workers."""

    name = "swarm"

    def __init__(self, lab: Lab, config: Path) -> None:
        self.hosts = lab.state.hosts
        self.api = self.hosts[0].docker_socket
        self._clis = {h.name: DockerCli(h.docker_host, config, COMPOSE) for h in self.hosts}
        self.docker = self._clis[self.hosts[0].name]
        self._joined: list[str] = []

    def start(self) -> None:
        first, *others = self.hosts
        addr = f"{first.addr}:{SWARM_PORT}"
        self._joined.append(first.name)  # before: a failed init may still have initialised
        listen = ("--advertise-addr", addr, "--listen-addr", addr)
        self.docker.ok("swarm", "init", *listen, "--data-path-port", str(SWARM_DATA_PORT))
        token = self.docker.ok("swarm", "join-token", "-q", "worker").strip()
        for host in others:
            own = f"{host.addr}:{SWARM_PORT}"
            self._joined.append(host.name)
            listen = ("--advertise-addr", own, "--listen-addr", own)
            self._clis[host.name].ok("swarm", "join", "--token", token, *listen, addr)

        def all_ready() -> bool:
            shown = self.docker.ok("node", "ls", "--format", "{{.Status}}").split()
            return shown == ["Ready"] * len(self.hosts)

        until(f"{len(self.hosts)} swarm nodes Ready", all_ready, time.monotonic())

    def close(self) -> None:
        """`swarm leave --force` on every host that joined, workers first."""
        for name in reversed(self._joined):
            try:
                self._clis[name].ok("swarm", "leave", "--force")
            except Exception as exc:  # the lab's teardown still removes its dockerds
                note(f"swarm leave on {name}: {exc}")
        self._joined.clear()


# --------------------------------------------------------------------------- the baseline


@contextlib.contextmanager
def baseline_network(kind: str, clis: dict[str, DockerCli]) -> Iterator[None]:
    """BASELINE_NETWORK for the docker run baseline, removed afterwards: ``overlay``, one
    attachable swarm overlay made on the first host (a swarm manager: swarm must be up);
    ``bridge``, a local bridge network on each host's dockerd (they run with ``--bridge
    none``, so there is no default bridge)."""
    first = next(iter(clis.values()))
    made = [first] if kind == "overlay" else list(clis.values())
    flags = ("-d", "overlay", "--attachable") if kind == "overlay" else ("-d", "bridge")
    try:
        for cli in made:
            cli.ok("network", "create", *flags, BASELINE_NETWORK)
        yield
    finally:
        for cli in made:
            with contextlib.suppress(RuntimeError):
                cli.ok("network", "rm", BASELINE_NETWORK)


def docker_run_baseline(
    clis: dict[str, DockerCli], observer: Hosts, images: dict[str, str], rounds: int
) -> float:
    """50 `docker run -d` at once over the hosts' dockerds (in turn: 17/17/16 on three) on
    BASELINE_NETWORK, until all 50 run; the median over ``rounds``."""
    times: list[float] = []
    for index in range(rounds):
        label = f"dr{index + 1}"
        try:
            took = _docker_run_round(clis, observer, images, label)
        finally:
            _remove_all(observer, label)
        times.append(took)
        note(f"docker_run round {index + 1}: deploy_50_s = {took:.2f}")
    return statistics.median(times)


def _docker_run_round(
    clis: dict[str, DockerCli], observer: Hosts, images: dict[str, str], label: str
) -> float:
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    labels = ("--label", f"{STACK_LABEL}={label}")
    hosts = list(clis)
    started = time.monotonic()
    for n in range(BASELINE):
        host = hosts[n % len(hosts)]
        args = ("run", "-d", "--network", BASELINE_NETWORK, *labels, "--name", f"{label}_{n}")
        procs.append((host, clis[host].popen(*args, images["v1"])))
    took = until(
        f"{BASELINE} docker run containers running",
        lambda: len(observer.running(label, images["v1"])) == BASELINE,
        started,
    )
    for host, proc in procs:
        finish(proc, f"docker run on {host}")
    return took


def _remove_all(observer: Hosts, label: str) -> None:
    """`docker rm -f` of every container labelled ``label``, until none is listed."""
    for seen in observer.containers(label):
        sock = observer.socket_of(seen.host)
        engine_request(sock, "DELETE", f"/containers/{seen.id}?force=1")
    until(f"no container of {label}", lambda: not observer.containers(label), time.monotonic())


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Options:
    rounds: int
    only: str | None
    client: str
    baseline: str  # overlay (swarm's, attachable) or bridge
    logs: Path | None


def _images(lab: Lab) -> dict[str, str]:
    """The two web images of the lab registry, pulled on every host; refs and image ids."""
    refs = {"v1": f"{lab.state.registry}/swl/web:1", "v2": f"{lab.state.registry}/swl/web:2"}
    ids: dict[str, str] = {}
    for key, ref in refs.items():
        seen = {pull(host, ref) for host in lab.state.hosts}
        if len(seen) != 1:
            raise RuntimeError(f"{ref} has different image ids on the lab hosts: {seen}")
        ids[f"{key}_id"] = seen.pop()
    return {**refs, **ids}


def _run_system(name: str, start: Callable[[], Runner], rounds: int, result: Result) -> bool:
    """The system's rows into ``result``; whether it was measured (else its rows are None)."""
    found = measure_system(name, start, rounds)
    for metric in METRICS:
        result[metric][name] = found[metric]
    return all(v is not None for v in found.values())


def run(lab: Lab, opts: Options, config: Path) -> Result:
    result: Result = {m: dict.fromkeys(SYSTEMS) for m in METRICS}
    note("pulling the images on every host")
    images = _images(lab)
    observer = Hosts(lab.state.hosts, images)
    v1, v2 = images["v1"], images["v2"]
    if opts.only in (None, "swarmlite"):
        commands, api = swarmlite_commands(lab, opts.client, config)
        runner = Runner("swarmlite", commands, observer.of_system(api), v1, v2, prefix="sl")
        _run_system("swarmlite", lambda: runner, opts.rounds, result)
    clis = {h.name: DockerCli(h.docker_host, config, COMPOSE) for h in lab.state.hosts}
    swarm_up = False
    if opts.only in (None, "swarm"):
        swarm = Swarm(lab, config)

        def start_swarm() -> Runner:
            swarm.start()
            return Runner(swarm.name, swarm.docker, observer.of_system(swarm.api), v1, v2, "sm")

        try:
            swarm_up = _run_system(swarm.name, start_swarm, opts.rounds, result)
            if swarm_up and opts.baseline == "overlay":
                _baseline(clis, observer, images, opts, result)
        finally:
            swarm.close()
    if opts.baseline == "bridge":
        _baseline(clis, observer, images, opts, result)
    elif not swarm_up:
        note("docker run: not measured (its overlay is swarm's; try --baseline bridge)")
    return result


def _baseline(
    clis: dict[str, DockerCli],
    observer: Hosts,
    images: dict[str, str],
    opts: Options,
    result: Result,
) -> None:
    note(f"docker run: starting (network: {opts.baseline})")
    try:
        with baseline_network(opts.baseline, clis):
            found = docker_run_baseline(clis, observer, images, opts.rounds)
        result["deploy_50_s"]["docker_run"] = found
    except Exception:  # the systems' rows still count
        note(f"docker run failed:\n{traceback.format_exc()}")


def _keep_logs(lab: Lab, target: Path) -> None:
    """Each host's dockerd and swarmlite logs, copied before the lab goes down."""
    target.mkdir(parents=True, exist_ok=True)
    for host in lab.state.hosts:
        for path in (host.runtime_log, host.swarmlite_dir / "swarmlite.log"):
            with contextlib.suppress(OSError):
                shutil.copy(path, target / f"{host.name}-{path.name}")
    note(f"logs kept in {target}")


_MAIN_PID = os.getpid()


def _interrupted(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _MAIN_PID:
        # A fork that never exec'd (pyroute2 forks a helper into a namespace, and ends it
        # with SIGTERM during the lab's teardown): end it as the default action would,
        # without running this script's cleanup a second time.
        os._exit(128 + signum)
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description="stacks on a 3-host lab: swarmlite vs swarm mode")
    parser.add_argument("--quick", action="store_true", help="1 round (same as --rounds 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per row (default 3)")
    parser.add_argument("--only", choices=("swarmlite", "swarm"), help="run one system")
    parser.add_argument(
        "--client",
        choices=("docker", "native"),
        default="docker",
        help="drive swarmlite with the docker CLI on h1's docker.sock (default) or its own CLI",
    )
    parser.add_argument(
        "--baseline",
        choices=("overlay", "bridge"),
        default="overlay",
        help="the docker run baseline's network: an attachable swarm overlay (while swarm is "
        "up, default) or a bridge network on each dockerd",
    )
    parser.add_argument("--logs", type=Path, help="copy the hosts' daemon logs here at the end")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    if rounds < 1:
        parser.error(f"--rounds must be at least 1, got {rounds}")
    if os.geteuid() != 0:
        parser.error("needs root (swarmlite lab: network namespaces, dockerd)")
    opts = Options(
        rounds=rounds, only=args.only, client=args.client, baseline=args.baseline, logs=args.logs
    )
    # SIGTERM and SIGHUP unwind like Ctrl-C, through every cleanup below.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGHUP, _interrupted)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="swl-bench-cli-") as config,
            lab_up("--nodes", "3", prefix="swl-bsl-", kind=Lab) as lab,
        ):
            note(f"lab up in {lab.dir}")
            try:
                result = run(lab, opts, Path(config) / "docker-config")
            finally:
                if opts.logs is not None:
                    _keep_logs(lab, opts.logs)
    except KeyboardInterrupt:
        note("interrupted; the lab is down")
        return 130
    report(result, list(SYSTEMS), rows=ROWS, missing="-")
    summary(result)
    ran = [n for n in ("swarmlite", "swarm") if opts.only in (None, n)]
    missing = [m for m, values in result.items() for n in ran if values[n] is None]
    if ("swarm" in ran or opts.baseline == "bridge") and result["deploy_50_s"][
        "docker_run"
    ] is None:
        missing.append("docker_run")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
