"""Who holds which address, and which nodes still need one, kept so a step need not scan.

Owns, for every network, an ``AddressPool`` of what is held there (its gateway, the
attachments of tasks that are not finished, services' VIPs, standalone containers'
attachments, and on the ingress network the nodes' own addresses), so that a full pool is
known in O(1) and never searched; and of the nodes: their mesh addresses, those without
one, and those without an address on the ingress network. Does not decide anything:
``plan`` reads it where it used to scan the nodes, services, networks and tasks.

Invariant: after ``build(read, ingress)`` and then ``update`` for every later write, in
commit order, ``state()`` equals that of a fresh ``build`` of the same store. It is built
for one ingress network (its id and subnet): ``stale`` turns true when that changes, and
the allocator builds it again (once per cluster's life, in practice).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from ipaddress import IPv4Network
from typing import Any

from swarmlite.api import Network, Node, Service, Task
from swarmlite.manager.allocator.ipam import AddressPool, parse_interface, parse_network
from swarmlite.manager.allocator.taskindex import holds_addresses
from swarmlite.store import Event, ReadTx

Pair = tuple[str, int]  # (network id, address)


def allocated_subnet(network: Network) -> IPv4Network | None:
    if network.status.vni > 0 and network.status.subnet:
        return parse_network(network.status.subnet)
    return None


class Holdings:
    def __init__(self, ingress: Network | None) -> None:
        self.ingress_id = ingress.id if ingress is not None else ""
        self.ingress_subnet = allocated_subnet(ingress) if ingress is not None else None
        self.stale = False  # the ingress network changed: build again
        self.pools: dict[str, AddressPool] = {}
        self._held: dict[str, tuple[Pair, ...]] = {}  # "kind/id" of a holder -> what it holds
        self.mesh: Counter[int] = Counter()  # mesh addresses held by nodes
        self.no_mesh: dict[str, Node] = {}  # nodes without a mesh address
        self.no_ingress: dict[str, Node] = {}  # nodes without an address in the ingress subnet

    @classmethod
    def build(cls, read: ReadTx, ingress: Network | None) -> Holdings:
        holdings = cls(ingress)
        for kind in (Network, Service, Node, Task):
            for obj in read.list(kind):
                holdings.update(None, obj)
        return holdings

    def pool(self, network_id: str) -> AddressPool:
        found = self.pools.get(network_id)
        if found is None:
            found = self.pools[network_id] = AddressPool()
        return found

    def events(self, events: Iterable[Event]) -> None:
        for event in events:
            self.update(event.old, event.new)

    def update(self, old: Any, new: Any) -> None:
        """One write of any object (``old`` -> ``new``; None for a creation or deletion)."""
        either = new if new is not None else old
        if isinstance(either, Task):
            pairs = _task_pairs(new)
            if pairs or _task_pairs(old):  # else it held nothing and holds nothing (most)
                self._hold(f"task/{either.id}", pairs)
        elif isinstance(either, Service):
            pairs = [] if new is None else [(v.network_id, v.address) for v in new.endpoint.vips]
            self._hold(f"service/{either.id}", pairs)
        elif isinstance(either, Network):
            self._network(either.id, new)
        elif isinstance(either, Node):
            self._node(either.id, old, new)

    def _network(self, network_id: str, new: Network | None) -> None:
        pairs: list[tuple[str, str]] = []
        subnet = None
        if new is not None:
            subnet = allocated_subnet(new)
            pairs = [(network_id, new.status.gateway)] if subnet is not None else []
            pairs += [(network_id, a.address) for a in new.status.attachments]
        # Another ingress network (created, or older) is found by the allocator's check.
        if network_id == self.ingress_id and subnet != self.ingress_subnet:
            self.stale = True
        self.pool(network_id).set_subnet(subnet)
        self._hold(f"network/{network_id}", pairs)

    def _node(self, node_id: str, old: Node | None, new: Node | None) -> None:
        if old is not None:
            iface = parse_interface(old.mesh_address)
            if iface is not None:
                self.mesh[int(iface.ip)] -= 1
                if self.mesh[int(iface.ip)] <= 0:
                    del self.mesh[int(iface.ip)]
        self.no_mesh.pop(node_id, None)
        self.no_ingress.pop(node_id, None)
        pairs: list[tuple[str, str]] = []
        if new is not None:
            iface = parse_interface(new.mesh_address)
            if iface is not None:
                self.mesh[int(iface.ip)] += 1
            if not new.mesh_address:
                self.no_mesh[node_id] = new
            address = parse_interface(new.ingress_address)
            if self.ingress_subnet is not None and (
                address is None or address.network != self.ingress_subnet
            ):
                self.no_ingress[node_id] = new
            if self.ingress_id and address is not None:
                pairs.append((self.ingress_id, new.ingress_address))
        self._hold(f"node/{node_id}", pairs)

    def _hold(self, key: str, pairs: Iterable[tuple[str, str]]) -> None:
        for network_id, value in self._held.pop(key, ()):
            pool = self.pools.get(network_id)
            if pool is not None:
                pool.release(value)
        held: list[Pair] = []
        for network_id, text in pairs:
            iface = parse_interface(text)
            if iface is not None:
                held.append((network_id, int(iface.ip)))
                self.pool(network_id).hold(int(iface.ip))
        if held:
            self._held[key] = tuple(held)

    def state(self) -> dict[str, object]:
        """What it says, comparable with a fresh build's (for tests)."""
        pools = {
            network_id: (pool.subnet, pool.free, dict(pool.held))
            for network_id, pool in self.pools.items()
            if pool.subnet is not None or pool.held
        }
        return {
            "pools": pools,
            "mesh": dict(self.mesh),
            "no_mesh": set(self.no_mesh),
            "no_ingress": set(self.no_ingress),
            "ingress": (self.ingress_id, self.ingress_subnet),
        }


def _task_pairs(task: Task | None) -> list[tuple[str, str]]:
    if task is None or not holds_addresses(task):
        return []
    return [(att.network_id, att.address) for att in task.networks]
