"""Network: an overlay network that tasks attach to.

Owns the Network object's shape. ``spec.name`` is unique among networks.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from swarmlite.api.meta import Meta


class NetworkSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str = ""
    driver: str = "overlay"
    subnet: str = ""  # CIDR; "" lets the allocator choose
    gateway: str = ""  # "" : the subnet's first address
    labels: dict[str, str] = {}
    attachable: bool = False  # standalone containers may join it too
    internal: bool = False
    ingress: bool = False  # the routing mesh's network (one per cluster)


class NetworkStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the allocator chose; empty until it did."""

    vni: int = 0  # the VXLAN segment
    subnet: str = ""
    gateway: str = ""  # also where each node's DNS server answers on this network


class Network(Meta, frozen=True, kw_only=True, tag="network"):
    KIND: ClassVar[str] = "network"
    NAMED: ClassVar[bool] = True

    spec: NetworkSpec = msgspec.field(default_factory=NetworkSpec)
    status: NetworkStatus = msgspec.field(default_factory=NetworkStatus)

    def unique_name(self) -> str | None:
        return self.spec.name
