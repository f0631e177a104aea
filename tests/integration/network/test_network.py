"""Networks on a three-host lab: names, VIPs, the routing mesh, encryption, health, failure.

One lab (h1 manager, h2 and h3 workers) runs the stacks `net` (net.yml: `web` and `flip` on
the workers, each task serving its own hostname; a `probe` client container on h1) and
`other` (other.yml: `hidden` on every host, on a network of its own). The tests run in file
order and the last one kills h3 outright; the fixture tears the lab down whatever happened.

Marked `integration` (by tests/integration/conftest.py): `scripts/test` runs it, a plain
`pytest` does not. It needs root and the lab's packages (docker.io, docker-registry,
busybox-static, wireguard-go, nftables, tcpdump), which .ci/run installs, and runs in about
two minutes. Tests assert what the probes saw, not how soon: a wait's deadline only bounds it.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlite.api.control import NameRef
from swarmlite.api.routes import NETWORK_INSPECT

HERE = Path(__file__).parent
NetLab = Any  # conftest.NetLab, reached through the `netlab` fixture
Container = Any  # conftest.Container

WG_PORT = 51820
CLUSTER_PORT = 2377  # the control plane: HTTPS with mutual TLS, on the underlay by design
WEB_PORT = 8080
FLIP_PORT = 8081
STEADY = 20  # answers in a row that show where traffic goes now


def _nslookup(output: str) -> list[str]:
    """The addresses busybox nslookup answered (not the server's own)."""
    _, _, answer = output.partition("Name:")
    return re.findall(r"^Address:?\s+(\d+\.\d+\.\d+\.\d+)\s*$", answer, re.M)


def _probe(lab: NetLab) -> Container:
    [probe] = lab.containers("net_probe")
    assert probe.host == "h1", probe
    return probe


def _on_workers(lab: NetLab, service: str) -> list[Container]:
    found = lab.containers(service)
    assert [c.host for c in found] == ["h2", "h3"], found
    return found


@dataclass(frozen=True)
class Hit:
    start: float  # monotonic, when the connection was opened
    end: float
    body: str  # the hostname that answered, or "error: ..."


def _last(hits: list[Hit]) -> list[Hit] | None:
    """The last STEADY hits, once there are that many."""
    last = hits[-STEADY:]
    return last if len(last) == STEADY else None


class Prober:
    """New connections one after the other from a network namespace, until stopped."""

    def __init__(self, lab: NetLab, netns: str, addr: str, port: int, period: float = 0.0) -> None:
        self.hits: list[Hit] = []
        self._lab = lab
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=lab.in_ns, args=(netns, lambda: self._loop(addr, port, period)), daemon=True
        )

    def _loop(self, addr: str, port: int, period: float) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                body = self._lab.http_get(addr, port, timeout=1.0)
            except OSError as exc:
                body = f"error: {exc}"
            self.hits.append(Hit(start, time.monotonic(), body))
            if period:
                self._stop.wait(max(0.0, start + period - time.monotonic()))

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_a_container_reaches_a_service_by_name_on_other_hosts(netlab: NetLab) -> None:
    probe = _probe(netlab)
    webs = _on_workers(netlab, "net_web")
    vips = netlab.vips("net_web")

    looked_up = netlab.docker_exec(probe, "nslookup web")
    assert looked_up.returncode == 0, (
        f"nslookup web in {probe.name} on h1 failed:\n{looked_up.stdout}{looked_up.stderr}"
        f"\nresolv.conf: {netlab.docker_exec(probe, 'cat /etc/resolv.conf').stdout}"
    )
    answered = _nslookup(looked_up.stdout)
    assert answered and set(answered) <= vips, (looked_up.stdout, vips)

    vip = answered[0]
    request = r"printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 " + vip + " 80 | tail -n 1"
    replies = netlab.docker_exec(probe, f"for i in 1 2 3 4 5 6; do {request}; done")
    assert replies.returncode == 0, replies.stderr
    # Both tasks answer, one on h2 and one on h3: the VIP spreads connections over hosts.
    assert set(replies.stdout.split()) == {w.hostname for w in webs}, replies.stdout


