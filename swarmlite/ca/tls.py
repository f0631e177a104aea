"""TLS contexts for the cluster port, and who a peer certificate names.

Owns the TLS settings of mutual authentication: TLS 1.2 or later, both sides present a
node certificate and verify the other's against the cluster CA. Host names are not checked
(nodes are reached by address, often several): the cluster CA pins identity, and ``rpc``
refuses a certificate of another cluster or one that ``authorize`` revokes. Does not own
sockets (``rpc``) nor issuing certificates (``ca.certs``).

``ssl`` can only load a certificate chain from files, so the key is written for an instant
into a private temporary directory (mode 0700) and removed at once.
"""

from __future__ import annotations

import os
import ssl
import tempfile

from swarmlite.ca.certs import NodeCredentials
from swarmlite.errors import InvalidArgument
from swarmlite.rpc import Identity, identity_from_der, ssl_object_identity

__all__ = ["Identity", "client_context", "peer_identity", "server_context"]


def server_context(creds: NodeCredentials) -> ssl.SSLContext:
    """For the cluster port: present this node's certificate, require the client's."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    _configure(context, creds)
    return context


def client_context(creds: NodeCredentials) -> ssl.SSLContext:
    """For calling a node: present this node's certificate, verify the server's by the CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    _configure(context, creds)
    return context


def peer_identity(peer: ssl.SSLObject | ssl.SSLSocket | bytes) -> Identity:
    """The Identity in a peer's certificate, from its TLS object or its DER bytes."""
    if isinstance(peer, bytes):
        return identity_from_der(peer)
    return ssl_object_identity(peer)


def _configure(context: ssl.SSLContext, creds: NodeCredentials) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cadata=creds.ca_cert_pem.decode("ascii"))
    except (ssl.SSLError, ValueError) as exc:
        raise InvalidArgument(f"cluster CA certificate cannot be loaded: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="swarmlite-tls-") as directory:
        cert_path = os.path.join(directory, "node.crt")
        key_path = os.path.join(directory, "node.key")
        _write_private(cert_path, creds.cert_pem)
        _write_private(key_path, creds.key_pem)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise InvalidArgument(
                f"node certificate and key cannot be loaded: {exc.reason or exc}",
                hint="is the key the one the certificate was issued for?",
            ) from exc


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
