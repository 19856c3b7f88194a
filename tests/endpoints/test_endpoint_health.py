"""Health endpoint: paths, passing/tag/near/node-meta/filter parameters, rejected arguments."""

from __future__ import annotations

import pytest

from consul_streams.exceptions import InvalidArgument

from ._mock import Endpoints, Wire

CHECK = {"Node": "n", "CheckID": "serfHealth", "Status": "passing", "ServiceTags": []}
ENTRY = {"Node": {"Node": "n"}, "Service": {"ID": "web", "Service": "web"}, "Checks": [CHECK]}


async def test_service_passing_is_sent_as_1(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/health/service/web", json_body=[ENTRY])
    entries, _ = await consul.health.service(
        "web", passing=True, tag="prod", near="n2", node_meta={"a": "b"}, filter="x"
    )
    assert entries == [ENTRY]
    assert wire.only().query == [
        ("passing", "1"),
        ("tag", "prod"),
        ("near", "n2"),
        ("node-meta", "a:b"),
        ("filter", "x"),
    ]


async def test_service_without_passing_sends_nothing_extra(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/health/service/web", json_body=[])
    assert (await consul.health.service("web"))[0] == []
    assert wire.only().query == []


async def test_checks_node_and_state_paths(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/health/checks/web", json_body=[CHECK])
    wire.reply("GET", "/v1/health/node/n", json_body=[CHECK])
    wire.reply("GET", "/v1/health/state/critical", json_body=[])
    wire.reply("GET", "/v1/health/state/any", json_body=[CHECK])
    assert (await consul.health.checks("web", near="_agent"))[0] == [CHECK]
    assert (await consul.health.node("n", filter='Status == "passing"'))[0] == [CHECK]
    assert (await consul.health.state("critical", consistency="consistent"))[0] == []
    assert (await consul.health.state())[0] == [CHECK]
    assert [(c.path, c.query) for c in wire.calls] == [
        ("/v1/health/checks/web", [("near", "_agent")]),
        ("/v1/health/node/n", [("filter", 'Status == "passing"')]),
        ("/v1/health/state/critical", [("consistent", "")]),
        ("/v1/health/state/any", []),
    ]


async def test_rejected_health_arguments(consul: Endpoints, wire: Wire) -> None:
    with pytest.raises(InvalidArgument, match="state: expected one of any, passing"):
        consul.health.state("bogus")
    with pytest.raises(InvalidArgument, match="passing"):
        consul.health.service("web", passing="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="name"):
        consul.health.service("")
    with pytest.raises(InvalidArgument, match="node"):
        consul.health.node("")
    with pytest.raises(InvalidArgument, match="service"):
        consul.health.checks(None)  # type: ignore[arg-type]
    assert wire.calls == []
