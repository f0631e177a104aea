"""Rotating the cluster's root CA: the cross-signed certificate, the chains, who is left.

Owns what a rotation needs of x509 and of the Cluster's CA material: ``start_rotation`` (a
new root, and its certificate cross-signed under the old root's key), ``signer`` (the root
that signs node certificates now, and the chain they are presented with), ``trust_bundle``
(the roots a node trusts now: both during a rotation), ``pending`` (the nodes that do not
yet hold a certificate from the new root), ``finish`` (the new root alone), and the PEM
helpers a node uses to tell where its certificate comes from. Does not own when a rotation
starts or ends (the CA API and ``manager.carotation``) nor files on disk (``ca.certs``).

How it stays unbroken: while a rotation runs, node certificates come from the new root and
are presented with the cross-signed certificate, so a peer that still trusts only the old
root builds leaf -> cross-signed -> old root; a peer that trusts the new root stops at it.
Every node learns (from its session) to trust both roots, then renews. When every node that
is not down holds a certificate from the new root, the old root is dropped; a node that was
down through the whole rotation holds a certificate no manager accepts and must join again.

Both roots have the same subject (CN swarmlite-ca, O the cluster id), so the cross-signed
certificate is self-issued, which RFC 5280 (and OpenSSL) leave out of path-length counting:
the old root's pathLen 0 does not refuse it. The two roots are told apart by key identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization

from swarmlite.api import Node, NodeState, RootCAMaterial, RootRotation
from swarmlite.ca.root import RootCA
from swarmlite.errors import InvalidArgument

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.S)


def cross_sign(old: RootCA, new: RootCA) -> bytes:
    """``new``'s root certificate issued under ``old``'s key (PEM): the same subject, key,
    validity and extensions, the old root as issuer."""
    cert = new.cert
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(old.cert.subject)
        .public_key(new.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        if isinstance(extension.value, x509.AuthorityKeyIdentifier):
            continue
        builder = builder.add_extension(extension.value, critical=extension.critical)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(old.key.public_key()), critical=False
    )
    return builder.sign(old.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def start_rotation(material: RootCAMaterial, *, started_at: float) -> RootRotation:
    """A rotation away from ``material``'s root: a new root for the same cluster."""
    old = RootCA.load(material.cert_pem, material.key_pem)
    new = RootCA.create(old.cluster_id)
    return RootRotation(
        cert_pem=new.cert_pem,
        key_pem=new.key_pem,
        cross_signed_pem=cross_sign(old, new),
        started_at=started_at,
    )


def signer(material: RootCAMaterial) -> tuple[RootCA, bytes]:
    """The root that signs node certificates now, and the chain (PEM) that goes with them:
    during a rotation the new root and its cross-signed certificate, else the root and b""."""
    rotation = material.rotation
    if rotation is None:
        return RootCA.load(material.cert_pem, material.key_pem), b""
    return RootCA.load(rotation.cert_pem, rotation.key_pem), rotation.cross_signed_pem


def signing_cert(material: RootCAMaterial) -> bytes:
    """The certificate (PEM) of the root that signs now."""
    return material.rotation.cert_pem if material.rotation is not None else material.cert_pem


def signing_chain(material: RootCAMaterial) -> bytes:
    """The chain (PEM) node certificates are presented with now: the cross-signed root
    during a rotation, else b""."""
    return material.rotation.cross_signed_pem if material.rotation is not None else b""


def trust_bundle(material: RootCAMaterial) -> bytes:
    """The roots every node trusts now (PEM): the root, and during a rotation the new one."""
    if material.rotation is None:
        return material.cert_pem
    return join_pems([material.cert_pem, material.rotation.cert_pem])


def pending(rotation: RootRotation, nodes: Iterable[Node]) -> list[Node]:
    """The nodes a rotation still waits for: each that is not down and has no certificate
    from the new root yet."""
    done = set(rotation.renewed)
    return [n for n in nodes if n.status.state is not NodeState.DOWN and n.id not in done]


def renewed(rotation: RootRotation, node_id: str) -> RootRotation:
    """``rotation`` once ``node_id`` holds a certificate from its new root."""
    if node_id in rotation.renewed:
        return rotation
    return msgspec.structs.replace(rotation, renewed=(*rotation.renewed, node_id))


def finish(material: RootCAMaterial) -> RootCAMaterial:
    """The CA material once the rotation ends: the new root alone; the old one is gone."""
    rotation = material.rotation
    if rotation is None:
        return material
    return RootCAMaterial(cert_pem=rotation.cert_pem, key_pem=rotation.key_pem)


# --------------------------------------------------------------------------- PEM chains


def split_pems(pem: bytes) -> list[bytes]:
    """Each certificate of a PEM bundle or chain, in order, each ending with one newline."""
    return [block.replace(b"\r\n", b"\n") + b"\n" for block in _PEM_CERT.findall(pem)]


def join_pems(pems: Iterable[bytes]) -> bytes:
    """One PEM bundle of every certificate in ``pems`` (bundles too), without repeats."""
    out: list[bytes] = []
    for pem in pems:
        for block in split_pems(pem):
            if block not in out:
                out.append(block)
    return b"".join(out)


def leaf_of(chain_pem: bytes) -> bytes:
    """The first certificate of a chain (PEM): the node's own."""
    blocks = split_pems(chain_pem)
    if not blocks:
        raise InvalidArgument("no PEM certificate in the certificate chain")
    return blocks[0]


def issued_by(cert_pem: bytes, ca_cert_pem: bytes) -> bool:
    """Whether the first certificate of ``cert_pem`` was signed by the key of the first one
    of ``ca_cert_pem`` (and names it as issuer)."""
    try:
        cert = x509.load_pem_x509_certificate(leaf_of(cert_pem))
        ca = x509.load_pem_x509_certificate(leaf_of(ca_cert_pem))
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm, InvalidArgument):
        return False
    return True
