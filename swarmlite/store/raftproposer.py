"""The Proposer that commits through Raft: what managers run in production.

Owns only the translation from the store's seam to `raft.RaftNode`; the node owns
replication and durability, the store owns what a transaction means.
"""

from __future__ import annotations

from swarmlite.errors import InternalError
from swarmlite.raft import RaftNode
from swarmlite.store.memory import ApplyResult


class RaftProposer:
    def __init__(self, node: RaftNode) -> None:
        self._node = node

    async def propose(self, data: bytes) -> ApplyResult:
        result = await self._node.propose(data)
        if not isinstance(result, ApplyResult):
            raise InternalError(f"raft applied a store entry but returned {result!r}")
        return result

    async def read_barrier(self) -> None:
        await self._node.read_barrier()
