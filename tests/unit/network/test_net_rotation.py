from __future__ import annotations

import asyncio
import random

from swarmlite.errors import NetworkSetupFailure
from swarmlite.network.rotation import MESH_KEY_SPREAD, MeshKeyRotation
from swarmlite.testing.clock import FakeClock

SEED = 1
FIRST = 100.0 * random.Random(SEED).uniform(0.9, 1.1)  # the first interval the rotation draws


class FakeMesh:
    def __init__(self) -> None:
        self.public_key = "key-0"
        self.next_key = ""
        self.rotations = 0
        self.fail_finish = False

    def begin_rotation(self) -> str:
        self.next_key = self.next_key or f"key-{self.rotations + 1}"
        return self.next_key

    async def finish_rotation(self) -> str:
        if self.fail_finish:
            raise NetworkSetupFailure("wg: device busy")
        self.public_key, self.next_key = self.next_key, ""
        self.rotations += 1
        return self.public_key


def _rotation(mesh: FakeMesh, clock: FakeClock, said: list[tuple[str, str]]) -> MeshKeyRotation:
    async def announce(public_key: str, next_key: str) -> None:
        said.append((public_key, next_key))

    return MeshKeyRotation(
        mesh,
        announce,
        clock,
        interval=100.0,
        rng=random.Random(SEED),
    )


async def _started(clock: FakeClock) -> None:
    for _ in range(3):  # run() starts its loop, which sleeps on the clock
        await asyncio.sleep(0)
    assert clock.sleepers == 1


async def test_peers_learn_the_next_key_before_the_node_switches_to_it() -> None:
    clock, mesh, said = FakeClock(), FakeMesh(), []
    rotation = _rotation(mesh, clock, said)
    running = asyncio.create_task(rotation.run())
    await _started(clock)
    await clock.run_for(FIRST)
    assert said == [("key-0", "key-1")]
    assert mesh.rotations == 0
    await clock.run_for(MESH_KEY_SPREAD)
    assert said == [("key-0", "key-1"), ("key-1", "")]
    assert mesh.rotations == 1
    rotation.stop()
    await asyncio.wait_for(running, 5)


async def test_a_failed_rotation_is_tried_again_at_the_next_interval() -> None:
    clock, mesh, said = FakeClock(), FakeMesh(), []
    mesh.fail_finish = True
    rotation = _rotation(mesh, clock, said)
    running = asyncio.create_task(rotation.run())
    await _started(clock)
    await clock.run_for(FIRST + MESH_KEY_SPREAD)
    assert mesh.rotations == 0 and not running.done()
    mesh.fail_finish = False
    await clock.run_for(110.0 + MESH_KEY_SPREAD)  # the longest interval is 1.1 x 100
    assert mesh.rotations == 1
    assert said[-1] == ("key-1", "")  # the same next key as the failed attempt's
    rotation.stop()
    await asyncio.wait_for(running, 5)


async def test_stop_ends_run_in_the_middle_of_a_rotation() -> None:
    clock, mesh, said = FakeClock(), FakeMesh(), []
    rotation = _rotation(mesh, clock, said)
    running = asyncio.create_task(rotation.run())
    await _started(clock)
    await clock.run_for(FIRST)  # the next key is announced; the switch waits
    rotation.stop()
    await asyncio.wait_for(running, 5)
    assert mesh.next_key == "key-1" and mesh.rotations == 0
