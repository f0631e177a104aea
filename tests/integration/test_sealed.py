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

The same again on a lab of three managers that a user autolocks (`swarm update
--autolock=true`): the search also looks for the unlock key (as `swarm unlock-key` shows
it, and its raw bytes). Then one manager's daemon dies (SIGKILL) and starts again as the
lab started it: it is locked (`node ls` on it says so and how to unlock), the two others
keep serving (a new service converges on them), a wrong key is refused, and the right one
brings it back: Ready and Reachable, answering `node ls`, scaling a service that converges.
Nothing of the key is on disk after that either.

Marked `integration` (tests/integration/conftest.py). Needs root, docker.io,
docker-registry and busybox-static, as test_lab.py; a few minutes (two labs).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from swarmlite.lab import restart_daemon
from swarmlite.testing import labkit

TIMEOUT = 120.0
BIGGEST = 64 << 20  # no file of a lab is bigger; anything bigger is not ours to read
STACK = "sealed"
SLEEPER = "trap 'exit 0' TERM; while :; do sleep 1; done"  # a task that stops at once
PEM_KEY = re.compile(
    rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----(.{40,}?)-----END \1PRIVATE KEY-----", re.S
)


class Lab(labkit.Lab):
    def nodes(self, on: str = "h1") -> dict[str, tuple[str, str]]:
        """`node ls` on `on`: hostname -> (Status, ManagerStatus)."""
        rows = [
            json.loads(line)
            for line in self.cli("node", "ls", "--format", "json", on=on).splitlines()
        ]
        return {r["Hostname"]: (r["Status"], r["ManagerStatus"]) for r in rows}

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


def _lab_up(managers: int) -> contextlib.AbstractContextManager[Lab]:
    """A 3-host lab with `managers` managers, torn down afterwards whatever happened."""
    return labkit.lab_up(
        "--nodes", "3", "--managers", str(managers), prefix="swl-sealed-", kind=Lab
    )


@pytest.fixture
def lab() -> Iterator[Lab]:
    """h1 a manager, h2 and h3 workers."""
    with _lab_up(managers=1) as made:
        yield made


@pytest.fixture
def managers_lab() -> Iterator[Lab]:
    """Three managers: one can be down (locked) while the other two keep a quorum."""
    with _lab_up(managers=3) as made:
        yield made


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


