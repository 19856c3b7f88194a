"""Dev agent conformance over raw HTTP: ``/v1/catalog/*`` (consul-api.md 2.2, vectors 40-44, 48)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest_asyncio

from consul_streams.testing import DevAgent

from ._http_helpers import Http, Reply


@pytest_asyncio.fixture
async def http() -> AsyncIterator[Http]:
    async with DevAgent(jitter=False, node_name="dev") as agent, aiohttp.ClientSession() as session:
        yield Http(agent, session)


async def register(http: Http, body: dict[str, Any]) -> Reply:
    reply = await http.put("/v1/catalog/register", json.dumps(body))
    assert reply.status == 200, reply.text
    assert reply.json() is True
    return reply


def web(node: str = "n1", sid: str = "web", tags: list[str] | None = None) -> dict[str, Any]:
    service = {"ID": sid, "Service": "web", "Tags": tags or [], "Port": 80}
    return {"Node": node, "Address": "10.0.0.1", "Service": service}


async def timed(coro: Any) -> tuple[Reply, float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    reply = await coro
    return reply, loop.time() - start


async def test_v40_dev_agent_registers_the_consul_service(http: Http) -> None:
    reply = await http.get("/v1/catalog/services")
    assert reply.status == 200
    assert reply.json() == {"consul": []}
    assert reply.headers["X-Consul-Effective-Consistency"] == "leader"
    assert reply.index >= 1


async def test_v41_tag_filter_is_case_insensitive_and_anded(http: Http) -> None:
    await register(http, web(tags=["Prod"]))
    one = await http.get("/v1/catalog/service/web?tag=prod")
    assert [e["ServiceTags"] for e in one.json()] == [["Prod"]]
    both = await http.get("/v1/catalog/service/web?tag=prod&tag=other")
    assert both.json() == []


async def test_v42_unknown_service_is_empty_and_missing_name_is_400(http: Http) -> None:
    reply = await http.get("/v1/catalog/service/nope")
    assert (reply.status, reply.json()) == (200, [])
    assert reply.index >= 1
    missing = await http.get("/v1/catalog/service/")
    assert (missing.status, missing.text) == (400, "Missing service name")


async def test_v43_unknown_node_is_null(http: Http) -> None:
    reply = await http.get("/v1/catalog/node/nope")
    assert (reply.status, reply.body.strip()) == (200, b"null")
    missing = await http.get("/v1/catalog/node/")
    assert (missing.status, missing.text) == (400, "Missing node name")


async def test_v44_service_watch_wakes_for_its_service_only(http: Http) -> None:
    await register(http, web())
    first = await http.get("/v1/catalog/service/web")
    index = first.index
    # An unrelated service neither wakes nor advances the web watch.
    blocked = asyncio.ensure_future(
        timed(http.get(f"/v1/catalog/service/web?index={index}&wait=1s"))
    )
    await register(http, {"Node": "n2", "Address": "10.0.0.2", "Service": {"Service": "db"}})
    reply, elapsed = await blocked
    assert elapsed >= 0.95
    assert reply.index == index
    # Another instance of web wakes it at once with a higher index.
    woken = asyncio.ensure_future(
        timed(http.get(f"/v1/catalog/service/web?index={index}&wait=30s"))
    )
    await register(http, web(node="n3", sid="web-2"))
    reply, elapsed = await asyncio.wait_for(woken, 5)
    assert elapsed < 5
    assert reply.index > index
    assert sorted(e["ServiceID"] for e in reply.json()) == ["web", "web-2"]


async def test_v48_filter_syntax_error_is_500_and_quoted_value_works(http: Http) -> None:
    bad = await http.get("/v1/catalog/nodes?filter=" + quote("Node==bad-name"))
    assert bad.status == 500
    assert bad.text.startswith("Failed to create boolean expression evaluator")
    good = await http.get("/v1/catalog/nodes?filter=" + quote('Node == "x"'))
    assert (good.status, good.json()) == (200, [])
    dev = await http.get("/v1/catalog/nodes?filter=" + quote('Node == "dev"'))
    assert [n["Node"] for n in dev.json()] == ["dev"]


async def test_unknown_selector_is_a_filter_error(http: Http) -> None:
    reply = await http.get("/v1/catalog/service/web?filter=" + quote("Bogus == 1"))
    assert reply.status == 500
    assert reply.text == (
        'Failed to create boolean expression evaluator: Selector "Bogus" is not valid'
    )


async def test_identical_reregistration_keeps_modify_index(http: Http) -> None:
    await register(http, web(tags=["a"]))
    before = (await http.get("/v1/catalog/service/web")).json()[0]
    await register(http, web(tags=["a"]))
    after = (await http.get("/v1/catalog/service/web")).json()[0]
    assert after["ModifyIndex"] == before["ModifyIndex"]
    await register(http, web(tags=["b"]))
    changed = (await http.get("/v1/catalog/service/web")).json()[0]
    assert changed["ModifyIndex"] > before["ModifyIndex"]
    assert changed["CreateIndex"] == before["CreateIndex"]


async def test_catalog_service_shape(http: Http) -> None:
    await register(http, {**web(), "NodeMeta": {"env": "prod"}})
    (entry,) = (await http.get("/v1/catalog/service/web")).json()
    for key in ("ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta",
                "ServiceKind", "ServiceID", "ServiceName", "ServiceTags", "ServiceAddress",
                "ServiceWeights", "ServiceMeta", "ServicePort", "ServiceEnableTagOverride",
                "CreateIndex", "ModifyIndex"):  # fmt: skip
        assert key in entry
    assert entry["NodeMeta"] == {"env": "prod"}
    assert entry["ServiceWeights"] == {"Passing": 1, "Warning": 1}
    assert entry["ModifyIndex"] == (await http.get("/v1/catalog/service/web")).index


async def test_node_meta_filter(http: Http) -> None:
    await register(http, {**web(), "NodeMeta": {"env": "prod"}})
    await register(http, {**web("n2"), "NodeMeta": {"env": "dev"}})
    prod = await http.get("/v1/catalog/service/web?node-meta=env:prod")
    assert [e["Node"] for e in prod.json()] == ["n1"]
    nodes = await http.get("/v1/catalog/nodes?node-meta=env:dev")
    assert [n["Node"] for n in nodes.json()] == ["n2"]
    services = await http.get("/v1/catalog/services?node-meta=env:none")
    assert services.json() == {}


async def test_services_dedupes_tags_and_applies_filter(http: Http) -> None:
    await register(http, web("n1", "w1", ["a", "b"]))
    await register(http, web("n2", "w2", ["b", "c"]))
    services = (await http.get("/v1/catalog/services")).json()
    assert sorted(services["web"]) == ["a", "b", "c"]
    filtered = await http.get("/v1/catalog/services?filter=" + quote("ServiceName == web"))
    assert list(filtered.json()) == ["web"]


async def test_node_lists_services_and_filters_them(http: Http) -> None:
    await register(http, web())
    reply = await http.get("/v1/catalog/node/n1")
    body = reply.json()
    assert body["Node"]["Node"] == "n1"
    assert list(body["Services"]) == ["web"]
    assert reply.index == body["Node"]["ModifyIndex"]
    none = await http.get("/v1/catalog/node/n1?filter=" + quote("Service == db"))
    assert none.json()["Services"] == {}


async def test_deregister_service_then_node(http: Http) -> None:
    await register(http, web())
    before = await http.get("/v1/catalog/service/web")
    dereg = await http.put("/v1/catalog/deregister", json.dumps({"Node": "n1", "ServiceID": "web"}))
    assert (dereg.status, dereg.json()) == (200, True)
    gone = await http.get("/v1/catalog/service/web")
    assert gone.json() == []
    # The "last extinction" index of services moves forward.
    assert gone.index > before.index
    await http.put("/v1/catalog/deregister", json.dumps({"Node": "n1"}))
    assert (await http.get("/v1/catalog/node/n1")).body.strip() == b"null"


async def test_register_errors(http: Http) -> None:
    bad_json = await http.put("/v1/catalog/register", "{nope")
    assert bad_json.status == 400
    assert bad_json.text.startswith("Request decode failed: ")
    no_address = await http.put("/v1/catalog/register", json.dumps({"Node": "n1"}))
    assert no_address.status == 500
    assert no_address.text == "Must provide address if SkipNodeUpdate is not set"
    no_node = await http.put("/v1/catalog/register", json.dumps({"Address": "10.0.0.1"}))
    assert (no_node.status, no_node.text) == (500, "Must provide node")
    bad_id = await http.put("/v1/catalog/register", json.dumps({**web(), "ID": "nope"}))
    assert (bad_id.status, bad_id.text) == (500, "Bad node ID: uuid string is wrong length")
    orphan = {**web(), "Check": {"Name": "c", "ServiceID": "other"}}
    missing = await http.put("/v1/catalog/register", json.dumps(orphan))
    assert (missing.status, missing.text) == (500, "Missing service registration")
    # A failed registration writes nothing.
    assert (await http.get("/v1/catalog/node/n1")).body.strip() == b"null"
    method = await http.get("/v1/catalog/register")
    assert method.status == 405
    assert method.headers["Allow"] == "OPTIONS,PUT"


async def test_datacenters(http: Http) -> None:
    reply = await http.get("/v1/catalog/datacenters")
    assert reply.json() == ["dc1"]


async def test_register_with_check_shows_in_health(http: Http) -> None:
    body = {**web(), "Check": {"CheckID": "c1", "Name": "c1", "ServiceID": "web"}}
    await register(http, body)
    checks = (await http.get("/v1/health/checks/web")).json()
    assert [(c["CheckID"], c["Status"]) for c in checks] == [("c1", "critical")]


async def test_near_is_accepted(http: Http) -> None:
    await register(http, web())
    reply = await http.get("/v1/catalog/service/web?near=_agent")
    assert [e["Node"] for e in reply.json()] == ["n1"]
    nodes = await http.get("/v1/catalog/nodes?near=_agent")
    assert nodes.status == 200


async def test_fresh_restart_reseeds_the_dev_node(http: Http) -> None:
    await register(http, web())
    await http.agent.restart(keep_state=False)
    assert (await http.get("/v1/catalog/services")).json() == {"consul": []}
    checks = (await http.get("/v1/health/node/dev")).json()
    assert [c["CheckID"] for c in checks] == ["serfHealth"]


async def test_snapshot_restore_moves_catalog_indexes_down(http: Http) -> None:
    for n in range(5):
        await register(http, web(node=f"n{n}", sid=f"w{n}"))
    before = await http.get("/v1/catalog/service/web")
    http.agent.restore_snapshot(-3)
    after = await http.get("/v1/catalog/service/web")
    assert 1 <= after.index < before.index
    assert [e["ModifyIndex"] for e in after.json()] == [
        max(1, e["ModifyIndex"] - 3) for e in before.json()
    ]
