"""raft: swarmlite's own consensus. A pure core (`core`), a durable log (`storage`), a
transport over the cluster port (`transport`) and the node that drives them (`node`).

Outside `raft/`, a running member is used through `RaftNode`'s public methods, never its
core; `RaftCore` is exported for `RaftCore.bootstrap` (a new cluster's first log) and for
raft's own tests."""

from swarmlite.raft.core import CoreConfig, RaftCore, ReadState, Ready, Role, Status
from swarmlite.raft.entries import (
    Entry,
    EntryKind,
    HardState,
    Member,
    Membership,
    Snapshot,
    SnapshotMeta,
)
from swarmlite.raft.node import NodeConfig, RaftNode, StateMachine, Transport
from swarmlite.raft.storage import RaftStorage, Recovered
from swarmlite.raft.transport import RaftTransport

__all__ = [
    "CoreConfig",
    "Entry",
    "EntryKind",
    "HardState",
    "Member",
    "Membership",
    "NodeConfig",
    "RaftCore",
    "RaftNode",
    "RaftStorage",
    "RaftTransport",
    "ReadState",
    "Ready",
    "Recovered",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "StateMachine",
    "Status",
    "Transport",
]