def test_node_ps_lists_the_tasks_each_host_runs(netlab: NetLab) -> None:
    webs = _on_workers(netlab, "net_web")
    shown = netlab.cli("node", "ps", "-f", "desired-state=running",
                       "--format", "{{.Name}} {{.Node}}", "h2", "h3")  # fmt: skip
    rows = {tuple(line.split()) for line in shown.splitlines()}
    for web in webs:  # a container is named <service>.<slot>.<task id>; ps shows <service>.<slot>
        assert (web.name.rsplit(".", 1)[0], web.host) in rows, (web, shown)
    assert {node for _, node in rows} == {"h2", "h3"}, shown
    assert "h1" not in netlab.cli("node", "ps", "--format", "{{.Node}}", "h2", "h3").split()


def test_a_published_port_answers_on_a_host_without_a_task(netlab: NetLab) -> None:
    webs = _on_workers(netlab, "net_web")
    expected = {w.hostname for w in webs}
    h1 = netlab.addr("h1")  # the manager runs no web task
    # From h1 itself, and from a client on the underlay (h2's namespace) to h1's address.
    for client in ("h1", "h2"):
        seen = netlab.answers(netlab.host_netns(client), h1, WEB_PORT, 6)
        assert set(seen) == expected, f"from {client} to {h1}:{WEB_PORT}: {seen}"


def test_the_underlay_carries_only_wireguard(netlab: NetLab, tmp_path: Path) -> None:
    """During routing-mesh and VIP traffic between hosts, the underlay shows only WireGuard.

    The clients are h1's own namespace (to h1's own address: that leg never touches the
    underlay) and the probe container on h1 (to web's VIP); both backends are on h2 and h3,
    so every byte of that traffic crosses the underlay. The only other IPv4 allowed there is
    the cluster's control plane (TCP to the manager's port 2377, mutual TLS).
    """
    probe = _probe(netlab)
    webs = _on_workers(netlab, "net_web")
    [vip] = netlab.vips("net_web")
    h1 = netlab.addr("h1")
    with netlab.capture(tmp_path / "underlay.pcap") as pcap:
        mesh = netlab.answers(netlab.host_netns("h1"), h1, WEB_PORT, 20)
        direct = netlab.answers(probe.netns, vip, 80, 20)
    assert set(mesh) == set(direct) == {w.hostname for w in webs}, (mesh, direct)

    frames = netlab.read_capture(pcap)
    lab_addrs = {h.addr for h in netlab.state.hosts} | {netlab.state.registry_addr}
    between_hosts = [f for f in frames if f.src in lab_addrs or f.dst in lab_addrs]
    wireguard = [
        f for f in between_hosts if f.proto == "udp" and f.sport == WG_PORT and f.dport == WG_PORT
    ]
    control = [
        f
        for f in between_hosts
        if f.proto == "tcp"
        and ((f.dst == h1 and f.dport == CLUSTER_PORT) or (f.src == h1 and f.sport == CLUSTER_PORT))
    ]
    other = [f for f in frames if f not in wireguard and f not in control]
    assert other == [], "\n".join(f.line for f in other[:20])
    # 40 HTTP exchanges went between hosts: at least that many WireGuard datagrams each way.
    assert len(wireguard) >= 80, len(wireguard)
    raw = pcap.read_bytes()
    for plain in (b"HTTP/1.", b"GET / ", *(w.hostname.encode() for w in webs)):
        assert plain not in raw, f"{plain!r} in plaintext on the underlay"


