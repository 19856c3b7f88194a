"""``Node``, ``Service`` and ``Check`` operations of ``/v1/txn`` (``agent/consul/state/txn.go``).

Each function applies one operation inside the transaction's catalog :class:`Write` and
returns ``(results, error)`` exactly as ``txnNode``/``txnService``/``txnCheck`` do, after
the pre-apply checks of ``Txn.Apply`` (``nodePreApply``, ``servicePreApply``,
``checkPreApply``). Gets return the stored record; writes return the record as stored.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .._blocking import go_quote
from ..state.catalog import CatalogState, Rec, Write, new_check, new_service

__all__ = ["CATALOG_OPS", "WRITE_VERBS", "apply_catalog_op", "field_of", "pre_check_catalog_op"]

#: The op keys besides ``KV`` (matched case-insensitively, as encoding/json does).
CATALOG_OPS = ("Node", "Service", "Check")
#: Catalog verbs that write (``get`` is the only read).
WRITE_VERBS = {"set", "cas", "delete", "delete-cas"}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

Result = tuple[list[Rec], str | None]
_SERVICE_FIELDS = (
    "ID", "Service", "Tags", "Address", "Meta", "Port", "Weights", "EnableTagOverride", "Kind",
    "TaggedAddresses",
)  # fmt: skip


def field_of(obj: Any, name: str) -> Any:
    """``obj[name]`` matched case-insensitively (exact spelling first), else None."""
    if not isinstance(obj, dict):
        return None
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _str(obj: Any, name: str) -> str:
    value = field_of(obj, name)
    return "" if value is None else str(value)


def _int(obj: Any, name: str) -> int:
    value = field_of(obj, name)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _set_cas_stale(existing: Rec | None, body: Any) -> bool:
    """A ``cas`` write's index check (``ensure*CASTxn``): 0 means "only if absent"."""
    index = _int(body, "ModifyIndex")
    if index == 0:
        return existing is not None
    return existing is None or existing["ModifyIndex"] != index


def _delete_cas_stale(existing: Rec | None, body: Any) -> bool:
    """A ``delete-cas``'s index check (``delete*CASTxn``): the entry must exist at that index."""
    return existing is None or existing["ModifyIndex"] != _int(body, "ModifyIndex")


def pre_check_catalog_op(kind: str, op: Rec) -> str | None:
    """``Txn.preCheck`` for a catalog op (skipped for ``get``); fills defaulted IDs in place."""
    if _str(op, "Verb") == "get":
        return None
    body = field_of(op, kind)
    if not isinstance(body, dict):
        body = {}
    if kind == "Node":
        # nodePreApply
        name, node_id = _str(body, "Node"), _str(body, "ID")
        if not name:
            return "Must provide node"
        if node_id and len(node_id) != 36:
            return "Bad node ID: uuid string is wrong length"
        if node_id and not _UUID.match(node_id):
            return "Bad node ID: uuid is improperly formatted"
        return None
    if kind == "Service":
        return _service_problem(body)
    # checkPreApply: the check ID defaults to the name.
    if not _str(body, "CheckID") and _str(body, "Name"):
        body["CheckID"] = _str(body, "Name")
    return None


def apply_catalog_op(cat: CatalogState, w: Write, kind: str, op: Rec) -> Result:
    """Run one ``Node``/``Service``/``Check`` operation: (results, error text or None)."""
    verb = _str(op, "Verb")
    if kind == "Node":
        return _node_op(cat, w, verb, field_of(op, "Node") or {})
    if kind == "Service":
        return _service_op(cat, w, verb, _str(op, "Node"), field_of(op, "Service") or {})
    return _check_op(cat, w, verb, field_of(op, "Check") or {})


# -- nodes -----------------------------------------------------------------------------------


def _find_node(cat: CatalogState, node_id: str, name: str) -> Rec | None:
    if node_id:
        return next((n for n in cat.nodes.values() if n["ID"] == node_id), None)
    return cat.nodes.get(name)


