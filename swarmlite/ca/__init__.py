"""ca: the cluster's root CA, node certificates (role in the cert), join tokens, TLS contexts.

A joining node makes its own key and CSR (``new_key_and_csr``), fetches the CA pinned by
its token (``fetch_pinned_ca``) and has a manager sign the CSR (``sign_csr``); its
``CertRenewer`` renews at ``renewal_delay`` with a CSR for the same key (``csr_for_key``)
and keeps the node's TLS contexts current. Revocation is enforced through the
``authorize`` hook that ``rpc.RpcServer`` calls with each peer's Identity.
"""

from swarmlite.ca.backup import seal_backup, unseal_backup
from swarmlite.ca.certs import (
    ROLES,
    CertInfo,
    NodeCredentials,
    cert_info,
    issue_node_cert,
    read_credentials,
    write_credentials,
)
from swarmlite.ca.csr import csr_for_key, new_key_and_csr, sign_csr
from swarmlite.ca.pinned import fetch_pinned_ca
from swarmlite.ca.renewal import CertRenewer, renewal_delay
from swarmlite.ca.root import RootCA, cert_digest
from swarmlite.ca.tls import (
    Identity,
    anonymous_client_context,
    client_context,
    live_context,
    peer_identity,
    server_context,
)
from swarmlite.ca.tokens import ParsedToken, format_token, new_secret, parse_token, secrets_match

__all__ = [
    "ROLES",
    "CertInfo",
    "CertRenewer",
    "Identity",
    "NodeCredentials",
    "ParsedToken",
    "RootCA",
    "anonymous_client_context",
    "cert_digest",
    "cert_info",
    "client_context",
    "csr_for_key",
    "fetch_pinned_ca",
    "format_token",
    "issue_node_cert",
    "live_context",
    "new_key_and_csr",
    "new_secret",
    "parse_token",
    "peer_identity",
    "read_credentials",
    "renewal_delay",
    "seal_backup",
    "secrets_match",
    "server_context",
    "sign_csr",
    "unseal_backup",
    "write_credentials",
]