def _leaks(lab: Lab, needles: Mapping[str, bytes]) -> list[str]:
    """'<what> in <path>' for each needle (what -> bytes) and the CA key found anywhere."""
    ca_cert = (lab.state.host("h1").swarmlite_dir / "certs" / "ca.crt").read_bytes()
    ca_public = bytes(
        x509.load_pem_x509_certificate(ca_cert)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    leaks: list[str] = []
    for root in _roots(lab):
        for path, data in _files(root):
            leaks += [f"{what} in {path}" for what, needle in needles.items() if needle in data]
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
        assert sorted(_leaks(lab, {"secret": canary})) == sorted(f"secret in {p}" for p in planted)
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


def _deploy(lab: Lab, tmp_path: Path) -> dict[str, bytes]:
    """A secret and a config with recognisable contents, a global stack that uses them,
    each task checked to see them; the contents, to search for."""
    canary = f"S3CRET-CANARY-{secrets.token_hex(8)}"
    site = f"C0NFIG-CANARY-{secrets.token_hex(8)}"
    lab.cli("secret", "create", "canary", "-", stdin=canary)
    lab.cli("config", "create", "site", "-", stdin=site)
    compose = tmp_path / "sealed.yml"
    compose.write_text(
        "services:\n"
        "  probe:\n"
        "    image: ${REGISTRY}/swl/busybox:1\n"
        f"    command: [sh, -c, {json.dumps(SLEEPER)}]\n"
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
    return {"secret": canary.encode(), "config": site.encode()}


def _remove_stack(lab: Lab) -> None:
    lab.cli("stack", "rm", STACK)
    hosts = [h.name for h in lab.state.hosts]
    _wait("the stack's containers gone", lambda: all(not lab.containers(h) for h in hosts))


@pytest.mark.timeout(300)  # a lab comes up first
def test_secrets_reach_only_their_tasks_and_are_gone_after_them(lab: Lab, tmp_path: Path) -> None:
    needles = _deploy(lab, tmp_path)
    _search_can_find(lab, needles["secret"])
    running_leaks = _leaks(lab, needles)
    _remove_stack(lab)
    removed_leaks = _leaks(lab, needles)
    assert (running_leaks, removed_leaks) == ([], []), (
        f"while running: {running_leaks}\nafter stack rm: {removed_leaks}"
    )


def _unlock_key(lab: Lab) -> dict[str, bytes]:
    """The cluster's unlock key, as `swarm unlock-key -q` shows it and as its raw bytes."""
    key = lab.cli("swarm", "unlock-key", "-q").strip()
    assert key.startswith("SWLKEY-1-"), key
    body = key.removeprefix("SWLKEY-1-")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert len(raw) == 32, key
    return {"unlock key": key.encode(), "unlock key (raw)": raw}


def _kill_daemon(lab: Lab, name: str) -> None:
    """SIGKILL host `name`'s swarmlite daemon, by the pid in its pid file once that pid is
    seen to be the daemon of its data dir, and wait until it is gone. Its dockerd and
    containers keep running."""
    data_dir = lab.state.host(name).swarmlite_dir
    pid = int((data_dir / "swarmlite.pid").read_text().strip())
    fd = os.pidfd_open(pid)  # held from the check to the kill: the pid cannot be reused
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert os.fsencode(str(data_dir)) in cmdline, f"pid {pid} is not {name}'s daemon"
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        exited, _, _ = select.select([fd], [], [], TIMEOUT)
        assert exited, f"{name}'s daemon (pid {pid}) outlived SIGKILL"
    finally:
        os.close(fd)


def _running(lab: Lab, service: str, on: str = "h1") -> list[str]:
    """The hosts of `service`'s running tasks, as `service ps` on `on` shows them."""
    out = lab.cli("service", "ps", service, "--format", "json", on=on)
    rows = [json.loads(line) for line in out.splitlines()]
    return sorted(r["Node"] for r in rows if r["CurrentState"].startswith("Running"))


@pytest.mark.timeout(600)  # a lab comes up first
def test_an_autolocked_lab_keeps_its_key_off_disk_and_a_restarted_manager_waits_for_it(
    managers_lab: Lab, tmp_path: Path
) -> None:
    lab = managers_lab
    lab.cli("swarm", "update", "--autolock=true")
    needles = _unlock_key(lab)
    # Each manager drops the key it kept beside its raft data once autolock reaches it:
    # only then does a restart need the unlock key.
    keks = [h.swarmlite_dir / "raft" / "kek" for h in lab.state.hosts]
    _wait("every manager to drop its key file", lambda: not any(k.exists() for k in keks))
    needles |= _deploy(lab, tmp_path)
    _search_can_find(lab, needles["secret"])
    running_leaks = _leaks(lab, needles)

    # The leader restarts: the cluster must also elect another while it is locked.
    [victim] = [name for name, (_, manager) in lab.nodes().items() if manager == "Leader"]
    others = sorted({h.name for h in lab.state.hosts} - {victim})
    observer = others[0]
    _kill_daemon(lab, victim)
    _, state = restart_daemon(lab.dir, victim)
    assert state == "locked"
    refused = lab.cli_result("node", "ls", on=victim)
    assert refused.returncode == 1, refused.stdout
    assert "this manager is locked" in refused.stderr, refused.stderr
    assert "swarmlite swarm unlock" in refused.stderr, refused.stderr
    # Meanwhile the two other managers keep the cluster: they see the locked one gone and
    # run a new service (the CLI waits until it converges).
    _wait(
        f"{victim} Down and Unreachable",
        lambda: lab.nodes(on=observer)[victim] == ("Down", "Unreachable"),
    )
    image = f"{lab.state.registry}/swl/busybox:1"
    create = ["--name", "during", "--replicas", "2", image, "sh", "-c", SLEEPER]
    lab.cli("service", "create", *create, on=observer)
    assert _running(lab, "during", on=observer) == others

    wrong = lab.cli_result("swarm", "unlock", on=victim, stdin="SWLKEY-1-" + "A" * 43 + "\n")
    assert wrong.returncode == 1, wrong.stdout
    assert "the unlock key is wrong" in wrong.stderr, wrong.stderr
    still = lab.cli_result("node", "ls", on=victim)
    assert still.returncode == 1 and "this manager is locked" in still.stderr, still.stderr
    lab.cli("swarm", "unlock", on=victim, stdin=needles["unlock key"].decode() + "\n")
    _wait(
        f"{victim} Ready and a manager again",
        lambda: lab.nodes(on=observer)[victim] in (("Ready", "Reachable"), ("Ready", "Leader")),
    )
    assert set(lab.nodes(on=victim)) == {"h1", "h2", "h3"}
    lab.cli("service", "scale", "during=3", on=victim)
    assert len(_running(lab, "during", on=victim)) == 3
    unlocked_leaks = _leaks(lab, needles)

    lab.cli("service", "rm", "during", on=observer)
    _remove_stack(lab)
    removed_leaks = _leaks(lab, needles)
    assert (running_leaks, unlocked_leaks, removed_leaks) == ([], [], []), (
        f"while running: {running_leaks}\nafter unlock: {unlocked_leaks}\n"
        f"after stack rm: {removed_leaks}"
    )
