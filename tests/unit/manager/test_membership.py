from __future__ import annotations

from types import SimpleNamespace

import pytest

from swarmlite.api import NodeRole
from swarmlite.api.control import NodeUpdate
from swarmlite.errors import FailedPrecondition
from swarmlite.manager.membership import leave_raft
from swarmlite.rpc import Peer

PEER = Peer(address="local", identity=None)


class Raft:
    def __init__(self, *voters: str) -> None:
        self._voters = frozenset(voters)

    def voters(self) -> frozenset[str]:
        return self._voters


def ctx(*voters: str) -> SimpleNamespace:
    return SimpleNamespace(node_id="m1", raft=Raft(*voters))


async def test_a_manager_leaves_only_with_force() -> None:
    demoted: list[NodeUpdate] = []

    async def demote(request: NodeUpdate, peer: Peer) -> None:
        demoted.append(request)

    with pytest.raises(FailedPrecondition, match="leaves 2 managers; without a raft quorum"):
        await leave_raft(ctx("m1", "m2", "m3"), demote, force=False, peer=PEER)
    with pytest.raises(FailedPrecondition, match="erases the cluster's whole state"):
        await leave_raft(ctx("m1"), demote, force=False, peer=PEER)
    assert demoted == []


async def test_a_forced_leave_demotes_this_manager_unless_it_is_the_last() -> None:
    demoted: list[NodeUpdate] = []

    async def demote(request: NodeUpdate, peer: Peer) -> None:
        demoted.append(request)

    await leave_raft(ctx("m1"), demote, force=True, peer=PEER)
    assert demoted == []
    await leave_raft(ctx("m1", "m2"), demote, force=True, peer=PEER)
    assert demoted == [NodeUpdate(ref="m1", role=NodeRole.WORKER, force=True)]
