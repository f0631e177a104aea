"""Standalone containers on attachable overlays: `docker run --network <overlay>` against
this node's Docker API.

Owns the node's half of swarm's network attachments: asking a manager (with this node's
certificate, through ``call``) whether a network may be joined, recording the attachment
and waiting until the allocator gave it an address, then wiring the running container
into the network (``NetworkDriver.prepare`` and ``attach``, as for a task whose id is the
container's), and forgetting it when the container is removed. Does not own the
attachment's record (the manager's control API and allocator) nor the interception of the
Engine API calls (``dockerapi.containers``).

Errors: a manager's refusal (not attachable, unknown network) comes back as it is; no
address within ``ADDRESS_TIMEOUT`` is ``Unavailable``; a node without networking refuses
with ``FailedPrecondition``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from swarmlite.api import Attachment, Task
from swarmlite.api.control import NetworkAttach, NetworkAttachReply, NetworkDetach
from swarmlite.api.routes import NETWORK_ATTACH, NETWORK_DETACH, Route
from swarmlite.clock import Clock
from swarmlite.errors import FailedPrecondition, NotFound, Unavailable
from swarmlite.log import kv

from .driver import NetworkDriver

log = logging.getLogger(__name__)

ADDRESS_TIMEOUT = 30.0  # seconds to wait for the allocator to give the address
_POLL = 0.2  # seconds between asks while the address is not there yet

Call = Callable[[Route[Any, Any], Any], Awaitable[Any]]


class StandaloneNetworks:
    """``call(route, request)`` reaches a manager as this node (``Session.request``)."""

    def __init__(self, call: Call, network: NetworkDriver | None, clock: Clock) -> None:
        self._call = call
        self._network = network
        self._clock = clock

    async def check(self, network: str) -> NetworkAttachReply | None:
        """The cluster network named ``network`` if a container may join it; None when the
        cluster has no such network (it may be the runtime's own); refusals raise."""
        try:
            reply: NetworkAttachReply = await self._call(
                NETWORK_ATTACH, NetworkAttach(network=network, container_id="-", check=True)
            )
        except NotFound:
            return None
        return reply

    async def attach(self, network: str, container_id: str, name: str, pid: int) -> str:
        """Put the running container (init process ``pid``) on ``network``; its address."""
        if self._network is None:
            raise FailedPrecondition("this node has no overlay networking for containers")
        request = NetworkAttach(network=network, container_id=container_id, name=name)
        deadline = self._clock.monotonic() + ADDRESS_TIMEOUT
        while True:
            reply: NetworkAttachReply = await self._call(NETWORK_ATTACH, request)
            if reply.attachment is not None and reply.attachment.address:
                break
            if self._clock.monotonic() >= deadline:
                raise Unavailable(
                    f"network {reply.name} gave container {name or container_id[:12]} "
                    f"no address within {ADDRESS_TIMEOUT:.0f} s"
                )
            await self._clock.sleep(_POLL)
        task = _as_task(reply, container_id, name)
        await self._network.prepare(task)
        await self._network.attach(task, pid)
        log.info(
            "container attached %s",
            kv(container=container_id[:12], network=reply.name, address=reply.attachment.address),
        )
        return reply.attachment.address

    async def detach(self, container_id: str) -> None:
        """The container is removed: its attachments go (and their addresses are free)."""
        await self._call(NETWORK_DETACH, NetworkDetach(container_id=container_id))
        if self._network is not None:
            await self._network.detach(Task(id=container_id))


def _as_task(reply: NetworkAttachReply, container_id: str, name: str) -> Task:
    """The container as the network driver knows containers: a task on one network."""
    assert reply.attachment is not None
    return Task(
        id=container_id,
        service_name=name,
        networks=[Attachment(network_id=reply.network_id, address=reply.attachment.address)],
    )
