"""The endpoint classes against the embedded dev agent: real round trips, not canned answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from consul_streams._client import Consul
from consul_streams.endpoints import Txn
from consul_streams.exceptions import Conflict
from consul_streams.testing import DevAgent


@pytest.fixture
async def dev() -> AsyncIterator[Consul]:
    async with DevAgent(jitter=False) as agent:
        client = Consul(agent.url, environ={})
        try:
            yield client
        finally:
            await client.aclose()


async def test_kv_round_trip(dev: Consul) -> None:
    assert await dev.kv.put("app/a b", "x\x00y", flags=5) is True
    assert await dev.kv.put("app/sub/c", b"") is True
    entry, meta = await dev.kv.get("app/a b")
    assert entry is not None
    assert (entry["Key"], entry["Value"], entry["Flags"]) == ("app/a b", b"x\x00y", 5)
    assert meta.index == entry["ModifyIndex"]
    assert (await dev.kv.raw("app/a b"))[0] == b"x\x00y"
    assert [e["Value"] for e in (await dev.kv.items("app/"))[0]] == [b"x\x00y", b""]
    assert (await dev.kv.keys("app/", separator="/"))[0] == ["app/a b", "app/sub/"]
    assert await dev.kv.cas("app/a b", b"z", index=entry) is True
    assert await dev.kv.cas("app/a b", b"w", index=entry) is False
    assert await dev.kv.delete("app/", recurse=True) is True
    missing, missing_meta = await dev.kv.get("app/a b")
    assert missing is None
    assert missing_meta.index >= 1
    assert (await dev.kv.items("app/"))[0] == []


async def test_blocking_get_wakes_on_write(dev: Consul) -> None:
    await dev.kv.put("k", b"1")
    _, meta = await dev.kv.get("k")
    pending = asyncio.ensure_future(dev.kv.get("k", watch=(meta, "10s")))
    await dev.kv.put("k", b"2")
    entry, after = await asyncio.wait_for(pending, timeout=5)
    assert entry is not None
    assert entry["Value"] == b"2"
    assert after.index > meta.index


async def test_session_lock_cycle(dev: Consul) -> None:
    sid = await dev.session.create(name="lock", ttl="30s", behavior="delete")
    info, _ = await dev.session.info(sid)
    assert info is not None
    assert info["Behavior"] == "delete"
    assert await dev.kv.acquire("lock", info, b"me") is True
    entry, _ = await dev.kv.get("lock")
    assert entry is not None
    assert entry["Session"] == sid
    assert await dev.kv.release("lock", sid, b"me") is True
    assert (await dev.session.renew(sid)) is not None
    assert sid in [s["ID"] for s in (await dev.session.list())[0]]
    assert await dev.session.destroy(sid) is True
    assert await dev.session.renew(sid) is None


async def test_agent_catalog_health(dev: Consul) -> None:
    await dev.agent.service_register("web", port=80, tags=["Prod"], check={"TTL": "30s"})
    await dev.agent.check_pass("service:web", note="ok")
    service, meta = await dev.agent.service("web")
    assert service["Port"] == 80
    assert meta.content_hash
    assert "web" in (await dev.agent.services())[0]
    assert (await dev.agent.checks())[0]["service:web"]["Output"] == "ok"
    assert [s["ServiceName"] for s in (await dev.catalog.service("web", tag="prod"))[0]] == ["web"]
    assert "web" in (await dev.catalog.services())[0]
    healthy, _ = await dev.health.service("web", passing=True)
    assert [e["Service"]["ID"] for e in healthy] == ["web"]
    await dev.agent.check_fail("service:web")
    assert (await dev.health.service("web", passing=True))[0] == []
    assert (await dev.health.state("critical"))[0][0]["CheckID"] == "service:web"
    await dev.agent.service_deregister("web")
    assert (await dev.catalog.service("web"))[0] == []


async def test_events_status_txn(dev: Consul) -> None:
    fired = await dev.event.fire("deploy", b"v1")
    events, meta = await dev.event.items("deploy")
    assert [(e["ID"], e["Payload"]) for e in events] == [(fired["ID"], b"v1")]
    assert meta.index > 1
    assert (await dev.status.leader())[0]
    assert len((await dev.status.peers())[0]) == 1
    results = await dev.txn.execute([Txn.kv_op("set", "t", b"tv"), Txn.kv_op("get", "t")])
    assert results[1]["KV"]["Value"] == b"tv"
    with pytest.raises(Conflict) as info:
        await dev.txn.execute([Txn.kv_op("get", "missing")])
    assert info.value.errors[0]["OpIndex"] == 0
