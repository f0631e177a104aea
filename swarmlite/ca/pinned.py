"""Fetching the cluster's CA certificate before a node trusts it, pinned by the join token.

Owns the first call a joining node makes: it has no certificate and no CA yet, so it
connects without verifying the manager, asks for the CA certificate (``JOIN_CA``), and
accepts it only if its SHA-256 is the digest in the join token and the manager's own TLS
certificate, on that very connection, is signed by it (``ca.tls.recording_client_context``
keeps what the server presented). After that the node verifies the
managers against this CA like everyone else (``ca.tls.anonymous_client_context``). Does
not own the token's format (``ca.tokens``) nor the join call itself.

Errors: an unreachable manager is Unavailable naming the address (from ``rpc``); a CA that
does not match, or a manager certificate it did not sign, is PermissionDenied; an answer
that is no certificate is InvalidArgument. ``cryptography``'s exceptions stop here.
"""

from __future__ import annotations

import hmac
import logging

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from swarmlite.api.control import Empty
from swarmlite.api.routes import JOIN_CA
from swarmlite.ca.root import cert_digest
from swarmlite.ca.tls import recording_client_context
from swarmlite.errors import InvalidArgument, PermissionDenied
from swarmlite.log import kv
from swarmlite.rpc import RpcClient

log = logging.getLogger(__name__)

_HINT = "check the token and the manager address"


async def fetch_pinned_ca(
    address: str, expected_digest_hex: str, *, timeout: float = 10.0
) -> bytes:
    """The PEM CA certificate of the manager at ``address`` (host:port), if the token pins it."""
    context, presented = recording_client_context()
    client = RpcClient(f"https://{address}", context, timeout=timeout)
    try:
        reply = await client.request(JOIN_CA, Empty())
    finally:
        await client.close()
    try:
        actual = cert_digest(reply.cert_pem)
    except InvalidArgument as exc:
        raise InvalidArgument(
            f"the manager at {address} answered with no CA certificate: {exc.message}",
            hint=_HINT,
        ) from exc
    expected = expected_digest_hex.lower()
    if not hmac.compare_digest(actual, expected):
        log.warning("CA does not match the join token %s", kv(manager=address, digest=actual))
        raise PermissionDenied(
            f"the manager's CA does not match the join token (digest {actual}, the token "
            f"pins {expected})",
            hint=_HINT,
            details={"address": address, "digest": actual},
        )
    _check_signed_by(presented, reply.cert_pem, address)
    return reply.cert_pem


def _check_signed_by(presented: list[bytes], ca_pem: bytes, address: str) -> None:
    """PermissionDenied unless the manager's TLS certificate was issued by this CA.

    ``presented`` holds the certificate of every connection the client made (one, unless
    it reconnected): each must be.
    """
    if not presented:
        raise PermissionDenied(f"the manager at {address} presented no TLS certificate", hint=_HINT)
    ca = x509.load_pem_x509_certificate(ca_pem)  # cert_digest has parsed it already
    try:
        for der in presented:
            x509.load_der_x509_certificate(der).verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
        log.warning("manager certificate not issued by its CA %s", kv(manager=address))
        raise PermissionDenied(
            f"the manager at {address} sent the CA of the join token, but its own TLS "
            f"certificate is not signed by that CA ({str(exc) or type(exc).__name__})",
            hint="something between this node and the manager may be intercepting the "
            "connection; " + _HINT,
            details={"address": address},
        ) from exc
