"""The root CA: a P-256 CA certificate, its digest, and loading it back."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarmlite.ca import RootCA
from swarmlite.errors import InvalidArgument


def test_created_ca_is_a_p256_ca_for_its_cluster() -> None:
    ca = RootCA.create("cluster-a", expiry_days=10)

    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "cluster-a"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp256r1"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(
        days=10, hours=1
    )
    assert ca.cluster_id == "cluster-a"


class FixedClock:
    def monotonic(self) -> float:
        return 0.0

    def wall(self) -> float:
        return 1_000_000_000.0  # 2001-09-09 01:46:40 UTC

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("certificates never sleep")


def test_validity_follows_the_injected_clock() -> None:
    ca = RootCA.create("cluster-a", expiry_days=1, clock=FixedClock())

    after = datetime.datetime(2001, 9, 10, 1, 46, 40, tzinfo=datetime.UTC)
    assert ca.cert.not_valid_after_utc == after
    assert ca.cert.not_valid_before_utc == after - datetime.timedelta(days=1, hours=1)


def test_digest_is_stable_across_load() -> None:
    ca = RootCA.create("cluster-a")

    loaded = RootCA.load(ca.cert_pem, ca.key_pem)

    assert loaded.digest() == ca.digest()
    assert len(ca.digest()) == 64 and int(ca.digest(), 16) >= 0
    assert loaded.key_pem == ca.key_pem
    assert RootCA.create("cluster-a").digest() != ca.digest()


def test_load_refuses_a_key_of_another_ca() -> None:
    ca, other = RootCA.create("cluster-a"), RootCA.create("cluster-a")

    with pytest.raises(InvalidArgument, match="does not belong"):
        RootCA.load(ca.cert_pem, other.key_pem)


def test_load_refuses_garbage() -> None:
    ca = RootCA.create("cluster-a")

    with pytest.raises(InvalidArgument, match="not a PEM certificate"):
        RootCA.load(b"hello", ca.key_pem)
    with pytest.raises(InvalidArgument, match="not a PEM private key"):
        RootCA.load(ca.cert_pem, b"hello")
