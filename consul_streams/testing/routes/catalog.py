"""``/v1/catalog/*`` of the dev agent (section 2.2 of consul-api.md), plus the read-parameter
helpers that catalog and health share (``tag``, ``node-meta``, ``filter``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from .. import bexpr
from .._blocking import QueryOptions, QueryResult, blocking_query, parse_query
from ..server.bodies import CATALOG_DEREGISTER, CATALOG_REGISTER
from ..server.decode import decode_body
from ..server.dispatch import Router
from ..server.wire import ApiError, Call, json_response
from ..state.cache import CACHED_PATHS, AgentCache
from ..state.catalog import CatalogState, Rec, new_check, new_service, proxy_config
from ..state.coordinate import CoordinateState, sort_near
from ..state.store import WatchSet

__all__ = [
    "ROUTES",
    "catalog_of",
    "compile_filter",
    "matches_node_meta",
    "matches_tags",
    "near_sorted",
    "node_meta_param",
    "read_json",
    "register",
    "serve_read",
]


T = TypeVar("T")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def catalog_of(call: Call) -> CatalogState:
    """The agent's catalog sub-store."""
    return call.store.get(CatalogState)


def compile_filter(opts: QueryOptions, kind: bexpr.Kind) -> bexpr.Filter:
    """Compile ``?filter=`` for objects of ``kind``; a bad expression is Consul's 500."""
    try:
        return bexpr.compile_filter(opts.filter or "", kind)
    except bexpr.FilterError as exc:
        raise ApiError(500, str(exc)) from None


def node_meta_param(call: Call) -> dict[str, str]:
    """The repeatable ``node-meta=key:value`` filter (a pair without ``:`` means empty value)."""
    pairs: dict[str, str] = {}
    for raw in call.request.query.getall("node-meta", []):
        key, _, value = raw.partition(":")
        pairs[key] = value
    return pairs


def local_only(call: Call) -> bool:
    """False when ``?peer=`` names a peer: ``parsePeerName`` sets ``args.PeerName`` and the
    state store (``catalogServiceNodeList`` keyed by peer) only returns that peer's imports.
    Every entry of the dev agent is local (``PeerName`` empty) and it has no peers, so such a
    query matches nothing."""
    return not call.request.query.get("peer", "")


def matches_node_meta(node: Rec, wanted: Mapping[str, str]) -> bool:
    """Whether every ``wanted`` key is in the node's Meta with that value."""
    meta = node.get("Meta") or {}
    return all(key in meta and meta[key] == value for key, value in wanted.items())


def matches_tags(tags: list[str], wanted: list[str]) -> bool:
    """Consul's tag filter: every wanted tag present, compared case-insensitively."""
    have = {tag.lower() for tag in tags}
    return all(tag.lower() in have for tag in wanted)


def instance_selector(call: Call) -> Callable[[Rec, Rec], bool]:
    """The ``tag``, ``node-meta`` and ``peer`` filters of a service read, parsed once before
    the read blocks: ``selected(node, service)`` for each instance."""
    meta = node_meta_param(call)
    tags = call.request.query.getall("tag", [])
    if not local_only(call):
        return lambda node, svc: False
    return lambda node, svc: matches_tags(svc["Tags"], tags) and matches_node_meta(node, meta)


async def read_json(call: Call) -> Any:
    """Decode the request body; undecodable JSON is 400 ``Request decode failed: ...``."""
    raw = await call.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"Request decode failed: {exc}") from None


def near_sorted(call: Call, items: list[T], node_of: Callable[[T], str]) -> list[T]:
    """Sort by RTT from ``?near=`` (``parseSource``; ``_agent`` is this agent's node)."""
    near = call.request.query.get("near", "")
    if not near:
        return items
    source = call.store.node_name if near == "_agent" else near
    return sort_near(call.store.get(CoordinateState), source, items, node_of)


async def serve_read(
    call: Call,
    opts: QueryOptions,
    run: Callable[[WatchSet], QueryResult],
    *,
    after: Callable[[Any], Any] | None = None,
) -> web.Response:
    """Answer a blocking catalog/health read; ``after`` post-processes the final body."""
    result = await blocking_query(call, opts, run)
    body = after(result.body) if after is not None else result.body
    headers = dict(result.headers)
    headers["X-Consul-Effective-Consistency"] = opts.consistency
    if opts.use_cache and call.request.path.startswith(CACHED_PATHS):
        headers.update(cache_meta(call, opts, result.index))
    return json_response(call, body, headers=headers)


def cache_meta(call: Call, opts: QueryOptions, index: int) -> dict[str, str]:
    """agent/http.go setCacheMeta for a ``?cached`` read that found ``index``."""
    skip = ("index", "wait", "cached", "pretty")
    key = (
        call.request.path,
        tuple(sorted((k, v) for k, v in call.request.query.items() if k not in skip)),
        call.token,
    )
    revalidate = opts.must_revalidate or opts.max_age == 0
    return call.store.get(AgentCache).meta(key, index, max_age=opts.max_age, revalidate=revalidate)


# -- shapes ----------------------------------------------------------------------------------


