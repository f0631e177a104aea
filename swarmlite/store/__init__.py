"""The replicated object store: versioned objects, transactions (compare-and-set by
version), watch streams, and the ``Proposer`` seam through which Raft commits writes.

Raft is not imported here: the daemon gives ``Store`` a Raft-backed proposer.
"""

from swarmlite.store.facade import DEFAULT_MAX_ATTEMPTS, Store, UpdateFn
from swarmlite.store.memory import ApplyResult, KindArg, MemoryStore, ReadTx
from swarmlite.store.merge import Edit
from swarmlite.store.proposer import LocalProposer, Proposer
from swarmlite.store.tx import (
    Create,
    Delete,
    Op,
    Patch,
    Transaction,
    Tx,
    Update,
    decode_transaction,
    encode_transaction,
)
from swarmlite.store.watch import DEFAULT_MAX_PENDING, Event, EventAction, Predicate, Watch

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_PENDING",
    "ApplyResult",
    "Create",
    "Delete",
    "Edit",
    "Event",
    "EventAction",
    "KindArg",
    "LocalProposer",
    "MemoryStore",
    "Op",
    "Patch",
    "Predicate",
    "Proposer",
    "ReadTx",
    "Store",
    "Transaction",
    "Tx",
    "Update",
    "UpdateFn",
    "Watch",
    "decode_transaction",
    "encode_transaction",
]
