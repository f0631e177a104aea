"""`--with-registry-auth` on a lab: a private registry with htpasswd auth and TLS.

One lab (h1 manager, h2 and h3 workers) and, in the lab's registry namespace, a second
``docker-registry`` on port 5443 that serves TLS (a CA made here with ``cryptography``,
trusted by each host's dockerd through its own ``/etc/docker/certs.d``, ``Host.docker_etc``:
no ``--insecure-registry``) and wants a user from an htpasswd file (bcrypt, by
apache2-utils' ``htpasswd``). The test image is pushed there with the right credentials.

Checked as a user would: a global stack deployed without ``--with-registry-auth`` fails on
every node, and ``service ps --no-trunc`` says it lacks credentials, naming the registry;
deployed again with a ``DOCKER_CONFIG`` that holds them, it runs on every node. A service
whose credentials come from a credential helper that answers a wrong password says they
were refused. The password is then found nowhere: not in ``service inspect`` (the CLI's,
or the Docker API's), not in any file under the lab (the managers' sealed data dirs, the
workers', every log), not in the events.

Marked `integration`; needs root, docker.io, docker-registry, busybox-static and
apache2-utils (scripts/setup installs them). Run it under the shared lock.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarmlite.api import Task, TaskState
from swarmlite.api.control import TaskFilter
from swarmlite.api.routes import TASK_LS
from swarmlite.lab import LabState, can_connect
from swarmlite.lab.procs import launch
from swarmlite.testing.dockerd import engine_request
from swarmlite.testing.labkit import Lab, lab_up

TIMEOUT = 150.0
PORT = 5443
USER = "deployer"
TAGS = ("1", "2", "3")  # one per test: a node that has an image never pulls it again
DOCKER = "/usr/local/bin/docker"  # the docker CLI 28.2.2 of the machine


# --------------------------------------------------------------------------- the registry


def _tls(directory: Path, address: str) -> Path:
    """A CA and the registry's certificate for ``address`` (an IP); the CA's path."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarmlite test registry CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "registry.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "registry.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return directory / "ca.crt"


@dataclass
class Private:
    """The authenticated registry: where it listens and who may pull."""

    lab: Lab
    address: str  # 198.18.X.250:5443
    password: str

    def image(self, tag: str) -> str:
        return f"{self.address}/private/web:{tag}"

    def auth_entry(self, password: str | None = None) -> str:
        return base64.b64encode(f"{USER}:{password or self.password}".encode()).decode()


