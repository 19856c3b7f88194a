"""Recipes keep serving through failures and say so: health, staleness, logs (#11)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from consul_streams import BadRequest, Consul, DecodeError, Health, HealthMonitor
from consul_streams.recipes import LiveConfig, ServiceInstances, watch_instances
from consul_streams.testing import DevAgent
from consul_streams.watch import Backoff

TOKEN = "5ecret-t0ken-never-logged"
FAST = Backoff(base=0.01, cap=0.05)
T = 10.0


async def failing(monitor: HealthMonitor) -> Health:
    """The first published health that is failing."""
    async for health in monitor.changes():
        if health.failing_since is not None:
            return health
    raise AssertionError("unreachable")


async def test_live_config_serves_the_last_good_config_while_stale(
    agent: DevAgent, client: Consul
) -> None:
    await client.kv.put("app/a", "1")
    live: LiveConfig[Any] = LiveConfig(client, "app/", format="text", debounce=None, backoff=FAST)
    async with live as config:
        assert config.health.ok
        changes = config.health_changes()
        assert (await changes.__anext__()).ok
        # Every read (up to 1000), until cleared.
        agent.faults.malformed_json(1000, path="/v1/kv/app/", method="GET")
        await client.kv.put("app/a", "2")
        health = await asyncio.wait_for(changes.__anext__(), T)
        assert health.stale
        assert not health.ok
        assert health.retrying
        assert isinstance(health.last_error, DecodeError)
        assert config.current.document == {"a": "1"}  # the last good one, still served
        agent.faults.clear()
        assert (await config.wait_healthy(T)).ok
        assert (await asyncio.wait_for(config.changed(after=1), T)).document == {"a": "2"}
        await changes.aclose()


async def test_service_instances_pick_works_on_the_last_good_list_after_a_bad_answer(
    agent: DevAgent, client: Consul
) -> None:
    await client.agent.service_register("web", service_id="web-1", port=80)
    async with ServiceInstances(client, "web", backoff=FAST) as web:
        assert web.pick().id == "web-1"
        agent.faults.malformed_json(1000, path="/v1/health/service/web", method="GET")
        await client.agent.service_register("web", service_id="web-2", port=81)
        monitor_task = asyncio.ensure_future(
            asyncio.wait_for(_first_failing(web.health_changes()), T)
        )
        health = await monitor_task
        assert isinstance(health.last_error, DecodeError)
        assert web.health.stale
        assert web.pick().id == "web-1"
        agent.faults.clear()
        await web.wait_healthy(T)
        await asyncio.wait_for(_until_two(web), T)


async def _first_failing(changes: object) -> Health:
    async for health in changes:  # type: ignore[attr-defined]
        if health.failing_since is not None:
            return health  # type: ignore[no-any-return]
    raise AssertionError("unreachable")


async def _until_two(web: ServiceInstances) -> None:
    while len(web.healthy) < 2:
        await web.updated()


async def test_a_bad_filter_ends_watch_instances_with_the_typed_error(client: Consul) -> None:
    monitor = HealthMonitor()
    updates = watch_instances(client, "web", filter="bad ((", health=monitor)
    with pytest.raises(BadRequest, match="boolean expression"):
        await asyncio.wait_for(updates.__anext__(), T)
    assert monitor.health.stopped
    await updates.aclose()


async def test_agent_down_logs_a_warning_at_the_first_failed_attempt_without_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="consul_streams")
    async with DevAgent(jitter=False) as agent:
        address = agent.address
    # The agent is gone: every attempt is refused.
    async with Consul(address, token=TOKEN, environ={}) as client:
        monitor = HealthMonitor()
        updates = watch_instances(client, "web", health=monitor, backoff=FAST)
        task = asyncio.ensure_future(updates.__anext__())
        health = await asyncio.wait_for(failing(monitor), T)
        assert health.retrying
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings, "no WARNING at the first failed attempt"
        assert "ConnectError" in warnings[0].getMessage()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await updates.aclose()
    assert caplog.records
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    assert TOKEN not in repr(health)
