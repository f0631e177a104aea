"""When this node's mesh key pair is replaced: every MESH_KEY_ROTATION seconds, without a gap.

Owns the timing of a rotation and the order of its steps (mesh.py does each step on the
interface): make the next key and announce it, give it MESH_KEY_SPREAD seconds to reach
every peer (through the leader), then switch to it and announce it as the public key. Each
interval is drawn between 0.9 and 1.1 times the nominal one, so that nodes started
together do not switch together. Does not own how keys are announced: `announce` is given
(the daemon says them in the node's session hello). A rotation that fails is logged and
tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Protocol

from swarmlite.clock import Clock
from swarmlite.errors import SwarmliteError
from swarmlite.log import kv

log = logging.getLogger(__name__)

MESH_KEY_ROTATION = 24 * 3600.0  # seconds between mesh key pairs ($SWARMLITE_MESH_KEY_ROTATION)
MESH_KEY_SPREAD = 5.0  # seconds for a next key to reach every peer before the switch

Announce = Callable[[str, str], Awaitable[None]]  # (public key, next key or "")


class RotatingKeys(Protocol):
    """What a rotation needs of the mesh (mesh.Mesh), without importing it: mesh.py loads
    pyroute2, and the daemon imports this module on every node."""

    @property
    def public_key(self) -> str: ...

    def begin_rotation(self) -> str: ...

    async def finish_rotation(self) -> str: ...


class MeshKeyRotation:
    def __init__(
        self,
        mesh: RotatingKeys,
        announce: Announce,
        clock: Clock,
        *,
        interval: float = MESH_KEY_ROTATION,
        rng: random.Random | None = None,
    ) -> None:
        self._mesh = mesh
        self._announce = announce
        self._clock = clock
        self._interval = interval
        self._rng = rng or random.Random()
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        """Rotate at every interval until `stop`."""
        async with asyncio.TaskGroup() as tasks:
            rotating = tasks.create_task(self._loop())
            await self._stopped.wait()
            rotating.cancel()

    def stop(self) -> None:
        """Make `run` return; a rotation under way stops where it is (its next key stays
        on disk, and the next rotation switches to it)."""
        self._stopped.set()

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self._interval * self._rng.uniform(0.9, 1.1))
            try:
                await self.rotate()
            except SwarmliteError as exc:
                log.warning(
                    "mesh key rotation failed; trying again later %s", kv(error=exc.message)
                )

    async def rotate(self) -> None:
        """One rotation: peers learn the next key first, then this node switches to it."""
        next_key = self._mesh.begin_rotation()
        await self._announce(self._mesh.public_key, next_key)
        await self._clock.sleep(MESH_KEY_SPREAD)  # every peer gets the next key
        key = await self._mesh.finish_rotation()
        await self._announce(key, "")
        log.info("mesh key rotated %s", kv(public_key=key))
