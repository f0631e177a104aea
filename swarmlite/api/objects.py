"""The registry of object kinds: the ``Object`` union and ``KINDS`` by name.

Owns which kinds exist. Adding a kind means adding its struct (a ``Meta`` subclass with a
``tag`` and ``KIND``) to ``Object`` and to ``_ALL`` below; the store and codec follow.
"""

from __future__ import annotations

from typing import TypeVar

from swarmlite.api.cluster import Cluster
from swarmlite.api.meta import Meta
from swarmlite.api.network import Network
from swarmlite.api.node import Node
from swarmlite.api.secret import Config, Secret
from swarmlite.api.service import Service
from swarmlite.api.task import Task
from swarmlite.errors import InvalidArgument

Object = Node | Service | Task | Network | Secret | Config | Cluster
ObjectT = TypeVar("ObjectT", bound=Meta)  # an object of one kind, in generic signatures

_ALL: tuple[type[Meta], ...] = (Node, Service, Task, Network, Secret, Config, Cluster)
KINDS: dict[str, type[Meta]] = {cls.KIND: cls for cls in _ALL}


def kind_type(kind: str) -> type[Meta]:
    """The struct type of ``kind``; InvalidArgument naming the known kinds otherwise."""
    try:
        return KINDS[kind]
    except KeyError:
        raise InvalidArgument(
            f"unknown object kind {kind!r}", hint=f"known kinds: {', '.join(KINDS)}"
        ) from None
