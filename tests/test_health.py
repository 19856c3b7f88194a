"""The health value and its publisher: failures, recovery, staleness, waiting, following."""

from __future__ import annotations

import asyncio

import pytest

from consul_streams import ConnectError, Health, PermissionDenied
from consul_streams._health import HealthMonitor
from consul_streams.testing import VirtualClock


async def test_starts_healthy() -> None:
    health = HealthMonitor(VirtualClock()).health
    assert health == Health()
    assert health.ok
    assert not health.stale
    assert not health.stopped
    assert health.last_error is None


async def test_failures_keep_the_time_of_the_first() -> None:
    clock = VirtualClock(start=100.0)
    monitor = HealthMonitor(clock)
    first = ConnectError("refused")
    monitor.failed(first)
    await clock.advance(5)
    second = ConnectError("refused again")
    health = monitor.failed(second)
    assert not health.ok
    assert health.retrying
    assert not health.stopped
    assert health.failing_since == 100.0
    assert health.stale_since == 100.0
    assert health.last_error is second
    assert health.failures == 2


async def test_recovery_clears_failure_but_keeps_the_last_error() -> None:
    clock = VirtualClock()
    monitor = HealthMonitor(clock)
    error = ConnectError("refused")
    monitor.failed(error)
    health = monitor.recovered()
    assert health.ok
    assert health.failing_since is None
    assert not health.stale
    assert health.failures == 0
    assert health.last_error is error


async def test_a_final_failure_is_stopped_and_fails_wait_healthy() -> None:
    monitor = HealthMonitor(VirtualClock())
    denied = PermissionDenied(403, "ACL not found", method="GET", url="/v1/kv/x")
    monitor.failed(denied, retrying=False)
    assert monitor.health.stopped
    with pytest.raises(PermissionDenied):
        await monitor.wait_healthy(timeout=1)


async def test_wait_healthy_returns_on_recovery() -> None:
    monitor = HealthMonitor(VirtualClock())
    monitor.failed(ConnectError("refused"))
    waiter = asyncio.ensure_future(monitor.wait_healthy(timeout=5))
    await asyncio.sleep(0)
    assert not waiter.done()
    monitor.recovered()
    assert (await waiter).ok


async def test_wait_healthy_times_out_while_failing() -> None:
    monitor = HealthMonitor(VirtualClock())
    monitor.failed(ConnectError("refused"))
    with pytest.raises(asyncio.TimeoutError):
        await monitor.wait_healthy(timeout=0.01)


async def test_stale_without_failure() -> None:
    clock = VirtualClock(start=7.0)
    monitor = HealthMonitor(clock)
    health = monitor.set_stale(True)
    assert not health.ok
    assert health.stale
    assert health.stale_since == 7.0
    assert not health.stopped
    assert health.failing_since is None
    assert monitor.set_stale(False).ok


async def test_changes_yields_current_then_each_change_and_listeners_see_all() -> None:
    monitor = HealthMonitor(VirtualClock())
    seen: list[Health] = []
    remove = monitor.add_listener(seen.append)
    changes = monitor.changes()
    assert (await changes.__anext__()).ok
    error = ConnectError("refused")
    nxt = asyncio.ensure_future(changes.__anext__())
    await asyncio.sleep(0)
    monitor.failed(error)
    assert (await asyncio.wait_for(nxt, 5)).last_error is error
    monitor.recovered()
    monitor.recovered()  # unchanged: not published again
    remove()
    monitor.failed(error)
    assert [h.ok for h in seen] == [False, True]
    await changes.aclose()


def test_str_says_what_is_wrong() -> None:
    error = ConnectError("refused")
    assert str(Health()) == "healthy"
    text = str(Health(ok=False, last_error=error, failing_since=1.0, retrying=True, failures=3))
    assert text.startswith("retrying after 3 failed attempt(s): ConnectError: refused")
