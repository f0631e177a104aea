"""TLS contexts of the cluster port, and the Identity read from a peer certificate."""

from __future__ import annotations

import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from swarmlite.ca import (
    Identity,
    NodeCredentials,
    RootCA,
    anonymous_client_context,
    client_context,
    issue_node_cert,
    peer_identity,
    server_context,
)
from swarmlite.errors import InvalidArgument


@pytest.fixture(scope="module")
def ca() -> RootCA:
    return RootCA.create("cluster-a")


def test_identity_from_an_issued_certificate(ca: RootCA) -> None:
    creds = issue_node_cert(ca, "node-7", "worker", "cluster-a")
    der = x509.load_pem_x509_certificate(creds.cert_pem).public_bytes(serialization.Encoding.DER)

    assert peer_identity(der) == Identity(node_id="node-7", role="worker", cluster_id="cluster-a")


def test_server_context_requires_client_certificates(ca: RootCA) -> None:
    context = server_context(issue_node_cert(ca, "m1", "manager", "cluster-a"))

    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.get_ca_certs()[0]["subject"] == (
        (("commonName", "swarmlite-ca"),),
        (("organizationName", "cluster-a"),),
    )


def test_client_context_verifies_the_server_by_ca_only(ca: RootCA) -> None:
    context = client_context(issue_node_cert(ca, "w1", "worker", "cluster-a"))

    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is False
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_a_key_that_is_not_the_certificates_is_refused(ca: RootCA) -> None:
    first = issue_node_cert(ca, "w1", "worker", "cluster-a")
    second = issue_node_cert(ca, "w2", "worker", "cluster-a")
    mismatched = NodeCredentials(
        cert_pem=first.cert_pem, key_pem=second.key_pem, ca_cert_pem=first.ca_cert_pem
    )

    with pytest.raises(InvalidArgument, match="cannot be loaded"):
        client_context(mismatched)


def test_server_context_may_let_clients_come_without_a_certificate(ca: RootCA) -> None:
    context = server_context(
        issue_node_cert(ca, "m1", "manager", "cluster-a"), require_client_cert=False
    )

    # a certificate presented is still verified against the cluster CA
    assert context.verify_mode is ssl.CERT_OPTIONAL
    assert len(context.get_ca_certs()) == 1


def test_anonymous_client_context_pins_the_ca_or_verifies_nothing(ca: RootCA) -> None:
    pinned = anonymous_client_context(ca.cert_pem)
    blind = anonymous_client_context(None)

    assert pinned.verify_mode is ssl.CERT_REQUIRED
    assert pinned.get_ca_certs()[0]["subject"][1] == (("organizationName", "cluster-a"),)
    assert blind.verify_mode is ssl.CERT_NONE
    assert blind.minimum_version is pinned.minimum_version is ssl.TLSVersion.TLSv1_2
    with pytest.raises(InvalidArgument, match="cluster CA certificate cannot be loaded"):
        anonymous_client_context(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