def _node_op(cat: CatalogState, w: Write, verb: str, body: Rec) -> Result:
    name, node_id = _str(body, "Node"), _str(body, "ID")
    q = go_quote(name)
    if verb == "get":
        found = _find_node(cat, node_id, name)
        if found is None:
            return [], f"node {q} doesn't exist"
        return [{"Node": found}], None
    if verb in ("set", "cas"):
        if verb == "cas":
            existing = cat.nodes.get(name)
            if _set_cas_stale(existing, body):
                return [], f"failed to set node {q}, index is stale"
        node = {
            "ID": node_id,
            "Node": name,
            "Address": _str(body, "Address"),
            "TaggedAddresses": field_of(body, "TaggedAddresses") or {},
            "Meta": field_of(body, "Meta") or {},
        }
        cat.ensure_node(w, node)
        return [{"Node": dict(cat.nodes[name])}], None
    if verb == "delete":
        cat.delete_node(w, name)
        return [], None
    if verb == "delete-cas":
        existing = cat.nodes.get(name)
        if _delete_cas_stale(existing, body):
            return [], f"failed to delete node {q}, index is stale"
        cat.delete_node(w, name)
        return [], None
    return [], f"unknown Node verb {go_quote(verb)}"


# -- services --------------------------------------------------------------------------------


def _service_problem(body: Rec) -> str | None:
    """``servicePreApply``: fills the ID from the name, checks name and address."""
    sid, name = _str(body, "ID"), _str(body, "Service")
    if not sid and name:
        body["ID"] = name
        sid = name
    if sid and not name:
        return "Must provide service name with ID"
    address = _str(body, "Address")
    try:
        if address and ipaddress.ip_address(address).is_unspecified:
            return "Invalid service address"
    except ValueError:
        pass
    return None


def _service_op(cat: CatalogState, w: Write, verb: str, node: str, body: Rec) -> Result:
    sid = _str(body, "ID")
    where = f"service {go_quote(sid)} on node {go_quote(node)}"
    existing = cat.services.get((node, sid))
    if verb == "get":
        if existing is None:
            return [], f"{where} doesn't exist"
        return [{"Service": existing}], None
    if verb in ("set", "cas"):
        # ensureServiceCASTxn compares first; ensureServiceTxn then needs the node.
        if verb == "cas" and _set_cas_stale(existing, body):
            return [], f"failed to set {where}, index is stale"
        if not cat.node_exists(node):
            return [], "Missing node registration"
        definition = {
            key: field_of(body, key) for key in _SERVICE_FIELDS if field_of(body, key) is not None
        }
        stored = cat.ensure_service(w, node, new_service(definition))
        return [{"Service": dict(stored)}], None
    if verb == "delete":
        cat.delete_service(w, node, sid)
        return [], None
    if verb == "delete-cas":
        if _delete_cas_stale(existing, body):
            return [], f"failed to delete {where}, index is stale"
        cat.delete_service(w, node, sid)
        return [], None
    return [], f"unknown Service verb {go_quote(verb)}"


# -- checks ----------------------------------------------------------------------------------


def _check_op(cat: CatalogState, w: Write, verb: str, body: Rec) -> Result:
    node = _str(body, "Node")
    cid = _str(body, "CheckID")
    where = f"check {go_quote(cid)} on node {go_quote(node)}"
    existing = cat.checks.get((node, cid))
    if verb == "get":
        if existing is None:
            return [], f"{where} doesn't exist"
        return [{"Check": existing}], None
    if verb in ("set", "cas"):
        if verb == "cas" and _set_cas_stale(existing, body):
            return [], f"failed to set {where}, index is stale"
        if not cat.node_exists(node):
            return [], "Missing node registration"
        sid = _str(body, "ServiceID")
        service = cat.services.get((node, sid)) if sid else None
        if sid and service is None:
            return [], "Missing service registration"
        definition = {
            "CheckID": cid,
            "Name": _str(body, "Name"),
            "Status": _str(body, "Status") or "critical",
            "Notes": _str(body, "Notes"),
            "Output": _str(body, "Output"),
            "Type": _str(body, "Type"),
        }
        stored = cat.ensure_check(w, new_check(node, definition, service=service))
        return [{"Check": dict(stored)}], None
    if verb == "delete":
        cat.delete_check(w, node, cid)
        return [], None
    if verb == "delete-cas":
        if _delete_cas_stale(existing, body):
            return [], f"failed to delete {where}, index is stale"
        cat.delete_check(w, node, cid)
        return [], None
    return [], f"unknown Check verb {go_quote(verb)}"
