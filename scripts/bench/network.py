"""Benchmark the network of a three-host lab: throughput per layer, requests/s through the mesh.

One `swarmlite lab` (h1 manager, h2 and h3 workers) with the network tests' stack `net`
(tests/integration/network/net.yml: two `web` tasks, on h2 and h3, publishing 8080; a client
container on h1), brought up and torn down by the network tests' helpers
(tests/integration/network/conftest.py, loaded by path). Measurements, in one run:

1. throughput with iperf3 (TCP, one stream, h3 -> h2), median of the rounds:
   - underlay: host to host on the lab's underlay addresses (veth + bridge, no encryption);
   - mesh: host to host on the WireGuard mesh addresses (the swlwg* interfaces: wireguard-go);
   - overlay: container to container across hosts on the stack's overlay network (VXLAN
     inside WireGuard), iperf3 run from the host entered into each container's network
     namespace (`nsenter --net=/proc/<pid>/ns/net`; the images have no iperf3);
2. HTTP requests/s from the client container on h1 (where no web task runs), its network
   namespace entered by the Python load generator, the same one both ways (C concurrent
   connections, one request each, no keep-alive, for T seconds; rounds alternate):
   - routing mesh: to h1's underlay address, port 8080 (h1's nftables DNAT to either task,
     masqueraded, over the ingress overlay);
   - direct: to the two tasks' addresses on the stack's network, port 80, alternately (the
     host namespace cannot be the client here: every node's bridge of a network carries
     the same gateway address, so a task would answer its own node).

Prints a table, then as its last line one JSON object with the keys underlay_gbps,
mesh_gbps, overlay_gbps, direct_rps and routing_mesh_rps. Needs root and what the lab needs,
plus iperf3 (`apt-get install -y iperf3`).

    python scripts/bench/network.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _harness import NETWORK, load

_ROOT = Path(__file__).resolve().parents[2]
IPERF_PORT = 5201


helpers = load(NETWORK)


# --------------------------------------------------------------------------- iperf3


def _nsenter(netns: str) -> list[str]:
    return ["nsenter", f"--net={netns}", "iperf3"]


def iperf_gbps(server_ns: str, client_ns: str, addr: str, seconds: float) -> float:
    """One iperf3 TCP run from `client_ns` to a server on `addr` in `server_ns`."""
    server = subprocess.Popen(
        [*_nsenter(server_ns), "-s", "--forceflush", "-B", addr, "-p", str(IPERF_PORT)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        seen = ""
        while "Server listening" not in seen:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError(f"iperf3 server on {addr} did not start: {seen}")
            seen += line
        done = subprocess.run(
            [*_nsenter(client_ns), "-c", addr, "-p", str(IPERF_PORT), "-t", f"{seconds:g}", "-J"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        report = json.loads(done.stdout or "{}")
        if done.returncode != 0 or "error" in report:
            raise RuntimeError(f"iperf3 to {addr}: {report.get('error') or done.stderr}")
        bits: float = report["end"]["sum_received"]["bits_per_second"]
        return bits / 1e9
    finally:
        server.kill()  # our own child, by its pid
        server.wait(timeout=10)


# --------------------------------------------------------------------------- HTTP load


async def _worker(
    targets: list[tuple[str, int]], offset: int, stop: float, count: list[int]
) -> None:
    i = offset
    while time.monotonic() < stop:
        addr, port = targets[i % len(targets)]
        i += 1
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(addr, port), 2.0)
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            reply = await asyncio.wait_for(reader.read(), 2.0)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            count[1] += 1
            continue
        if reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]:
            count[0] += 1
        else:
            count[1] += 1


def http_rps(netns: str, targets: list[tuple[str, int]], clients: int, seconds: float) -> float:
    """Successful requests/s from `netns`, `clients` connections at a time, spread over
    `targets` round robin; a run with failures raises (the numbers would not compare)."""

    async def load() -> tuple[int, int]:
        count = [0, 0]
        stop = time.monotonic() + seconds
        await asyncio.gather(*(_worker(targets, i, stop, count) for i in range(clients)))
        return count[0], count[1]

    started = time.monotonic()
    good, bad = helpers.in_ns(netns, lambda: asyncio.run(load()))
    elapsed = time.monotonic() - started
    if bad > good // 100:
        raise RuntimeError(f"{bad} failed requests (of {good + bad}) to {targets}")
    return float(good / elapsed)


# --------------------------------------------------------------------------- the lab


def mesh_addr(lab: Any, host: str) -> str:
    shown = lab.exec(host, "ip", "-4", "-o", "addr", "show")
    found = re.search(r"\d+: swlwg\S*\s+inet (\d+\.\d+\.\d+\.\d+)/", shown)
    assert found, f"no swlwg* address on {host}:\n{shown}"
    return found.group(1)


def overlay_addr(lab: Any, container: Any, vip: str) -> str:
    """The container's address on the network of `vip` (the same /24)."""
    shown = lab.docker_exec(container, "ip -4 -o addr").stdout
    prefix = vip.rsplit(".", 1)[0] + "."
    for addr in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", shown):
        if addr.startswith(prefix):
            return str(addr)
    raise AssertionError(f"{container.name} has no address next to {vip}: {shown}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round, 5 s each: about 1 min")
    args = parser.parse_args()
    if shutil.which("iperf3") is None:
        print("iperf3 is not installed: apt-get install -y iperf3", file=sys.stderr)
        return 1
    rounds, seconds, clients = (1, 5.0, 32) if args.quick else (3, 10.0, 32)

    with helpers.lab_up(3) as lab:
        lab.deploy(helpers.HERE / "net.yml", "net")
        h2, h3 = lab.host_netns("h2"), lab.host_netns("h3")
        webs = lab.containers("net_web")
        assert [w.host for w in webs] == ["h2", "h3"], webs
        [vip] = lab.vips("net_web")
        web2, web3 = webs
        addrs = {
            "underlay": (h2, h3, lab.addr("h2")),
            "mesh": (h2, h3, mesh_addr(lab, "h2")),
            "overlay": (web2.netns, web3.netns, overlay_addr(lab, web2, vip)),
        }
        gbps: dict[str, list[float]] = {k: [] for k in addrs}
        for _ in range(rounds):
            for kind, (server_ns, client_ns, addr) in addrs.items():
                gbps[kind].append(iperf_gbps(server_ns, client_ns, addr, seconds))

        [probe] = lab.containers("net_probe")
        client = probe.netns
        mesh_target = [(lab.addr("h1"), 8080)]
        direct_targets = [(overlay_addr(lab, w, vip), 80) for w in webs]
        rps: dict[str, list[float]] = {"routing_mesh": [], "direct": []}
        for _ in range(rounds):
            rps["routing_mesh"].append(http_rps(client, mesh_target, clients, seconds))
            rps["direct"].append(http_rps(client, direct_targets, clients, seconds))

    result = {
        "underlay_gbps": round(statistics.median(gbps["underlay"]), 3),
        "mesh_gbps": round(statistics.median(gbps["mesh"]), 3),
        "overlay_gbps": round(statistics.median(gbps["overlay"]), 3),
        "direct_rps": round(statistics.median(rps["direct"]), 1),
        "routing_mesh_rps": round(statistics.median(rps["routing_mesh"]), 1),
    }
    print(f"{'measurement':<34} {'median':>10}  rounds")
    for kind, values in gbps.items():
        shown = ", ".join(f"{v:.3f}" for v in values)
        print(f"{kind + ' throughput (Gbit/s)':<34} {statistics.median(values):>10.3f}  {shown}")
    for kind, values in rps.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(f"{kind + ' requests/s':<34} {statistics.median(values):>10.0f}  {shown}")
    print(
        f"routing mesh / direct: {result['routing_mesh_rps'] / result['direct_rps']:.1%} "
        f"(goal >= 90 %); overlay / mesh: {result['overlay_gbps'] / result['mesh_gbps']:.1%} "
        "(goal >= 80 %)"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
