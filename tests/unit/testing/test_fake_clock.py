"""FakeClock: virtual time that moves only when the test says so."""

from __future__ import annotations

import asyncio

import pytest

from swarmlite.clock import Clock
from swarmlite.errors import InvalidArgument
from swarmlite.testing.clock import FakeClock


def test_is_a_clock_and_starts_where_told() -> None:
    clock: Clock = FakeClock(start=5.0, wall_start=1000.0)
    assert clock.monotonic() == 5.0
    assert clock.wall() == 1000.0


def test_advance_moves_monotonic_and_wall_together() -> None:
    clock = FakeClock(wall_start=1000.0)
    clock.advance(2.5)
    assert clock.monotonic() == 2.5
    assert clock.wall() == 1002.5


def test_advance_refuses_to_go_back() -> None:
    clock = FakeClock()
    with pytest.raises(InvalidArgument):
        clock.advance(-1)
    assert clock.monotonic() == 0.0


async def test_sleeper_does_not_wake_before_its_deadline() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(10))
    await asyncio.sleep(0)
    assert clock.advance(9.999) == 0
    await asyncio.sleep(0)
    assert not task.done()
    assert clock.advance(0.001) == 1
    await asyncio.sleep(0)
    assert task.done()


async def test_sleepers_wake_in_deadline_order() -> None:
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [
        asyncio.create_task(sleeper(name, seconds))
        for name, seconds in [("c", 3), ("a", 1), ("late", 50), ("b", 2), ("b2", 2)]
    ]
    await asyncio.sleep(0)
    assert clock.sleepers == 5
    assert clock.advance(10) == 4
    await asyncio.sleep(0)
    assert woke == ["a", "b", "b2", "c"]
    assert clock.sleepers == 1
    assert clock.next_deadline() == 50
    tasks[2].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_cancelled_sleeper_is_skipped() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(1))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0
    assert clock.next_deadline() is None
    assert clock.advance(2) == 0


async def test_zero_sleep_yields_without_waiting_for_time() -> None:
    clock = FakeClock()
    await asyncio.wait_for(clock.sleep(0), timeout=1)
    assert clock.monotonic() == 0.0


async def test_run_for_wakes_a_periodic_loop_at_each_deadline() -> None:
    clock = FakeClock()
    ticks: list[float] = []

    async def every_second() -> None:
        while True:
            await clock.sleep(1)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(every_second())
    await asyncio.sleep(0)
    await clock.run_for(3.5)
    assert ticks == [1.0, 2.0, 3.0]
    assert clock.monotonic() == 3.5
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_advance_jumps_once_where_run_for_steps() -> None:
    clock = FakeClock()
    ticks: list[float] = []

    async def every_second() -> None:
        while True:
            await clock.sleep(1)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(every_second())
    await asyncio.sleep(0)
    clock.advance(3.5)
    await asyncio.sleep(0)
    # One wake-up, at the time advance left the clock; the next sleep counts from there.
    assert ticks == [3.5]
    assert clock.next_deadline() == 4.5
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
