"""What NodeNetwork tells the agent of the routing mesh's counts: connections by service,
every published port of a service added up, nothing before the first network state."""

from __future__ import annotations

from pathlib import Path

from swarmlite.network.node import NodeNetwork
from swarmlite.network.vip import PortCount


class CountingMesh:
    """Stands in for the node's RoutingMesh: only its counters."""

    def __init__(self, counts: dict[tuple[str, int], PortCount]) -> None:
        self.counts = counts

    async def port_counts(self) -> dict[tuple[str, int], PortCount]:
        return self.counts


async def test_no_counts_before_the_first_network_state(tmp_path: Path) -> None:
    network = NodeNetwork("n1", tmp_path, underlay_addr="198.18.0.1")
    assert await network.mesh_requests() == {}


async def test_counts_are_added_up_by_service(tmp_path: Path) -> None:
    network = NodeNetwork("n1", tmp_path, underlay_addr="198.18.0.1")
    network._routing = CountingMesh(  # type: ignore[assignment]
        {
            ("tcp", 8080): PortCount(service_id="svcweb", connections=10),
            ("tcp", 8443): PortCount(service_id="svcweb", connections=5),
            ("udp", 53): PortCount(service_id="svcdns", connections=2),
            ("tcp", 9090): PortCount(service_id="", connections=7),  # from an older manager
        }
    )
    assert await network.mesh_requests() == {"svcweb": 15, "svcdns": 2}
