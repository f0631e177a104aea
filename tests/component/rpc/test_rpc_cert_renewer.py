"""A node's CertRenewer renews its certificate with a manager over real mutual TLS."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from swarmlite.api.control import RenewReply, RenewRequest
from swarmlite.api.routes import CA_RENEW
from swarmlite.api.states import NodeRole
from swarmlite.ca import CertRenewer, cert_info, read_credentials, sign_csr, write_credentials
from swarmlite.errors import Unavailable
from swarmlite.rpc import Peer, RpcServer
from swarmlite.testing.clock import FakeClock


def free_address() -> str:
    """A loopback address nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
async def manager_addr(cluster, start_server) -> str:
    """A manager that renews every certificate as a manager's (a promotion)."""
    server = RpcServer(cluster.server_context("manager-1"), cluster_id=cluster.cluster_id)

    async def renew(request: RenewRequest, peer: Peer) -> RenewReply:
        assert peer.identity is not None
        cert_pem = sign_csr(
            cluster.ca, request.csr_pem, peer.identity.node_id, "manager", cluster.cluster_id
        )
        return RenewReply(cert_pem=cert_pem, role=NodeRole.MANAGER)

    server.add_route(CA_RENEW, renew)
    return (await start_server(server)).removeprefix("https://")


@pytest.fixture
def certs_dir(cluster, tmp_path: Path) -> Path:
    path = tmp_path / "certs"
    write_credentials(path, cluster.creds("node-1", "worker"))
    return path


async def test_renewal_writes_the_new_certificate_and_uses_it(certs_dir, manager_addr) -> None:
    renewer = CertRenewer(certs_dir, lambda: [free_address(), manager_addr], FakeClock())
    before, client = renewer.creds, renewer.client_ssl()
    made_before = client.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO()).context

    await renewer.renew(None)  # the first manager is down; the second answers

    info = cert_info(renewer.creds.cert_pem)
    assert (info.node_id, info.role) == ("node-1", "manager")
    assert renewer.creds.key_pem == before.key_pem
    assert read_credentials(certs_dir) == renewer.creds
    # The same live context: its new connections are made with the new certificate.
    assert renewer.client_ssl() is client
    assert client.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO()).context is not made_before


async def test_renewal_asks_the_given_manager_first(certs_dir, manager_addr) -> None:
    renewer = CertRenewer(certs_dir, lambda: [], FakeClock())
    await renewer.renew(manager_addr)
    assert cert_info(renewer.creds.cert_pem).role == "manager"


async def test_without_a_manager_that_answers_the_certificate_stays(certs_dir) -> None:
    renewer = CertRenewer(certs_dir, lambda: [], FakeClock())
    with pytest.raises(Unavailable, match="no manager to renew the certificate with"):
        await renewer.renew(None)
    renewer = CertRenewer(certs_dir, lambda: [free_address()], FakeClock())
    before = renewer.creds
    with pytest.raises(Unavailable):
        await renewer.renew(None)
    assert read_credentials(certs_dir) == before == renewer.creds
