"""``/v1/txn`` of the dev agent (consul-api.md section 2.8): atomic transactions.

``KV``, ``Node``, ``Service`` and ``Check`` operations (``agent/txn_endpoint.go``,
``agent/consul/state/txn.go``) are evaluated at one index. The pre-apply checks of
``Txn.Apply`` run first (lock delay, node/service/check arguments) and, when any fails, the
answer carries only those errors. Otherwise every operation runs; if any fails, every write
is rolled back and the answer is 409 with one error per failing operation. Operations with
none of the four keys are dropped while decoding, as ``convertOps`` drops them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .._blocking import go_quote, parse_query
from ..server.bodies import TXN_OPS
from ..server.decode import BodyError, decode
from ..server.dispatch import Router
from ..server.wire import ApiError, Call, json_response
from ..state.catalog import CatalogState, Write
from ..state.kv import KVState
from ..state.session import SessionState
from ._txn_catalog import CATALOG_OPS, apply_catalog_op, field_of, pre_check_catalog_op
from .kv import too_large

__all__ = ["MAX_TXN_OPS", "register"]

MAX_TXN_OPS = 128
_WRITE_VERBS = {"set", "cas", "lock", "unlock", "delete", "delete-tree", "delete-cas"}


def register(router: Router) -> None:
    """Add the txn route."""
    router.add("/v1/txn", ("PUT",), _txn)


def _json_kind(value: Any) -> str:
    """encoding/json's name for a JSON value's kind (UnmarshalTypeError.Value)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array"


def _normalise(op: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The op's kind and body; None for an op with none of the four (``convertOps``)."""
    for kind in ("KV", *CATALOG_OPS):
        body = op.get(kind)
        if body is None:
            continue
        if not isinstance(body, dict):
            # Node/Service/Check arrive undecoded; Go refuses a non-object there.
            raise ApiError(
                400,
                f"Failed to parse body: json: cannot unmarshal {_json_kind(body)} into Go "
                f"struct field TxnOp.{kind} of type api.{kind}TxnOp",
            )
        return kind, body
    return None


def _decode_ops(raw: bytes, limit: int) -> list[tuple[str, dict[str, Any]]]:
    """agent/txn_endpoint.go: api.TxnOps decoded the Go way (KV values base64 -> bytes)."""
    try:
        decoded = decode(raw, TXN_OPS)
    except BodyError as exc:
        raise ApiError(400, f"Failed to parse body: {exc}") from None
    given: list[dict[str, Any]] = [op if isinstance(op, dict) else {} for op in decoded or ()]
    if len(given) > MAX_TXN_OPS:
        raise ApiError(
            413, f"Transaction contains too many operations ({len(given)} > {MAX_TXN_OPS})"
        )
    ops = [found for op in given if (found := _normalise(op)) is not None]
    for kind, kv in ops:
        if kind != "KV":
            continue
        kv.setdefault("Value", b"")
        if len(kv["Value"]) > limit:
            key = str(kv.get("Key") or "")
            raise ApiError(
                413,
                f"Value for key {go_quote(key)} is too large ({len(kv['Value'])} > {limit} bytes)",
            )
    return ops


def _apply(
    kv: KVState, sessions: SessionState, op: dict[str, Any], idx: int
) -> tuple[list[Any], str | None]:
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
        # kvsLockTxn: a session is required and must exist.
        if not session:
            return [], "missing session"
        if sessions.get(session) is None:
            return [], f"invalid session {go_quote(session)}"
        if not kv.lock(key, value, flags, session, idx):
            return [], f"failed to lock key {q}, lock is already held"
    elif verb == "unlock":
        if not session:
            return [], "missing session"
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


def _pre_check(kv: KVState, ops: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """``Txn.preCheck``: key present, lock delay, and the catalog ops' argument checks."""
    errors: list[dict[str, Any]] = []
    for i, (kind, body) in enumerate(ops):
        error: str | None = None
        if kind == "KV":
            key, verb = str(body.get("Key") or ""), str(body.get("Verb") or "")
            if not key and verb != "delete-tree":
                error = "Must provide key"
            elif verb == "lock" and kv.in_lock_delay(key):
                error = f"failed to lock key {go_quote(key)} due to lock delay"
        else:
            error = pre_check_catalog_op(kind, body)
        if error is not None:
            errors.append({"OpIndex": i, "What": error})
    return errors


def _is_write(kind: str, body: dict[str, Any]) -> bool:
    verb = str(field_of(body, "Verb") or "")
    return verb in _WRITE_VERBS if kind == "KV" else verb != "get"


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
    store = call.store
    kv, cat, sessions = store.get(KVState), store.get(CatalogState), store.get(SessionState)
    read_only = not any(_is_write(kind, body) for kind, body in ops)
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
    errors = _pre_check(kv, ops)
    if errors:
        answer = {"Results": None, "Errors": errors, **meta}
        return json_response(call, answer, status=409, headers=headers)
    kv_snap = kv.snapshot()
    # Copying the catalog costs O(catalog): only transactions that touch it pay for it.
    cat_snap = cat.snapshot() if any(kind != "KV" for kind, _ in ops) else None
    idx = kv.pending_index()
    write = Write(idx)
    results: list[dict[str, Any]] = []
    for i, (kind, body) in enumerate(ops):
        if kind == "KV":
            found, error = _apply(kv, sessions, body, idx)
            found = [{"KV": entry} for entry in found]
        else:
            found, error = apply_catalog_op(cat, write, kind, body)
        if error is not None:
            errors.append({"OpIndex": i, "What": error})
        results.extend(found)
    if errors:
        kv.rollback(kv_snap)
        if cat_snap is not None:
            cat.rollback(cat_snap)
        answer = {"Results": None, "Errors": errors, **meta}
        return json_response(call, answer, status=409, headers=headers)
    if not kv.commit() and write.topics:
        # The catalog changed but no key did: the transaction still takes the index.
        store.next_index()
    cat.finish(write)
    answer = {"Results": results or None, "Errors": None, **meta}
    return json_response(call, answer, headers=headers)
