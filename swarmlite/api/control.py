"""Wire shapes of the cluster's APIs: control (the CLI), join, CA and dispatcher sessions.

Owns requests and replies only; the manager's controlapi, dispatcher and join service
serve them, the CLI and the agent call them. Paths live here too, so that both ends name
them once.
"""

from __future__ import annotations

import msgspec

from swarmlite.api.node import Node
from swarmlite.api.states import NodeAvailability, NodeRole
from swarmlite.api.task import Task

# --------------------------------------------------------------------------- paths

CONTROL = "/control/v1"
NODE_LS = f"{CONTROL}/node/ls"
NODE_INSPECT = f"{CONTROL}/node/inspect"
NODE_UPDATE = f"{CONTROL}/node/update"
NODE_RM = f"{CONTROL}/node/rm"
NODE_PS = f"{CONTROL}/node/ps"
JOIN_TOKEN = f"{CONTROL}/join-token"
INFO = f"{CONTROL}/info"
LEAVE = f"{CONTROL}/leave"  # local daemon only (unix socket)

JOIN_CA = "/join/v1/ca"  # public: no client certificate needed
JOIN = "/join/v1/join"  # public: the token is the credential
RAFT_JOIN = "/join/v1/raft"  # a manager's new certificate asks to become a raft voter
CA_RENEW = "/ca/v1/renew"
SESSION = "/dispatcher/v1/session"

PUBLIC_PATHS = frozenset({JOIN_CA, JOIN})

# --------------------------------------------------------------------------- control


class Empty(msgspec.Struct, frozen=True, kw_only=True):
    pass


class ManagerStatus(msgspec.Struct, frozen=True, kw_only=True):
    addr: str
    leader: bool = False
    reachability: str = "unknown"  # reachable | unreachable | unknown


class NodeView(msgspec.Struct, frozen=True, kw_only=True):
    """A node as `node ls`/`inspect` show it: the stored object plus live manager status."""

    node: Node
    manager: ManagerStatus | None = None
    self: bool = False  # the node answering the call


class NodeList(msgspec.Struct, frozen=True, kw_only=True):
    nodes: list[NodeView]


class NodeRef(msgspec.Struct, frozen=True, kw_only=True):
    ref: str  # id, unique id prefix, or hostname


class TaskList(msgspec.Struct, frozen=True, kw_only=True):
    tasks: list[Task] = []


class NodeUpdate(msgspec.Struct, frozen=True, kw_only=True):
    ref: str
    availability: NodeAvailability | None = None
    role: NodeRole | None = None
    label_add: dict[str, str] = {}
    label_rm: list[str] = []
    force: bool = False  # allow a demotion that loses quorum


class NodeRemove(msgspec.Struct, frozen=True, kw_only=True):
    ref: str
    force: bool = False


class JoinTokenRequest(msgspec.Struct, frozen=True, kw_only=True):
    role: NodeRole
    rotate: bool = False


class JoinTokenReply(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    managers: list[str]  # advertise addresses to join through


class Info(msgspec.Struct, frozen=True, kw_only=True):
    node_id: str
    cluster_id: str
    role: NodeRole
    hostname: str
    addr: str
    managers: list[str]
    leader: str | None = None  # leader's node id, when this node knows it
    state: str = "active"  # active | pending | locked | inactive


class LeaveRequest(msgspec.Struct, frozen=True, kw_only=True):
    force: bool = False


# --------------------------------------------------------------------------- join and CA


class CAReply(msgspec.Struct, frozen=True, kw_only=True):
    cert_pem: bytes


class JoinRequest(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    csr_pem: bytes
    hostname: str
    addr: str  # advertise address (host:port) of the cluster port
    version: str = ""


class JoinReply(msgspec.Struct, frozen=True, kw_only=True):
    node_id: str
    cluster_id: str
    role: NodeRole
    cert_pem: bytes
    ca_cert_pem: bytes
    managers: list[str]  # advertise addresses of the managers


class RaftJoinRequest(msgspec.Struct, frozen=True, kw_only=True):
    addr: str  # where this manager's raft transport listens


class RenewRequest(msgspec.Struct, frozen=True, kw_only=True):
    csr_pem: bytes


class RenewReply(msgspec.Struct, frozen=True, kw_only=True):
    cert_pem: bytes
    role: NodeRole


# --------------------------------------------------------------------------- sessions


class SessionHello(msgspec.Struct, frozen=True, kw_only=True, tag="hello"):
    node_id: str
    hostname: str
    addr: str
    version: str = ""
    runtime: str = ""


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True, tag="heartbeat"):
    pass


class SessionInfo(msgspec.Struct, frozen=True, kw_only=True, tag="info"):
    """From the manager: whom to reconnect to, how often to beat, what role to hold."""

    managers: list[str]
    heartbeat_period: float
    role: NodeRole
    leader_addr: str | None = None


AgentMessage = SessionHello | Heartbeat
ManagerMessage = SessionInfo
