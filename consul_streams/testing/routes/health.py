"""``/v1/health/*`` of the dev agent (section 2.3 of consul-api.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from .. import bexpr
from .._blocking import QueryResult, parse_query
from ..server.dispatch import Router
from ..server.wire import ApiError, Call
from ..state.store import WatchSet
from .catalog import (
    catalog_of,
    compile_filter,
    instance_selector,
    matches_node_meta,
    near_sorted,
    node_meta_param,
    serve_read,
)

__all__ = ["ROUTES", "parse_bool", "register"]

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(text: str) -> bool | None:
    """Go's ``strconv.ParseBool``; None when ``text`` is not a boolean."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


async def node(call: Call) -> web.Response:
    """``GET /v1/health/node/:node``: every check of the node (``[]`` when unknown)."""
    opts = parse_query(call)
    name = call.required_suffix("Missing node name")
    keep = compile_filter(opts, bexpr.HEALTH_CHECK)
    cat = catalog_of(call)

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("node", name))
        return QueryResult(cat.index_for_node(name), keep.select(cat.node_checks(name)))

    return await serve_read(call, opts, run)


async def checks(call: Call) -> web.Response:
    """``GET /v1/health/checks/:service``: the checks of that service's instances."""
    opts = parse_query(call)
    name = call.required_suffix("Missing service name")
    keep = compile_filter(opts, bexpr.HEALTH_CHECK)
    meta = node_meta_param(call)
    cat = catalog_of(call)

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("service", name))
        found = [
            check
            for n, svc in cat.instances(name)
            if matches_node_meta(n, meta)
            for check in cat.node_checks(n["Node"])
            if check["ServiceID"] == svc["ID"]
        ]
        kept = near_sorted(call, keep.select(found), lambda c: str(c["Node"]))
        return QueryResult(cat.index_for_service(name), kept)

    return await serve_read(call, opts, run)


async def state(call: Call) -> web.Response:
    """``GET /v1/health/state/:state``: checks in that state; ``any`` = all, unknown = ``[]``."""
    opts = parse_query(call)
    wanted = call.required_suffix("Missing check state")
    keep = compile_filter(opts, bexpr.HEALTH_CHECK)
    meta = node_meta_param(call)
    cat = catalog_of(call)

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("table", "checks"))
        found = [
            check
            for (node_name, _), check in sorted(cat.checks.items())
            if wanted in ("any", check["Status"])
            and matches_node_meta(cat.nodes.get(node_name) or {}, meta)
        ]
        kept = near_sorted(call, keep.select(found), lambda c: str(c["Node"]))
        return QueryResult(cat.table_index["checks"], kept)

    return await serve_read(call, opts, run)


async def service(call: Call) -> web.Response:
    """``GET /v1/health/service/:service``: instances with node, service and checks."""
    opts = parse_query(call)
    name = call.required_suffix("Missing service name")
    keep = compile_filter(opts, bexpr.SERVICE_ENTRY)
    selected = instance_selector(call)
    cat = catalog_of(call)

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("service", name))
        found: list[dict[str, Any]] = [
            {"Node": n, "Service": svc, "Checks": cat.service_checks(n["Node"], svc["ID"])}
            for n, svc in cat.instances(name)
            if selected(n, svc)
        ]
        kept = near_sorted(call, keep.select(found), lambda e: str(e["Node"]["Node"]))
        return QueryResult(cat.index_for_service(name), kept)

    def only_passing(entries: Any) -> Any:
        # Consul validates ?passing after the RPC (so after any blocking), not before.
        if "passing" not in call.request.query:
            return entries
        raw = call.request.query["passing"]
        passing = True if raw == "" else parse_bool(raw)
        if passing is None:
            raise ApiError(400, "Invalid value for ?passing")
        if not passing:
            return entries
        return [e for e in entries if all(c["Status"] == "passing" for c in e["Checks"])]

    return await serve_read(call, opts, run, after=only_passing)


#: (path, methods, handler, prefix), as in :data:`.catalog.ROUTES`.
ROUTES: list[tuple[str, tuple[str, ...], Callable[[Call], Any], bool]] = [
    ("/v1/health/node/", ("GET",), node, True),
    ("/v1/health/checks/", ("GET",), checks, True),
    ("/v1/health/state/", ("GET",), state, True),
    ("/v1/health/service/", ("GET",), service, True),
]


def register(router: Router) -> None:
    """Add these endpoints to the dev agent's route registry."""
    for path, methods, handler, _prefix in ROUTES:
        router.add(path, methods, handler)
