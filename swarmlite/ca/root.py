"""The cluster's root certificate authority: one ECDSA P-256 key and its self-signed cert.

Owns creating the root CA, loading it back from PEM, and the digest that join tokens pin.
Does not own node certificates (``ca.certs``) nor where the PEM files live on disk.

Invariant: a loaded RootCA's key is the key of its certificate, and that certificate is a
CA certificate; anything else is refused with InvalidArgument when loading. The digest is
the SHA-256 of the DER certificate, so it is the same on every manager that holds it.
"""

from __future__ import annotations

import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarmlite.clock import Clock, SystemClock
from swarmlite.errors import InvalidArgument

CA_COMMON_NAME = "swarmlite-ca"
# Certificates start an hour in the past, so that a peer whose clock is a little behind
# does not refuse them.
CLOCK_SKEW = datetime.timedelta(hours=1)


def utcnow(clock: Clock | None) -> datetime.datetime:
    return datetime.datetime.fromtimestamp((clock or SystemClock()).wall(), tz=datetime.UTC)


def cert_digest(cert_pem: bytes) -> str:
    """SHA-256 of a PEM certificate's DER form, in hex: what a join token pins."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise InvalidArgument(f"not a PEM certificate: {exc}") from exc
    return _der_digest(cert)


def _der_digest(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class RootCA:
    """A root CA ready to sign; create with ``create`` or ``load``."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert = cert
        self.key = key

    @classmethod
    def create(
        cls, cluster_id: str, *, expiry_days: int = 7300, clock: Clock | None = None
    ) -> RootCA:
        """A new root CA for ``cluster_id`` (its certificate's O), valid ``expiry_days``."""
        if not cluster_id:
            raise InvalidArgument("a root CA needs a cluster id")
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
            ]
        )
        now = utcnow(clock)
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + datetime.timedelta(days=expiry_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, cert_pem: bytes, key_pem: bytes) -> RootCA:
        """The root CA from its PEM certificate and PEM (unencrypted PKCS#8) key."""
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise InvalidArgument(f"root CA certificate is not a PEM certificate: {exc}") from exc
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"root CA key is not a PEM private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidArgument("root CA key is not an ECDSA key")
        if key.public_key() != cert.public_key():
            raise InvalidArgument("root CA key does not belong to the root CA certificate")
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise InvalidArgument("root CA certificate is not a CA certificate")
        return cls(cert, key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def cluster_id(self) -> str:
        values = self.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        value = values[0].value if values else ""
        return value if isinstance(value, str) else value.decode()

    def digest(self) -> str:
        """SHA-256 of the DER certificate, in hex: what a join token pins."""
        return _der_digest(self.cert)
