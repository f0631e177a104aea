"""Network: an overlay network that tasks (and, when attachable, standalone containers)
attach to.

Owns the Network object's shape. ``spec.name`` is unique among networks.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from swarmlite.api.meta import Meta


class NetworkSpec(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    name: str = ""
    driver: str = "overlay"
    subnet: str = ""  # CIDR; "" lets the allocator choose
    gateway: str = ""  # "" : the subnet's first address
    labels: dict[str, str] = {}
    attachable: bool = False  # standalone containers may join it too
    internal: bool = False
    ingress: bool = False  # the routing mesh's network (one per cluster)


class ContainerAttachment(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A standalone container on an attachable network (swarm's network attachment): added
    by the control API when a node starts one, given its address by the allocator, removed
    when the container is removed (or its node is)."""

    node_id: str
    container_id: str
    name: str = ""  # the container's name, which DNS answers on the network
    address: str = ""  # "10.0.1.9/24"; "" until the allocator chose it


class NetworkStatus(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """What the allocator chose; empty until it did."""

    vni: int = 0  # the VXLAN segment
    subnet: str = ""
    gateway: str = ""  # also where each node's DNS server answers on this network
    attachments: list[ContainerAttachment] = []  # standalone containers (attachable only)


class Network(Meta, frozen=True, kw_only=True, tag="network"):
    KIND: ClassVar[str] = "network"
    NAMED: ClassVar[bool] = True

    spec: NetworkSpec = msgspec.field(default_factory=NetworkSpec)
    status: NetworkStatus = msgspec.field(default_factory=NetworkStatus)

    def unique_name(self) -> str | None:
        return self.spec.name
