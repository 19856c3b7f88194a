"""``GET /v1/catalog/node-services/:node`` (``agent/catalog_endpoint.go``
CatalogNodeServiceList, ``Catalog.NodeServiceList``)."""

from __future__ import annotations

import asyncio
import json

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


async def register(http: Http, **service: object) -> None:
    body = {"Node": "n1", "Address": "10.0.0.1", "Service": service}
    assert (await http.put("/v1/catalog/register", json.dumps(body))).status == 200


async def test_node_and_a_list_of_its_services(http: Http) -> None:
    """The node plus its services as a list (``/v1/catalog/node`` gives a map)."""
    await register(http, Service="web", Port=80)
    await register(http, ID="db-1", Service="db", Tags=["primary"])
    r = await http.get("/v1/catalog/node-services/n1")
    assert r.status == 200
    body = r.json()
    assert body["Node"]["Node"] == "n1"
    assert [(s["ID"], s["Service"]) for s in body["Services"]] == [("db-1", "db"), ("web", "web")]
    assert body["Services"][1]["Tags"] == []
    assert r.index == (await http.get("/v1/catalog/node/n1")).index
    assert r.headers["X-Consul-Effective-Consistency"] == "leader"


async def test_unknown_node_is_the_zero_value(http: Http) -> None:
    """NodeServiceList leaves IndexedNodeServiceList zero: Node and Services are null."""
    r = await http.get("/v1/catalog/node-services/ghost")
    assert (r.status, r.json()) == (200, {"Node": None, "Services": None})
    # A node without services keeps Go's nil slice.
    body = {"Node": "bare", "Address": "10.0.0.2"}
    assert (await http.put("/v1/catalog/register", json.dumps(body))).status == 200
    assert (await http.get("/v1/catalog/node-services/bare")).json()["Services"] is None
    r = await http.get("/v1/catalog/node-services/")
    assert (r.status, r.text) == (400, "Missing node name")


async def test_filter_and_blocking(http: Http) -> None:
    """``filter`` applies to the services; the read blocks on the node."""
    await register(http, Service="web", Port=80)
    await register(http, Service="db", Port=5432)
    r = await http.get("/v1/catalog/node-services/n1?filter=Port%20%3D%3D%2080")
    assert [s["Service"] for s in r.json()["Services"]] == ["web"]
    r = await http.get("/v1/catalog/node-services/n1?filter=Port%20%3D%3D%201")
    assert r.json()["Services"] == []
    blocked = asyncio.ensure_future(http.get(f"/v1/catalog/node-services/n1?index={r.index}"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    await register(http, Service="cache")
    woke = await asyncio.wait_for(blocked, 5)
    assert woke.index > r.index
    assert "cache" in [s["Service"] for s in woke.json()["Services"]]
