"""Dev agent conformance over raw HTTP: ``/v1/health/*`` (consul-api.md 2.3, vectors 45-47)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio

from consul_streams.testing import DevAgent

from ._http_helpers import Http


@pytest_asyncio.fixture
async def http() -> AsyncIterator[Http]:
    async with DevAgent(jitter=False, node_name="dev") as agent, aiohttp.ClientSession() as session:
        yield Http(agent, session)


async def agent_service(http: Http, body: dict[str, Any]) -> None:
    reply = await http.put("/v1/agent/service/register", json.dumps(body))
    assert reply.status == 200, reply.text


WEB_WARNING = {"Name": "web", "Check": {"TTL": "30s", "Status": "warning"}}


@pytest.mark.parametrize("value", ["maybe", "2", "yes"])
async def test_v45_bad_passing_value_is_400(http: Http, value: str) -> None:
    reply = await http.get(f"/v1/health/service/web?passing={value}")
    assert (reply.status, reply.text) == (400, "Invalid value for ?passing")


async def test_v45_v46_passing_empty_is_true_and_zero_is_false(http: Http) -> None:
    await agent_service(http, WEB_WARNING)
    for query in ("passing", "passing=", "passing=1", "passing=true"):
        assert (await http.get(f"/v1/health/service/web?{query}")).json() == [], query
    for query in ("passing=0", "passing=false", ""):
        assert len((await http.get(f"/v1/health/service/web?{query}")).json()) == 1, query


async def test_v46_entry_carries_node_and_service_checks(http: Http) -> None:
    await agent_service(http, WEB_WARNING)
    reply = await http.get("/v1/health/service/web")
    (entry,) = reply.json()
    assert entry["Node"]["Node"] == "dev"
    assert entry["Service"]["Service"] == "web"
    assert entry["Service"]["Tags"] == []
    statuses = {c["CheckID"]: c["Status"] for c in entry["Checks"]}
    assert statuses == {"serfHealth": "passing", "service:web": "warning"}
    assert reply.headers["X-Consul-Effective-Consistency"] == "leader"


async def test_v47_state_endpoint(http: Http) -> None:
    bogus = await http.get("/v1/health/state/bogus")
    assert (bogus.status, bogus.json()) == (200, [])
    missing = await http.get("/v1/health/state/")
    assert (missing.status, missing.text) == (400, "Missing check state")
    every = (await http.get("/v1/health/state/any")).json()
    assert [c["CheckID"] for c in every] == ["serfHealth"]
    assert every[0]["Name"] == "Serf Health Status"
    assert every[0]["ServiceTags"] == []
    await agent_service(http, WEB_WARNING)
    warning = (await http.get("/v1/health/state/warning")).json()
    assert [c["CheckID"] for c in warning] == ["service:web"]
    passing = (await http.get("/v1/health/state/passing")).json()
    assert [c["CheckID"] for c in passing] == ["serfHealth"]


async def test_passing_drops_entries_with_any_non_passing_node_check(http: Http) -> None:
    await agent_service(http, {"Name": "web", "Check": {"TTL": "30s", "Status": "passing"}})
    assert len((await http.get("/v1/health/service/web?passing")).json()) == 1
    reply = await http.put("/v1/agent/maintenance?enable=true&reason=fix")
    assert reply.status == 200
    assert (await http.get("/v1/health/service/web?passing")).json() == []
    (entry,) = (await http.get("/v1/health/service/web")).json()
    maint = [c for c in entry["Checks"] if c["CheckID"] == "_node_maintenance"]
    assert maint[0]["Status"] == "critical"
    assert maint[0]["Notes"] == "fix"


async def test_node_and_checks_endpoints(http: Http) -> None:
    await agent_service(http, WEB_WARNING)
    node = (await http.get("/v1/health/node/dev")).json()
    assert sorted(c["CheckID"] for c in node) == ["serfHealth", "service:web"]
    assert (await http.get("/v1/health/node/nope")).json() == []
    assert (await http.get("/v1/health/node/")).text == "Missing node name"
    checks = (await http.get("/v1/health/checks/web")).json()
    assert [c["CheckID"] for c in checks] == ["service:web"]
    assert checks[0]["ServiceName"] == "web"
    assert (await http.get("/v1/health/checks/")).text == "Missing service name"


async def test_filter_and_tag_on_health_service(http: Http) -> None:
    await agent_service(http, {"ID": "w1", "Name": "web", "Tags": ["V1"], "Port": 1})
    await agent_service(http, {**WEB_WARNING, "ID": "w2", "Tags": ["v2"]})
    tagged = (await http.get("/v1/health/service/web?tag=v1")).json()
    assert [e["Service"]["ID"] for e in tagged] == ["w1"]
    expr = quote('"warning" in Checks.Status')
    filtered = (await http.get(f"/v1/health/service/web?filter={expr}")).json()
    assert [e["Service"]["ID"] for e in filtered] == ["w2"]
    bad = await http.get("/v1/health/service/web?filter=" + quote("Checks == x"))
    assert bad.status == 500


async def test_health_watch_wakes_on_check_status_change(http: Http) -> None:
    await agent_service(http, WEB_WARNING)
    first = await http.get("/v1/health/service/web")
    path = f"/v1/health/service/web?index={first.index}&wait=30s"
    watch = asyncio.ensure_future(http.get(path))
    assert (await http.put("/v1/agent/check/pass/service:web")).status == 200
    reply = await asyncio.wait_for(watch, 5)
    assert reply.index > first.index
    (entry,) = reply.json()
    assert {c["Status"] for c in entry["Checks"]} == {"passing"}


async def test_health_watch_on_web_is_not_woken_by_db_checks(http: Http) -> None:
    await agent_service(http, WEB_WARNING)
    await agent_service(http, {"Name": "db", "Check": {"TTL": "30s"}})
    first = await http.get("/v1/health/service/web")
    loop = asyncio.get_running_loop()
    start = loop.time()
    watch = asyncio.ensure_future(http.get(f"/v1/health/service/web?index={first.index}&wait=1s"))
    assert (await http.put("/v1/agent/check/pass/service:db")).status == 200
    reply = await watch
    assert loop.time() - start >= 0.95
    assert reply.index == first.index


async def test_session_bound_to_a_check_dies_when_the_check_turns_critical(http: Http) -> None:
    check = {"Name": "hb", "TTL": "1000s", "Status": "passing"}
    assert (await http.put("/v1/agent/check/register", json.dumps(check))).status == 200
    created = await http.put("/v1/session/create", json.dumps({"Checks": ["serfHealth", "hb"]}))
    session = created.json()["ID"]
    assert len((await http.get(f"/v1/session/info/{session}")).json()) == 1
    assert (await http.put("/v1/agent/check/fail/hb")).status == 200
    assert (await http.get(f"/v1/session/info/{session}")).json() == []