def catalog_service(node: Rec, svc: Rec) -> Rec:
    """The ``CatalogService`` JSON of one instance."""
    out: Rec = {
        "ID": node["ID"],
        "Node": node["Node"],
        "Address": node["Address"],
        "Datacenter": node["Datacenter"],
        "TaggedAddresses": node["TaggedAddresses"],
        "NodeMeta": node["Meta"],
        "ServiceKind": svc.get("Kind", ""),
        "ServiceID": svc["ID"],
        "ServiceName": svc["Service"],
        "ServiceTags": svc["Tags"],
        "ServiceAddress": svc["Address"],
        "ServiceTaggedAddresses": svc.get("TaggedAddresses") or {},
        "ServiceWeights": svc["Weights"],
        "ServiceMeta": svc["Meta"],
        "ServicePort": svc["Port"],
        "ServiceEnableTagOverride": svc["EnableTagOverride"],
        "ServiceProxy": svc.get("Proxy") or proxy_config({}),
        "ServiceConnect": svc.get("Connect") or {},
        "CreateIndex": svc["CreateIndex"],
        "ModifyIndex": svc["ModifyIndex"],
    }
    if "Locality" in svc:
        # structs.ServiceNode.ServiceLocality is a pointer with omitempty.
        out["ServiceLocality"] = svc["Locality"]
    return out


# -- writes ----------------------------------------------------------------------------------


def _check_node_id(node_id: str) -> None:
    """Consul requires a node ID to be a UUID (hashicorp/go-uuid's error texts)."""
    if len(node_id) != 36:
        raise ApiError(500, "Bad node ID: uuid string is wrong length")
    if not _UUID.fullmatch(node_id):
        raise ApiError(500, "Bad node ID: uuid is improperly formatted")


def _forward_dc(call: Call, body: Rec) -> None:
    """The body's ``Datacenter`` picks where the write goes, as in ``CatalogRegister``.

    Consul's handlers default ``args.Datacenter`` only when the body leaves it empty; the
    ``Catalog.Register``/``Catalog.Deregister`` RPCs forward first, so another datacenter
    answers ``No path to datacenter`` before any validation.
    """
    dc = body.get("Datacenter") or ""
    if dc and dc != call.config.datacenter:
        raise ApiError(500, "No path to datacenter")


async def register_entity(call: Call) -> web.Response:
    """``PUT /v1/catalog/register``: a node, optionally a service and checks, in one write."""
    parse_query(call, consistency=False)
    body = await decode_body(call, CATALOG_REGISTER)
    _forward_dc(call, body)
    node = body.get("Node") or ""
    skip_node = bool(body.get("SkipNodeUpdate"))
    if not node:
        raise ApiError(500, "Must provide node")
    if not body.get("Address") and not skip_node:
        raise ApiError(500, "Must provide address if SkipNodeUpdate is not set")
    if body.get("ID"):
        _check_node_id(str(body["ID"]))
    cat = catalog_of(call)
    svc_def = body.get("Service")
    service = new_service(svc_def) if isinstance(svc_def, dict) else None
    if service is not None and not service["Service"]:
        raise ApiError(500, "Must provide service name with ID")
    if service is not None and service["Address"] in ("0.0.0.0", "::", "[::]"):
        raise ApiError(500, "Invalid service address")
    checks = [body["Check"]] if isinstance(body.get("Check"), dict) else []
    checks += [c for c in body.get("Checks") or [] if isinstance(c, dict)]
    if skip_node and not cat.node_exists(node) and (service is not None or checks):
        raise ApiError(500, "Missing node registration")
    for definition in checks:
        sid = definition.get("ServiceID") or ""
        known = (node, sid) in cat.services or (service is not None and service["ID"] == sid)
        if sid and not known:
            raise ApiError(500, "Missing service registration")
    with cat.write() as w:
        if not skip_node or not cat.has_node(node):
            cat.ensure_node(
                w,
                {
                    "ID": body.get("ID") or "",
                    "Node": node,
                    "Address": body.get("Address") or "",
                    "TaggedAddresses": body.get("TaggedAddresses"),
                    "Meta": body.get("NodeMeta"),
                },
            )
        if service is not None:
            service = cat.ensure_service(w, node, service)
        for definition in checks:
            owner = cat.services.get((node, definition.get("ServiceID") or ""))
            cat.ensure_check(
                w, new_check(definition.get("Node") or node, definition, service=owner)
            )
    return json_response(call, True)


async def deregister_entity(call: Call) -> web.Response:
    """``PUT /v1/catalog/deregister``: a check, a service, or a whole node."""
    parse_query(call, consistency=False)
    body = await decode_body(call, CATALOG_DEREGISTER)
    _forward_dc(call, body)
    node = body.get("Node") or ""
    if not node:
        raise ApiError(500, "Must provide node")
    cat = catalog_of(call)
    with cat.write() as w:
        if body.get("ServiceID"):
            cat.delete_service(w, node, body["ServiceID"])
        if body.get("CheckID"):
            cat.delete_check(w, node, body["CheckID"])
        if not body.get("ServiceID") and not body.get("CheckID"):
            cat.delete_node(w, node)
    return json_response(call, True)


