"""``/v1/txn`` of the dev agent (consul-api.md section 2.8): atomic KV transactions.

All operations are evaluated at one index; if any fails, every write is rolled back and the
answer is 409 with one error per failing operation. Only ``KV`` operations are supported;
``Node``/``Service``/``Check`` operations answer 409 ``unsupported operation`` in the dev agent.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import web

from .._blocking import go_quote, parse_query
from ..server.dispatch import Router
from ..server.wire import ApiError, Call, json_response
from ..state.kv import KVState
from .kv import too_large

__all__ = ["MAX_TXN_OPS", "register"]

MAX_TXN_OPS = 128
_WRITE_VERBS = {"set", "cas", "lock", "unlock", "delete", "delete-tree", "delete-cas"}


def register(router: Router) -> None:
    """Add the txn route."""
    router.add("/v1/txn", ("PUT",), _txn)


def _decode_ops(raw: bytes, limit: int) -> list[dict[str, Any]]:
    try:
        ops = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"Failed to parse body: {exc}") from None
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise ApiError(400, "Failed to parse body: expected a JSON array of operations")
    if len(ops) > MAX_TXN_OPS:
        raise ApiError(
            413, f"Transaction contains too many operations ({len(ops)} > {MAX_TXN_OPS})"
        )
    for op in ops:
        kv = op.get("KV")
        if not isinstance(kv, dict):
            continue
        value = kv.get("Value")
        try:
            kv["Value"] = base64.b64decode(value, validate=True) if value else b""
        except (binascii.Error, TypeError, ValueError) as exc:
            raise ApiError(400, f"Failed to parse body: {exc}") from None
        if len(kv["Value"]) > limit:
            key = str(kv.get("Key", ""))
            raise ApiError(
                413,
                f"Value for key {go_quote(key)} is too large ({len(kv['Value'])} > {limit} bytes)",
            )
    return ops


def _apply(kv: KVState, op: dict[str, Any], idx: int) -> tuple[list[Any], str | None]:
    """Run one KV operation: (results, error text or None)."""
    verb = str(op.get("Verb", ""))
    key = str(op.get("Key", ""))
    value: bytes = op.get("Value") or b""
    flags = int(op.get("Flags") or 0)
    index = int(op.get("Index") or 0)
    session = str(op.get("Session") or "")
    q = go_quote(key)
    entry = kv.get(key)
    if verb == "set":
        kv.set(key, value, flags, idx)
    elif verb == "cas":
        if not kv.cas(key, value, flags, index, idx):
            return [], f"failed to set key {q}, index is stale"
    elif verb == "lock":
        if not kv.lock(key, value, flags, session, idx):
            return [], f"failed to lock key {q}, lock is already held"
    elif verb == "unlock":
        if not kv.unlock(key, value, flags, session, idx):
            return [], f"failed to unlock key {q}, lock isn't held, or is held by another session"
    elif verb == "get":
        if entry is None:
            return [], f"key {q} doesn't exist"
        return [entry.to_json()], None
    elif verb == "get-or-empty":
        return ([entry.to_json()] if entry else []), None
    elif verb == "get-tree":
        return [e.to_json() for e in kv.list(key)], None
    elif verb == "check-index":
        if entry is None:
            return [], f"failed to check index, key {q} doesn't exist"
        if entry.modify_index != index:
            return [], (
                f"failed index check for key {q}, current modify index "
                f"{entry.modify_index} != {index}"
            )
        return [entry.to_json(with_value=False)], None
    elif verb == "check-session":
        if entry is None:
            return [], f"failed to check session, key {q} doesn't exist"
        if entry.session != session:
            return [], (
                f"failed session check for key {q}, current session "
                f"{go_quote(entry.session)} != {go_quote(session)}"
            )
        return [entry.to_json(with_value=False)], None
    elif verb == "check-not-exists":
        if entry is not None:
            return [], f"key {q} exists"
        return [], None
    elif verb == "delete":
        kv.delete(key, idx)
        return [], None
    elif verb == "delete-tree":
        kv.delete_tree(key, idx)
        return [], None
    elif verb == "delete-cas":
        if not kv.delete_cas(key, index, idx):
            return [], f"failed to delete key {q}, index is stale"
        return [], None
    else:
        return [], f"unknown KV verb {go_quote(verb)}"
    # Write verbs answer with the stored entry, value left out.
    stored = kv.get(key)
    return ([stored.to_json(with_value=False)] if stored else []), None


async def _txn(call: Call) -> web.StreamResponse:
    opts = parse_query(call)
    limit = call.config.kv_max_value_size
    length = call.request.content_length
    if length is not None and length > limit:
        raise too_large(length, limit)
    raw = await call.body()
    if len(raw) > limit:
        raise too_large(len(raw), limit)
    ops = _decode_ops(raw, limit)
    kv = call.store.get(KVState)
    snap = kv.snapshot()
    idx = kv.pending_index()
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    read_only = True
    for i, op in enumerate(ops):
        body = op.get("KV")
        if not isinstance(body, dict):
            errors.append({"OpIndex": i, "What": "unsupported operation"})
            continue
        if str(body.get("Verb", "")) in _WRITE_VERBS:
            read_only = False
        found, error = _apply(kv, body, idx)
        if error is not None:
            errors.append({"OpIndex": i, "What": error})
        results.extend({"KV": entry} for entry in found)
    meta: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if read_only:
        # A read-only transaction is served like a read: query meta in body and headers.
        meta = {
            "Index": max(1, kv.table_index),
            "LastContact": 0,
            "KnownLeader": True,
            "ConsistencyLevel": opts.consistency,
            "NotModified": False,
            "Backend": 0,
            "ResultsFilteredByACLs": False,
        }
        headers = {"X-Consul-Knownleader": "true", "X-Consul-Lastcontact": "0"}
    if errors:
        kv.rollback(snap)
        answer = {"Results": None, "Errors": errors, **meta}
        return json_response(call, answer, status=409, headers=headers)
    kv.commit()
    answer = {"Results": results or None, "Errors": None, **meta}
    return json_response(call, answer, headers=headers)
