"""Transactions: ``PUT /v1/txn`` (all operations apply, or none).

Operations use Consul's JSON shape (``{"KV": {"Verb": "set", "Key": ..., "Value": ...}}``), except
that KV values are bytes or str: they are base64-encoded on the way in and results' values are
decoded on the way out. :meth:`Txn.kv_op` builds a KV operation with checked arguments.

Note: the operation count limit (128 since Consul 1.14, 64 before) and the body size limit are
left to the server, which answers 413 (:class:`~consul_streams.exceptions.RequestTooLarge`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from consul_streams._query import Request, Response
from consul_streams.endpoints._base import (
    Endpoint,
    b64encode,
    check_uint,
    common_params,
    decode_json,
    expect_dict,
    expect_list,
    json_body,
)
from consul_streams.endpoints.kv import check_key, decode_kv_entry
from consul_streams.exceptions import Conflict, InvalidArgument
from consul_streams.typing import (
    Consistency,
    Object,
    ObjectID,
    Payload,
    TxnResult,
    parse_id,
    parse_payload,
)

__all__ = ["KV_VERBS", "Txn"]

#: The KV verbs Consul's transactions know.
KV_VERBS = (
    "set",
    "cas",
    "lock",
    "unlock",
    "get",
    "get-or-empty",
    "get-tree",
    "check-index",
    "check-session",
    "check-not-exists",
    "delete",
    "delete-tree",
    "delete-cas",
)
_TREE_VERBS = ("get-tree", "delete-tree")
_KINDS = ("KV", "Node", "Service", "Check")


def _kv(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    verb = raw.get("Verb")
    if verb not in KV_VERBS:
        raise InvalidArgument(
            f"{where}.Verb", f"expected one of {', '.join(KV_VERBS)}; got {verb!r}"
        )
    op = dict(raw)
    op["Key"] = check_key(raw.get("Key"), f"{where}.Key", allow_empty=verb in _TREE_VERBS)
    if op.get("Value") is not None:
        op["Value"] = b64encode(parse_payload(op["Value"], f"{where}.Value"))
    for field in ("Flags", "Index"):
        if op.get(field) is not None:
            op[field] = check_uint(op[field], f"{where}.{field}")
    if op.get("Session") is not None:
        op["Session"] = parse_id(op["Session"], f"{where}.Session")
    return op


def _operation(raw: object, i: int) -> dict[str, Any]:
    where = f"operations[{i}]"
    if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in _KINDS:
        raise InvalidArgument(
            where, f"expected a mapping with exactly one of {', '.join(_KINDS)}; got {raw!r:.80}"
        )
    kind, body = next(iter(raw.items()))
    if not isinstance(body, Mapping):
        raise InvalidArgument(f"{where}.{kind}", f"expected a mapping, got {body!r:.80}")
    return {kind: _kv(body, f"{where}.KV") if kind == "KV" else dict(body)}


def _decode_results(response: Response) -> list[TxnResult]:
    answer = expect_dict(decode_json(response), response)
    results: list[dict[str, Any]] = []
    for raw in expect_list(answer.get("Results"), response):
        result = dict(expect_dict(raw, response))
        if "KV" in result:
            result["KV"] = decode_kv_entry(result["KV"], response)
        results.append(result)
    if response.status == 409:
        errors = expect_list(answer.get("Errors"), response)
        raise Conflict(
            409,
            response.body.decode("utf-8", "replace"),
            method=response.method,
            url=response.url,
            errors=errors,
        )
    return cast(list[TxnResult], results)


class Txn(Endpoint):
    """``/v1/txn``: execute a list of operations atomically."""

    @staticmethod
    def kv_op(
        verb: str,
        key: str,
        value: Payload | None = None,
        *,
        flags: int | None = None,
        index: int | None = None,
        session: ObjectID | None = None,
    ) -> Object:
        """One KV operation, e.g. ``Txn.kv_op("cas", "k", b"v", index=12)``."""
        op: dict[str, Any] = {"Verb": verb, "Key": key}
        for field, val in (
            ("Value", value),
            ("Flags", flags),
            ("Index", index),
            ("Session", session),
        ):
            if val is not None:
                op[field] = val
        _kv(op, "operation")  # fail now, at the call that built it
        return {"KV": op}

    async def execute(
        self,
        operations: Sequence[Mapping[str, Any]],
        *,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> list[TxnResult]:
        """Run ``operations``; the results (KV values as bytes) in operation order.

        A failed transaction raises :class:`~consul_streams.exceptions.Conflict` whose
        ``errors`` hold Consul's ``{"OpIndex": i, "What": ...}`` for each failing operation.
        ``consistency`` applies to read-only transactions.
        """
        if isinstance(operations, (str, bytes, Mapping)) or not isinstance(operations, Sequence):
            raise InvalidArgument(
                "operations", f"expected a list of operations, got {operations!r:.80}"
            )
        if not operations:
            raise InvalidArgument("operations", "must not be empty")
        body = [_operation(op, i) for i, op in enumerate(operations)]
        params = tuple(common_params(dc, consistency))
        request = Request("PUT", "/v1/txn", params, body=json_body(body))
        return await self._write(request, _decode_results, ok_statuses=frozenset({200, 409}))