def test_routing_mesh_replies_go_only_to_the_host_that_forwarded_the_request(
    netlab: NetLab, tmp_path: Path
) -> None:
    """h1 forwards requests to its published port to the tasks on h2 and h3; the replies of
    h3's task go back to h1 alone. A reply the ingress network has no forwarding entry for
    would be flooded to every host, and h2 would see h3's traffic."""
    web2, web3 = _on_workers(netlab, "net_web")
    shown = netlab.docker_exec(web3, "ip -4 -o addr").stdout
    web3_addrs = set(re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", shown)) - {"127.0.0.1"}
    assert len(web3_addrs) >= 2, shown  # the stack's network and ingress
    h1 = netlab.addr("h1")
    with netlab.capture_on("h2", tmp_path / "h2.pcap") as pcap:
        seen = netlab.answers(netlab.host_netns("h1"), h1, WEB_PORT, 40)
    assert set(seen) == {web2.hostname, web3.hostname}, seen

    frames = netlab.read_capture(pcap)
    own = [f for f in frames if f.sport == 80 or f.dport == 80]
    assert own, "the capture on h2 holds none of h2's own HTTP traffic"
    strays = [f for f in frames if f.src in web3_addrs or f.dst in web3_addrs]
    assert strays == [], "\n".join(f.line for f in strays[:20])


def test_an_unhealthy_task_leaves_rotation_and_the_healthy_one_keeps_answering(
    netlab: NetLab,
) -> None:
    probe = _probe(netlab)
    flips = _on_workers(netlab, "net_flip")
    [vip] = netlab.vips("net_flip")
    h1 = netlab.addr("h1")
    names = {f.hostname for f in flips}
    netlab.wait(
        "both flip tasks healthy and in rotation",
        lambda: set(netlab.answers(netlab.host_netns("h1"), h1, FLIP_PORT, 4)) == names,
    )
    victim, survivor = flips

    with (
        Prober(netlab, netlab.host_netns("h1"), h1, FLIP_PORT) as published,
        Prober(netlab, probe.netns, vip, 80) as through_vip,
    ):
        probers = {"published port": published, "VIP": through_vip}
        netlab.wait(
            f"{victim.hostname} answering on both paths",
            lambda: all(victim.hostname in {h.body for h in p.hits} for p in probers.values()),
        )
        Path(f"/proc/{victim.pid}/root/tmp/ok").unlink()  # its next health check fails

        def out_of_rotation(prober: Prober) -> bool:
            last = _last(prober.hits)
            return last is not None and all(h.body != victim.hostname for h in last)

        # The deadline only bounds the wait (the health check runs every second).
        netlab.wait(
            f"{STEADY} answers in a row without {victim.hostname} on both paths",
            lambda: all(out_of_rotation(p) for p in probers.values()),
        )
        left = {what: len(p.hits) for what, p in probers.items()}
        netlab.wait(
            f"{STEADY} more answers on both paths",
            lambda: all(len(p.hits) >= left[what] + STEADY for what, p in probers.items()),
        )

    # Once out of rotation it stays out, and the healthy task answers every connection.
    for what, prober in probers.items():
        after = prober.hits[left[what] :]
        late = [h for h in after if h.body == victim.hostname]
        assert late == [], (
            f"{what}: the unhealthy task got new connections again after it had left the "
            f"rotation: {len(late)} of {len(after)}\n{netlab.logs()}"
        )
        errors = [h for h in after if h.body.startswith("error")]
        assert errors == [], f"{what}: the healthy task did not answer: {errors[:5]}"
        assert survivor.hostname in {h.body for h in after}, after


def test_stacks_on_separate_networks_cannot_reach_each_other(netlab: NetLab) -> None:
    probe = _probe(netlab)
    hidden = netlab.containers("other_hidden")
    assert {c.host for c in hidden} == {"h1", "h2", "h3"}, hidden
    route = netlab.docker_exec(probe, "ip route").stdout
    found = re.search(r"default via (\S+)", route)
    assert found, route
    dns = found.group(1)  # the node's DNS answers on the probe's network's gateway

    # The probe's DNS names its own stack's services, and not the other stack's.
    own = netlab.docker_exec(probe, f"nslookup web {dns}")
    assert own.returncode == 0 and _nslookup(own.stdout), own.stdout + own.stderr
    for name in ("hidden", "other_hidden"):
        other = netlab.docker_exec(probe, f"nslookup {name} {dns}")
        assert other.returncode != 0 and not _nslookup(other.stdout), other.stdout

    # The other stack's VIP and task addresses, as its own containers see them; they answer
    # there, and not from the probe.
    targets = set(netlab.vips("other_hidden"))
    for task in hidden:
        shown = netlab.docker_exec(task, "ip -4 -o addr show dev eth0")
        assert shown.returncode == 0, (task, shown.stdout, shown.stderr)
        addrs = shown.stdout
        targets |= set(re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", addrs))
    assert len(targets) == 4, targets  # the VIP and one address per task
    inside = hidden[0]
    for addr in sorted(targets):
        assert netlab.in_ns(inside.netns, lambda a=addr: netlab.http_get(a, 80, timeout=2.0)), addr

    def reached() -> list[str]:
        got = []
        for addr in sorted(targets):
            with contextlib.suppress(OSError):
                got.append(f"{addr}: {netlab.http_get(addr, 80, timeout=1.0)}")
        return got

    got = netlab.in_ns(probe.netns, reached)
    assert got == [], f"stack net (probe on h1) reached stack other: {got}"


def test_a_global_service_answers_through_its_vip_from_every_host(netlab: NetLab) -> None:
    everywhere = netlab.containers("other_everywhere")
    assert [c.host for c in everywhere] == ["h1", "h2", "h3"], everywhere
    [vip] = netlab.vips("other_everywhere")
    [client] = netlab.containers("other_hidden", hosts=("h1",))
    seen = netlab.answers(client.netns, vip, 80, 9)
    assert set(seen) == {c.hostname for c in everywhere}, (
        f"from {client.name} on h1 to other_everywhere's VIP {vip}: {seen}\n"
        + "\n".join(
            f"{c.host} {c.name}: " + netlab.docker_exec(c, "ip -4 -o addr").stdout
            for c in everywhere
        )
    )


def test_stacks_share_a_network_made_with_network_create(netlab: NetLab) -> None:
    """`network create shared`; stack b (client) and stack a (api) name it as external, and a
    also uses b's own network b_back. Names resolve across the stacks; a network in use is
    not removed, neither by `network rm` nor with the stack that made it."""
    made = netlab.cli("network", "create", "--subnet", "198.19.200.0/24", "shared").strip()
    row = f"{made[:12]} shared overlay swarm 198.19.200.0/24"
    listing = ("network", "ls", "--format", "{{.ID}} {{.Name}} {{.Driver}} {{.Scope}} {{.Subnet}}")
    netlab.wait("shared allocated", lambda: row in netlab.cli(*listing).splitlines())
    netlab.deploy(HERE / "shared-b.yml", "b")
    netlab.deploy(HERE / "shared-a.yml", "a")
    [client] = netlab.containers("b_client")
    [api] = netlab.containers("a_api")
    for name in ("api", "a_api"):
        got = netlab.docker_exec(
            client, r"printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 " + name + " 80 | tail -n 1"
        )
        assert got.stdout.strip() == api.hostname, (name, got.stdout, got.stderr)

    refused = netlab.cli_result("network", "rm", "shared")
    assert refused.returncode != 0
    assert "network shared is in use by service a_api, b_client" in refused.stderr, refused

    removed = netlab.cli_result("stack", "rm", "b")
    assert removed.returncode == 0, removed
    assert "Removing service b_client" in removed.stdout, removed
    assert "Keeping network b_back: in use by a_api" in removed.stderr, removed
    back = netlab.call(NETWORK_INSPECT, NameRef(ref="b_back"))
    assert back.services == ["a_api"], back

    netlab.cli("stack", "rm", "a")
    assert netlab.cli("network", "rm", "shared", "b_back").split() == ["shared", "b_back"]
    names = netlab.cli("network", "ls", "--format", "{{.Name}}").split()
    assert "shared" not in names and "b_back" not in names, names
    assert "ingress" in names and "net_default" in names, names


def test_the_published_port_keeps_answering_after_a_host_is_killed(netlab: NetLab) -> None:
    webs = _on_workers(netlab, "net_web")
    survivor, doomed = webs
    assert doomed.host == "h3"
    h1 = netlab.addr("h1")
    assert set(netlab.answers(netlab.host_netns("h1"), h1, WEB_PORT, 4)) == {
        w.hostname for w in webs
    }

    with Prober(netlab, netlab.host_netns("h1"), h1, WEB_PORT, period=0.2) as poll:
        killed, pids = netlab.kill_host("h3")

        def since_kill() -> list[Hit]:
            return [h for h in poll.hits if h.start >= killed]

        def answered_by_survivor() -> bool:
            last = _last(since_kill())
            return last is not None and all(h.body == survivor.hostname for h in last)

        # The deadline only bounds the wait; how soon the mesh recovers is not asserted.
        netlab.wait(
            f"{STEADY} polls in a row answered by {survivor.hostname} after h3 was killed",
            answered_by_survivor,
        )
        steady = len(poll.hits)
        netlab.wait(f"{STEADY} more polls", lambda: len(poll.hits) >= steady + STEADY)
    netlab.wait("every process of h3 gone", lambda: not [pid for pid in pids if _alive(pid)])

    # Once answered by h2's task alone, the published port stays so, without an error.
    after = poll.hits[steady:]
    timeline = ", ".join(f"{h.start - killed:.1f}:{h.body[:12]}" for h in since_kill())
    assert all(h.body == survivor.hostname for h in after), timeline


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