# -- reads -----------------------------------------------------------------------------------


async def datacenters(call: Call) -> web.Response:
    """``GET /v1/catalog/datacenters``."""
    parse_query(call, consistency=False)
    return json_response(call, [call.config.datacenter])


async def nodes(call: Call) -> web.Response:
    """``GET /v1/catalog/nodes`` (blocks on the nodes table)."""
    opts = parse_query(call)
    keep = compile_filter(opts, bexpr.NODE)
    meta = node_meta_param(call)
    cat = catalog_of(call)

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("table", "nodes"))
        found = [n for _, n in sorted(cat.nodes.items()) if matches_node_meta(n, meta)]
        kept = near_sorted(call, keep.select(found), lambda n: str(n["Node"]))
        return QueryResult(cat.table_index["nodes"], kept)

    return await serve_read(call, opts, run)


async def services(call: Call) -> web.Response:
    """``GET /v1/catalog/services``: name -> de-duplicated tags (blocks on services)."""
    opts = parse_query(call)
    keep = compile_filter(opts, bexpr.CATALOG_SERVICE)
    meta = node_meta_param(call)
    cat = catalog_of(call)

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("table", "services"), ("table", "nodes"))
        out: dict[str, list[str]] = {}
        for (node_name, _), svc in sorted(cat.services.items()):
            node = cat.nodes.get(node_name)
            if node is None or not matches_node_meta(node, meta):
                continue
            if not keep(catalog_service(node, svc)):
                continue
            tags = out.setdefault(svc["Service"], [])
            tags.extend(t for t in svc["Tags"] if t not in tags)
        # A Go map: encoding/json writes its keys sorted.
        return QueryResult(cat.table_index["services"], dict(sorted(out.items())))

    return await serve_read(call, opts, run)


async def service(call: Call) -> web.Response:
    """``GET /v1/catalog/service/:name`` (blocks on that service only)."""
    opts = parse_query(call)
    name = call.required_suffix("Missing service name")
    keep = compile_filter(opts, bexpr.CATALOG_SERVICE)
    selected = instance_selector(call)
    cat = catalog_of(call)

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("service", name))
        found = [
            catalog_service(node, svc) for node, svc in cat.instances(name) if selected(node, svc)
        ]
        kept = near_sorted(call, keep.select(found), lambda s: str(s["Node"]))
        return QueryResult(cat.index_for_service(name), kept)

    return await serve_read(call, opts, run)


async def node(call: Call) -> web.Response:
    """``GET /v1/catalog/node/:node``: the node and its services; ``null`` when unknown."""
    opts = parse_query(call)
    name = call.required_suffix("Missing node name")
    keep = compile_filter(opts, bexpr.AGENT_SERVICE)
    cat = catalog_of(call)

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("node", name))
        rec = cat.nodes.get(name)
        if rec is None:
            return QueryResult(cat.index_for_node(name), None)
        svcs = {s["ID"]: s for (n, _), s in sorted(cat.services.items()) if n == name}
        kept = {sid: s for sid, s in svcs.items() if keep(s)}
        return QueryResult(cat.index_for_node(name), {"Node": rec, "Services": kept})

    return await serve_read(call, opts, run)


async def node_services(call: Call) -> web.Response:
    """``GET /v1/catalog/node-services/:node``: the node and a *list* of its services.

    An unknown node answers ``{"Node": null, "Services": null}`` (``Catalog.NodeServiceList``
    leaves the zero value).
    """
    opts = parse_query(call)
    name = call.required_suffix("Missing node name")
    keep = compile_filter(opts, bexpr.AGENT_SERVICE)
    cat = catalog_of(call)

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("node", name))
        rec = cat.nodes.get(name)
        if rec is None:
            return QueryResult(cat.index_for_node(name), {"Node": None, "Services": None})
        svcs = [s for (n, _), s in sorted(cat.services.items()) if n == name]
        # A node without services keeps the nil slice (null); a filter makes a new one.
        listed = keep.select(svcs) if svcs else None
        return QueryResult(cat.index_for_node(name), {"Node": rec, "Services": listed})

    return await serve_read(call, opts, run)


#: (path, methods, handler, prefix): ``prefix`` routes take the rest of the path as suffix.
ROUTES: list[tuple[str, tuple[str, ...], Callable[[Call], Any], bool]] = [
    ("/v1/catalog/register", ("PUT",), register_entity, False),
    ("/v1/catalog/deregister", ("PUT",), deregister_entity, False),
    ("/v1/catalog/datacenters", ("GET",), datacenters, False),
    ("/v1/catalog/nodes", ("GET",), nodes, False),
    ("/v1/catalog/services", ("GET",), services, False),
    ("/v1/catalog/service/", ("GET",), service, True),
    ("/v1/catalog/node/", ("GET",), node, True),
    ("/v1/catalog/node-services/", ("GET",), node_services, True),
]


def register(router: Router) -> None:
    """Add these endpoints to the dev agent's route registry."""
    for path, methods, handler, _prefix in ROUTES:
        router.add(path, methods, handler)
