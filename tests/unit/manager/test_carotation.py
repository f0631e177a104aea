"""A root CA rotation on the manager side, with a local store: `swarm ca --rotate` starts
it, each renewal is signed by the new root (with the cross-signed one) and recorded, and
the leader's loop ends it once every node that is not down holds a new certificate."""

from __future__ import annotations

from typing import Any

import pytest

from swarmlite.api import Cluster, NodeRole, NodeState, RootCAMaterial
from swarmlite.api.control import CARequest, Empty, RenewRequest
from swarmlite.ca import Identity, RootCA, new_key_and_csr
from swarmlite.ca.rotation import issued_by, split_pems
from swarmlite.errors import FailedPrecondition, PermissionDenied, Unavailable
from swarmlite.manager.carotation import RootRotationLoop
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.ca import CAAPI
from swarmlite.manager.controlapi.join import JoinAPI
from swarmlite.rpc import Peer
from swarmlite.store import LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_node

CLUSTER = "cluster-a"


@pytest.fixture
async def ctx() -> ManagerContext:
    root = RootCA.create(CLUSTER)
    memory = MemoryStore()
    clock = FakeClock()
    store = Store(memory, LocalProposer(memory), clock=clock)
    cluster = Cluster(
        id=CLUSTER, root_ca=RootCAMaterial(cert_pem=root.cert_pem, key_pem=root.key_pem)
    )
    tx = Tx().create(cluster)
    tx.create(make_node("n1", hostname="h1", role=NodeRole.MANAGER))
    tx.create(make_node("n2", hostname="h2"))
    tx.create(make_node("n3", hostname="h3", state=NodeState.DOWN))
    await store.propose(tx)
    raft: Any = None  # renewals and the CA view need no raft member
    return ManagerContext(
        node_id="n1",
        cluster_id=CLUSTER,
        addr="10.0.0.1:2377",
        store=store,
        raft=raft,
        clock=clock,
        client_ssl=lambda: pytest.fail("no call leaves this manager"),
    )


def peer(node_id: str, role: str = "worker") -> Peer:
    return Peer(identity=Identity(node_id=node_id, role=role, cluster_id=CLUSTER), address="x")


async def renew(ctx: ManagerContext, node_id: str, role: str = "worker") -> bytes:
    _, csr = new_key_and_csr()
    reply = await JoinAPI(ctx).renew(RenewRequest(csr_pem=csr), peer(node_id, role))
    return reply.cert_pem


async def test_a_rotation_from_start_to_end(ctx: ManagerContext) -> None:
    old_root = ctx.cluster().root_ca.cert_pem
    view = await CAAPI(ctx).ca(CARequest(rotate=True), peer("n1", "manager"))
    assert view.rotating and view.cert_pem == old_root and view.pending == ["h1", "h2"]
    rotation = ctx.cluster().root_ca.rotation
    assert rotation is not None

    with pytest.raises(FailedPrecondition, match="already under way"):
        await CAAPI(ctx).ca(CARequest(rotate=True), peer("n1", "manager"))

    chain = split_pems(await renew(ctx, "n2"))
    assert len(chain) == 2
    assert issued_by(chain[0], rotation.cert_pem) and chain[1] == rotation.cross_signed_pem
    assert issued_by(chain[1], old_root)
    rotation = ctx.cluster().root_ca.rotation
    assert rotation is not None and rotation.renewed == ("n2",)

    loop = RootRotationLoop(ctx.store, ctx.clock)
    await loop.reconcile()
    assert ctx.cluster().root_ca.rotation is not None  # h1 has not renewed; h3 is down

    await renew(ctx, "n1", "manager")
    await loop.reconcile()
    ended = ctx.cluster().root_ca
    assert ended == RootCAMaterial(cert_pem=rotation.cert_pem, key_pem=rotation.key_pem)
    view = await CAAPI(ctx).ca(CARequest(), peer("n1", "manager"))
    assert not view.rotating and view.cert_pem == rotation.cert_pem

    # After the end: certificates from the new root, with no chain.
    after = split_pems(await renew(ctx, "n2"))
    assert len(after) == 1 and issued_by(after[0], rotation.cert_pem)


async def test_joining_waits_for_the_rotation(ctx: ManagerContext) -> None:
    await CAAPI(ctx).rotate()

    with pytest.raises(Unavailable, match="being rotated"):
        await JoinAPI(ctx).ca(Empty(), Peer(identity=None, address="x"))


async def test_only_a_manager_renews_for_another_node(ctx: ManagerContext) -> None:
    _, csr = new_key_and_csr()
    forwarded = RenewRequest(csr_pem=csr, node_id="n2")

    with pytest.raises(PermissionDenied, match="only a manager"):
        await JoinAPI(ctx).renew(forwarded, peer("n3"))
    reply = await JoinAPI(ctx).renew(forwarded, peer("n1", "manager"))
    assert reply.role is NodeRole.WORKER  # signed for n2, not for the manager that forwarded
