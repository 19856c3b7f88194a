"""Catalog endpoint: paths, filter parameters, decoding and rejected arguments."""

from __future__ import annotations

import pytest

from consul_streams._query import BlockingMode
from consul_streams.exceptions import InvalidArgument

from ._mock import Endpoints, Wire

NODE = {"ID": "n1", "Node": "web-1", "Address": "10.0.0.1", "Datacenter": "dc1"}


async def test_datacenters_is_not_blocking(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/catalog/datacenters", json_body=["dc1", "dc2"])
    query = consul.catalog.datacenters()
    assert query.mode is BlockingMode.NONE
    assert (await query)[0] == ["dc1", "dc2"]


async def test_nodes_sends_near_node_meta_filter(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/catalog/nodes", json_body=[NODE], headers={"X-Consul-Index": "5"})
    nodes, meta = await consul.catalog.nodes(
        near="_agent", node_meta={"rack": "r1", "env": "prod"}, filter='Node == "web-1"'
    )
    assert nodes == [NODE]
    assert meta.index == 5
    assert wire.only().query == [
        ("near", "_agent"),
        ("node-meta", "rack:r1"),
        ("node-meta", "env:prod"),
        ("filter", 'Node == "web-1"'),
    ]


async def test_node_meta_accepts_key_value_strings(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/catalog/services", json_body={"consul": [], "web": ["a"]})
    services, _ = await consul.catalog.services(node_meta=["rack:r1", "flag"])
    assert services == {"consul": [], "web": ["a"]}
    assert wire.only().query == [("node-meta", "rack:r1"), ("node-meta", "flag")]


async def test_service_sends_repeated_tags_and_seed(consul: Endpoints, wire: Wire) -> None:
    instance = {"Node": "n", "ServiceName": "web", "ServiceTags": ["prod"], "ServicePort": 80}
    wire.reply("GET", "/v1/catalog/service/web", json_body=[instance])
    query = consul.catalog.service(
        "web", tag=["prod", "v2"], watch=(9, "1m"), consistency="stale", dc="dc2"
    )
    assert query.mode is BlockingMode.INDEX
    result, _ = await query
    assert result == [instance]
    assert wire.only().query == [
        ("tag", "prod"),
        ("tag", "v2"),
        ("dc", "dc2"),
        ("stale", ""),
        ("index", "9"),
        ("wait", "60000ms"),
    ]


async def test_service_name_is_one_encoded_segment(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/catalog/service/a%2Fb%20c", json_body=[])
    assert (await consul.catalog.service("a/b c", tag="x"))[0] == []
    assert wire.only().query == [("tag", "x")]


async def test_node_decodes_services_and_null_is_none(consul: Endpoints, wire: Wire) -> None:
    wire.reply(
        "GET",
        "/v1/catalog/node/web-1",
        json_body={"Node": NODE, "Services": {"web": {"ID": "web", "Service": "web"}}},
    )
    wire.reply("GET", "/v1/catalog/node/nope", body="null")
    node, _ = await consul.catalog.node("web-1")
    assert node is not None
    assert node["Services"]["web"]["Service"] == "web"
    assert (await consul.catalog.node("nope"))[0] is None


async def test_register_builds_consul_shaped_body(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/catalog/register", json_body=True)
    ok = await consul.catalog.register(
        "web-1",
        "10.0.0.1",
        service={"Service": "web", "Port": 80},
        checks=[{"CheckID": "c", "Name": "c", "Status": "passing"}],
        node_meta={"rack": "r1"},
        skip_node_update=True,
        dc="dc2",
    )
    assert ok is True
    call = wire.only()
    assert call.method == "PUT"
    assert call.query == [("dc", "dc2")]
    assert call.json() == {
        "Node": "web-1",
        "Address": "10.0.0.1",
        "Datacenter": "dc2",
        "Service": {"Service": "web", "Port": 80},
        "NodeMeta": {"rack": "r1"},
        "Checks": [{"CheckID": "c", "Name": "c", "Status": "passing"}],
        "SkipNodeUpdate": True,
    }


async def test_deregister_service_only(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/catalog/deregister", json_body=True)
    assert await consul.catalog.deregister("web-1", service_id="web") is True
    assert wire.only().json() == {"Node": "web-1", "ServiceID": "web"}


async def test_rejected_catalog_arguments(consul: Endpoints, wire: Wire) -> None:
    with pytest.raises(InvalidArgument, match="name"):
        consul.catalog.service("")
    with pytest.raises(InvalidArgument, match="tag"):
        consul.catalog.service("web", tag=[1])  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match="node_meta"):
        consul.catalog.nodes(node_meta="rack:r1")
    with pytest.raises(InvalidArgument, match="node_meta"):
        consul.catalog.nodes(node_meta={"rack": 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgument, match="filter"):
        consul.catalog.nodes(filter="")
    with pytest.raises(InvalidArgument, match="near"):
        consul.catalog.nodes(near=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="dc"):
        consul.catalog.nodes(dc="")
    with pytest.raises(InvalidArgument, match="service"):
        await consul.catalog.register("n", "1.2.3.4", service=["web"])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="address"):
        await consul.catalog.register("n", "")
    with pytest.raises(InvalidArgument, match="skip_node_update"):
        await consul.catalog.register("n", "1.2.3.4", skip_node_update="no")  # type: ignore[arg-type]
    assert wire.calls == []
