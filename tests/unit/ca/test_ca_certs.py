"""Node certificates: subject and SANs, and the credential files on disk."""

from __future__ import annotations

import ipaddress
import os
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swarmlite.ca import (
    NodeCredentials,
    RootCA,
    issue_node_cert,
    read_credentials,
    write_credentials,
)
from swarmlite.errors import InvalidArgument, NotFound


@pytest.fixture(scope="module")
def ca() -> RootCA:
    return RootCA.create("cluster-a")


def subject_field(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> object:
    return cert.subject.get_attributes_for_oid(oid)[0].value


def test_issued_cert_names_node_role_and_cluster(ca: RootCA) -> None:
    creds = issue_node_cert(ca, "node-abc", "worker", "cluster-a")

    cert = x509.load_pem_x509_certificate(creds.cert_pem)
    assert subject_field(cert, NameOID.COMMON_NAME) == "node-abc"
    assert subject_field(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == "worker"
    assert subject_field(cert, NameOID.ORGANIZATION_NAME) == "cluster-a"
    assert cert.issuer == ca.cert.subject
    assert creds.ca_cert_pem == ca.cert_pem
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(ca.cert)  # raises if the CA did not sign it


def test_issued_cert_sans(ca: RootCA) -> None:
    creds = issue_node_cert(
        ca, "node-abc", "manager", "cluster-a", addresses=["10.0.0.5", "server-1.lan", "::1"]
    )

    sans = x509.load_pem_x509_certificate(creds.cert_pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert sans.value.get_values_for_type(x509.DNSName) == ["node-abc", "server-1.lan"]
    assert sans.value.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.0.5"),
        ipaddress.ip_address("::1"),
    ]


def test_each_cert_gets_its_own_key(ca: RootCA) -> None:
    first = issue_node_cert(ca, "n1", "manager", "cluster-a")
    second = issue_node_cert(ca, "n1", "manager", "cluster-a")

    assert first.key_pem != second.key_pem
    assert b"PRIVATE KEY" in first.key_pem


def test_unknown_role_is_refused(ca: RootCA) -> None:
    with pytest.raises(InvalidArgument, match="role must be one of manager, worker, got 'boss'"):
        issue_node_cert(ca, "n1", "boss", "cluster-a")


def test_credentials_round_trip_with_a_private_key_file(ca: RootCA, tmp_path) -> None:
    creds = issue_node_cert(ca, "n1", "manager", "cluster-a")
    directory = tmp_path / "certificates"

    write_credentials(directory, creds)

    assert read_credentials(directory) == creds
    assert stat.S_IMODE(os.stat(directory / "node.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert sorted(os.listdir(directory)) == ["ca.crt", "node.crt", "node.key"]


def test_rewriting_credentials_replaces_them(ca: RootCA, tmp_path) -> None:
    write_credentials(tmp_path, issue_node_cert(ca, "n1", "worker", "cluster-a"))
    promoted = issue_node_cert(ca, "n1", "manager", "cluster-a")

    write_credentials(tmp_path, promoted)

    assert read_credentials(tmp_path) == promoted
    assert stat.S_IMODE(os.stat(tmp_path / "node.key").st_mode) == 0o600


def test_missing_credentials_are_not_found(tmp_path) -> None:
    with pytest.raises(NotFound, match="no node credentials in") as caught:
        read_credentials(tmp_path)
    assert caught.value.hint is not None and "swarmlite join" in caught.value.hint


def test_corrupt_credentials_are_invalid(ca: RootCA, tmp_path) -> None:
    creds = issue_node_cert(ca, "n1", "worker", "cluster-a")
    write_credentials(
        tmp_path,
        NodeCredentials(cert_pem=b"junk", key_pem=creds.key_pem, ca_cert_pem=creds.ca_cert_pem),
    )

    with pytest.raises(InvalidArgument, match=r"node\.crt is not a PEM certificate"):
        read_credentials(tmp_path)
