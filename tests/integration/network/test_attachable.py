"""Standalone containers on an attachable overlay, on a two-host lab, through `docker run`
against each host's swarmlite Docker API socket as a swarm user would.

The stack `att` (attachable.yml) runs `web` on h2 on `att_tools` (attachable) and
`att_closed` (not). What a user checks: `docker run -d --network att_tools --name probe`
on h1 (a manager) gives a container an address in the network; it resolves the service
by name on the network's gateway and gets an answer from the task on h2; a second one on
h2 (a worker) resolves and reaches the first by name across hosts; `docker network
inspect` lists them; `--network att_closed` is refused with the reason; after `docker rm
-f` the container is no longer listed and its address is given to the next one.

Marked `integration` (by tests/integration/conftest.py): `scripts/test` runs it, a plain
`pytest` does not. It needs root and what `scripts/setup` installs. Probes run from Python
on a thread inside the container's network namespace (the lab image's busybox wget
segfaults); a probe that must succeed is retried until a deadline.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from swarmlite.network.ip import run_in_netns
from swarmlite.testing.labkit import Lab, lab_up
from swarmlite.testing.netprobe import dial_from, http_bodies

HERE = Path(__file__).parent
LISTEN_PORT = 7000


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with lab_up("--nodes", "2", prefix="swl-att-", kind=Lab) as made:
        made.cli("stack", "deploy", "-c", str(HERE / "attachable.yml"), "att")
        yield made


def docker(lab: Lab, host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The docker CLI against ``host``'s swarmlite Docker API (docker.sock beside its
    swarmlite socket), not against its dockerd."""
    sock = Path(lab.state.host(host).dir) / "docker.sock"
    done = subprocess.run(
        ["docker", "-H", f"unix://{sock}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done


def pid_of(lab: Lab, host: str, name: str) -> int:
    shown = docker(lab, host, "inspect", name).stdout
    return int(json.loads(shown)[0]["State"]["Pid"])


def inspect_network(lab: Lab, host: str, name: str) -> dict[str, object]:
    [found] = json.loads(docker(lab, host, "network", "inspect", name).stdout)
    assert isinstance(found, dict)
    return found


def members(lab: Lab, network: str) -> dict[str, str]:
    """Container name -> its address, as `docker network inspect` lists them."""
    containers = inspect_network(lab, "h1", network)["Containers"]
    assert isinstance(containers, dict)
    return {c["Name"]: c["IPv4Address"] for c in containers.values()}


def nslookup(lab: Lab, host: str, container: str, name: str, server: str) -> list[str]:
    done = docker(lab, host, "exec", container, "nslookup", name, server, check=False)
    _, _, answer = done.stdout.partition("Name:")
    return re.findall(r"^Address:?\s+(\d+\.\d+\.\d+\.\d+)\s*$", answer, re.M)


def eventually(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def web_hostname(lab: Lab) -> str:
    """The hostname of web's running container on h2 (what it serves); "" until it runs."""
    ids = docker(lab, "h2", "ps", "-q", "-f", "name=att_web.").stdout.split()
    if len(ids) != 1:
        return ""
    [shown] = json.loads(docker(lab, "h2", "inspect", ids[0]).stdout)
    return str(shown["Config"]["Hostname"])


def test_standalone_containers_join_an_attachable_network(lab: Lab) -> None:
    image = f"{lab.state.registry}/swl/busybox:1"
    eventually("web to run on h2", lambda: bool(web_hostname(lab)), timeout=180)
    gateway = str(inspect_network(lab, "h1", "att_tools")["IPAM"]["Config"][0]["Gateway"])  # type: ignore[index]

    # Only an attachable overlay takes a standalone container, and the refusal says why.
    refused = docker(
        lab, "h1", "run", "-d", "--network", "att_closed", image, "sleep", "600", check=False
    )
    assert refused.returncode != 0
    assert "network att_closed is not attachable" in refused.stderr, refused.stderr

    docker(
        lab, "h1", "run", "-d", "--network", "att_tools", "--name", "probe", image, "sleep", "3600"
    )
    probe_ns = f"/proc/{pid_of(lab, 'h1', 'probe')}/ns/net"
    probe_ip = members(lab, "att_tools")["probe"].split("/")[0]
    shown = run_in_netns(probe_ns, lambda: socket.if_nameindex())
    assert [name for _, name in shown if name != "lo"] == ["eth0"], shown

    # It resolves the service on the network's DNS and reaches its task on h2.
    eventually("web's name from probe", lambda: bool(nslookup(lab, "h1", "probe", "web", gateway)))
    [vip] = nslookup(lab, "h1", "probe", "web", gateway)
    eventually("probe to reach web", lambda: run_in_netns(probe_ns, lambda: _bodies(vip)) != [])
    assert run_in_netns(probe_ns, lambda: _bodies(vip)) == [web_hostname(lab)]

    # A container on h2 (a worker) finds probe by name and reaches it across hosts.
    docker(
        lab, "h2", "run", "-d", "--network", "att_tools", "--name", "peer", image, "sleep", "3600"
    )
    peer_ns = f"/proc/{pid_of(lab, 'h2', 'peer')}/ns/net"
    eventually(
        "probe's name from peer",
        lambda: nslookup(lab, "h2", "peer", "probe", gateway) == [probe_ip],
    )
    listener = run_in_netns(probe_ns, lambda: socket.create_server((probe_ip, LISTEN_PORT)))
    try:
        eventually(
            "peer to reach probe", lambda: dial_from(peer_ns, probe_ip, LISTEN_PORT, 2.0) == "ok"
        )
    finally:
        listener.close()

    # Removing it frees its address: it is no longer listed, and the next one gets it.
    docker(lab, "h1", "rm", "-f", "probe")
    assert "probe" not in members(lab, "att_tools")
    docker(
        lab, "h1", "run", "-d", "--network", "att_tools", "--name", "next", image, "sleep", "3600"
    )
    assert members(lab, "att_tools")["next"].split("/")[0] == probe_ip
    docker(lab, "h1", "rm", "-f", "next")
    docker(lab, "h2", "rm", "-f", "peer")
    assert members(lab, "att_tools") == {}


def _bodies(vip: str) -> list[str]:
    return http_bodies(vip, 80, 1)
