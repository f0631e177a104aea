"""Cluster: the one object holding cluster-wide settings.

Owns the Cluster object's shape.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from swarmlite.api.meta import Meta


class ClusterSettings(msgspec.Struct, frozen=True, kw_only=True):
    heartbeat_period: float = 1.0  # seconds; a node missing 3 periods is DOWN
    task_history_limit: int = 5  # finished tasks kept per slot


class ClusterSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str = "default"
    settings: ClusterSettings = msgspec.field(default_factory=ClusterSettings)


class Cluster(Meta, frozen=True, kw_only=True, tag="cluster"):
    KIND: ClassVar[str] = "cluster"

    spec: ClusterSpec = msgspec.field(default_factory=ClusterSpec)
