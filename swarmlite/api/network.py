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
    labels: dict[str, str] = {}


class Network(Meta, frozen=True, kw_only=True, tag="network"):
    KIND: ClassVar[str] = "network"
    NAMED: ClassVar[bool] = True

    spec: NetworkSpec = msgspec.field(default_factory=NetworkSpec)

    def unique_name(self) -> str | None:
        return self.spec.name
