"""Public paths: a joiner without a certificate reaches them and nothing else; roles; revocation."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import aiohttp
import msgspec
import pytest

from swarmlite.api.control import CA_RENEW, JOIN_CA, CAReply, Empty, RenewReply, RenewRequest
from swarmlite.api.states import NodeRole
from swarmlite.ca import (
    Identity,
    anonymous_client_context,
    client_context,
    csr_for_key,
    server_context,
    sign_csr,
)
from swarmlite.errors import InvalidArgument, PermissionDenied, Unavailable
from swarmlite.rpc import MSGPACK, Peer, RpcServer, ServerStream
from swarmlite.rpc.server import require_role

PRIVATE = "/private"
PUBLIC_STREAM = "/public-stream"
PRIVATE_STREAM = "/private-stream"


class Who(msgspec.Struct, frozen=True, kw_only=True):
    node: str | None
    local: bool


async def who(request: Empty, peer: Peer) -> Who:
    return Who(node=peer.identity.node_id if peer.identity else None, local=peer.local)


async def managers_only(request: Empty, peer: Peer) -> Who:
    require_role(peer, "manager")
    return await who(request, peer)


async def stream_who(stream: ServerStream, peer: Peer) -> None:
    await stream.send(msgspec.msgpack.encode(peer.identity.node_id if peer.identity else None))


class Revocations:
    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.asked: list[str] = []

    def authorize(self, identity: Identity) -> None:
        self.asked.append(identity.node_id)
        if identity.node_id in self.revoked:
            raise PermissionDenied(f"node {identity.node_id} has been removed from the cluster")


def make_server(cluster, revocations: Revocations | None = None) -> RpcServer:
    ca = cluster.ca
    server = RpcServer(
        server_context(cluster.creds("manager-1"), require_client_cert=False),
        cluster_id=cluster.cluster_id,
        public_paths=frozenset({JOIN_CA, PUBLIC_STREAM}),
        authorize=revocations.authorize if revocations else None,
    )

    async def ca_cert(request: Empty, peer: Peer) -> CAReply:
        return CAReply(cert_pem=ca.cert_pem)

    async def renew(request: RenewRequest, peer: Peer) -> RenewReply:
        assert peer.identity is not None
        role = peer.identity.role
        cert_pem = sign_csr(ca, request.csr_pem, peer.identity.node_id, role, cluster.cluster_id)
        return RenewReply(cert_pem=cert_pem, role=NodeRole(role))

    server.add_unary(JOIN_CA, Empty, ca_cert)
    server.add_unary(CA_RENEW, RenewRequest, renew)
    server.add_unary(PRIVATE, Empty, who)
    server.add_unary("/managers-only", Empty, managers_only)
    server.add_stream(PUBLIC_STREAM, stream_who)
    server.add_stream(PRIVATE_STREAM, stream_who)
    return server


async def refusal_logged(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    for _ in range(200):
        found = [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING and text in r.getMessage()
        ]
        if found:
            return found
        await asyncio.sleep(0.01)
    return []


async def test_public_path_works_without_a_client_certificate(
    cluster, start_server, open_client
) -> None:
    url = await start_server(make_server(cluster))
    joiner = open_client(url, anonymous_client_context(cluster.ca.cert_pem))

    reply = await joiner.call(JOIN_CA, Empty(), CAReply)
    stream = await joiner.open_stream(PUBLIC_STREAM)
    frame = await stream.recv()
    await stream.close()

    assert reply.cert_pem == cluster.ca.cert_pem
    assert frame is not None and msgspec.msgpack.decode(frame) is None  # Peer(identity=None)


async def test_private_path_without_a_certificate_is_refused_with_403(
    cluster, start_server, open_client, caplog
) -> None:
    url = await start_server(make_server(cluster))
    joiner = open_client(url, anonymous_client_context(cluster.ca.cert_pem))

    with caplog.at_level(logging.WARNING, logger="swarmlite.rpc"):
        with pytest.raises(PermissionDenied) as caught:
            await joiner.call(PRIVATE, Empty(), Who)
        with pytest.raises(PermissionDenied) as stream_refusal:
            await joiner.open_stream(PRIVATE_STREAM)
        # the raw status is 403, for whoever looks with curl
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=anonymous_client_context(None))
            ) as session,
            session.post(
                url + CA_RENEW,
                data=msgspec.msgpack.encode(Empty()),
                headers={"Content-Type": MSGPACK},
            ) as response,
        ):
            status = response.status

    assert caught.value.message == "a client certificate of this cluster is required"
    assert "client certificate" in stream_refusal.value.message
    assert status == 403
    records = await refusal_logged(caplog, "a client certificate of this cluster is required")
    assert records and "path=/private" in records[0] and "peer=127.0.0.1:" in records[0]


async def test_private_path_works_with_a_certificate_on_the_same_server(
    cluster, start_server, open_client
) -> None:
    url = await start_server(make_server(cluster))
    node = open_client(url, cluster.client_context("worker-1", "worker"))

    reply = await node.call(PRIVATE, Empty(), Who)
    on_public = await node.call(JOIN_CA, Empty(), CAReply)

    assert reply == Who(node="worker-1", local=False)
    assert on_public.cert_pem == cluster.ca.cert_pem


def presenting_without_verifying(creds, tmp_path: Path) -> ssl.SSLContext:
    """A client that shows ``creds`` but trusts any server: only the server can refuse it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    (tmp_path / "c.crt").write_bytes(creds.cert_pem)
    (tmp_path / "c.key").write_bytes(creds.key_pem)
    context.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    return context


