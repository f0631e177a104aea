"""The route table: every call of the control API, declared once.

A ``Route`` names a path, the request it takes, the reply it gives (for a stream: the type
of each item), who may call it, and whether the leader must answer it (a follower forwards
such a call). Everything else derives from this table: the manager registers a handler per
route and gets the role check and the forwarding for free; a worker answers every
manager route with "not a manager"; the CLI's client and the tests' fake daemon take a
route and know the types on both ends. A second front end (the Docker Engine API) calls
the same routes.

Who may call (``role``):
- ``manager``: a manager's certificate, or the node's own unix socket (the local admin);
- ``local``: the node's own unix socket only (it acts on that node: leave);
- ``node``: any node of the cluster, or the local socket (version, info of the answering node);
- ``public``: anyone, no certificate needed (joining: the token is the credential).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, NamedTuple, TypeVar

import msgspec

from swarmlite.api import control as c

Req = TypeVar("Req", bound=msgspec.Struct)
Rep = TypeVar("Rep", bound=msgspec.Struct)

Role = Literal["manager", "local", "node", "public"]

# ``details["refusal"]`` of a worker's answer to a manager route, so that a front end (the
# Docker Engine API) can tell "not a manager" from other failed preconditions.
NOT_A_MANAGER = "not_a_manager"


@dataclass(frozen=True)
class Route(Generic[Req, Rep]):
    path: str
    request: type[Req]
    reply: type[Rep]  # a stream's items
    role: Role = "manager"
    leader: bool = True  # the leader answers; a follower forwards the call to it
    stream: bool = False

    def __str__(self) -> str:
        return self.path


def _at(
    path: str,
    request: type[Req],
    reply: type[Rep],
    *,
    role: Role = "manager",
    leader: bool = True,
    stream: bool = False,
) -> Route[Req, Rep]:
    return Route(path, request, reply, role, leader, stream)


def _route(
    path: str,
    request: type[Req],
    reply: type[Rep],
    *,
    role: Role = "manager",
    leader: bool = True,
    stream: bool = False,
) -> Route[Req, Rep]:
    return _at(c.CONTROL + path, request, reply, role=role, leader=leader, stream=stream)


# --------------------------------------------------------------------------- this node

VERSION = _route("/version", c.Empty, c.VersionInfo, role="node", leader=False)
INFO = _route("/info", c.Empty, c.Info, role="node", leader=False)
LEAVE = _route("/leave", c.LeaveRequest, c.Empty, role="local", leader=False)

# --------------------------------------------------------------------------- the swarm

SWARM_INSPECT = _route("/swarm/inspect", c.Empty, c.SwarmView)
SWARM_UPDATE = _route("/swarm/update", c.SwarmUpdate, c.SwarmView)
UNLOCK_KEY = _route("/swarm/unlock-key", c.UnlockKeyRequest, c.UnlockKey)
SWARM_CA = _route("/swarm/ca", c.CARequest, c.CAView)
UNLOCK = _route("/swarm/unlock", c.UnlockRequest, c.Empty, role="local", leader=False)
JOIN_TOKEN = _route("/join-token", c.JoinTokenRequest, c.JoinTokenReply)
SWARM_BACKUP = _route("/swarm/backup", c.Empty, c.Backup)

# --------------------------------------------------------------------------- nodes

NODE_LS = _route("/node/ls", c.ListRequest, c.NodeList)
NODE_INSPECT = _route("/node/inspect", c.NodeRef, c.NodeView)
NODE_UPDATE = _route("/node/update", c.NodeUpdate, c.NodeView)
NODE_RM = _route("/node/rm", c.NodeRemove, c.Empty)
NODE_PS = _route("/node/ps", c.NodeTasks, c.TaskList)

# --------------------------------------------------------------------------- stacks, services

STACK_DEPLOY = _route("/stack/deploy", c.StackDeploy, c.StackDeployReply)
STACK_LS = _route("/stack/ls", c.Empty, c.StackList)
STACK_RM = _route("/stack/rm", c.NameRef, c.StackDeployReply)
SERVICE_CREATE = _route("/service/create", c.ServiceCreate, c.ServiceView)
SERVICE_LS = _route("/service/ls", c.ServiceFilter, c.ServiceList)
SERVICE_INSPECT = _route("/service/inspect", c.NameRef, c.ServiceView)
SERVICE_UPDATE = _route("/service/update", c.ServiceUpdate, c.ServiceView)
SERVICE_SCALE = _route("/service/scale", c.ServiceScale, c.ServiceView)
SERVICE_ROLLBACK = _route("/service/rollback", c.NameRef, c.ServiceView)
SERVICE_RM = _route("/service/rm", c.NameRef, c.Empty)
TASK_LS = _route("/task/ls", c.TaskFilter, c.TaskList)
SERVICE_LOGS = _route("/service/logs", c.LogsRequest, c.LogLine, stream=True)
EVENTS = _route("/events", c.EventsRequest, c.ClusterEvent, stream=True)

# --------------------------------------------------------------------------- networks, blobs

NETWORK_CREATE = _route("/network/create", c.NetworkCreate, c.NetworkView)
NETWORK_LS = _route("/network/ls", c.ListRequest, c.NetworkList)
NETWORK_INSPECT = _route("/network/inspect", c.NameRef, c.NetworkView)
NETWORK_RM = _route("/network/rm", c.NameRef, c.NetworkView)
# A node's standalone containers on attachable networks (its Docker API asks).
NETWORK_ATTACH = _route("/network/attach", c.NetworkAttach, c.NetworkAttachReply, role="node")
NETWORK_DETACH = _route("/network/detach", c.NetworkDetach, c.Empty, role="node")
SECRET_CREATE = _route("/secret/create", c.BlobCreate, c.BlobView)
SECRET_LS = _route("/secret/ls", c.ListRequest, c.BlobList)
SECRET_INSPECT = _route("/secret/inspect", c.NameRef, c.BlobView)
SECRET_RM = _route("/secret/rm", c.NameRef, c.BlobView)
CONFIG_CREATE = _route("/config/create", c.BlobCreate, c.BlobView)
CONFIG_LS = _route("/config/ls", c.ListRequest, c.BlobList)
CONFIG_INSPECT = _route("/config/inspect", c.NameRef, c.BlobView)
CONFIG_RM = _route("/config/rm", c.NameRef, c.BlobView)


# --------------------------------------------------------------------------- joining, the CA

JOIN_CA = _at(c.JOIN_CA, c.Empty, c.CAReply, role="public", leader=False)
JOIN = _at(c.JOIN, c.JoinRequest, c.JoinReply, role="public")
RAFT_JOIN = _at(c.RAFT_JOIN, c.RaftJoinRequest, c.Empty)
CA_RENEW = _at(c.CA_RENEW, c.RenewRequest, c.RenewReply, role="node")


class BlobRoutes(NamedTuple):
    """The four calls of secrets, or of configs: the same shapes for both kinds."""

    create: Route[c.BlobCreate, c.BlobView]
    ls: Route[c.ListRequest, c.BlobList]
    inspect: Route[c.NameRef, c.BlobView]
    rm: Route[c.NameRef, c.BlobView]


SECRET_ROUTES = BlobRoutes(SECRET_CREATE, SECRET_LS, SECRET_INSPECT, SECRET_RM)
CONFIG_ROUTES = BlobRoutes(CONFIG_CREATE, CONFIG_LS, CONFIG_INSPECT, CONFIG_RM)

ROUTES: tuple[Route[Any, Any], ...] = (
    VERSION,
    INFO,
    LEAVE,
    SWARM_INSPECT,
    SWARM_UPDATE,
    UNLOCK_KEY,
    SWARM_CA,
    UNLOCK,
    JOIN_TOKEN,
    SWARM_BACKUP,
    NODE_LS,
    NODE_INSPECT,
    NODE_UPDATE,
    NODE_RM,
    NODE_PS,
    STACK_DEPLOY,
    STACK_LS,
    STACK_RM,
    SERVICE_CREATE,
    SERVICE_LS,
    SERVICE_INSPECT,
    SERVICE_UPDATE,
    SERVICE_SCALE,
    SERVICE_ROLLBACK,
    SERVICE_RM,
    TASK_LS,
    SERVICE_LOGS,
    EVENTS,
    NETWORK_CREATE,
    NETWORK_LS,
    NETWORK_INSPECT,
    NETWORK_RM,
    NETWORK_ATTACH,
    NETWORK_DETACH,
    SECRET_CREATE,
    SECRET_LS,
    SECRET_INSPECT,
    SECRET_RM,
    CONFIG_CREATE,
    CONFIG_LS,
    CONFIG_INSPECT,
    CONFIG_RM,
    JOIN_CA,
    JOIN,
    RAFT_JOIN,
    CA_RENEW,
)
"""Every route, in the order declared above."""

BY_PATH = {route.path: route for route in ROUTES}
PUBLIC_PATHS = frozenset(route.path for route in ROUTES if route.role == "public")
