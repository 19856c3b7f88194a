"""Consul's values as ``consul`` marshals them: the Go api structs' field order, base64 bytes.

A handler written for ``consul watch`` reads ``Value``/``Payload`` as base64 (``jq -r .Value |
base64 -d``) and finds every field of the Go struct, ``Session`` included; :func:`to_consul`
rebuilds that from the decoded values the client hands out.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

__all__ = ["dump_consul", "to_consul"]

# api.KVPair (api/kv.go); Namespace and Partition are omitempty.
_KV_FIELDS = ("Key", "CreateIndex", "ModifyIndex", "LockIndex", "Flags", "Value", "Session")
# api.UserEvent (api/event.go)
_EVENT_FIELDS = (
    "ID",
    "Name",
    "Payload",
    "NodeFilter",
    "ServiceFilter",
    "TagFilter",
    "Version",
    "LTime",
)
_OMITEMPTY = ("Namespace", "Partition")


def _b64(raw: Any) -> str | None:
    # Go marshals a nil []byte as null; Consul stores an empty value as nil.
    data = bytes(raw) if raw is not None else b""
    return base64.b64encode(data).decode("ascii") if data else None


def _kv(entry: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Key": entry.get("Key", ""),
        "CreateIndex": entry.get("CreateIndex", 0),
        "ModifyIndex": entry.get("ModifyIndex", 0),
        "LockIndex": entry.get("LockIndex", 0),
        "Flags": entry.get("Flags", 0),
        "Value": _b64(entry.get("Value")),
        "Session": entry.get("Session", ""),
    }
    for name in _OMITEMPTY:
        if entry.get(name):
            out[name] = entry[name]
    return out


def _event(event: Mapping[str, Any]) -> dict[str, Any]:
    out = {name: event.get(name) for name in _EVENT_FIELDS}
    out["Payload"] = _b64(event.get("Payload"))
    for name, zero in (("NodeFilter", ""), ("ServiceFilter", ""), ("TagFilter", "")):
        out[name] = out[name] or zero
    for name in ("Version", "LTime"):
        out[name] = out[name] or 0
    return out


def _plain(value: Any) -> Any:
    """Anything else: JSON's types, bytes as base64 (Go's []byte)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _b64(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, timedelta):
        return int(value.total_seconds() * 1e9)  # Go's time.Duration: nanoseconds
    return value


def to_consul(value: Any) -> Any:
    """One watch result (or kv entry) in the JSON shape ``consul`` prints and pipes."""
    if isinstance(value, Mapping):
        if "Key" in value and "ModifyIndex" in value:
            return _kv(value)
        if "ID" in value and "LTime" in value:
            return _event(value)
        return _plain(value)
    if isinstance(value, (list, tuple)):
        return [to_consul(v) for v in value]
    return _plain(value)


def dump_consul(value: Any, *, indent: str | None = None) -> str:
    """Go's ``json.Marshal``/``MarshalIndent``: no spaces, ``<>&`` escaped as Go does."""
    if indent is None:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(value, indent=indent, ensure_ascii=False)
    # encoding/json escapes HTML characters and the JS line separators by default.
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text
