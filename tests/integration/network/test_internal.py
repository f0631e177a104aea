"""An internal overlay on a three-host lab: its tasks reach each other and nothing else.

The stack `iso` (isolated.yml) runs `vault` (a web server) on h3 on the internal network
`back`, and two client containers on h2: `inside` on `back`, `outside` on the open network
`front`. What a user checks: `inside` reaches `vault` by name across hosts, and not the
lab's registry host nor the manager's underlay address; `outside` reaches both of those,
and not `vault`. A host-mode port on a service with internal networks only is refused up
front.

Marked `integration` (by tests/integration/conftest.py): `scripts/test` runs it, a plain
`pytest` does not. It needs root and what `scripts/setup` installs. Probes connect from
Python on a thread inside the container's network namespace; a probe that cannot connect
is retried until a deadline only where it must succeed.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from swarmlite.lab import LabState
from swarmlite.testing.labkit import Lab, lab_up
from swarmlite.testing.netprobe import dial_from

HERE = Path(__file__).parent
CLUSTER_PORT = 2377  # the manager's control plane, on its underlay address
REGISTRY_PORT = 5000


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with lab_up("--nodes", "3", prefix="swl-iso-") as made:
        made.cli("stack", "deploy", "-c", str(HERE / "isolated.yml"), "iso")
        yield made


def container_pid(state: LabState, host: str, service: str) -> int:
    docker = ["docker", "-H", state.host(host).docker_host]
    ids = subprocess.run(
        [*docker, "ps", "-q", "--no-trunc", "-f", f"name={service}."],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert len(ids) == 1, (service, host, ids)
    shown = subprocess.run(
        [*docker, "inspect", ids[0]], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return int(json.loads(shown)[0]["State"]["Pid"])


def connect(pid: int, addr: str, port: int) -> str:
    """ "ok" or "error: <errno name>" for one TCP connection from the container's netns."""
    return dial_from(f"/proc/{pid}/ns/net", addr, port, timeout=2.0)


def nslookup(state: LabState, host: str, service: str, name: str, server: str) -> list[str]:
    """The addresses busybox nslookup in the service's container answers for ``name``."""
    docker = ["docker", "-H", state.host(host).docker_host]
    cid = subprocess.run(
        [*docker, "ps", "-q", "-f", f"name={service}."],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()[0]
    done = subprocess.run(
        [*docker, "exec", cid, "nslookup", name, server],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    _, _, answer = done.stdout.partition("Name:")
    return re.findall(r"^Address:?\s+(\d+\.\d+\.\d+\.\d+)\s*$", answer, re.M)


def gateway(lab: Lab, network: str) -> str:
    shown = lab.cli("network", "inspect", network)
    [found] = json.loads(shown)
    assert found["Internal"] is (network == "iso_back"), found
    return str(found["IPAM"]["Config"][0]["Gateway"])


def eventually(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_an_internal_network_reaches_its_tasks_and_nothing_outside(lab: Lab) -> None:
    state = lab.state
    inside = container_pid(state, "h2", "iso_inside")
    outside = container_pid(state, "h2", "iso_outside")
    manager = state.host("h1").addr
    registry = state.registry_addr

    # The open network reaches the registry host and the manager (as Docker's tasks do).
    eventually("outside to reach the registry", lambda: connect(outside, registry, 5000) == "ok")
    assert connect(outside, manager, CLUSTER_PORT) == "ok"

    # The internal one reaches its own service by name, on another host...
    back, front = gateway(lab, "iso_back"), gateway(lab, "iso_front")
    eventually("vault's name", lambda: bool(nslookup(state, "h2", "iso_inside", "vault", back)))
    [vip] = nslookup(state, "h2", "iso_inside", "vault", back)
    eventually("inside to reach vault", lambda: connect(inside, vip, 80) == "ok")
    # ...and nothing outside its network: no registry host, no other host's underlay.
    for addr, port in ((registry, REGISTRY_PORT), (manager, CLUSTER_PORT)):
        got = connect(inside, addr, port)
        assert got.startswith("error"), f"inside reached {addr}:{port}"
    # Not even after the container makes itself a default route (it has none).
    route = subprocess.run(
        ["nsenter", f"--net=/proc/{inside}/ns/net", "ip", "route"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    assert "default" not in route, route
    subprocess.run(
        [
            "nsenter",
            f"--net=/proc/{inside}/ns/net",
            "ip",
            "route",
            "add",
            "default",
            "via",
            back,
        ],
        capture_output=True,
        timeout=10,
        check=True,
    )
    for addr, port in ((registry, REGISTRY_PORT), (manager, CLUSTER_PORT)):
        got = connect(inside, addr, port)
        assert got.startswith("error"), f"inside, with a route of its own, reached {addr}:{port}"

    # The open network neither names nor reaches the internal one's service.
    assert nslookup(state, "h2", "iso_outside", "vault", front) == []
    assert connect(outside, vip, 80).startswith("error")


def test_a_host_port_into_an_internal_network_only_is_refused(lab: Lab) -> None:
    done = lab.cli_result(
        "service", "create", "--name", "leak", "--network", "iso_back",
        "--publish", "mode=host,published=9090,target=80", f"{lab.state.registry}/swl/web:1",
    )  # fmt: skip
    assert done.returncode != 0
    assert (
        "service leak: ports[0] (9090/tcp) is published in host mode, but its networks "
        "(iso_back) are internal" in done.stderr
    ), done.stderr
