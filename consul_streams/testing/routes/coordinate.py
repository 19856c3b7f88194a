"""``/v1/coordinate/*`` of the dev agent: network coordinates (``agent/coordinate_endpoint.go``).

The dev agent is one server in one datacenter: ``datacenters`` lists its WAN coordinate,
``nodes`` and ``node/:node`` read the coordinates table (blocking on it), and ``update``
stores a node's coordinate right away. ``?near=`` on catalog and health reads sorts by these
(:func:`~.catalog.near_sorted`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .._blocking import QueryResult, blocking_query, parse_query
from ..server.decode import FLOAT, STRING, ListOf, Struct, decode_body
from ..server.dispatch import Router
from ..server.wire import ApiError, Call, empty_response, json_response
from ..state.catalog import CatalogState
from ..state.coordinate import DIMENSIONALITY, CoordinateState, is_valid, origin
from ..state.store import WatchSet

__all__ = ["register"]


def register(router: Router) -> None:
    """Add the coordinate routes."""
    router.add("/v1/coordinate/datacenters", ("GET",), datacenters)
    router.add("/v1/coordinate/nodes", ("GET",), nodes)
    router.add("/v1/coordinate/node/", ("GET",), node)
    router.add("/v1/coordinate/update", ("PUT",), update)


async def datacenters(call: Call) -> web.StreamResponse:
    """``GET /v1/coordinate/datacenters``: the WAN pool, one server in this datacenter.

    The WAN member is ``<node>.<dc>``, but ``Coordinate.ListDatacenters`` strips the
    ``.<dc>`` suffix from every node name, so the answer names the node as the catalog does.
    """
    cfg = call.config
    wan = {"Node": call.store.node_name, "Segment": "", "Coord": origin()}
    return json_response(
        call, [{"Datacenter": cfg.datacenter, "AreaID": "wan", "Coordinates": [wan]}]
    )


def _segment_filter(call: Call, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``filterCoordinates``: ``?segment=`` (even empty) keeps only that segment."""
    if "segment" not in call.request.query:
        return entries
    segment = call.request.query.get("segment", "")
    return [e for e in entries if e["Segment"] == segment]


async def _read(call: Call, node: str | None) -> QueryResult:
    opts = parse_query(call)
    state = call.store.get(CoordinateState)

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("table", "coordinates"))
        found = _segment_filter(call, state.entries(node))
        return QueryResult(max(state.table_index, 1), found)

    return await blocking_query(call, opts, run)


async def nodes(call: Call) -> web.StreamResponse:
    """``GET /v1/coordinate/nodes`` (blocking on the coordinates table)."""
    result = await _read(call, None)
    return json_response(call, result.body, headers=result.headers)


async def node(call: Call) -> web.StreamResponse:
    """``GET /v1/coordinate/node/:node``: its coordinates, or a bodyless 404."""
    result = await _read(call, call.suffix)
    if not result.body:
        # Consul writes the 404 before its deferred setMeta runs: no meta headers.
        return empty_response(404)
    return json_response(call, result.body, headers=result.headers)


_COORD = Struct(
    "Coordinate",
    "*coordinate.Coordinate",
    {"Vec": ListOf(FLOAT, "[]float64"), "Error": FLOAT, "Adjustment": FLOAT, "Height": FLOAT},
)
#: structs.CoordinateUpdateRequest as the handler decodes it.
COORDINATE_UPDATE = Struct(
    "CoordinateUpdateRequest",
    "structs.CoordinateUpdateRequest",
    {
        "Datacenter": STRING,
        "Node": STRING,
        "Segment": STRING,
        "Coord": _COORD,
        "Partition": STRING,
        "Token": STRING,
    },
)


def _coordinate(raw: dict[str, Any] | None) -> dict[str, Any]:
    """``Coordinate.Update``'s checks: finite components, serf's dimensionality."""
    if raw is None:
        # A nil coordinate is never valid.
        raise ApiError(500, "invalid coordinate")
    vec = [float(v or 0.0) for v in raw.get("Vec") or []]
    coord = {
        "Vec": vec,
        "Error": float(raw.get("Error", 0.0)),
        "Adjustment": float(raw.get("Adjustment", 0.0)),
        "Height": float(raw.get("Height", 0.0)),
    }
    if not is_valid(coord):
        raise ApiError(500, "invalid coordinate")
    if len(vec) != DIMENSIONALITY:
        raise ApiError(500, "incompatible coordinate")
    return coord


async def update(call: Call) -> web.StreamResponse:
    """``PUT /v1/coordinate/update``: validate as ``Coordinate.Update``, store at once."""
    body = await decode_body(call, COORDINATE_UPDATE)
    coord = _coordinate(body.get("Coord"))
    name = str(body.get("Node") or "")
    known = call.store.get(CatalogState).node_exists(name)
    call.store.get(CoordinateState).update(
        name, str(body.get("Segment") or ""), coord, node_known=known
    )
    return empty_response()
