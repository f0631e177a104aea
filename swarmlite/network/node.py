"""A node's networking as one `NetworkDriver`: the mesh, its overlays, DNS, VIPs and ports.

Owns the order in which the parts are set up and the few facts that join them: the
overlays' VXLAN endpoints are this node's mesh address (known from the first MeshState),
the ingress network's bridge carries this node's own ingress address (not the shared
gateway, so that the routing mesh's masqueraded traffic comes back here), the DNS server
answers on every other network's gateway, and a task's first network that is neither
ingress nor internal gives its default route and DNS server (an internal network only
when the task has no other; see isolation.py for what an internal network reaches).
Service VIPs are load-balanced inside each container's own network namespace (its output
hook rewrites the VIP to a task address, as Docker does with IPVS in the container), so
that a backend on another node answers the client directly and
conntrack sees both ways; the node's own table serves published ports (and the node's own
connections to VIPs). Each part owns its own kernel objects (see mesh, overlay, attach,
dns, vip); this module owns none.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import msgspec

from swarmlite.api import Attachment, Task
from swarmlite.api.control import EndpointInfo, MeshState, NetworkInfo, NetworkState
from swarmlite.errors import NetworkSetupFailure
from swarmlite.log import kv
from swarmlite.network import attach as attaching
from swarmlite.network import ip
from swarmlite.network.dns import DnsServer
from swarmlite.network.isolation import isolate, remove_isolation
from swarmlite.network.mesh import Mesh
from swarmlite.network.overlay import Overlays
from swarmlite.network.vip import RoutingMesh, requests_by_service

log = logging.getLogger(__name__)

PREPARE_TIMEOUT = 30.0  # seconds a task waits for its networks before it is retried


class NodeNetwork:
    def __init__(
        self,
        node_id: str,
        data_dir: Path,
        *,
        underlay_addr: str,
        listen_port: int = 51820,
    ) -> None:
        self.node_id = node_id
        self.mesh = Mesh(node_id, data_dir, listen_port=listen_port, underlay_addr=underlay_addr)
        self.dns = DnsServer()
        self._overlays: Overlays | None = None
        self._routing: RoutingMesh | None = None
        self._networks: list[NetworkInfo] = []
        self._pending: NetworkState | None = None
        self._endpoints: list[EndpointInfo] = []
        self._containers: dict[str, tuple[Task, RoutingMesh]] = {}  # task id -> its VIP table
        self._lock = asyncio.Lock()
        self._applied = asyncio.Event()

    # ------------------------------------------------------------------ what the hello says

    @property
    def public_key(self) -> str:
        return self.mesh.public_key

    @property
    def next_key(self) -> str:
        return self.mesh.next_key

    @property
    def endpoint(self) -> str:
        return self.mesh.endpoint

    async def start(self) -> None:
        await self.mesh.start()

    # ------------------------------------------------------------------ NetworkDriver

    async def apply_mesh(self, state: MeshState) -> None:
        async with self._lock:
            await self.mesh.apply(state)
            vtep = ip.bare(state.address)
            if self._overlays is None or self._overlays.local_vtep != vtep:
                self._overlays = Overlays(vtep)
                log.info("overlays use this node's mesh address %s", kv(vtep=vtep))
            pending, self._pending = self._pending, None
        if pending is not None:
            await self.apply_networks(pending)

    async def apply_networks(self, state: NetworkState) -> None:
        async with self._lock:
            if self._overlays is None:
                self._pending = state  # the mesh address comes first
                return
            networks = [_as_bridged(n) for n in state.networks]
            await self._overlays.apply(networks)
            await isolate(networks)
            self._networks = networks
            await self.dns.update(state.endpoints, [n for n in state.networks if not n.ingress])
            ingress = next((n for n in networks if n.ingress and n.gateway), None)
            bridge = ip.bridge_name(ingress.vni) if ingress is not None else ""
            if self._routing is None or self._routing.ingress_bridge != bridge:
                self._routing = RoutingMesh(ingress_addrs=[], ingress_bridge=bridge)
            await self._routing.apply(state.endpoints, state.ports)
            self._endpoints = state.endpoints
            self._applied.set()
            self._applied = asyncio.Event()  # the next apply wakes the next waiters
            for task_id, (task, table) in list(self._containers.items()):
                try:
                    await table.apply(_visible(self._endpoints, task), [])
                except NetworkSetupFailure as exc:  # e.g. the container is gone
                    log.info("container VIP table not updated %s", kv(task=task_id, error=exc))
                    del self._containers[task_id]

    async def attach(self, task: Task, pid: int) -> None:
        # The first network gives the default route (and DNS server, see prepare).
        ordered = _route_order(task, self._networks)
        await attaching.attach(msgspec.structs.replace(task, networks=ordered), pid, self._networks)
        async with self._lock:
            table = RoutingMesh(attaching.container_netns(pid), ingress_addrs=[], ingress_bridge="")
            await table.apply(_visible(self._endpoints, task), [])
            self._containers[task.id] = (task, table)

    async def detach(self, task: Task) -> None:
        self._containers.pop(task.id, None)  # its table goes with its namespace
        await attaching.detach(task)

    async def prepare(self, task: Task) -> list[str]:
        """Wait until this node serves every network of the task (bridges, DNS), then name
        the DNS server of its first one. The network state may come after the task."""
        wanted = {a.network_id for a in task.networks}
        async with asyncio.timeout(PREPARE_TIMEOUT):
            while not wanted <= {n.network_id for n in self._networks}:
                await self._applied.wait()
        gateways = {n.network_id: n.gateway for n in self._networks if not n.ingress}
        ordered = _route_order(task, self._networks)
        servers = [gateways[a.network_id] for a in ordered if a.network_id in gateways]
        return [ip.bare(g) for g in servers[:1]]

    async def mesh_requests(self) -> dict[str, int]:
        """Cumulative new connections per service id through this node's published ports
        (see vip.py's note on requests); {} until the first network state is applied."""
        routing = self._routing  # not under the lock: an apply may hold it for seconds
        if routing is None:
            return {}
        counts = await routing.port_counts()
        return requests_by_service(counts.values())

    async def close(self) -> None:
        await self.dns.close()
        await remove_isolation()
        if self._routing is not None:
            await self._routing.remove()
        if self._overlays is not None:
            await self._overlays.apply([])
        await self.mesh.close()


def _route_order(task: Task, networks: list[NetworkInfo]) -> list[Attachment]:
    """The task's networks, the one that gives its default route and DNS server first:
    never the ingress network, and an internal one only when it has nothing else (as
    Docker, which takes the gateway from a network with outside connectivity)."""
    by_id = {n.network_id: n for n in networks}

    def rank(att: Attachment) -> int:
        info = by_id.get(att.network_id)
        if info is None:
            return 0
        return 2 if info.ingress else 1 if info.internal else 0

    return sorted(task.networks, key=rank)


def _visible(endpoints: list[EndpointInfo], task: Task) -> list[EndpointInfo]:
    """The VIPs of the services on the task's networks (what its DNS can name)."""
    networks = {a.network_id for a in task.networks}
    return [e for e in endpoints if e.network_id in networks]


def _as_bridged(network: NetworkInfo) -> NetworkInfo:
    """The ingress bridge carries this node's own address instead of the shared gateway."""
    if network.ingress and network.address:
        return msgspec.structs.replace(network, gateway=ip.bare(network.address))
    return network
