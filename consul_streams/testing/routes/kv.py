"""``/v1/kv/`` of the dev agent (consul-api.md section 2.1)."""

from __future__ import annotations

from urllib.parse import quote_plus

from aiohttp import web

from .._blocking import (
    QueryOptions,
    QueryResult,
    blocking_query,
    go_quote,
    parse_go_uint_or_500,
    parse_query,
)
from ..server.dispatch import Router
from ..server.wire import ApiError, Call, json_response
from ..state.kv import KVState
from ..state.session import SessionState
from ..state.store import WatchSet

__all__ = ["register", "too_large"]

_SIZE_DOCS = (
    "https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size"
)


def register(router: Router) -> None:
    """Add the KV route."""
    router.add("/v1/kv/", ("GET", "PUT", "DELETE"), handle)


def too_large(size: int, limit: int) -> ApiError:
    """Consul's 413 for a request body over ``limit`` bytes."""
    return ApiError(
        413, f"Request body({size} bytes) too large, max size: {limit} bytes. See {_SIZE_DOCS}."
    )


def _go_query_encode(call: Call) -> str:
    """Go's ``url.Values.Encode()``: keys sorted, QueryEscape'd, ``k=v`` joined by ``&``."""
    query = call.request.query
    parts: list[str] = []
    for key in sorted(set(query.keys())):
        for value in query.getall(key):
            parts.append(f"{quote_plus(key, safe='')}={quote_plus(value, safe='')}")
    return "&".join(parts)


def _conflicting(call: Call, *names: str) -> None:
    if sum(1 for name in names if call.flag(name)) > 1:
        raise ApiError(400, f"Conflicting flags: {_go_query_encode(call)}\n")


async def handle(call: Call) -> web.StreamResponse:
    """Dispatch GET/PUT/DELETE after the common parameter parsing (runs for every method)."""
    opts = parse_query(call)
    kv = call.store.get(KVState)
    method = call.request.method
    if method == "GET":
        return await _get(call, kv, opts)
    if method == "PUT":
        return await _put(call, kv)
    return _delete(call, kv)


async def _get(call: Call, kv: KVState, opts: QueryOptions) -> web.StreamResponse:
    key = call.suffix
    if call.flag("keys"):
        separator = call.query.get("separator") or call.query.get("seperator") or ""
        result = await blocking_query(call, opts, lambda ws: _keys(kv, ws, key, separator))
    elif call.flag("recurse"):
        result = await blocking_query(call, opts, lambda ws: _tree(kv, ws, key))
    else:
        if not key:
            raise ApiError(400, "Missing key name")
        result = await blocking_query(call, opts, lambda ws: _one(kv, ws, key))
        if call.flag("raw") and result.status == 200:
            value = kv.get(key)
            body = value.value if value is not None else b""
            headers = {
                **result.headers,
                "Content-Type": "text/plain",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
            }
            return web.Response(body=body, headers=headers)
    if result.status == 404:
        return web.Response(status=404, body=b"", headers=result.headers)
    return json_response(call, result.body, headers=result.headers)


def _one(kv: KVState, ws: WatchSet, key: str) -> QueryResult:
    ws.add(("kv", key))
    entry = kv.get(key)
    if entry is None:
        return QueryResult(kv.table_index, None, status=404, not_found=True)
    return QueryResult(entry.modify_index, [entry.to_json()])


def _tree(kv: KVState, ws: WatchSet, prefix: str) -> QueryResult:
    ws.add_prefix("kv", prefix)
    entries = kv.list(prefix)
    index = kv.list_index(prefix, entries)
    if not entries:
        return QueryResult(index, None, status=404)
    return QueryResult(index, [e.to_json() for e in entries])


def _keys(kv: KVState, ws: WatchSet, prefix: str, separator: str) -> QueryResult:
    ws.add_prefix("kv", prefix)
    entries = kv.list(prefix)
    index = kv.list_index(prefix, entries)
    keys: list[str] = []
    for entry in entries:
        key = entry.key
        if separator:
            cut = key.find(separator, len(prefix))
            if cut >= 0:
                key = key[: cut + len(separator)]
        if not keys or keys[-1] != key:
            keys.append(key)
    if not keys and prefix:
        return QueryResult(index, None, status=404)
    return QueryResult(index, keys)


async def _put(call: Call, kv: KVState) -> web.StreamResponse:
    key = call.required_suffix("Missing key name")
    query = call.query
    flags = 0
    cas = None
    if query:
        _conflicting(call, "cas", "acquire", "release")
        flags = parse_go_uint_or_500(query["flags"]) if "flags" in query else 0
        cas = parse_go_uint_or_500(query["cas"]) if "cas" in query else None
    limit = call.config.kv_max_value_size
    length = call.request.content_length
    if length is not None and length > limit:
        raise too_large(length, limit)
    body = await call.request.read()
    if len(body) > limit:
        raise too_large(len(body), limit)
    idx = kv.pending_index()
    if "acquire" in query:
        session = query.get("acquire", "")
        # kvsPreApply rejects a lock inside the lock delay before the state store looks at
        # the session, so even an unknown session gets false there.
        ok = not kv.in_lock_delay(key)
        if ok:
            check_session(call, session, exists=True)
            ok = kv.lock(key, body, flags, session, idx)
    elif "release" in query:
        # kvsUnlockTxn only requires a session ID: unknown sessions just do not hold the key.
        session = query.get("release", "")
        check_session(call, session, exists=False)
        ok = kv.unlock(key, body, flags, session, idx)
    elif cas is not None:
        ok = kv.cas(key, body, flags, cas, idx)
    else:
        kv.set(key, body, flags, idx, session=None)
        ok = True
    kv.commit()
    return json_response(call, ok)


def check_session(call: Call, session: str, *, exists: bool) -> None:
    """``kvsLockTxn``/``kvsUnlockTxn``: a session ID is required; a lock needs it to exist."""
    if not session:
        raise ApiError(500, "missing session")
    if exists and call.store.get(SessionState).get(session) is None:
        raise ApiError(500, f"invalid session {go_quote(session)}")


def _delete(call: Call, kv: KVState) -> web.StreamResponse:
    key = call.suffix
    _conflicting(call, "recurse", "cas")
    recurse = call.flag("recurse")
    if not key and not recurse:
        raise ApiError(400, "Missing key name")
    idx = kv.pending_index()
    ok = True
    if recurse:
        kv.delete_tree(key, idx)
    elif "cas" in call.query:
        ok = kv.delete_cas(key, parse_go_uint_or_500(call.query["cas"]), idx)
    else:
        kv.delete(key, idx)
    kv.commit()
    return json_response(call, ok)
