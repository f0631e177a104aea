"""Root CA rotation on a running three-host lab, and revocation by `node rm`.

A lab of its own (h1 and h2 managers, h3 a worker) runs a stack that publishes a port. A
client inside h3's namespace polls it through the routing mesh (each host's address in
turn) every 50 ms while `swarm ca --rotate` runs to its end; no request may fail and no
task may be replaced. At the end every node's certificate file chains to the new root and
not the old, no node's trust file holds the old root, and `node ls` works from every
manager. Then h3 is removed (`node rm --force`): its certificate is refused at once by
every manager, with the reason.

Marked `integration` (tests/integration/conftest.py). Needs root, docker.io,
docker-registry and busybox-static, as test_lab.py; about a minute and a half.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from swarmlite.api import TaskState
from swarmlite.api.control import CARequest, ListRequest, TaskFilter
from swarmlite.api.routes import NODE_LS, SWARM_CA, TASK_LS
from swarmlite.ca import read_credentials, write_credentials
from swarmlite.ca.rotation import issued_by, split_pems
from swarmlite.lab import in_netns
from swarmlite.testing import labkit

TIMEOUT = 150.0
STACK = "rot"
PORT = 8093
POLL = 0.05  # seconds between the client's requests


class Lab(labkit.Lab):
    def certs(self, host: str) -> Path:
        return self.state.host(host).swarmlite_dir / "certs"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with labkit.lab_up("--nodes", "3", "--managers", "2", prefix="swl-rot-", kind=Lab) as made:
        yield made


class Poller:
    """GETs through the routing mesh from inside a host's namespace, every POLL seconds,
    to each of ``addrs`` in turn, until stopped; keeps every failure."""

    def __init__(self, netns: str, addrs: list[str]) -> None:
        self.netns = netns
        self.addrs = addrs
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: in_netns(netns, self._run), daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            addr = self.addrs[self.sent % len(self.addrs)]
            self.sent += 1
            try:
                with socket.create_connection((addr, PORT), 2) as conn:
                    conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    answer = conn.recv(64)
                if not answer.startswith(b"HTTP/1."):
                    self.failures.append(f"{addr}: answered {answer!r}")
            except OSError as exc:
                self.failures.append(f"{addr}: {exc!r}")
            self._stop.wait(POLL)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _running(lab: Lab) -> set[str]:
    tasks = lab.control("h1").call(TASK_LS, TaskFilter(service=f"{STACK}_web")).tasks
    return {t.id for t in tasks if t.status.state is TaskState.RUNNING}


def _wait(what: str, check: Callable[[], object], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _settled(lab: Lab, new_root: bytes) -> list[str]:
    """What still keeps a host from having only the new root (empty: every host is done)."""
    left = []
    for host in lab.state.hosts:
        creds = read_credentials(lab.certs(host.name))
        if split_pems(creds.ca_cert_pem) != [new_root]:
            left.append(f"{host.name} trusts {len(split_pems(creds.ca_cert_pem))} roots")
        chain = split_pems(creds.cert_pem)
        if len(chain) != 1 or not issued_by(chain[0], new_root):
            left.append(f"{host.name} presents {len(chain)} certificates")
    return left


def test_rotation_under_load_then_revocation(lab: Lab, tmp_path: Path) -> None:
    compose = tmp_path / "rot.yml"
    compose.write_text(
        "services:\n  web:\n    image: ${REGISTRY}/swl/web:1\n"
        f"    ports: ['{PORT}:80']\n    deploy: {{replicas: 2}}\n"
    )
    lab.cli("stack", "deploy", "-c", str(compose), STACK)
    _wait("2 running tasks", lambda: len(_running(lab)) == 2)
    before = _running(lab)
    old_root = read_credentials(lab.certs("h1")).ca_cert_pem
    assert len(split_pems(old_root)) == 1
    h3 = lab.state.host("h3")

    # Every host answers before the rotation starts (the mesh has converged).
    addrs = [host.addr for host in lab.state.hosts]
    _wait("every host to answer", lambda: in_netns(h3.netns, lambda: _all_answer(addrs)), 60)

    started = time.monotonic()
    with Poller(h3.netns, addrs) as client:
        new_root = lab.cli("swarm", "ca", "--rotate").encode()
        _wait("every node to hold the new root only", lambda: not _settled(lab, new_root), 60)
        time.sleep(1)  # and keep polling a moment after the end
    took = time.monotonic() - started

    assert client.failures == [], f"{len(client.failures)} of {client.sent} requests failed"
    assert client.sent > 20, client.sent
    assert _running(lab) == before  # no task was replaced
    assert new_root != old_root
    view = lab.control("h2").call(SWARM_CA, CARequest())
    assert not view.rotating and view.cert_pem == new_root
    x509.load_pem_x509_certificate(new_root)
    for host in lab.state.hosts:
        creds = read_credentials(lab.certs(host.name))
        assert old_root not in creds.ca_cert_pem, host.name
        assert not issued_by(creds.cert_pem, old_root), host.name
        assert issued_by(creds.cert_pem, new_root), host.name
    for manager in ("h1", "h2"):
        nodes = lab.control(manager).call(NODE_LS, ListRequest()).nodes
        assert sorted(n.node.status.hostname for n in nodes) == ["h1", "h2", "h3"]
        assert all(n.node.status.state.value == "ready" for n in nodes), nodes
    print(f"rotation took {took:.1f}s, {client.sent} requests, none failed")

    # Revocation: once `node rm` returns, every manager refuses h3's certificate, as the
    # CLI on h3 shows when it calls them with it.
    certs = tmp_path / "h3-certs"
    write_credentials(certs, read_credentials(lab.certs("h3")))
    lab.cli("node", "rm", "--force", "h3")
    for manager in ("h1", "h2"):
        address = lab.state.host(manager).cluster_addr
        done = subprocess.run(
            [sys.executable, "-m", "swarmlite", "lab", "exec", "--dir", str(lab.dir), "h3",
             "--", sys.executable, "-m", "swarmlite", "-H", f"https://{address}",
             "--cert-dir", str(certs), "node", "ls"],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        assert done.returncode != 0, f"{manager} accepted the removed node: {done.stdout}"
        assert "removed" in done.stderr, f"{manager}: {done.stderr}"


def _all_answer(addrs: list[str]) -> bool:
    for addr in addrs:
        try:
            with socket.create_connection((addr, PORT), 2) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                if not conn.recv(64).startswith(b"HTTP/1."):
                    return False
        except OSError:
            return False
    return True
