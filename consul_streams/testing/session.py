"""``/v1/session/*`` of the dev agent (consul-api.md section 2.5): sessions, TTLs, locks."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .._rules import parse_go_duration
from ._blocking import QueryResult, blocking_query, go_quote, parse_query
from ._http import ApiError, Call, json_response
from ._kv_state import KVState
from ._server import Router
from ._state import WatchSet

if TYPE_CHECKING:
    from ._state import StateStore

__all__ = ["Session", "SessionState", "register"]

_NS = 1_000_000_000
_TTL_MAX = 86400.0
_DEFAULT_LOCK_DELAY = 15.0


@dataclass
class Session:
    """One session (Consul's structs.Session)."""

    id: str
    name: str = ""
    node: str = ""
    lock_delay: float = _DEFAULT_LOCK_DELAY
    behavior: str = "release"
    ttl: str = ""
    node_checks: list[str] = field(default_factory=list)
    service_checks: list[dict[str, str]] | None = None
    create_index: int = 0
    modify_index: int = 0
    timer: asyncio.TimerHandle | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Name": self.name,
            "Node": self.node,
            "LockDelay": round(self.lock_delay * _NS),
            "Behavior": self.behavior,
            "TTL": self.ttl,
            "NodeChecks": list(self.node_checks),
            "ServiceChecks": self.service_checks,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


def _catalog(store: StateStore) -> Any:
    """The catalog sub-store when the catalog module exists (None otherwise)."""
    try:
        from ._catalog_state import CatalogState  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return store.get(CatalogState)


class SessionState:
    """Sessions, their TTL timers and their invalidation (release or delete held keys)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.sessions: dict[str, Session] = {}
        self.table_index = 0
        store.listen("check", self._on_check)
        store.listen("node", self._on_node)

    def reset(self) -> None:
        for session in self.sessions.values():
            self.store.cancel_timer(session.timer)
        self.sessions = {}
        self.table_index = 0

    def shift_indexes(self, delta: int) -> None:
        for s in self.sessions.values():
            s.create_index = max(1, s.create_index + delta)
            s.modify_index = max(1, s.modify_index + delta)
        self.table_index = max(0, self.table_index + delta)

    def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    def _validate_checks(self, session: Session) -> None:
        catalog = _catalog(self.store)
        if catalog is None:
            return
        if not catalog.node_exists(session.node):
            raise ApiError(500, "Missing node registration")
        checks = list(session.node_checks)
        checks += [c.get("ID", "") for c in session.service_checks or ()]
        for check_id in checks:
            status = catalog.check_status(session.node, check_id)
            if status is None:
                raise ApiError(500, f"Missing check '{check_id}' registration")
            if status == "critical":
                raise ApiError(500, f"Check '{check_id}' is in critical state")

    def create(self, session: Session) -> Session:
        """Validate and store ``session``; starts its TTL timer."""
        self._validate_checks(session)
        idx = self.store.next_index()
        session.create_index = session.modify_index = idx
        self.sessions[session.id] = session
        self.table_index = idx
        self._arm(session)
        self.store.notify(("session", session.id), ("table", "sessions"))
        return session

    def _arm(self, session: Session) -> None:
        self.store.cancel_timer(session.timer)
        session.timer = None
        if session.ttl:
            # Consul reaps an unrenewed TTL session after up to twice its TTL.
            ttl = parse_go_duration(session.ttl)
            session.timer = self.store.call_later(2 * ttl, lambda: self.destroy(session.id))

    def renew(self, session_id: str) -> Session | None:
        session = self.sessions.get(session_id)
        if session is not None:
            self._arm(session)
        return session

    def destroy(self, session_id: str) -> None:
        """Invalidate ``session_id``: drop it and release or delete its keys."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        self.store.cancel_timer(session.timer)
        kv = self.store.get(KVState)
        idx = kv.pending_index()
        kv.release_session(
            session_id,
            delete=session.behavior == "delete",
            lock_delay=session.lock_delay,
            idx=idx,
        )
        if not kv.commit():
            self.store.next_index()
        self.table_index = self.store.index
        self.store.notify(("session", session_id), ("table", "sessions"))

    def _on_check(self, node: str, check_id: str, status: str | None) -> None:
        if status not in (None, "critical"):
            return
        for session in list(self.sessions.values()):
            service_ids = [c.get("ID") for c in session.service_checks or ()]
            if session.node == node and (
                check_id in session.node_checks or check_id in service_ids
            ):
                self.destroy(session.id)

    def _on_node(self, node: str) -> None:
        for session in list(self.sessions.values()):
            if session.node == node:
                self.destroy(session.id)


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
        return float(value) if value < 1000 else value / _NS
    raise ApiError(400, "Request decode failed: invalid LockDelay")


def _parse_session(call: Call, raw: bytes) -> Session:
    session = Session(id=str(uuid.uuid4()), node=call.store.node_name, node_checks=["serfHealth"])
    if not raw:
        return session
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"Request decode failed: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request decode failed: expected a JSON object")
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
        if seconds != 0 and not call.config.session_ttl_min <= seconds <= _TTL_MAX:
            raise ApiError(
                500,
                f"Invalid Session TTL '{round(seconds * _NS)}', must be between [10s=24h0m0s]",
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
