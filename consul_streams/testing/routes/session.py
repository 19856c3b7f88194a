"""``/v1/session/*`` of the dev agent (consul-api.md section 2.5): sessions, TTLs, locks."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from ..._rules import parse_go_duration
from .._blocking import QueryResult, blocking_query, go_quote, parse_query
from ..server.bodies import SESSION
from ..server.decode import BodyError, decode
from ..server.dispatch import Router
from ..server.wire import ApiError, Call, json_response
from ..state.session import NS, TTL_MAX, Session, SessionState
from ..state.store import WatchSet

__all__ = ["register"]


def register(router: Router) -> None:
    """Add the session routes."""
    router.add("/v1/session/create", ("PUT",), _create)
    router.add("/v1/session/destroy/", ("PUT",), _destroy)
    router.add("/v1/session/renew/", ("PUT",), _renew)
    router.add("/v1/session/info/", ("GET",), _info)
    router.add("/v1/session/node/", ("GET",), _node)
    router.add("/v1/session/list", ("GET",), _list)


def _lock_delay(value: Any) -> float:
    if isinstance(value, str):
        try:
            return parse_go_duration(value)
        except ValueError:
            raise ApiError(400, f"Request decode failed: invalid LockDelay {value!r}") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # Consul reads small numbers as seconds and large ones as nanoseconds.
        return float(value) if value < 1000 else value / NS
    raise ApiError(400, "Request decode failed: invalid LockDelay")


def _parse_session(call: Call, raw: bytes) -> Session:
    session = Session(id=str(uuid.uuid4()), node=call.store.node_name, node_checks=["serfHealth"])
    if not raw:
        return session
    try:
        body = decode(raw, SESSION)
    except BodyError as exc:
        raise ApiError(400, f"Request decode failed: {exc}") from None
    session.name = str(body.get("Name") or "")
    session.node = str(body.get("Node") or session.node)
    if "LockDelay" in body:
        session.lock_delay = _lock_delay(body["LockDelay"])
    if "NodeChecks" in body:
        session.node_checks = [str(c) for c in body["NodeChecks"] or ()]
    for check in body.get("Checks") or ():
        if str(check) not in session.node_checks:
            session.node_checks.append(str(check))
    if body.get("ServiceChecks"):
        session.service_checks = [
            {"ID": str(c.get("ID", "")), "Namespace": str(c.get("Namespace", ""))}
            for c in body["ServiceChecks"]
        ]
    behavior = str(body.get("Behavior") or "release")
    if behavior not in ("release", "delete"):
        raise ApiError(500, f"Invalid Behavior setting '{behavior}'")
    session.behavior = behavior
    ttl = str(body.get("TTL") or "")
    if ttl:
        try:
            seconds = parse_go_duration(ttl)
        except ValueError:
            raise ApiError(
                500, f"Session TTL '{ttl}' invalid: time: invalid duration {go_quote(ttl)}"
            ) from None
        if seconds != 0 and not call.config.session_ttl_min <= seconds <= TTL_MAX:
            raise ApiError(
                500,
                f"Invalid Session TTL '{round(seconds * NS)}', must be between [10s=24h0m0s]",
            )
        session.ttl = ttl if seconds else ""
    return session


async def _create(call: Call) -> web.StreamResponse:
    parse_query(call)
    raw = await call.body() if (call.request.content_length or 0) > 0 else b""
    session = call.store.get(SessionState).create(_parse_session(call, raw))
    return json_response(call, {"ID": session.id})


async def _destroy(call: Call) -> web.StreamResponse:
    parse_query(call)
    call.required_suffix("Missing session")
    call.store.get(SessionState).destroy(call.suffix)
    return json_response(call, True)


async def _renew(call: Call) -> web.StreamResponse:
    parse_query(call)
    call.required_suffix("Missing session")
    session = call.store.get(SessionState).renew(call.suffix)
    if session is None:
        raise ApiError(404, f"Session id '{call.suffix}' not found")
    return json_response(call, [session.to_json()])


async def _read(call: Call, select: Any, *, not_found: bool = False) -> web.StreamResponse:
    opts = parse_query(call)
    state = call.store.get(SessionState)

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("table", "sessions"))
        found = [s.to_json() for s in state.sessions.values() if select(s)]
        found.sort(key=lambda s: (s["CreateIndex"], s["ID"]))
        index = max(state.table_index, 1)
        return QueryResult(index, found, not_found=not_found and not found)

    result = await blocking_query(call, opts, run)
    return json_response(call, result.body, headers=result.headers)


async def _info(call: Call) -> web.StreamResponse:
    parse_query(call)
    session_id = call.required_suffix("Missing session")
    return await _read(call, lambda s: s.id == session_id, not_found=True)


async def _node(call: Call) -> web.StreamResponse:
    parse_query(call)
    node = call.required_suffix("Missing node name")
    return await _read(call, lambda s: s.node == node)


async def _list(call: Call) -> web.StreamResponse:
    return await _read(call, lambda s: True)
