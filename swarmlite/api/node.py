"""Node: one server of the cluster, manager or worker.

Owns the Node object's shape. ``spec`` is what an operator sets (`node update`,
`node promote`); ``status`` is what the cluster observed of the node (hostname and
addresses as the node reported them at join, and its health from heartbeats).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from swarmlite.api.meta import Meta
from swarmlite.api.resources import GenericResource
from swarmlite.api.states import NodeAvailability, NodeRole, NodeState


class NodeSpec(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    role: NodeRole = NodeRole.WORKER
    availability: NodeAvailability = NodeAvailability.ACTIVE
    labels: dict[str, str] = {}


class NodeStatus(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    state: NodeState = NodeState.UNKNOWN
    message: str = ""
    hostname: str = ""
    addresses: tuple[str, ...] = ()  # where other nodes reach it, first one preferred
    addr: str = ""  # advertise address of its cluster port, host:port
    version: str = ""  # swarmlite version the node runs
    runtime: str = ""  # container runtime and version, once the node has one
    last_seen: float = 0.0  # wall time of the session event that set `state`
    os: str = ""  # platform.os, as reported by the node ("linux")
    arch: str = ""  # platform.arch ("x86_64")
    nano_cpus: int = 0  # what the node has to give to tasks
    memory_bytes: int = 0
    # what else it advertises (--node-generic-resource): counts and named resources
    generic_resources: list[GenericResource] = []
    mesh_public_key: str = ""  # its WireGuard public key (base64)
    mesh_next_key: str = ""  # the key it will switch to during a rotation
    mesh_endpoint: str = ""  # underlay host:port where its WireGuard listens


class Node(Meta, frozen=True, kw_only=True, tag="node"):
    KIND: ClassVar[str] = "node"

    mesh_address: str = ""  # its address inside the mesh, with the pool's prefix
    # Its own address on the ingress network (the routing mesh's replies come back to it);
    # every node's bridge also carries the network's gateway, so that one cannot serve.
    ingress_address: str = ""

    spec: NodeSpec = msgspec.field(default_factory=NodeSpec)
    status: NodeStatus = msgspec.field(default_factory=NodeStatus)
