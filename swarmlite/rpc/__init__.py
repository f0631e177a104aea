"""rpc: HTTPS + msgpack over aiohttp with mutual TLS, and the error envelope.

Used by raft, the dispatcher, the control API and the CLI alike. A server is built with
``RpcServer(ssl_context)``; a route of the control table (``api.routes``) is served with
``add_route`` (the caller's role checked from the route), raw paths with
``add_unary``/``add_stream`` (raft, sessions). A client is ``RpcClient(base_url,
ssl_context)`` inside an event loop (``request(route, req)``, ``items(route, req)``), or the
one synchronous ``ControlClient(host)`` for the CLI, the lab and the tests. Errors cross
the wire as their own class.
"""

from swarmlite.rpc.client import RpcClient
from swarmlite.rpc.control import ControlClient
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
    "ControlClient",
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
