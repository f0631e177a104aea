"""Cluster: the one object holding cluster-wide settings.

Owns the Cluster object's shape.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from swarmlite.api.meta import Meta


class ClusterSettings(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    heartbeat_period: float = 1.0  # seconds; a node missing 3 periods is DOWN
    task_history_limit: int = 5  # finished tasks kept per slot
    cert_expiry: float = 90 * 86400.0  # seconds a node certificate is issued for
    autolock: bool = False  # managers seal their raft keys with the unlock key


class ClusterSpec(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    name: str = "default"
    # swarmlite.default-addr-pool, swarmlite.default-addr-size, swarmlite.mesh-pool
    # (see manager.allocator) and any operator's labels
    labels: dict[str, str] = {}
    settings: ClusterSettings = msgspec.field(default_factory=ClusterSettings)


class RootRotation(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A root CA rotation under way (`swarm ca --rotate`, see ``ca.rotation``): the new
    root, its certificate cross-signed by the old root's key, and the nodes that already
    hold a certificate from it (the leader records each when it issues one)."""

    cert_pem: bytes
    key_pem: bytes
    cross_signed_pem: bytes
    started_at: float = 0.0  # wall time
    renewed: tuple[str, ...] = ()


class RootCAMaterial(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The cluster's root CA; the store lives only on managers, which sign certificates."""

    cert_pem: bytes = b""
    key_pem: bytes = b""
    rotation: RootRotation | None = None  # until it ends, the old root above stays trusted


class JoinSecrets(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The secret halves of the join tokens; rotating one invalidates the old token."""

    worker: str = ""
    manager: str = ""


class Cluster(Meta, frozen=True, kw_only=True, tag="cluster"):
    KIND: ClassVar[str] = "cluster"

    spec: ClusterSpec = msgspec.field(default_factory=ClusterSpec)
    root_ca: RootCAMaterial = msgspec.field(default_factory=RootCAMaterial)
    join: JoinSecrets = msgspec.field(default_factory=JoinSecrets)
    removed_nodes: tuple[str, ...] = ()  # ids whose certificates every manager refuses
    unlock_key: str = ""  # with autolock: what a restarted manager needs (never shown in views)
