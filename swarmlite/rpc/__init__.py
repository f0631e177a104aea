"""rpc: HTTPS + msgpack over aiohttp with mutual TLS, and the error envelope.

Used by raft, the dispatcher, the control API and the CLI alike. A server is built with
``RpcServer(ssl_context)``, handlers added with ``add_unary``/``add_stream``; a client with
``RpcClient(base_url, ssl_context)``. Errors cross the wire as their own class.
"""

from swarmlite.rpc.client import RpcClient
from swarmlite.rpc.envelope import DEFAULT_MAX_MESSAGE_BYTES, MSGPACK, ErrorEnvelope
from swarmlite.rpc.server import (
    Authorize,
    Identity,
    Peer,
    RpcServer,
    StreamHandler,
    UnaryHandler,
    identity_from_der,
    require_role,
    ssl_object_identity,
)
from swarmlite.rpc.stream import ClientStream, ServerStream, Stream

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MSGPACK",
    "Authorize",
    "ClientStream",
    "ErrorEnvelope",
    "Identity",
    "Peer",
    "RpcClient",
    "RpcServer",
    "ServerStream",
    "Stream",
    "StreamHandler",
    "UnaryHandler",
    "identity_from_der",
    "require_role",
    "ssl_object_identity",
]
