"""TLS contexts for the cluster port, and who a peer certificate names.

Owns the TLS settings of mutual authentication: TLS 1.2 or later, both sides present a
node certificate and verify the other's against the cluster CA; and of a node that has
no certificate yet (``anonymous_client_context``), served by managers on public paths.
Host names are not checked (nodes are reached by address, often several): the cluster CA
pins identity, and ``rpc`` refuses a certificate of another cluster or one that
``authorize`` revokes. Does not own
sockets (``rpc``) nor issuing certificates (``ca.certs``).

``ssl`` can only load a certificate chain from files, so the key is written for an instant
into a private temporary directory (mode 0700) and removed at once. Nor can a context drop
a CA it trusts, so a node whose certificate or CA changes makes new contexts, and hands out
a ``live_context`` that every new connection takes its settings from (``wrap_bio``, what
asyncio calls for each connection): servers and clients built once follow it with no
restart, and connections already open keep what they were made with.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from collections.abc import Callable

from swarmlite.ca.certs import NodeCredentials
from swarmlite.errors import InvalidArgument
from swarmlite.rpc import Identity, identity_from_der, ssl_object_identity

__all__ = [
    "Identity",
    "anonymous_client_context",
    "client_context",
    "live_context",
    "peer_identity",
    "recording_client_context",
    "server_context",
]


def server_context(creds: NodeCredentials, *, require_client_cert: bool = True) -> ssl.SSLContext:
    """For the cluster port: present this node's certificate, verify the client's.

    With ``require_client_cert=False`` a client may come without a certificate (a node
    joining); one that presents a certificate is still verified against the cluster CA,
    and ``rpc.RpcServer`` lets certificate-less callers reach its public paths only.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    _configure(context, creds)
    return context


def client_context(creds: NodeCredentials) -> ssl.SSLContext:
    """For calling a node: present this node's certificate, verify the server's by the CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    _configure(context, creds)
    return context


def anonymous_client_context(ca_cert_pem: bytes | None) -> ssl.SSLContext:
    """For a node that has no certificate yet: present none.

    With ``ca_cert_pem`` the server is verified against that CA (after the join token has
    pinned it); without, the server is not verified at all, which only ``ca.join`` uses,
    to fetch the CA certificate it then checks against the token.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    if ca_cert_pem is None:
        context.verify_mode = ssl.CERT_NONE
        return context
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cadata=ca_cert_pem.decode("ascii"))
    except (ssl.SSLError, ValueError) as exc:
        raise InvalidArgument(f"cluster CA certificate cannot be loaded: {exc}") from exc
    return context


def recording_client_context() -> tuple[ssl.SSLContext, list[bytes]]:
    """An unverifying ``anonymous_client_context`` that records what servers present.

    The list receives the DER certificate of the server after each handshake made with
    the context, so a caller that could not verify the server while connecting can check,
    afterwards, who answered on the connection it used.
    """
    context = anonymous_client_context(None)
    seen: list[bytes] = []

    class Recording(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()
            der = self.getpeercert(binary_form=True)
            if der:
                seen.append(der)

    context.sslobject_class = Recording  # documented: what wrap_bio (asyncio) returns
    return context, seen


class _LiveContext(ssl.SSLContext):
    """A context whose connections are made by another one, the current one at that time."""

    current: Callable[[], ssl.SSLContext]

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return self.current().wrap_bio(
            incoming,
            outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
            session=session,
        )

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return self.current().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            session=session,
        )


def live_context(current: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """A context that makes each connection (TLS object) with ``current()`` at that moment.

    It reports the verify mode of the context ``current()`` gives now (``rpc.RpcServer``
    reads it); the contexts it is given must all be of one kind (client or server).
    """
    first = current()
    protocol = (
        ssl.PROTOCOL_TLS_SERVER
        if first.protocol is ssl.PROTOCOL_TLS_SERVER
        else ssl.PROTOCOL_TLS_CLIENT
    )
    context = _LiveContext(protocol)
    context.current = current
    context.minimum_version = first.minimum_version
    context.check_hostname = first.check_hostname
    context.verify_mode = first.verify_mode
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
