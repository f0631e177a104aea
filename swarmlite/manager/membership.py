"""This manager's own place in the raft membership: asking in when new, leaving with its node.

Owns the two steps a manager takes about itself. A new manager (one with no raft state
yet) asks the leader, through any other manager it knows, to add it as a voter
(`RAFT_JOIN`), round after round until one does. A manager whose node leaves the cluster
is refused without `force` (leaving costs the cluster a manager, or its whole state if it
is the last one); with it, it demotes itself first, which hands leadership over and takes
it out of the membership, so that the others do not wait on a member that is gone. The
leader's side of a join is controlapi/join.py's; the rules of a demotion are
controlapi/nodes.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from swarmlite.api import NodeRole
from swarmlite.api.control import NodeUpdate, RaftJoinRequest
from swarmlite.api.routes import RAFT_JOIN
from swarmlite.errors import FailedPrecondition, SwarmliteError
from swarmlite.log import kv
from swarmlite.manager.context import ManagerContext
from swarmlite.rpc import Peer, RpcClient

log = logging.getLogger(__name__)

JOIN_RETRY = 1.0  # seconds between rounds over the known managers

Demote = Callable[[NodeUpdate, Peer], Awaitable[object]]


async def join_raft(ctx: ManagerContext, managers: Callable[[], Sequence[str]]) -> None:
    """Ask the other managers, in turn, to add this one to the raft membership; return
    once one has."""
    while True:
        for address in managers():
            if address == ctx.addr:
                continue
            client = RpcClient(f"https://{address}", ctx.client_ssl(), timeout=60.0)
            try:
                await client.request(RAFT_JOIN, RaftJoinRequest(addr=ctx.addr))
                log.info("joined the raft membership %s", kv(via=address))
                return
            except SwarmliteError as exc:
                log.info("raft join not done yet %s", kv(via=address, error=exc.message))
            finally:
                await client.close()
        await ctx.clock.sleep(JOIN_RETRY)


async def leave_raft(ctx: ManagerContext, demote: Demote, *, force: bool, peer: Peer) -> None:
    """Before this manager's node leaves the cluster: refuse without `force`; with it,
    demote this node (through `demote`, the control API's node update) unless it is the
    only manager."""
    others = ctx.raft.voters() - {ctx.node_id}
    if not force:
        raise FailedPrecondition(
            "this node is a manager: leaving "
            + (
                f"leaves {len(others)} managers; without a raft quorum the cluster is inaccessible"
                if others
                else "erases the cluster's whole state"
            ),
            hint="demote it first (`swarmlite node demote`), or use `--force`",
        )
    if others:
        # Hand leadership over and leave the raft membership before stopping.
        await demote(NodeUpdate(ref=ctx.node_id, role=NodeRole.WORKER, force=True), peer)
