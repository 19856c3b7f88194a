"""Agent endpoint: hash blocking, local reads, service/check writes, maintenance."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consul_streams._query import BlockingMode
from consul_streams.exceptions import InvalidArgument, NotFound
from consul_streams.typing import Meta

from ._mock import Endpoints, Wire

SERVICE = {"ID": "web", "Service": "web", "Tags": [], "Meta": {}, "Port": 80, "ContentHash": "ab"}


async def test_service_blocks_on_content_hash(consul: Endpoints, wire: Wire) -> None:
    wire.reply(
        "GET", "/v1/agent/service/web", json_body=SERVICE, headers={"X-Consul-ContentHash": "ab"}
    )
    wire.reply(
        "GET", "/v1/agent/service/web", json_body=SERVICE, headers={"X-Consul-ContentHash": "cd"}
    )
    query = consul.agent.service("web")
    assert query.mode is BlockingMode.HASH
    service, meta = await query
    assert service["Port"] == 80
    assert meta.content_hash == "ab"
    seeded = consul.agent.service("web", watch=(meta, "2s"))
    assert (seeded.hash, seeded.wait) == ("ab", 2.0)
    _, meta2 = await seeded
    assert meta2.content_hash == "cd"
    assert [c.query for c in wire.calls] == [[], [("hash", "ab"), ("wait", "2000ms")]]


async def test_service_watch_accepts_a_bare_hash(consul: Endpoints) -> None:
    assert consul.agent.service("web", watch="ff").hash == "ff"
    with pytest.raises(InvalidArgument, match="watch"):
        consul.agent.service("web", watch=Meta(index=3))


async def test_unknown_service_is_not_found(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/agent/service/nope", status=404, body="unknown service ID: nope")
    with pytest.raises(NotFound, match="unknown service ID"):
        await consul.agent.service("nope")


async def test_local_reads_do_not_block(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/agent/self", json_body={"Config": {"NodeName": "dev"}})
    wire.reply("GET", "/v1/agent/members", json_body=[{"Name": "dev", "Status": 1}])
    wire.reply("GET", "/v1/agent/services", json_body={"web": SERVICE})
    wire.reply("GET", "/v1/agent/checks", json_body={"c": {"CheckID": "c"}})
    me = consul.agent.self()
    members = consul.agent.members(wan=True, filter="x")
    services = consul.agent.services(filter='Service == "web"')
    checks = consul.agent.checks()
    modes = {me.mode, members.mode, services.mode, checks.mode}
    assert modes == {BlockingMode.NONE}
    assert (await me)[0]["Config"] == {"NodeName": "dev"}
    assert (await members)[0] == [{"Name": "dev", "Status": 1}]
    assert (await services)[0] == {"web": SERVICE}
    assert (await checks)[0] == {"c": {"CheckID": "c"}}
    assert [c.query for c in wire.calls] == [
        [],
        [("wan", "1"), ("filter", "x")],
        [("filter", 'Service == "web"')],
        [],
    ]


async def test_service_register_merges_keywords(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/agent/service/register")
    wire.reply("PUT", "/v1/agent/service/register")
    await consul.agent.service_register("web", port=80, tags=["a"])
    await consul.agent.service_register(
        {"Name": "api", "Port": 1}, service_id="api-1", replace_existing_checks=True
    )
    first, second = wire.calls
    assert first.json() == {"Name": "web", "Tags": ["a"], "Port": 80}
    assert first.query == []
    assert second.json() == {"Name": "api", "Port": 1, "ID": "api-1"}
    assert second.query == [("replace-existing-checks", "true")]


async def test_check_register_formats_durations(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/agent/check/register")
    await consul.agent.check_register(
        "api-ttl",
        service_id="api",
        ttl="30s",
        deregister_critical_service_after=timedelta(minutes=1),
    )
    assert wire.only().json() == {
        "Name": "api-ttl",
        "ServiceID": "api",
        "TTL": "30000ms",
        "DeregisterCriticalServiceAfter": "60000ms",
    }


async def test_ttl_updates_and_deregistrations(consul: Endpoints, wire: Wire) -> None:
    for path in (
        "/v1/agent/check/pass/service:api",
        "/v1/agent/check/warn/service:api",
        "/v1/agent/check/fail/service:api",
        "/v1/agent/check/update/service:api",
        "/v1/agent/check/deregister/service:api",
        "/v1/agent/service/deregister/api",
    ):
        wire.reply("PUT", path)
    await consul.agent.check_pass("service:api", note="ok")
    await consul.agent.check_warn("service:api")
    await consul.agent.check_fail("service:api", note="down")
    await consul.agent.check_update("service:api", "warning", output="slow")
    await consul.agent.check_deregister("service:api")
    await consul.agent.service_deregister("api")
    calls = wire.calls
    assert {c.method for c in calls} == {"PUT"}
    assert [c.query for c in calls[:3]] == [[("note", "ok")], [], [("note", "down")]]
    assert calls[3].json() == {"Status": "warning", "Output": "slow"}


async def test_maintenance(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/agent/service/maintenance/web")
    wire.reply("PUT", "/v1/agent/maintenance")
    await consul.agent.service_maintenance("web", True, reason="deploy")
    await consul.agent.node_maintenance(False)
    assert [c.query for c in wire.calls] == [
        [("enable", "true"), ("reason", "deploy")],
        [("enable", "false")],
    ]


async def test_rejected_agent_arguments(consul: Endpoints, wire: Wire) -> None:
    with pytest.raises(InvalidArgument, match="segment"):
        consul.agent.members(wan=True, segment="s")
    with pytest.raises(InvalidArgument, match="service_id"):
        consul.agent.service("")
    cases = [
        ("status", consul.agent.check_update("c", "ok")),
        ("status", consul.agent.check_register("c", status="bogus")),
        ("ttl", consul.agent.check_register("c", ttl="10")),
        ("enable", consul.agent.node_maintenance("yes")),  # type: ignore[arg-type]
        ("tags", consul.agent.service_register("web", tags="a")),
        ("port", consul.agent.service_register("web", port="80")),  # type: ignore[arg-type]
        ("service['Name']", consul.agent.service_register({"Port": 1})),
        ("note", consul.agent.check_pass("c", note=3)),  # type: ignore[arg-type]
        (
            "replace_existing_checks",
            consul.agent.service_register("web", replace_existing_checks="yes"),  # type: ignore[arg-type]
        ),
    ]
    for parameter, coro in cases:
        with pytest.raises(InvalidArgument) as info:
            await coro
        assert info.value.parameter == parameter
    assert wire.calls == []
