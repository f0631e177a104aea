"""A joiner fetches the CA pinned by its token, joins with its own key, and renews it."""

from __future__ import annotations

import socket

import pytest

from swarmlite.api.control import (
    CA_RENEW,
    JOIN,
    JOIN_CA,
    CAReply,
    Empty,
    JoinReply,
    JoinRequest,
    RenewReply,
    RenewRequest,
)
from swarmlite.api.routes import PUBLIC_PATHS
from swarmlite.api.states import NodeRole
from swarmlite.ca import (
    NodeCredentials,
    RootCA,
    anonymous_client_context,
    cert_info,
    client_context,
    csr_for_key,
    fetch_pinned_ca,
    format_token,
    new_key_and_csr,
    new_secret,
    parse_token,
    secrets_match,
    server_context,
    sign_csr,
)
from swarmlite.errors import InvalidArgument, PermissionDenied, Unavailable
from swarmlite.rpc import Peer, RpcServer


def ca_server(presented: NodeCredentials, served_ca_pem: bytes) -> RpcServer:
    """A manager presenting ``presented`` and answering JOIN_CA with ``served_ca_pem``."""
    server = RpcServer(
        server_context(presented, require_client_cert=False), public_paths=PUBLIC_PATHS
    )

    async def ca_cert(request: Empty, peer: Peer) -> CAReply:
        return CAReply(cert_pem=served_ca_pem)

    server.add_unary(JOIN_CA, Empty, ca_cert)
    return server


def address(url: str) -> str:
    return url.removeprefix("https://")


async def test_fetch_pinned_ca_returns_the_ca_the_token_pins(cluster, start_server) -> None:
    url = await start_server(ca_server(cluster.creds("manager-1"), cluster.ca.cert_pem))

    ca_pem = await fetch_pinned_ca(address(url), cluster.ca.digest())

    assert ca_pem == cluster.ca.cert_pem


async def test_a_ca_that_is_not_the_tokens_is_refused(cluster, other_ca, start_server) -> None:
    url = await start_server(ca_server(cluster.creds("manager-1"), cluster.ca.cert_pem))

    with pytest.raises(PermissionDenied) as caught:
        await fetch_pinned_ca(address(url), other_ca.ca.digest())

    assert caught.value.message.startswith("the manager's CA does not match the join token")
    assert cluster.ca.digest() in caught.value.message
    assert caught.value.hint == "check the token and the manager address"


async def test_a_manager_whose_certificate_the_pinned_ca_did_not_sign_is_refused(
    cluster, other_ca, start_server
) -> None:
    # It serves the CA the token pins, but its own certificate comes from another CA:
    # someone who knows the (public) CA certificate, but not its key.
    url = await start_server(ca_server(other_ca.creds("manager-1"), cluster.ca.cert_pem))

    with pytest.raises(PermissionDenied, match="not signed by that CA"):
        await fetch_pinned_ca(address(url), cluster.ca.digest())


async def test_an_answer_that_is_no_certificate_is_invalid_argument(cluster, start_server) -> None:
    url = await start_server(ca_server(cluster.creds("manager-1"), b"not a certificate"))

    with pytest.raises(InvalidArgument, match="answered with no CA certificate"):
        await fetch_pinned_ca(address(url), cluster.ca.digest())


async def test_an_unreachable_manager_is_unavailable_naming_the_address() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # nobody listens on the port any more

    with pytest.raises(Unavailable) as caught:
        await fetch_pinned_ca(f"127.0.0.1:{port}", "00" * 32, timeout=2.0)

    assert f"127.0.0.1:{port}" in caught.value.message
    assert caught.value.retryable


