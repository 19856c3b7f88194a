"""Value operators: match, distinct, diff, values, decode (the untimed half of ``ops``).

Every operator accepts plain values or ``(value, meta)`` pairs as ``watch()`` emits them: a
2-tuple whose second item is a :class:`~consul_streams.typing.Meta` is treated as a pair, the
value is transformed and the Meta passed through unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiostream.core import pipable_operator, streamcontext

from consul_streams.exceptions import DecodeError, InvalidArgument
from consul_streams.typing import Meta, parse_filter

__all__ = ["Diff", "decode", "diff", "distinct", "match", "natural_id", "values"]

_UNSET: Any = object()


def split(item: Any) -> tuple[Any, Meta | None]:
    """``(value, meta)`` for a watch pair, ``(item, None)`` for a plain value."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Meta):
        return item[0], item[1]
    return item, None


def join(value: Any, meta: Meta | None) -> Any:
    return value if meta is None else (value, meta)


# --- match -------------------------------------------------------------------------------

_NAME_PATHS: tuple[tuple[str, ...], ...] = (
    ("Key",),
    ("ServiceName",),
    ("Service", "Service"),
    ("Node", "Node"),
    ("Node",),
    ("Name",),
)


def _lookup(item: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    current: Any = item
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return _UNSET
        current = current[part]
    return current


def _name_of(item: Any, paths: tuple[tuple[str, ...], ...]) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        for path in paths:
            found = _lookup(item, path)
            if isinstance(found, str):
                return found
    return None


def _filter(value: Any, pattern: re.Pattern[str], paths: tuple[tuple[str, ...], ...]) -> Any:
    def keep(item: Any) -> bool:
        name = _name_of(item, paths)
        return name is not None and pattern.search(name) is not None

    if value is None:
        return None
    if isinstance(value, Mapping):
        if _name_of(value, paths) is not None:  # one object (e.g. a KV entry): it or None
            return value if keep(value) else None
        return {k: v for k, v in value.items() if isinstance(k, str) and pattern.search(k)}
    if isinstance(value, (list, tuple)):
        return [item for item in value if keep(item)]
    raise TypeError(f"match() cannot filter a {type(value).__name__}")


@pipable_operator
async def match(
    source: AsyncIterable[Any], pattern: str | re.Pattern[str], *, field: str | None = None
) -> AsyncIterator[Any]:
    """Keep the items of each collection whose name matches ``pattern`` (``re.search``).

    The name is ``field`` (a dotted path such as ``"Service.Service"``) when given, else the
    first of ``Key``, ``ServiceName``, ``Service.Service``, ``Node``, ``Name``; list items that
    are strings (KV key lists) and the keys of a mapping (``catalog.services()``) match by
    themselves. A single object is passed through or replaced by ``None``.

    Note: a filtered result equal to the previous one is not emitted again.
    """
    compiled = parse_filter(pattern, "pattern")
    if field is not None and (not isinstance(field, str) or not field):
        raise InvalidArgument("field", f'expected a field name such as "Key", got {field!r}')
    paths = (tuple(field.split(".")),) if field else _NAME_PATHS
    previous: Any = _UNSET
    async with streamcontext(source) as streamer:
        async for item in streamer:
            value, meta = split(item)
            kept = _filter(value, compiled, paths)
            if previous is not _UNSET and kept == previous:
                continue
            previous = kept
            yield join(kept, meta)


# --- distinct ----------------------------------------------------------------------------


@pipable_operator
async def distinct(
    source: AsyncIterable[Any], key: Callable[[Any], Any] | None = None
) -> AsyncIterator[Any]:
    """Drop items whose value (or ``key(value)``) equals the previous emitted one's."""
    if key is not None and not callable(key):
        raise InvalidArgument("key", f"expected a callable value -> key or None, got {key!r}")
    previous: Any = _UNSET
    async with streamcontext(source) as streamer:
        async for item in streamer:
            value, _ = split(item)
            marker = key(value) if key is not None else value
            if previous is not _UNSET and marker == previous:
                continue
            previous = marker
            yield item


# --- diff --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diff:
    """Changes between two consecutive collections: items added, removed, changed (old, new)."""

    added: list[Any] = field(default_factory=list)
    removed: list[Any] = field(default_factory=list)
    changed: list[tuple[Any, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def natural_id(item: Any) -> Hashable:
    """The identity of a Consul object: KV ``Key``; ``(Node, CheckID)``; ``(Node, ServiceID)``;
    ``(Node.Node, Service.ID)`` for health entries; ``ID``; ``Node``; ``Name``; a str itself."""
    # KV entries are plain dicts: skip the Mapping ABC check, the costly part for 10,000s of keys.
    if type(item) is dict and "Key" in item:
        return item["Key"]  # type: ignore[no-any-return]
    if isinstance(item, str):
        return item
    if isinstance(item, tuple) and len(item) == 2:  # a (key, value) pair of a mapping
        return item[0]  # type: ignore[no-any-return]
    if not isinstance(item, Mapping):
        raise TypeError(f"diff() needs a key function for {type(item).__name__} items")
    node = item.get("Node")
    node_name = node.get("Node") if isinstance(node, Mapping) else node
    service = item.get("Service")
    if "Key" in item:
        return item["Key"]  # type: ignore[no-any-return]
    if "CheckID" in item:
        return (node_name, item["CheckID"])
    if "ServiceID" in item:
        return (node_name, item["ServiceID"])
    if isinstance(service, Mapping) and "ID" in service:
        return (node_name, service["ID"])
    for name in ("ID", "Node", "Name"):
        if isinstance(item.get(name), str):
            return item[name]  # type: ignore[no-any-return]
    if isinstance(node_name, str):
        return node_name
    raise TypeError("diff() found no Key/ServiceID/Service.ID/Node/CheckID/ID; pass key=")


def _as_items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        if "Key" in value or "ID" in value:  # one object, e.g. kv.get()
            return [value]
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def keyed(items: list[Any], key: Callable[[Any], Hashable]) -> dict[Hashable, Any]:
    """``{key(item): item}`` in order; a later item with the same key wins."""
    return {key(item): item for item in items}


def diff_keyed(before: dict[Hashable, Any], after: dict[Hashable, Any]) -> Diff:
    """The Diff between two collections already keyed by :func:`keyed`."""
    added: list[Any] = []
    changed: list[tuple[Any, Any]] = []
    for k, item in after.items():
        old = before.get(k, _UNSET)
        if old is _UNSET:
            added.append(item)
        elif old != item:
            changed.append((old, item))
    removed = [item for k, item in before.items() if k not in after]
    return Diff(added=added, removed=removed, changed=changed)


def compute_diff(old: list[Any], new: list[Any], key: Callable[[Any], Hashable]) -> Diff:
    """Items of ``new`` added or changed and items of ``old`` removed, matched by ``key``."""
    return diff_keyed(keyed(old, key), keyed(new, key))


@pipable_operator
async def diff(
    source: AsyncIterable[Any], key: Callable[[Any], Hashable] | None = None
) -> AsyncIterator[Any]:
    """Emit a :class:`Diff` between each collection and the previous one.

    Items are matched by ``key(item)`` (default :func:`natural_id`); a mapping's entries are
    ``(key, value)`` pairs; ``None`` is an empty collection. The first result reports
    everything as added (and is emitted even when empty); later empty diffs are not emitted.
    """
    if key is not None and not callable(key):
        raise InvalidArgument("key", f"expected a callable item -> id or None, got {key!r}")
    key_of = key if key is not None else natural_id
    # The previous collection is held keyed: each update keys only the new one.
    previous: dict[Hashable, Any] | None = None
    async with streamcontext(source) as streamer:
        async for item in streamer:
            value, meta = split(item)
            current = keyed(_as_items(value), key_of)
            change = diff_keyed(previous or {}, current)
            first, previous = previous is None, current
            if first or change:
                yield join(change, meta)


# --- values, decode ----------------------------------------------------------------------


@pipable_operator
async def values(source: AsyncIterable[Any]) -> AsyncIterator[Any]:
    """Drop the Meta of ``(value, meta)`` pairs; plain values pass through."""
    async with streamcontext(source) as streamer:
        async for item in streamer:
            yield split(item)[0]


Format = Literal["utf-8", "text", "json", "yaml"]


def _decoder(fmt: object) -> Callable[[bytes], Any]:
    if fmt in ("utf-8", "text"):
        return lambda raw: raw.decode("utf-8")
    if fmt == "json":
        return lambda raw: json.loads(raw.decode("utf-8"))
    if fmt == "yaml":
        try:
            import yaml
        except ImportError:  # pragma: no cover - PyYAML is installed in the test env
            raise InvalidArgument("fmt", '"yaml" needs PyYAML (pip install PyYAML)') from None
        return lambda raw: yaml.safe_load(raw.decode("utf-8"))
    raise InvalidArgument("fmt", f'expected "utf-8", "text", "json" or "yaml", got {fmt!r}')


def _decode_value(value: Any, convert: Callable[[bytes], Any], fmt: str) -> Any:
    def one(key: str, raw: Any) -> Any:
        try:
            return convert(bytes(raw))
        except Exception as exc:  # json, yaml and unicode errors have no common base
            raise DecodeError(f"cannot decode KV key {key!r} as {fmt}: {exc}") from exc

    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return one("<value>", value)
    if isinstance(value, Mapping) and "Key" in value:
        return one(str(value["Key"]), value.get("Value") or b"")
    if isinstance(value, (list, tuple)):
        return {str(e["Key"]): one(str(e["Key"]), e.get("Value") or b"") for e in value}
    raise TypeError(f"decode() expects KV entries or bytes, got {type(value).__name__}")


@pipable_operator
async def decode(source: AsyncIterable[Any], fmt: Format = "utf-8") -> AsyncIterator[Any]:
    """Decode KV values: one entry -> its decoded value (``None`` stays ``None``); a list of
    entries -> ``{Key: decoded value}``; raw bytes -> decoded. ``fmt``: ``"utf-8"``/``"text"``,
    ``"json"``, ``"yaml"`` (with PyYAML). A value that does not decode raises
    :class:`~consul_streams.exceptions.DecodeError` naming the key.
    """
    convert = _decoder(fmt)
    async with streamcontext(source) as streamer:
        async for item in streamer:
            value, meta = split(item)
            yield join(_decode_value(value, convert, str(fmt)), meta)
