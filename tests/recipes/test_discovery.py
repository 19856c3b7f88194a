"""Service discovery against the dev agent: instances, picker, catalog-wide subscription."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from consul_streams import Consul
from consul_streams.exceptions import InvalidArgument
from consul_streams.recipes import (
    NoHealthyInstances,
    ServiceInstances,
    watch_instances,
    watch_services,
)

SERVICE = "web"


async def register(
    client: Consul, n: int, *, weight: int = 1, tags: list[str] | None = None, passing: bool = True
) -> str:
    sid = f"{SERVICE}-{n}"
    await client.agent.service_register(
        {
            "Name": SERVICE,
            "ID": sid,
            "Address": "127.0.0.1",
            "Port": 8000 + n,
            "Tags": tags or [],
            "Weights": {"Passing": weight, "Warning": 1},
            "Check": {"CheckID": f"{sid}-ttl", "Name": "alive", "TTL": "60s"},
        }
    )
    if passing:
        await client.agent.check_pass(f"{sid}-ttl")
    return sid


async def test_stream_yields_instances_then_diffs(client: Consul) -> None:
    await register(client, 1)
    async with aclosing(watch_instances(client, SERVICE)) as updates:
        first = await asyncio.wait_for(anext(updates), 5)
        assert [i.id for i in first.instances] == ["web-1"]
        assert [i.id for i in first.diff.added] == ["web-1"]
        await register(client, 2)
        second = await asyncio.wait_for(anext(updates), 5)
        assert [i.id for i in second.instances] == ["web-1", "web-2"]
        assert [i.id for i in second.diff.added] == ["web-2"]
        assert second.diff.removed == ()
        assert second.index > first.index


async def test_instance_going_critical_leaves_the_picker_at_once(client: Consul) -> None:
    await register(client, 1)
    await register(client, 2)
    async with ServiceInstances(client, SERVICE) as web:
        assert {i.id for i in web.healthy} == {"web-1", "web-2"}
        await client.agent.check_fail("web-1-ttl")
        update = await asyncio.wait_for(web.updated(), 5)
        assert [i.id for i in update.diff.removed] == ["web-1"]
        assert {web.pick().id for _ in range(4)} == {"web-2"}


async def test_without_passing_only_critical_is_listed_but_never_picked(client: Consul) -> None:
    await register(client, 1)
    await register(client, 2, passing=False)  # a TTL check starts critical
    async with ServiceInstances(client, SERVICE, passing=False) as web:
        assert {i.id: i.status for i in web.instances} == {"web-1": "passing", "web-2": "critical"}
        assert {web.pick().id for _ in range(4)} == {"web-1"}


async def test_no_healthy_instance_raises_then_wait_gets_the_first(client: Consul) -> None:
    await register(client, 1, passing=False)
    async with ServiceInstances(client, SERVICE) as web:
        with pytest.raises(NoHealthyInstances, match="'web'"):
            web.pick()
        waiting = asyncio.create_task(web.wait_for_instance(timeout=5))
        await client.agent.check_pass("web-1-ttl")
        instance = await waiting
        assert instance.id == "web-1"
        assert instance.url_host == "127.0.0.1:8001"


async def test_wait_for_instance_times_out(client: Consul) -> None:
    async with ServiceInstances(client, SERVICE) as web:
        with pytest.raises(asyncio.TimeoutError):
            await web.wait_for_instance(timeout=0.05)


async def test_weights_and_tags_reach_the_picker(client: Consul) -> None:
    await register(client, 1, weight=3, tags=["v2"])
    await register(client, 2, weight=1, tags=["v1"])
    async with ServiceInstances(client, SERVICE) as web:
        assert [web.pick().id for _ in range(4)] == ["web-1", "web-1", "web-2", "web-1"]
    async with ServiceInstances(client, SERVICE, tag="v1") as v1:
        assert [i.id for i in v1.healthy] == ["web-2"]


async def test_catalog_wide_subscription_reports_added_and_removed(client: Consul) -> None:
    async with aclosing(watch_services(client)) as updates:
        first = await asyncio.wait_for(anext(updates), 5)
        assert SERVICE not in first.services
        await register(client, 1, tags=["a"])
        added = await asyncio.wait_for(anext(updates), 5)
        assert added.added == (SERVICE,)
        assert added.services[SERVICE] == ("a",)
        await client.agent.service_deregister("web-1")
        removed = await asyncio.wait_for(anext(updates), 5)
        assert removed.removed == (SERVICE,)
        assert SERVICE not in removed.services


async def test_empty_service_name_is_invalid(client: Consul) -> None:
    with pytest.raises(InvalidArgument, match="service"):
        watch_instances(client, "")


async def test_filter_goes_to_consul(client: Consul) -> None:
    await register(client, 1, tags=["v1"])
    await register(client, 2, tags=["v2"])
    async with ServiceInstances(client, SERVICE, filter='"v2" in Service.Tags') as v2:
        assert [i.id for i in v2.healthy] == ["web-2"]
