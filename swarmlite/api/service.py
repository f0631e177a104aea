"""Service: a named group of identical tasks, and how many of them to run.

Owns the Service object's shape. ``spec.name`` is unique among services.
"""

from __future__ import annotations

import enum
from typing import ClassVar

import msgspec

from swarmlite.api.meta import Meta


class ServiceMode(enum.Enum):
    REPLICATED = "replicated"  # `replicas` tasks, one per slot 1..replicas
    GLOBAL = "global"  # one task per eligible node


class ServiceSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str = ""
    image: str = ""
    mode: ServiceMode = ServiceMode.REPLICATED
    replicas: int = 1  # ignored in global mode
    labels: dict[str, str] = {}


class Service(Meta, frozen=True, kw_only=True, tag="service"):
    KIND: ClassVar[str] = "service"
    NAMED: ClassVar[bool] = True

    spec: ServiceSpec = msgspec.field(default_factory=ServiceSpec)

    def unique_name(self) -> str | None:
        return self.spec.name