def _start_registry(lab: LabState, directory: Path, password: str) -> int:
    if shutil.which("htpasswd") is None:
        pytest.fail("htpasswd is missing: apt-get install apache2-utils", pytrace=False)
    address = f"{lab.registry_addr}:{PORT}"
    ca = _tls(directory, lab.registry_addr)
    htpasswd = subprocess.run(
        ["htpasswd", "-Bbn", USER, password],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    (directory / "htpasswd").write_text(htpasswd)
    config = directory / "config.yml"
    config.write_text(
        "\n".join(
            [
                "version: 0.1",
                "log:",
                "  level: info",
                "storage:",
                "  filesystem:",
                f"    rootdirectory: {json.dumps(str(directory / 'data'))}",
                "http:",
                f"  addr: {json.dumps(address)}",
                "  tls:",
                f"    certificate: {json.dumps(str(directory / 'registry.crt'))}",
                f"    key: {json.dumps(str(directory / 'registry.key'))}",
                "auth:",
                "  htpasswd:",
                "    realm: swarmlite-test",
                f"    path: {json.dumps(str(directory / 'htpasswd'))}",
                "",
            ]
        )
    )
    pid = launch(
        ["docker-registry", "serve", str(config)],
        netns_name=lab.registry_netns,
        cgroup=None,
        log_path=directory / "registry.log",
    )
    deadline = time.monotonic() + 30
    while not can_connect(lab.registry_netns, lab.registry_addr, PORT):
        assert time.monotonic() < deadline, (directory / "registry.log").read_text()
        time.sleep(0.1)
    # Every host's dockerd trusts the registry's CA, as `docker` on a real node would.
    for host in lab.hosts:
        trusted = host.docker_certs_dir / address
        trusted.mkdir(parents=True, exist_ok=True)
        shutil.copy(ca, trusted / "ca.crt")
    return pid


def _push(lab: LabState, private: Private) -> None:
    """The test image, tagged and pushed from h1's dockerd with the right credentials."""
    h1 = lab.host("h1")
    source = f"{lab.registry}/swl/web:1"
    status, body = engine_request(
        h1.docker_socket, "POST", f"/images/create?{urlencode({'fromImage': source})}"
    )
    assert status == 200 and b'"error' not in body, body
    repo = f"{private.address}/private/web"
    header = base64.urlsafe_b64encode(
        json.dumps(
            {"username": USER, "password": private.password, "serveraddress": private.address}
        ).encode()
    ).decode()
    for tag in TAGS:
        query = urlencode({"repo": repo, "tag": tag})
        status, body = engine_request(
            h1.docker_socket, "POST", f"/images/{quote(source)}/tag?{query}"
        )
        assert status < 300, body
        status, body = engine_request(
            h1.docker_socket,
            "POST",
            f"/images/{quote(repo, safe='/:')}/push?tag={tag}",
            headers={"X-Registry-Auth": header},
            timeout=120.0,
        )
        assert status == 200 and b'"error' not in body, body
        # Gone again from h1, so that every node has to pull it.
        engine_request(h1.docker_socket, "DELETE", f"/images/{quote(private.image(tag), safe='')}")


@pytest.fixture(scope="module")
def private() -> Iterator[Private]:
    files = Path(tempfile.mkdtemp(prefix="swl-reg-"))
    try:
        with lab_up("--nodes", "3", "--managers", "1") as lab:
            password = "pw-" + secrets.token_hex(12)
            pid = _start_registry(lab.state, files, password)
            try:
                found = Private(
                    lab=lab, address=f"{lab.state.registry_addr}:{PORT}", password=password
                )
                _push(lab.state, found)
                yield found
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
    finally:
        shutil.rmtree(files, ignore_errors=True)


# --------------------------------------------------------------------------- helpers


def _tasks(private: Private, service: str) -> list[Task]:
    client = private.lab.control()
    return list(client.call(TASK_LS, TaskFilter(service=service)).tasks)


def _wait_for(what: str, check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _docker_config(directory: Path, config: dict[str, object]) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return {"DOCKER_CONFIG": str(directory)}


def _compose(path: Path, image: str) -> Path:
    path.write_text(f"services:\n  web:\n    image: {image}\n    deploy:\n      mode: global\n")
    return path


# --------------------------------------------------------------------------- tests


def test_a_stack_runs_on_every_node_only_with_the_users_credentials(
    private: Private, tmp_path: Path
) -> None:
    compose = _compose(tmp_path / "compose.yml", private.image("1"))
    private.lab.cli("stack", "deploy", "-d", "-c", str(compose), "priv")

    def rejected_everywhere() -> bool:
        failed = {
            t.node_id
            for t in _tasks(private, "priv_web")
            if t.status.state in (TaskState.REJECTED, TaskState.FAILED)
        }
        return len(failed) == 3

    _wait_for("a refused pull on each of the 3 nodes", rejected_everywhere)
    shown = private.lab.cli("service", "ps", "--no-trunc", "priv_web")
    expected = (
        f"pull access denied for registry {private.address}: no credentials "
        "(deploy with --with-registry-auth)"
    )
    assert expected in shown, shown

    env = _docker_config(
        tmp_path / "docker",
        {"auths": {private.address: {"auth": private.auth_entry()}}},
    )
    deployed = private.lab.cli_result(
        "stack",
        "deploy",
        "-d",
        "--with-registry-auth",
        "-c",
        str(compose),
        "priv",
        env=env,
    )
    assert deployed.returncode == 0, deployed.stderr
    assert "warning" not in deployed.stderr  # the config had credentials for the registry

    def running() -> set[str]:
        tasks = _tasks(private, "priv_web")
        return {t.node_id for t in tasks if t.status.state is TaskState.RUNNING}

    # The spec did not change: the rejected tasks' replacements (restart policy) pull with
    # the credentials.
    _wait_for("priv_web running on the 3 nodes", lambda: len(running()) == 3)


def test_credentials_a_registry_refuses_are_said_to_be_refused(
    private: Private, tmp_path: Path
) -> None:
    """Credentials from a credential helper (the real protocol: `get`, the server on
    stdin, JSON out), with a wrong password."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-test"
    answer = json.dumps({"ServerURL": private.address, "Username": USER, "Secret": "wrong"})
    helper.write_text(f"#!/bin/sh\nread server\ncat <<'EOF'\n{answer}\nEOF\n")
    helper.chmod(0o755)
    env = _docker_config(tmp_path / "docker", {"credsStore": "test"})
    env["PATH"] = f"{bin_dir}:{os.environ.get('PATH', '')}"
    private.lab.cli(
        "service",
        "create",
        "-d",
        "--with-registry-auth",
        "--name",
        "refused",
        private.image("2"),
        env=env,
    )
    expected = f"pull access denied for registry {private.address}: credentials refused"
    _wait_for(
        "the refused pull",
        lambda: expected in private.lab.cli("service", "ps", "--no-trunc", "refused"),
    )
    private.lab.cli("service", "rm", "refused")


def test_the_docker_cli_s_with_registry_auth_is_taken_as_dockerd_takes_it(
    private: Private, tmp_path: Path
) -> None:
    """The stock docker CLI on h1's swarmlite docker.sock, logged in by its config file:
    `docker service create --with-registry-auth` sends X-Registry-Auth, and the service
    runs on every node."""
    if not os.path.exists(DOCKER):
        pytest.fail(f"{DOCKER} (docker CLI 28.2.2) is missing on this machine", pytrace=False)
    env = _docker_config(
        tmp_path / "docker", {"auths": {private.address: {"auth": private.auth_entry()}}}
    )
    env["PATH"] = os.environ.get("PATH", "")
    env["DOCKER_HOST"] = f"unix://{Path(private.lab.state.host('h1').dir) / 'docker.sock'}"
    create = ["service", "create", "--detach", "--with-registry-auth", "--mode", "global"]
    done = subprocess.run(
        [DOCKER, *create, "--name", "viadocker", private.image("3")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    def running() -> int:
        tasks = _tasks(private, "viadocker")
        return len({t.node_id for t in tasks if t.status.state is TaskState.RUNNING})

    _wait_for("viadocker running on the 3 nodes", lambda: running() == 3)
    inspected = subprocess.run(
        [DOCKER, "service", "inspect", "viadocker"],
        capture_output=True,
        timeout=TIMEOUT,
        env=env,
        check=True,
    ).stdout
    assert private.password.encode() not in inspected
    assert private.auth_entry().encode() not in inspected


def test_the_password_is_found_nowhere(private: Private, tmp_path: Path) -> None:
    """After the tests above (the module's order): not in `service inspect`, the Docker
    API's view, any file of the lab (sealed raft logs, workers' dirs, every log), nor
    the events."""
    secret = private.password.encode()
    encoded = private.auth_entry().encode()
    inspect = private.lab.cli("service", "inspect", "priv_web")
    pretty = private.lab.cli("service", "inspect", "--pretty", "priv_web")
    h1 = private.lab.state.host("h1")
    docker_sock = Path(h1.dir) / "docker.sock"
    status, docker_view = engine_request(docker_sock, "GET", "/services/priv_web")
    assert status == 200, docker_view
    events = private.lab.cli("events", "--since", "0", "--until", str(int(time.time())))
    for shown in (inspect.encode(), pretty.encode(), docker_view, events.encode()):
        assert secret not in shown and encoded not in shown
    assert b"priv_web" in docker_view and b"RegistryAuth" not in docker_view
    found = []
    for root, _dirs, names in os.walk(private.lab.dir):
        for name in names:
            path = Path(root) / name
            if not path.is_file() or path.is_symlink():
                continue
            with contextlib.suppress(OSError):
                data = path.read_bytes()
                if secret in data or encoded in data:
                    found.append(str(path))
    assert not found, f"the password is in {found}"
