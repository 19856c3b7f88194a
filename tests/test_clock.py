"""The injectable clocks: MonotonicClock follows the loop; VirtualClock moves only when told."""

from __future__ import annotations

import asyncio

import pytest

from consul_streams._clock import Clock, MonotonicClock, VirtualClock


async def test_monotonic_clock_reads_loop_time_and_satisfies_protocol() -> None:
    clock = MonotonicClock()
    assert isinstance(clock, Clock)
    before = asyncio.get_running_loop().time()
    now = clock.now()
    assert before <= now <= asyncio.get_running_loop().time()
    await clock.sleep(0)
    await clock.sleep(-1)  # negative: no error, no wait


async def test_virtual_clock_stands_still_until_advanced() -> None:
    clock = VirtualClock(start=10.0)
    assert isinstance(clock, Clock)
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.now())

    tasks = [asyncio.ensure_future(sleeper(s)) for s in (3.0, 1.0, 2.0)]
    await asyncio.wait_for(clock.wait_for_sleepers(3), 1.0)
    assert clock.now() == 10.0
    assert woke == []
    await clock.advance(1.5)
    assert woke == [11.0]
    await clock.advance(10.0)
    assert woke == [11.0, 12.0, 13.0]  # in deadline order, each at its own time
    assert clock.now() == 21.5
    await asyncio.gather(*tasks)


async def test_sleeper_scheduled_by_a_woken_task_within_the_step_also_wakes() -> None:
    clock = VirtualClock()
    stamps: list[float] = []

    async def chain() -> None:
        for _ in range(3):
            await clock.sleep(1.0)
            stamps.append(clock.now())

    task = asyncio.ensure_future(chain())
    await asyncio.wait_for(clock.wait_for_sleepers(), 1.0)
    await clock.advance(2.5)
    assert stamps == [1.0, 2.0]
    await clock.advance(0.5)
    assert stamps == [1.0, 2.0, 3.0]
    await task


async def test_cancelled_sleeper_is_dropped() -> None:
    clock = VirtualClock()
    task = asyncio.ensure_future(clock.sleep(1.0))
    await asyncio.wait_for(clock.wait_for_sleepers(), 1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0
    await clock.advance(2.0)
    assert clock.now() == 2.0


async def test_zero_sleep_only_yields() -> None:
    clock = VirtualClock()
    await asyncio.wait_for(clock.sleep(0), 1.0)
    assert clock.sleepers == 0


async def test_virtual_clock_refuses_to_go_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        await VirtualClock().advance(-1)
    assert "now=0" in repr(VirtualClock())
