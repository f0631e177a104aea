"""ca: the cluster's root CA, node certificates (role in the cert) and TLS contexts.

Join tokens, rotation and revocation come later; revocation is enforced through the
``authorize`` hook that ``rpc.RpcServer`` calls with each peer's Identity.
"""

from swarmlite.ca.certs import (
    ROLES,
    NodeCredentials,
    issue_node_cert,
    read_credentials,
    write_credentials,
)
from swarmlite.ca.root import RootCA
from swarmlite.ca.tls import Identity, client_context, peer_identity, server_context

__all__ = [
    "ROLES",
    "Identity",
    "NodeCredentials",
    "RootCA",
    "client_context",
    "issue_node_cert",
    "peer_identity",
    "read_credentials",
    "server_context",
    "write_credentials",
]
