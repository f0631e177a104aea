"""The leader's loop that ends a root CA rotation once no node needs the old root.

Owns the end of a rotation (``ca.rotation`` tells the whole story): when every node that is
not down holds a certificate from the new root (the leader records each one it renews), the
old root is dropped from the Cluster object and the new one becomes the root; the dispatcher
then tells every node to trust the new root only. A node that was down through the whole
rotation is not waited for: its certificate comes from a root no manager trusts any more,
and it joins again (`swarmlite leave --force`, then `join` with a token of the new root).
Does not own starting a rotation (``controlapi.ca``) nor issuing certificates
(``controlapi.join``).
"""

from __future__ import annotations

import logging

import msgspec

from swarmlite.api import Cluster, Node
from swarmlite.ca.rotation import finish, pending
from swarmlite.log import kv
from swarmlite.manager.loop import ReconcileLoop
from swarmlite.store import Event, ReadTx, Tx

log = logging.getLogger(__name__)


class RootRotationLoop(ReconcileLoop):
    name = "ca-rotation"
    kinds = ("cluster", "node")

    def changed(self, events: list[Event]) -> None:
        pass  # every round looks at the one Cluster object and the nodes: few, and cheap

    async def reconcile(self) -> None:
        clusters = self.memory.list(Cluster)
        rotation = clusters[0].root_ca.rotation if clusters else None
        if rotation is None or pending(rotation, self.memory.list(Node)):
            return

        def write(state: ReadTx) -> Tx | None:
            cluster = state.list(Cluster)[0]
            now = cluster.root_ca.rotation
            if now is None or now.cert_pem != rotation.cert_pem:
                return None
            if pending(now, state.list(Node)):
                return None
            ended = msgspec.structs.replace(cluster, root_ca=finish(cluster.root_ca))
            return Tx().update(ended)

        await self.store.update(write)
        log.info(
            "root CA rotation done: the old root is no longer trusted %s",
            kv(renewed=len(rotation.renewed)),
        )
