"""Signing a node's own key: the CA decides the subject, a tampered CSR is refused."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swarmlite.ca import (
    RootCA,
    cert_info,
    client_context,
    csr_for_key,
    issue_node_cert,
    new_key_and_csr,
    sign_csr,
)
from swarmlite.ca.certs import NodeCredentials
from swarmlite.errors import InvalidArgument


class FixedClock:
    def monotonic(self) -> float:
        return 0.0

    def wall(self) -> float:
        return 1_700_000_000.0

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("not used")


@pytest.fixture(scope="module")
def ca() -> RootCA:
    return RootCA.create("cluster-a")


def load(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def public_der(key: object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_new_key_and_csr_make_an_ecdsa_p256_key_and_a_csr_for_it() -> None:
    key_pem, csr_pem = new_key_and_csr()

    key = serialization.load_pem_private_key(key_pem, password=None)
    csr = x509.load_pem_x509_csr(csr_pem)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert csr.is_signature_valid
    assert public_der(csr.public_key()) == public_der(key.public_key())
    assert len(csr.subject) == 0


def test_signed_cert_names_node_role_cluster_and_sans(ca: RootCA) -> None:
    key_pem, csr_pem = new_key_and_csr()

    cert_pem = sign_csr(
        ca, csr_pem, "node-1", "worker", "cluster-a", addresses=["10.0.0.7", "box.lan"]
    )

    cert = load(cert_pem)
    cert.verify_directly_issued_by(ca.cert)
    subject = {attr.oid: attr.value for attr in cert.subject}
    assert subject == {
        NameOID.COMMON_NAME: "node-1",
        NameOID.ORGANIZATIONAL_UNIT_NAME: "worker",
        NameOID.ORGANIZATION_NAME: "cluster-a",
    }
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["node-1", "box.lan"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.0.7"),
    ]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert public_der(cert.public_key()) == public_der(key.public_key())
    # the key and the signed certificate make credentials ssl accepts
    client_context(NodeCredentials(cert_pem=cert_pem, key_pem=key_pem, ca_cert_pem=ca.cert_pem))


def test_signed_cert_has_the_extensions_of_an_issued_one(ca: RootCA) -> None:
    _, csr_pem = new_key_and_csr()
    signed = load(sign_csr(ca, csr_pem, "n1", "manager", "cluster-a"))
    issued = load(issue_node_cert(ca, "n1", "manager", "cluster-a").cert_pem)

    assert signed.subject == issued.subject
    assert {ext.oid for ext in signed.extensions} == {ext.oid for ext in issued.extensions}
    for cls in (x509.KeyUsage, x509.BasicConstraints, x509.SubjectAlternativeName):
        assert (
            signed.extensions.get_extension_for_class(cls).value
            == issued.extensions.get_extension_for_class(cls).value
        )


def test_the_csr_subject_and_extensions_are_ignored(ca: RootCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "someone-else"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "manager"),
                ]
            )
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )

    cert = load(
        sign_csr(ca, csr.public_bytes(serialization.Encoding.PEM), "n2", "worker", "cluster-a")
    )

    info = cert_info(cert.public_bytes(serialization.Encoding.PEM))
    assert (info.node_id, info.role) == ("n2", "worker")
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_expiry_sets_the_lifetime(ca: RootCA) -> None:
    _, csr_pem = new_key_and_csr()

    in_days = cert_info(
        sign_csr(ca, csr_pem, "n", "worker", "c", expiry_days=30, clock=FixedClock())
    )
    short = cert_info(
        sign_csr(
            ca,
            csr_pem,
            "n",
            "worker",
            "c",
            expiry=datetime.timedelta(seconds=60),
            clock=FixedClock(),
        )
    )

    now = datetime.datetime.fromtimestamp(1_700_000_000, tz=datetime.UTC)
    assert in_days.not_after == now + datetime.timedelta(days=30)
    assert in_days.not_before == now - datetime.timedelta(hours=1)
    assert short.not_after == now + datetime.timedelta(seconds=60)
    # a short certificate starts a tenth of its life early, not an hour
    assert short.not_before == now - datetime.timedelta(seconds=6)


def test_a_tampered_csr_is_refused(ca: RootCA) -> None:
    _, csr_pem = new_key_and_csr()
    der = bytearray(x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)

    with pytest.raises(InvalidArgument, match="bad signature"):
        sign_csr(ca, tampered, "n1", "worker", "cluster-a")


def test_a_csr_naming_another_key_than_it_is_signed_with_is_refused(ca: RootCA) -> None:
    _, csr_pem = new_key_and_csr()
    _, other_pem = new_key_and_csr()
    csr, other = (x509.load_pem_x509_csr(p) for p in (csr_pem, other_pem))
    # swap the signed request info's key for another one, keeping the old signature
    mine = public_der(csr.public_key())
    theirs = public_der(other.public_key())
    der = csr.public_bytes(serialization.Encoding.DER).replace(mine, theirs)
    swapped = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM)

    with pytest.raises(InvalidArgument, match="bad signature"):
        sign_csr(ca, swapped, "n1", "worker", "cluster-a")


@pytest.mark.parametrize(
    "garbage", [b"", b"not a csr", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"]
)
def test_malformed_csr_is_invalid_argument(ca: RootCA, garbage: bytes) -> None:
    with pytest.raises(InvalidArgument, match="not a PEM CSR"):
        sign_csr(ca, garbage, "n1", "worker", "cluster-a")


def test_a_csr_for_an_rsa_key_is_refused(ca: RootCA) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )

    with pytest.raises(InvalidArgument, match="ECDSA P-256"):
        sign_csr(ca, csr.public_bytes(serialization.Encoding.PEM), "n1", "worker", "cluster-a")


def test_sign_csr_refuses_an_unknown_role(ca: RootCA) -> None:
    _, csr_pem = new_key_and_csr()

    with pytest.raises(InvalidArgument, match="role must be one of manager, worker"):
        sign_csr(ca, csr_pem, "n1", "boss", "cluster-a")


def test_renewal_keeps_the_key_and_may_change_the_role(ca: RootCA) -> None:
    key_pem, csr_pem = new_key_and_csr()
    first = load(sign_csr(ca, csr_pem, "n1", "worker", "cluster-a"))

    renewed = load(sign_csr(ca, csr_for_key(key_pem), "n1", "manager", "cluster-a"))

    assert public_der(renewed.public_key()) == public_der(first.public_key())
    assert renewed.serial_number != first.serial_number
    assert cert_info(renewed.public_bytes(serialization.Encoding.PEM)).role == "manager"


def test_csr_for_key_refuses_what_is_not_an_ecdsa_key() -> None:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

    with pytest.raises(InvalidArgument, match="not a PEM private key"):
        csr_for_key(b"junk")
    with pytest.raises(InvalidArgument, match="not an ECDSA key"):
        csr_for_key(rsa_pem)


def test_cert_info_reads_what_the_ca_wrote(ca: RootCA) -> None:
    creds = issue_node_cert(ca, "node-9", "manager", "cluster-a", clock=FixedClock())

    info = cert_info(creds.cert_pem)

    cert = load(creds.cert_pem)
    assert (info.node_id, info.role, info.cluster_id) == ("node-9", "manager", "cluster-a")
    assert info.not_before == cert.not_valid_before_utc
    assert info.not_after == datetime.datetime.fromtimestamp(
        1_700_000_000, tz=datetime.UTC
    ) + datetime.timedelta(days=90)
    assert int(info.serial, 16) == cert.serial_number


def test_cert_info_refuses_what_is_not_a_node_certificate(ca: RootCA) -> None:
    with pytest.raises(InvalidArgument, match="not a PEM certificate"):
        cert_info(b"junk")
    with pytest.raises(InvalidArgument, match="not a node certificate"):
        cert_info(ca.cert_pem)  # the CA has no OU