class JoinService:
    """Just enough of a manager's join and renewal handlers to drive the flow."""

    def __init__(self, ca: RootCA, cluster_id: str) -> None:
        self.ca = ca
        self.cluster_id = cluster_id
        self.worker_secret = new_secret()
        self.joined = 0

    def token(self) -> str:
        return format_token(self.ca.digest(), self.worker_secret)

    async def join(self, request: JoinRequest, peer: Peer) -> JoinReply:
        token = parse_token(request.token)
        if token.ca_digest_hex != self.ca.digest() or not secrets_match(
            token.secret, self.worker_secret
        ):
            raise PermissionDenied("invalid join token")
        self.joined += 1
        node_id = f"node-{self.joined}"
        cert_pem = sign_csr(
            self.ca, request.csr_pem, node_id, "worker", self.cluster_id, addresses=["127.0.0.1"]
        )
        return JoinReply(
            node_id=node_id,
            cluster_id=self.cluster_id,
            role=NodeRole.WORKER,
            cert_pem=cert_pem,
            ca_cert_pem=self.ca.cert_pem,
            managers=[],
        )

    async def renew(self, request: RenewRequest, peer: Peer) -> RenewReply:
        assert peer.identity is not None  # a private path: the server checked the cert
        cert_pem = sign_csr(
            self.ca, request.csr_pem, peer.identity.node_id, "worker", self.cluster_id
        )
        return RenewReply(cert_pem=cert_pem, role=NodeRole.WORKER)


async def test_join_then_renew_with_the_same_key(cluster, start_server, open_client) -> None:
    service = JoinService(cluster.ca, cluster.cluster_id)
    server = RpcServer(
        server_context(cluster.creds("manager-1"), require_client_cert=False),
        cluster_id=cluster.cluster_id,
        public_paths=PUBLIC_PATHS,
    )
    ca_pem = cluster.ca.cert_pem

    async def ca_cert(request: Empty, peer: Peer) -> CAReply:
        return CAReply(cert_pem=ca_pem)

    server.add_unary(JOIN_CA, Empty, ca_cert)
    server.add_unary(JOIN, JoinRequest, service.join)
    server.add_unary(CA_RENEW, RenewRequest, service.renew)
    url = await start_server(server)

    # the joiner: only the token and an address
    token = parse_token(service.token())
    pinned = await fetch_pinned_ca(address(url), token.ca_digest_hex)
    key_pem, csr_pem = new_key_and_csr()
    joiner = open_client(url, anonymous_client_context(pinned))
    with pytest.raises(PermissionDenied, match="a client certificate of this cluster"):
        await joiner.call(CA_RENEW, RenewRequest(csr_pem=csr_pem), RenewReply)
    joined = await joiner.call(
        JOIN,
        JoinRequest(token=service.token(), csr_pem=csr_pem, hostname="h", addr="127.0.0.1:1"),
        JoinReply,
    )
    creds = NodeCredentials(cert_pem=joined.cert_pem, key_pem=key_pem, ca_cert_pem=pinned)
    node = open_client(url, client_context(creds))
    renewed = await node.call(CA_RENEW, RenewRequest(csr_pem=csr_for_key(key_pem)), RenewReply)

    first, second = cert_info(joined.cert_pem), cert_info(renewed.cert_pem)
    assert (first.node_id, first.role) == ("node-1", "worker")
    assert (second.node_id, second.role) == ("node-1", "worker")
    assert second.serial != first.serial
    # the renewed certificate works with the key the node kept
    renewed_creds = NodeCredentials(cert_pem=renewed.cert_pem, key_pem=key_pem, ca_cert_pem=pinned)
    again = open_client(url, client_context(renewed_creds))
    assert (await again.call(CA_RENEW, RenewRequest(csr_pem=csr_pem), RenewReply)).role is (
        NodeRole.WORKER
    )


async def test_a_rotated_token_no_longer_joins(cluster, start_server, open_client) -> None:
    service = JoinService(cluster.ca, cluster.cluster_id)
    server = RpcServer(
        server_context(cluster.creds("manager-1"), require_client_cert=False),
        public_paths=PUBLIC_PATHS,
    )
    server.add_unary(JOIN, JoinRequest, service.join)
    url = await start_server(server)
    old_token = service.token()
    service.worker_secret = new_secret()  # rotated
    _, csr_pem = new_key_and_csr()
    joiner = open_client(url, anonymous_client_context(cluster.ca.cert_pem))

    with pytest.raises(PermissionDenied, match="invalid join token"):
        await joiner.call(
            JOIN, JoinRequest(token=old_token, csr_pem=csr_pem, hostname="h", addr="a:1"), JoinReply
        )
    reply = await joiner.call(
        JOIN,
        JoinRequest(token=service.token(), csr_pem=csr_pem, hostname="h", addr="a:1"),
        JoinReply,
    )

    assert reply.node_id == "node-1"
