"""Turning KV entries into one configuration document: decoding, nesting, freezing.

Everything here is pure: no I/O, no clock. The config recipe feeds it the entries of one
KV read and gets back an immutable document or a :class:`ConfigError`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

from consul_streams.exceptions import ConsulError, InvalidArgument

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
Decoder = Callable[[bytes], Any]
FORMATS: tuple[str, ...] = ("auto", "json", "yaml", "toml", "text", "bytes")

_EXTENSIONS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}


class ConfigError(ConsulError):
    """A configuration value could not be decoded, assembled or validated.

    ``key`` names the KV key at fault when one is known (``None`` for validation errors of the
    whole document). The last good configuration stays in place when this is raised.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


def resolve_format(value: object, parameter: str = "format") -> str | Decoder:
    """Check a ``format=`` argument: one of :data:`FORMATS` or a callable ``bytes -> value``."""
    if callable(value):
        return value
    if isinstance(value, str) and value in FORMATS:
        return value
    raise InvalidArgument(
        parameter,
        f"expected one of {', '.join(FORMATS)} or a callable taking bytes, got {value!r}",
    )


def _format_for_key(key: str) -> str:
    for ext, fmt in _EXTENSIONS.items():
        if key.endswith(ext):
            return fmt
    return "text"


def _load_yaml(raw: bytes) -> Any:
    try:
        import yaml
    except ImportError as exc:  # PyYAML is an optional extra
        raise ConfigError("YAML values need PyYAML (pip install consul-streams[yaml])") from exc
    return yaml.safe_load(raw)


def _load_toml(raw: bytes) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        try:
            import tomli as tomllib
        except ImportError as exc:
            raise ConfigError("TOML values need tomli on Python 3.10") from exc
    return tomllib.loads(raw.decode("utf-8"))


def decode_value(raw: bytes, fmt: str | Decoder, key: str = "") -> Any:
    """Decode one KV value. ``auto`` picks by the key's extension (.json/.yaml/.yml/.toml),
    else text. Raises :class:`ConfigError` naming ``key`` when the value does not decode."""
    if callable(fmt):
        try:
            return fmt(raw)
        except Exception as exc:
            raise ConfigError(f"custom decoder failed: {exc}", key=key) from exc
    if fmt == "auto":
        fmt = _format_for_key(key)
    if fmt == "bytes":
        return raw
    try:
        if fmt == "json":
            return json.loads(raw) if raw else None
        if fmt == "yaml":
            return _load_yaml(raw)
        if fmt == "toml":
            return _load_toml(raw)
        return raw.decode("utf-8")
    except ConfigError as exc:
        raise ConfigError(str(exc), key=key) from exc
    except Exception as exc:  # each parser raises its own error family
        raise ConfigError(f"invalid {fmt}: {exc}", key=key) from exc


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