async def test_a_certificate_from_another_ca_fails_even_on_a_public_path(
    cluster, other_ca, start_server, open_client, caplog, tmp_path
) -> None:
    url = await start_server(make_server(cluster))
    stranger = open_client(url, presenting_without_verifying(other_ca.creds("m9"), tmp_path))

    with (
        caplog.at_level(logging.WARNING, logger="swarmlite.rpc"),
        pytest.raises((PermissionDenied, Unavailable)),
    ):
        await stranger.call(JOIN_CA, Empty(), CAReply)

    records = await refusal_logged(caplog, "TLS handshake failed")
    assert records and "peer=127.0.0.1:" in records[0]


async def test_a_revoked_nodes_renewal_is_refused(
    cluster, start_server, open_client, caplog
) -> None:
    revocations = Revocations()
    url = await start_server(make_server(cluster, revocations))
    creds = cluster.creds("worker-7", "worker")
    node = open_client(url, client_context(creds))
    renewed = await node.call(
        CA_RENEW, RenewRequest(csr_pem=csr_for_key(creds.key_pem)), RenewReply
    )

    revocations.revoked.add("worker-7")
    with caplog.at_level(logging.WARNING, logger="swarmlite.rpc"):
        with pytest.raises(PermissionDenied, match="worker-7 has been removed"):
            await node.call(CA_RENEW, RenewRequest(csr_pem=csr_for_key(creds.key_pem)), RenewReply)
        # presenting its certificate on a public path does not get it past the revocation
        with pytest.raises(PermissionDenied, match="worker-7 has been removed"):
            await node.call(JOIN_CA, Empty(), CAReply)

    assert renewed.role is NodeRole.WORKER
    records = await refusal_logged(caplog, "has been removed")
    assert records and f"path={CA_RENEW}" in records[0]


async def test_authorize_is_not_asked_about_a_caller_without_a_certificate(
    cluster, start_server, open_client
) -> None:
    revocations = Revocations()
    url = await start_server(make_server(cluster, revocations))

    await open_client(url, anonymous_client_context(cluster.ca.cert_pem)).call(
        JOIN_CA, Empty(), CAReply
    )
    await open_client(url, cluster.client_context("manager-2")).call(JOIN_CA, Empty(), CAReply)

    assert revocations.asked == ["manager-2"]


async def test_another_cluster_on_a_public_path_is_refused(
    cluster, start_server, open_client
) -> None:
    url = await start_server(make_server(cluster))
    foreign = client_context(cluster.creds("m5", cluster_id="cluster-b"))

    with pytest.raises(PermissionDenied, match="belongs to cluster cluster-b"):
        await open_client(url, foreign).call(JOIN_CA, Empty(), CAReply)


async def test_public_paths_need_a_context_that_accepts_clients_without_certificates(
    cluster,
) -> None:
    with pytest.raises(InvalidArgument, match="without a certificate") as caught:
        RpcServer(cluster.server_context(), public_paths=frozenset({JOIN_CA}))

    assert caught.value.hint and "require_client_cert=False" in caught.value.hint


# --------------------------------------------------------------------------- roles


def test_require_role_names_the_node_and_its_role() -> None:
    worker = Peer(identity=Identity(node_id="w1", role="worker", cluster_id="c"), address="a:1")
    manager = Peer(identity=Identity(node_id="m1", role="manager", cluster_id="c"), address="a:2")

    require_role(manager, "manager")
    require_role(worker, "manager", "worker")
    with pytest.raises(PermissionDenied) as caught:
        require_role(worker, "manager")

    assert caught.value.message == "this call needs a manager certificate; w1 is a worker"
    assert caught.value.details == {"node": "w1"}


def test_require_role_lets_the_local_admin_pass_and_refuses_the_anonymous() -> None:
    require_role(Peer(identity=None, address="local", local=True), "manager")

    with pytest.raises(PermissionDenied, match="the caller presented none"):
        require_role(Peer(identity=None, address="127.0.0.1:5"), "manager")


async def test_require_role_over_the_wire(cluster, start_server, open_client, tmp_path) -> None:
    server = make_server(cluster)
    url = await start_server(server)
    path = str(tmp_path / "s.sock")
    await server.start_unix(path)  # stopped with the server by the fixture
    local = open_client("http://localhost", None, unix_socket=path)

    as_manager = await open_client(url, cluster.client_context("manager-2")).call(
        "/managers-only", Empty(), Who
    )
    as_admin = await local.call("/managers-only", Empty(), Who)
    with pytest.raises(PermissionDenied, match="worker-3 is a worker"):
        await open_client(url, cluster.client_context("worker-3", "worker")).call(
            "/managers-only", Empty(), Who
        )

    assert as_manager == Who(node="manager-2", local=False)
    assert as_admin == Who(node=None, local=True)


async def test_a_mutual_tls_server_still_refuses_clients_without_certificates(
    cluster, start_server, open_client
) -> None:
    server = RpcServer(cluster.server_context(), cluster_id=cluster.cluster_id)
    server.add_unary(JOIN_CA, Empty, who)
    url = await start_server(server)

    with pytest.raises((PermissionDenied, Unavailable)):
        await open_client(url, anonymous_client_context(cluster.ca.cert_pem)).call(
            JOIN_CA, Empty(), Who
        )
