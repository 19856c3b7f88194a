"""Dev agent conformance over raw HTTP: ``/v1/agent/*`` (consul-api.md 2.6, vectors 60-68)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from consul_streams.testing import DevAgent

from ._http_helpers import Http, Reply


@pytest_asyncio.fixture
async def http() -> AsyncIterator[Http]:
    # time_scale=0.01: a 30 s TTL expires after 0.3 s of wall time (1000 s TTLs: 10 s).
    async with (
        DevAgent(jitter=False, time_scale=0.01, node_name="dev") as agent,
        aiohttp.ClientSession() as s,
    ):
        yield Http(agent, s)


async def put_json(http: Http, path: str, body: Any) -> Reply:
    return await http.put(path, json.dumps(body))


async def register(http: Http, body: dict[str, Any]) -> None:
    reply = await put_json(http, "/v1/agent/service/register", body)
    assert (reply.status, reply.text) == (200, "")


async def check_of(http: Http, check_id: str) -> dict[str, Any]:
    checks: dict[str, Any] = (await http.get("/v1/agent/checks")).json()
    return dict(checks[check_id])


async def test_v60_register_validation_and_defaults(http: Http) -> None:
    empty = await put_json(http, "/v1/agent/service/register", {})
    assert (empty.status, empty.text) == (400, "Missing service name")
    reply = await put_json(http, "/v1/agent/service/register", {"Name": "web", "Port": 80})
    assert (reply.status, reply.body) == (200, b"")
    assert "Content-Type" not in reply.headers
    services = (await http.get("/v1/agent/services")).json()
    assert list(services) == ["web"]
    web = services["web"]
    assert (web["Tags"], web["Meta"]) == ([], {})
    assert web["Weights"] == {"Passing": 1, "Warning": 1}
    assert (web["Port"], web["Service"], web["ID"]) == (80, "web", "web")


async def test_v61_service_carries_content_hash(http: Http) -> None:
    await register(http, {"Name": "web"})
    reply = await http.get("/v1/agent/service/web")
    assert reply.status == 200
    body = reply.json()
    assert body["ContentHash"]
    assert reply.headers["X-Consul-Contenthash"] == body["ContentHash"]
    assert "X-Consul-Index" not in reply.headers


async def test_v62_hash_blocking(http: Http) -> None:
    await register(http, {"Name": "web"})
    digest = (await http.get("/v1/agent/service/web")).json()["ContentHash"]
    loop = asyncio.get_running_loop()
    start = loop.time()
    same = await http.get(f"/v1/agent/service/web?hash={digest}&wait=1s")
    assert 0.95 <= loop.time() - start < 1.5
    assert same.json()["ContentHash"] == digest
    watch = asyncio.ensure_future(http.get(f"/v1/agent/service/web?hash={digest}&wait=30s"))
    await register(http, {"Name": "web", "Tags": ["new"]})
    changed = await asyncio.wait_for(watch, 5)
    assert changed.json()["Tags"] == ["new"]
    assert changed.headers["X-Consul-Contenthash"] != digest


async def test_v63_unknown_service(http: Http) -> None:
    reply = await http.get("/v1/agent/service/nope")
    assert (reply.status, reply.text) == (404, "unknown service ID: nope")


async def test_v64_ttl_check_starts_critical_and_pass_sets_output(http: Http) -> None:
    await register(http, {"Name": "api", "Check": {"TTL": "1000s"}})
    assert (await check_of(http, "service:api"))["Status"] == "critical"
    reply = await http.put("/v1/agent/check/pass/service:api?note=ok")
    assert (reply.status, reply.body) == (200, b"")
    check = await check_of(http, "service:api")
    assert (check["Status"], check["Output"], check["Type"]) == ("passing", "ok", "ttl")


async def test_v65_ttl_endpoints_are_put_only_and_need_a_known_check(http: Http) -> None:
    await register(http, {"Name": "api", "Check": {"TTL": "1000s"}})
    method = await http.get("/v1/agent/check/pass/service:api")
    assert method.status == 405
    unknown = await http.put("/v1/agent/check/pass/nope")
    assert unknown.status == 404
    assert unknown.text == (
        'Unknown check ID "nope". Ensure that the check ID is passed, not the check name.'
    )


async def test_v66_update_rejects_unknown_status(http: Http) -> None:
    await register(http, {"Name": "api", "Check": {"TTL": "1000s"}})
    reply = await put_json(http, "/v1/agent/check/update/service:api", {"Status": "bogus"})
    assert (reply.status, reply.text) == (400, "Invalid check status: 'bogus'")
    ok = await put_json(
        http, "/v1/agent/check/update/service:api", {"Status": "warning", "Output": "slow"}
    )
    assert ok.status == 200
    check = await check_of(http, "service:api")
    assert (check["Status"], check["Output"]) == ("warning", "slow")


async def test_v67_deregister_unknown_service(http: Http) -> None:
    reply = await http.put("/v1/agent/service/deregister/nope")
    assert reply.status == 404
    assert reply.text.startswith('Unknown service ID "nope"')


async def test_v68_health_by_id_uses_429_for_warning(http: Http) -> None:
    await register(http, {"Name": "api", "Check": {"TTL": "1000s"}})
    await http.put("/v1/agent/check/warn/service:api")
    reply = await http.get("/v1/agent/health/service/id/api")
    assert reply.status == 429
    assert reply.json()["AggregatedStatus"] == "warning"
    await http.put("/v1/agent/check/pass/service:api")
    assert (await http.get("/v1/agent/health/service/id/api")).status == 200
    await http.put("/v1/agent/check/fail/service:api")
    critical = await http.get("/v1/agent/health/service/id/api?format=text")
    assert (critical.status, critical.text) == (503, "critical")
    unknown = await http.get("/v1/agent/health/service/id/nope")
    assert unknown.status == 404
    assert unknown.json() == {"AggregatedStatus": "critical", "Service": None, "Checks": None}
    text = await http.get("/v1/agent/health/service/id/nope", headers={"Accept": "text/plain"})
    assert (text.status, text.text) == (404, "ServiceId nope not found")
    empty = await http.get("/v1/agent/health/service/id/")
    assert (empty.status, empty.text) == (400, "Missing serviceID")


async def test_health_by_name_lists_every_instance(http: Http) -> None:
    await register(
        http, {"ID": "a1", "Name": "api", "Check": {"TTL": "1000s", "Status": "passing"}}
    )
    await register(
        http, {"ID": "a2", "Name": "api", "Check": {"TTL": "1000s", "Status": "warning"}}
    )
    reply = await http.get("/v1/agent/health/service/name/api")
    assert reply.status == 429
    assert [e["Service"]["ID"] for e in reply.json()] == ["a1", "a2"]
    nope = await http.get("/v1/agent/health/service/name/nope")
    assert (nope.status, nope.json()) == (404, [])
    assert nope.headers["X-Consul-Reason"] == "ServiceName nope Not Found"


async def test_ttl_expiry_turns_the_check_critical(http: Http) -> None:
    await register(http, {"Name": "api", "Check": {"TTL": "30s"}})
    await http.put("/v1/agent/check/pass/service:api")
    first = await http.get("/v1/health/checks/api")
    assert first.json()[0]["Status"] == "passing"
    # Blocks until the (scaled) TTL passes; no polling, no sleeping.
    reply = await http.get(f"/v1/health/checks/api?index={first.index}&wait=10s")
    (check,) = reply.json()
    assert (check["Status"], check["Output"]) == ("critical", "TTL expired")


async def test_non_ttl_check_refuses_ttl_updates(http: Http) -> None:
    body = {"Name": "h", "HTTP": "http://127.0.0.1:1/", "Interval": "10s"}
    assert (await put_json(http, "/v1/agent/check/register", body)).status == 200
    reply = await http.put("/v1/agent/check/pass/h")
    assert (reply.status, reply.text) == (500, 'CheckID "h" does not have associated TTL')


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({}, 400, "Missing check name"),
        ({"Name": "c", "TTL": "10s", "Status": "up"}, 400, "Bad check status"),
        ({"Name": "c"}, 400, "Invalid check: TTL must be > 0 for TTL checks"),
        ({"Name": "c", "TTL": "10s", "ServiceID": "x"}, 404, 'ServiceID "x" does not exist'),
    ],
)
async def test_check_register_errors(
    http: Http, body: dict[str, Any], status: int, text: str
) -> None:
    reply = await put_json(http, "/v1/agent/check/register", body)
    assert (reply.status, reply.text) == (status, text)


async def test_check_register_and_deregister(http: Http) -> None:
    body = {"Name": "mem", "TTL": "1000s", "Status": "passing"}
    assert (await put_json(http, "/v1/agent/check/register", body)).status == 200
    assert (await check_of(http, "mem"))["Status"] == "passing"
    node_checks = (await http.get("/v1/health/node/dev")).json()
    assert "mem" in [c["CheckID"] for c in node_checks]
    assert (await http.put("/v1/agent/check/deregister/mem")).status == 200
    assert "mem" not in (await http.get("/v1/agent/checks")).json()
    assert (await http.put("/v1/agent/check/deregister/mem")).status == 404


async def test_service_deregister_removes_checks_and_catalog_entry(http: Http) -> None:
    await register(http, {"Name": "api", "Check": {"TTL": "1000s"}})
    assert len((await http.get("/v1/catalog/service/api")).json()) == 1
    assert (await http.put("/v1/agent/service/deregister/api")).status == 200
    assert (await http.get("/v1/catalog/service/api")).json() == []
    assert (await http.get("/v1/agent/checks")).json() == {}


async def test_service_maintenance(http: Http) -> None:
    await register(http, {"Name": "api"})
    missing = await http.put("/v1/agent/service/maintenance/api")
    assert (missing.status, missing.text) == (400, "Missing value for enable")
    bad = await http.put("/v1/agent/service/maintenance/api?enable=maybe")
    assert (bad.status, bad.text) == (400, 'Invalid value for enable: "maybe"')
    empty = await http.put("/v1/agent/service/maintenance/api?enable=")
    assert (empty.status, empty.text) == (400, 'Invalid value for enable: ""')
    unknown = await http.put("/v1/agent/service/maintenance/nope?enable=true")
    assert unknown.status == 404
    assert unknown.text.startswith('Unknown service ID "nope"')
    assert (await http.put("/v1/agent/service/maintenance/api?enable=true")).status == 200
    check = await check_of(http, "_service_maintenance:api")
    assert (check["Status"], check["ServiceID"]) == ("critical", "api")
    assert (await http.get("/v1/agent/health/service/id/api")).json()["AggregatedStatus"] == (
        "maintenance"
    )
    assert (await http.put("/v1/agent/service/maintenance/api?enable=false")).status == 200
    assert "_service_maintenance:api" not in (await http.get("/v1/agent/checks")).json()


async def test_register_body_errors(http: Http) -> None:
    bad = await http.put("/v1/agent/service/register", "{nope")
    assert bad.status == 400
    assert bad.text.startswith("Request decode failed: ")
    status = await put_json(
        http, "/v1/agent/service/register", {"Name": "x", "Check": {"TTL": "1s", "Status": "up"}}
    )
    assert (status.status, status.text) == (
        400,
        "Status for checks must 'passing', 'warning', 'critical'",
    )
    # Check types are validated before initial statuses, as in Consul.
    both = {"Name": "x", "Checks": [{"TTL": "1s", "Status": "up"}, {"Name": "no-type"}]}
    first = await put_json(http, "/v1/agent/service/register", both)
    assert (first.status, first.text) == (400, "Invalid check: TTL must be > 0 for TTL checks")
    meta = await put_json(http, "/v1/agent/service/register", {"Name": "x", "Meta": {"a b": "c"}})
    assert meta.status == 400
    assert meta.text.startswith("Invalid Service Meta: ")
    big = await http.put("/v1/agent/service/register", b"x" * (512 * 1024 + 1))
    assert big.status == 413


async def test_self_and_members(http: Http) -> None:
    self_info = (await http.get("/v1/agent/self")).json()
    assert self_info["Config"]["NodeName"] == "dev"
    assert self_info["Config"]["Datacenter"] == "dc1"
    (member,) = (await http.get("/v1/agent/members")).json()
    assert (member["Name"], member["Status"]) == ("dev", 1)
    (wan,) = (await http.get("/v1/agent/members?wan=1")).json()
    assert wan["Name"] == "dev.dc1"
    seg = await http.get("/v1/agent/members?wan=1&segment=a")
    assert (seg.status, seg.text) == (400, "Cannot provide a segment with wan=true")


async def test_services_and_checks_filters(http: Http) -> None:
    await register(http, {"ID": "a", "Name": "api", "Tags": ["v1"], "Check": {"TTL": "1000s"}})
    await register(http, {"ID": "b", "Name": "db"})
    only = (await http.get("/v1/agent/services?filter=v1%20in%20Tags")).json()
    assert list(only) == ["a"]
    checks = (await http.get("/v1/agent/checks?filter=Status%20%3D%3D%20passing")).json()
    assert checks == {}


async def test_replace_existing_checks(http: Http) -> None:
    two = [{"CheckID": "a", "TTL": "1000s"}, {"CheckID": "b", "TTL": "1000s"}]
    await register(http, {"Name": "api", "Checks": two})
    assert sorted((await http.get("/v1/agent/checks")).json()) == ["a", "b"]
    one = {"Name": "api", "Checks": [{"CheckID": "a", "TTL": "1000s"}]}
    await register(http, one)
    assert sorted((await http.get("/v1/agent/checks")).json()) == ["a", "b"]
    reply = await put_json(http, "/v1/agent/service/register?replace-existing-checks", one)
    assert reply.status == 200
    assert sorted((await http.get("/v1/agent/checks")).json()) == ["a"]


async def test_default_check_ids_for_several_checks(http: Http) -> None:
    await register(http, {"Name": "api", "Checks": [{"TTL": "1000s"}, {"TTL": "1000s"}]})
    checks = (await http.get("/v1/agent/checks")).json()
    assert sorted(checks) == ["service:api:1", "service:api:2"]
    assert checks["service:api:1"]["Name"] == "Service 'api' check"


async def test_reregistering_a_service_keeps_its_check_state(http: Http) -> None:
    await register(http, {"Name": "api", "Check": {"TTL": "1000s"}})
    await http.put("/v1/agent/check/pass/service:api?note=fine")
    await register(http, {"Name": "api", "Tags": ["v2"], "Check": {"TTL": "1000s"}})
    check = await check_of(http, "service:api")
    assert (check["Status"], check["Output"], check["ServiceTags"]) == ("passing", "fine", ["v2"])
