"""Certificate signing requests: a node's own key, and the CA signing it into a node cert.

Owns the node side (making a key and a CSR for it, or a CSR for the key a node already
has, which is how renewal keeps the key) and the CA side (checking a CSR and issuing the
certificate). Does not own deciding who may get which certificate (the join service and
the renewal handler check the token or the caller first), nor the certificate's layout
(``ca.certs.build_node_cert``, shared with ``issue_node_cert``).

Invariant: the CA decides everything in a certificate but the public key: a CSR's subject,
SANs and extensions are ignored, and its signature must prove the requester holds the key.
Malformed input (``cryptography``'s ValueError, TypeError, UnsupportedAlgorithm) becomes
InvalidArgument here.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from swarmlite.ca.certs import build_node_cert
from swarmlite.ca.root import RootCA
from swarmlite.clock import Clock
from swarmlite.errors import InvalidArgument

NODE_CERT_EXPIRY_DAYS = 90
_CURVES = (ec.SECP256R1, ec.SECP384R1)


def new_key_and_csr() -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key (PEM, PKCS#8) and a CSR for it (PEM, empty subject)."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, _csr_for(key)


def csr_for_key(key_pem: bytes) -> bytes:
    """A CSR (PEM) for the key a node already holds: renewal keeps the key."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"node key is not a PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidArgument("node key is not an ECDSA key")
    return _csr_for(key)


def _csr_for(key: ec.EllipticCurvePrivateKey) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def sign_csr(
    ca: RootCA,
    csr_pem: bytes,
    node_id: str,
    role: str,
    cluster_id: str,
    *,
    expiry_days: float = NODE_CERT_EXPIRY_DAYS,
    expiry: datetime.timedelta | None = None,
    addresses: Sequence[str] = (),
    clock: Clock | None = None,
) -> bytes:
    """The node certificate (PEM) for the key in ``csr_pem``, naming node, role, cluster.

    It is valid for ``expiry`` if given, else ``expiry_days``; SANs as ``issue_node_cert``.

    InvalidArgument if the CSR is malformed, its signature does not verify, or its key is
    not ECDSA P-256 or P-384.
    """
    public = csr_public_key(csr_pem)
    cert = build_node_cert(
        ca,
        public,
        node_id,
        role,
        cluster_id,
        lifetime=expiry if expiry is not None else datetime.timedelta(days=expiry_days),
        addresses=addresses,
        clock=clock,
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def csr_public_key(csr_pem: bytes) -> ec.EllipticCurvePublicKey:
    """The public key of a CSR whose signature verifies; InvalidArgument otherwise."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise InvalidArgument(f"certificate signing request is not a PEM CSR: {exc}") from exc
    try:
        valid = csr.is_signature_valid
        public = csr.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidArgument(f"certificate signing request cannot be read: {exc}") from exc
    if not valid:
        raise InvalidArgument(
            "certificate signing request has a bad signature",
            hint="the request was altered, or signed with another key than the one it names",
        )
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, _CURVES):
        raise InvalidArgument("certificate signing request must be for an ECDSA P-256 key")
    return public
