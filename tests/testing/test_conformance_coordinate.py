"""Network coordinates and ``?near=`` sorting (``agent/coordinate_endpoint.go``,
``agent/consul/rtt.go``, ``lib.ComputeDistance``)."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from consul_streams.testing.state.coordinate import distance, origin

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


def coord(x: float, *, height: float = 1e-5) -> dict[str, Any]:
    return {"Vec": [x] + [0.0] * 7, "Error": 0.2, "Adjustment": 0.0, "Height": height}


async def add_node(http: Http, name: str, *, at: float | None, service: str = "web") -> None:
    body = {"Node": name, "Address": "10.0.0.1", "Service": {"Service": service}}
    assert (await http.put("/v1/catalog/register", json.dumps(body))).status == 200
    if at is not None:
        update = {"Node": name, "Coord": coord(at)}
        r = await http.put("/v1/coordinate/update", json.dumps(update))
        assert (r.status, r.text) == (200, "")


def test_distance_is_serfs_rtt_estimate() -> None:
    """serf/coordinate (*Coordinate).DistanceTo via lib.ComputeDistance."""
    a, b = coord(0.0), coord(0.003, height=0.001)
    # Go converts seconds to a time.Duration, truncating to whole nanoseconds.
    assert distance(a, b) == int((0.003 + 1e-5 + 0.001) * 1e9) / 1e9
    assert distance(a, b) == 0.004009999
    assert distance(a, None) == math.inf
    # A negative adjustment only applies while it leaves the distance positive.
    c = dict(coord(0.001), Adjustment=-0.01)
    assert distance(origin(), c) == int((0.001 + 1e-5 + 1e-5) * 1e9) / 1e9


async def test_datacenters_lists_the_wan_coordinate(http: Http) -> None:
    """CoordinateDatacenters: one datacenter, one server, in the wan area."""
    (dc,) = (await http.get("/v1/coordinate/datacenters")).json()
    assert (dc["Datacenter"], dc["AreaID"]) == ("dc1", "wan")
    (server,) = dc["Coordinates"]
    # Coordinate.ListDatacenters strips the WAN name's ".dc1" suffix.
    assert server["Node"] == "dev"
    assert set(server["Coord"]) == {"Vec", "Error", "Adjustment", "Height"}


async def test_nodes_node_and_update(http: Http) -> None:
    """CoordinateNodes / CoordinateNode / CoordinateUpdate and Coordinate.Update's checks."""
    (own,) = (await http.get("/v1/coordinate/nodes")).json()
    assert (own["Node"], own["Segment"]) == ("dev", "")
    r = await http.get("/v1/coordinate/node/other")
    assert (r.status, r.body) == (404, b"")
    assert "X-Consul-Index" not in r.headers
    await add_node(http, "other", at=0.002)
    r = await http.get("/v1/coordinate/node/other")
    assert r.json()[0]["Coord"]["Vec"][0] == 0.002
    assert r.index >= 1
    assert [c["Node"] for c in (await http.get("/v1/coordinate/nodes")).json()] == [
        "dev",
        "other",
    ]
    assert (await http.get("/v1/coordinate/nodes?segment=alpha")).json() == []
    # Updates for unknown nodes are dropped silently (the batch update skips them).
    r = await http.put("/v1/coordinate/update", json.dumps({"Node": "ghost", "Coord": coord(1)}))
    assert r.status == 200
    assert (await http.get("/v1/coordinate/node/ghost")).status == 404
    bad = {"Node": "other", "Coord": {"Vec": [0.0] * 3, "Error": 1, "Adjustment": 0, "Height": 0}}
    r = await http.put("/v1/coordinate/update", json.dumps(bad))
    assert (r.status, r.text) == (500, "incompatible coordinate")
    r = await http.put("/v1/coordinate/update", "")
    assert (r.status, r.text) == (400, "Request decode failed: EOF")
    # decodeBody (lib.DecodeJSON) types the body as structs.CoordinateUpdateRequest.
    r = await http.put("/v1/coordinate/update", json.dumps({"Node": 5}))
    assert (r.status, r.text) == (
        400,
        "Request decode failed: json: cannot unmarshal number into Go struct field "
        "CoordinateUpdateRequest.Node of type string",
    )


async def test_coordinates_go_with_their_node(http: Http) -> None:
    """Deleting a node deletes its coordinates (state store's node delete)."""
    await add_node(http, "other", at=0.002)
    body = json.dumps({"Node": "other"})
    assert (await http.put("/v1/catalog/deregister", body)).status == 200
    assert (await http.get("/v1/coordinate/node/other")).status == 404


async def test_nodes_block_until_a_coordinate_changes(http: Http) -> None:
    """CoordinateNodes is a blocking query on the coordinates table."""
    await add_node(http, "other", at=0.001)
    first = await http.get("/v1/coordinate/nodes")
    blocked = asyncio.ensure_future(http.get(f"/v1/coordinate/nodes?index={first.index}"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    update = {"Node": "other", "Coord": coord(0.004)}
    assert (await http.put("/v1/coordinate/update", json.dumps(update))).status == 200
    woke = await asyncio.wait_for(blocked, 5)
    assert woke.index > first.index
    assert woke.json()[1]["Coord"]["Vec"][0] == 0.004


async def test_near_sorts_catalog_and_health_by_rtt(http: Http) -> None:
    """rtt.go sortNodesByDistanceFrom: stable by distance, nodes without coordinates last;
    ``_agent`` is this agent's node (parseSource)."""
    await add_node(http, "far", at=0.009)
    await add_node(http, "none", at=None)
    await add_node(http, "near", at=0.001)
    await add_node(http, "dev", at=None)  # the agent's own node, already at the origin

    nodes = (await http.get("/v1/catalog/nodes")).json()
    assert [n["Node"] for n in nodes] == ["dev", "far", "near", "none"]
    nodes = (await http.get("/v1/catalog/nodes?near=_agent")).json()
    assert [n["Node"] for n in nodes] == ["dev", "near", "far", "none"]
    nodes = (await http.get("/v1/catalog/nodes?near=far")).json()
    assert [n["Node"] for n in nodes] == ["far", "near", "dev", "none"]

    svc = (await http.get("/v1/catalog/service/web?near=_agent")).json()
    assert [s["Node"] for s in svc] == ["dev", "near", "far", "none"]
    entries = (await http.get("/v1/health/service/web?near=near")).json()
    assert [e["Node"]["Node"] for e in entries] == ["near", "dev", "far", "none"]
    checks = (await http.get("/v1/health/state/any?near=_agent")).json()
    assert checks[0]["Node"] == "dev"

    # A source without a coordinate (or unknown) leaves the default order.
    nodes = (await http.get("/v1/catalog/nodes?near=none")).json()
    assert [n["Node"] for n in nodes] == ["dev", "far", "near", "none"]
