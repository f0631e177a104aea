"""Sealed state on a three-host lab: a secret reaches the tasks that use it, and nothing else.

A secret and a config with recognisable contents go to a global service (one task on
each of h1, the manager, and the workers h2 and h3). Each task sees the secret at
/run/secrets/<name> with the reference's mode and owner, on a tmpfs. Then every file of
the lab is read (each node's data dir, the tmpfs its agent keeps task files on, each
dockerd's data and exec roots, every log), and so are the machine's /run and each host's
own /run (its dockerd's private mount namespace): neither the secret's content nor the
cluster CA's private key may be found, while the tasks run and after `stack rm`.

The CA key is recognised by its public half (the CA certificate in h1's certs dir): any
PEM private key found whose public key is the CA's counts, however it is wrapped.

Marked `integration` (tests/integration/conftest.py). Needs root, docker.io,
docker-registry and busybox-static, as test_lab.py; about a minute.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from swarmlite.lab import LabState, load
from swarmlite.lab import down as lab_down

TIMEOUT = 120.0
BIGGEST = 64 << 20  # no file of a lab is bigger; anything bigger is not ours to read
STACK = "sealed"
PEM_KEY = re.compile(
    rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----(.{40,}?)-----END \1PRIVATE KEY-----", re.S
)


def swarmlite(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SWARMLITE_")}
    done = subprocess.run(
        [sys.executable, "-m", "swarmlite", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        input=stdin,
        env={**clean, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, (
        f"`swarmlite {' '.join(args)}` exited {done.returncode}\n"
        f"stdout: {done.stdout}\nstderr: {done.stderr}"
    )
    return done.stdout


@dataclass
class Lab:
    dir: Path
    state: LabState

    def cli(self, *args: str, stdin: str = "") -> str:
        host = self.state.host("h1").swarmlite_host
        return swarmlite("-H", host, *args, stdin=stdin, env={"REGISTRY": self.state.registry})

    def docker(self, host: str, *args: str) -> str:
        docker = shutil.which("docker")
        assert docker is not None, "the docker CLI is missing (apt-get install docker.io)"
        done = subprocess.run(
            [docker, "-H", self.state.host(host).docker_host, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{host}: docker {' '.join(args)}: {done.stderr}"
        return done.stdout

    def containers(self, host: str) -> list[str]:
        label = f"label=com.docker.stack.namespace={STACK}"
        return self.docker(host, "ps", "-aq", "--filter", label).split()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    directory = Path(tempfile.mkdtemp(prefix="swl-sealed-", dir="/tmp"))
    try:
        swarmlite("lab", "up", "--nodes", "3", "--managers", "1", "--dir", str(directory))
        state = load(directory)
        assert state is not None
        yield Lab(dir=directory, state=state)
    finally:
        with contextlib.suppress(Exception):
            lab_down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def _roots(lab: Lab) -> list[Path]:
    """Where a lab keeps anything: its dir (every host's data dir, task files, dockerd data
    and exec roots, logs), the machine's /run, and each host's own /run."""
    roots = [lab.dir, Path("/run")]
    for proc in lab.state.processes:
        if proc.what == "dockerd":
            roots.append(Path(f"/proc/{proc.pid}/root/run"))
    return roots


def _files(root: Path) -> Iterator[tuple[Path, bytes]]:
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            try:
                info = path.lstat()
                if not path.is_file() or path.is_symlink() or info.st_size > BIGGEST:
                    continue
                yield path, path.read_bytes()
            except OSError:  # gone meanwhile, a socket, an nsfs file: nothing to read
                continue


def _public(key: object) -> bytes:
    public = key.public_key()  # type: ignore[attr-defined]
    return bytes(
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _ca_keys_in(data: bytes, ca_public: bytes) -> int:
    found = 0
    for match in PEM_KEY.finditer(data):
        kind, body = match.group(1), match.group(2).replace(b"\\n", b"\n")
        pem = b"-----BEGIN " + kind + b"PRIVATE KEY-----" + body
        pem += b"-----END " + kind + b"PRIVATE KEY-----\n"
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            continue
        found += _public(key) == ca_public
    return found


def _leaks(lab: Lab, canary: bytes) -> list[str]:
    ca_cert = (lab.state.host("h1").swarmlite_dir / "certs" / "ca.crt").read_bytes()
    ca_public = bytes(
        x509.load_pem_x509_certificate(ca_cert)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    leaks: list[str] = []
    for root in _roots(lab):
        for path, data in _files(root):
            if canary in data:
                leaks.append(f"secret in {path}")
            if b"PRIVATE KEY" in data and _ca_keys_in(data, ca_public):
                leaks.append(f"CA key in {path}")
    return leaks


def _search_can_find(lab: Lab, canary: bytes) -> None:
    """The search is no vacuous pass: it finds a canary planted in a node's data dir and in
    a host's own /run, and recognises a node's private key by its certificate."""
    h2_run = next(p for p in _roots(lab) if str(p).startswith("/proc/"))
    planted = [lab.state.host("h3").swarmlite_dir / "planted", h2_run / "swl-planted"]
    try:
        for path in planted:
            path.write_bytes(b"..." + canary + b"...")
        assert sorted(_leaks(lab, canary)) == sorted(f"secret in {p}" for p in planted)
    finally:
        for path in planted:
            path.unlink(missing_ok=True)
    certs = lab.state.host("h2").swarmlite_dir / "certs"
    cert = x509.load_pem_x509_certificate((certs / "node.crt").read_bytes())
    public = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert _ca_keys_in((certs / "node.key").read_bytes(), public) == 1


def _wait(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.mark.timeout(300)  # a lab comes up first
def test_secrets_reach_only_their_tasks_and_are_gone_after_them(lab: Lab, tmp_path: Path) -> None:
    canary = f"S3CRET-CANARY-{secrets.token_hex(8)}"
    site = f"C0NFIG-CANARY-{secrets.token_hex(8)}"
    lab.cli("secret", "create", "canary", "-", stdin=canary)
    lab.cli("config", "create", "site", "-", stdin=site)
    compose = tmp_path / "sealed.yml"
    compose.write_text(
        "services:\n"
        "  probe:\n"
        "    image: ${REGISTRY}/swl/busybox:1\n"
        "    command: [sh, -c, \"trap 'exit 0' TERM; while :; do sleep 1; done\"]\n"
        "    deploy: {mode: global}\n"
        "    secrets:\n"
        "      - {source: canary, uid: '1000', gid: '1001', mode: 0400}\n"
        "    configs:\n"
        "      - {source: site, target: /etc/site.conf}\n"
        "secrets:\n"
        "  canary: {external: true}\n"
        "configs:\n"
        "  site: {external: true}\n"
    )
    lab.cli("stack", "deploy", "-c", str(compose), STACK)
    hosts = [h.name for h in lab.state.hosts]

    def running(host: str) -> list[str]:
        return lab.docker(
            host, "ps", "-q", "--filter", f"label=com.docker.stack.namespace={STACK}"
        ).split()

    _wait("a running task on every host", lambda: all(len(running(h)) == 1 for h in hosts))
    for host in hosts:
        [cid] = running(host)
        assert lab.docker(host, "exec", cid, "cat", "/run/secrets/canary") == canary
        shown = lab.docker(host, "exec", cid, "stat", "-c", "%a %u %g", "/run/secrets/canary")
        assert shown.split() == ["400", "1000", "1001"], host
        fs = lab.docker(host, "exec", cid, "stat", "-f", "-c", "%T", "/run/secrets/canary")
        assert fs.strip() == "tmpfs", host
        assert lab.docker(host, "exec", cid, "cat", "/etc/site.conf") == site
        # On the host, only the container's own mount holds it: the agent's tmpfs is empty.
        assert list((Path(lab.state.host(host).dir) / "files").iterdir()) == [], host

    _search_can_find(lab, canary.encode())
    running_leaks = _leaks(lab, canary.encode())
    lab.cli("stack", "rm", STACK)
    _wait("the stack's containers gone", lambda: all(not lab.containers(h) for h in hosts))
    removed_leaks = _leaks(lab, canary.encode())
    assert (running_leaks, removed_leaks) == ([], []), (
        f"while running: {running_leaks}\nafter stack rm: {removed_leaks}"
    )
