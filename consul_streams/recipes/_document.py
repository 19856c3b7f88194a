"""Turning KV entries into one configuration document: decoding, nesting, freezing.

Everything here is pure: no I/O, no clock. The config recipe feeds it the entries of one
KV read and gets back an immutable document or a :class:`ConfigError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

from consul_streams import _decode
from consul_streams._decode import Decoder, ValueDecodeError, check_format
from consul_streams.exceptions import ConfigError, InvalidArgument

__all__ = [
    "FORMATS",
    "ConfigError",
    "Decoder",
    "Format",
    "build_document",
    "decode_value",
    "freeze",
    "resolve_format",
    "thaw",
]

Format = Literal["auto", "json", "yaml", "toml", "text", "bytes"]
FORMATS: tuple[str, ...] = ("auto", "json", "yaml", "toml", "text", "bytes")


def resolve_format(value: object, parameter: str = "format") -> str | Decoder:
    """Check a ``format=`` argument: one of :data:`FORMATS` or a callable ``bytes -> value``."""
    if callable(value):
        return value
    if isinstance(value, str) and value in FORMATS:
        return check_format(value, parameter)
    raise InvalidArgument(
        parameter,
        f"expected one of {', '.join(FORMATS)} or a callable taking bytes, got {value!r}",
    )


def decode_value(raw: bytes, fmt: str | Decoder, key: str = "") -> Any:
    """Decode one KV value (the one decoder, ``consul_streams._decode``). ``auto`` picks by the
    key's extension (.json/.yaml/.yml/.toml), else text. Raises :class:`ConfigError` naming
    ``key`` when the value does not decode."""
    try:
        return _decode.decode_value(raw, fmt, key)
    except ValueDecodeError as exc:
        raise ConfigError(exc.detail, key=key) from exc


def _segments(key: str, prefix: str) -> list[str]:
    rest = key[len(prefix) :] if key.startswith(prefix) else key
    return [part for part in rest.split("/") if part]


def build_document(
    entries: Iterable[Mapping[str, Any]], prefix: str, fmt: str | Decoder
) -> dict[str, Any]:
    """Nest the entries under ``prefix`` by path segment: ``app/db/host`` -> ``{"db": {"host":
    ...}}``. Folder keys (ending in ``/``) make empty tables. A key that is both a value and a
    folder (``a`` and ``a/b``) is a :class:`ConfigError`."""
    root: dict[str, Any] = {}
    # Sorted so that a folder's own key is seen before its children, whatever the order given.
    for entry in sorted(entries, key=lambda e: str(e["Key"])):
        key = str(entry["Key"])
        parts = _segments(key, prefix)
        if not parts:
            continue  # the prefix's own folder entry
        is_folder = key.endswith("/")
        node = root
        for depth, part in enumerate(parts if is_folder else parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = "/".join(parts[: depth + 1])
                raise ConfigError(f"{where!r} is both a value and a folder", key=key)
            node = child
        if is_folder:
            continue
        leaf = parts[-1]
        if isinstance(node.get(leaf), dict):
            raise ConfigError(f"{'/'.join(parts)!r} is both a value and a folder", key=key)
        value = entry.get("Value") or b""
        node[leaf] = decode_value(bytes(value), fmt, key)
    return root


def freeze(value: Any) -> Any:
    """A deep read-only copy: mappings become ``MappingProxyType``, lists and sets tuples and
    frozensets; scalars are returned as they are."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A deep mutable copy of a frozen document (for validators that expect plain dicts)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [thaw(v) for v in value]
    return value
