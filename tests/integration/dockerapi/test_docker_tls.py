"""The Docker Engine API on TCP with TLS, as `dockerd --tlsverify` serves it: a manager of the
harness's `small_cluster` restarted with `swarmlite daemon --docker-api-addr ...
--docker-api-tls-cert/key/ca`, certificates made here with `cryptography`, and the real
docker CLIs with `--tlsverify`. A client without a certificate, or with one from another CA,
is refused during the handshake. Marked `integration` (tests/integration/conftest.py).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Cluster = Any  # conftest.Cluster, through the `small_cluster` fixture

CLIS = ("/usr/local/bin/docker", "/usr/bin/docker")
TIMEOUT = 60.0


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _issue(
    subject: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    usage: x509.ObjectIdentifier | None = None,
    ip: str | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer[0].subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ip is not None:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.crt; server.crt/key for 127.0.0.1; client.crt/key from the CA; rogue.crt/key from
    another CA."""
    root = tmp_path_factory.mktemp("tls")
    ca = _issue("docker-api-ca", None)
    _write(root / "ca", *ca)
    _write(
        root / "server",
        *_issue("server", ca, usage=ExtendedKeyUsageOID.SERVER_AUTH, ip="127.0.0.1"),
    )
    _write(root / "client", *_issue("client", ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH))
    other = _issue("other-ca", None)
    _write(root / "rogue", *_issue("rogue", other, usage=ExtendedKeyUsageOID.CLIENT_AUTH))
    return root


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def tls_port(small_cluster: Cluster, certs: Path) -> int:
    """m2 restarted with the Docker API on TCP+TLS; its port."""
    m2 = small_cluster.nodes["m2"]
    small_cluster.kill(m2)
    port = _free_port()
    argv = [sys.executable, "-m", "swarmlite", "daemon", "--data-dir", str(m2.data_dir)]
    argv += ["--docker-api-addr", f"127.0.0.1:{port}"]
    argv += ["--docker-api-tls-cert", str(certs / "server.crt")]
    argv += ["--docker-api-tls-key", str(certs / "server.key")]
    argv += ["--docker-api-tls-ca", str(certs / "ca.crt")]
    with open(m2.log, "ab") as log:
        m2.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=small_cluster.env("m2"),
            start_new_session=True,
        )
    small_cluster.pids.add(m2.proc.pid)
    small_cluster.heal()

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    small_cluster.wait(f"the Docker API on 127.0.0.1:{port}", listening)
    return port


def _docker(binary: str, port: int, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    environ["DOCKER_CONFIG"] = str(tmp)
    return subprocess.run(
        [binary, "-H", f"tcp://127.0.0.1:{port}", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environ,
        check=False,
    )


@pytest.mark.parametrize("binary", CLIS)
def test_tls_with_a_client_certificate(
    binary: str, tls_port: int, certs: Path, tmp_path: Path
) -> None:
    if shutil.which(binary) is None:
        pytest.fail(f"{binary} is not installed; scripts/setup installs it", pytrace=False)
    tls = ["--tlsverify", "--tlscacert", str(certs / "ca.crt")]
    mine = [*tls, "--tlscert", str(certs / "client.crt"), "--tlskey", str(certs / "client.key")]
    done = _docker(binary, tls_port, *mine, "node", "ls", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [row.split() for row in done.stdout.splitlines()[1:]]
    assert len(rows) == 3
    assert [row[2] for row in rows if row[1] == "*"] == ["m2"]  # the node answering

    started = time.monotonic()
    bare = _docker(binary, tls_port, *tls, "version", tmp=tmp_path)
    assert bare.returncode == 1
    assert "Server:" not in bare.stdout
    # TLS 1.3: the server's refusal arrives as a reset or a TLS alert, depending on timing.
    refusal = ("error during connect", "tls", "certificate", "connection reset")
    assert any(word in bare.stderr.lower() for word in refusal), bare.stderr
    rogue = [*tls, "--tlscert", str(certs / "rogue.crt"), "--tlskey", str(certs / "rogue.key")]
    refused = _docker(binary, tls_port, *rogue, "version", tmp=tmp_path)
    assert refused.returncode == 1
    assert "Server:" not in refused.stdout
    assert any(word in refused.stderr.lower() for word in refusal), refused.stderr
    assert time.monotonic() - started < TIMEOUT


def test_tcp_needs_the_tls_files(small_cluster: Cluster) -> None:
    m1 = small_cluster.nodes["m1"]
    done = small_cluster.cli(
        "daemon", "--data-dir", str(m1.data_dir), "--docker-api-addr", "127.0.0.1:1"
    )
    assert done.returncode == 2
    assert "--docker-api-addr needs --docker-api-tls-cert" in done.stderr
