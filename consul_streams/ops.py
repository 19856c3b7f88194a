"""Stream operators for watches, in aiostream's pipe form: ``watch(q) | ops.debounce(0.5)``.

Each operator is declared once, here: a function that checks its arguments at call time
(raising :class:`~consul_streams.exceptions.InvalidArgument`) and returns a pipe, which
composes with ``aiostream.pipe`` operators. The pipes are generic over the item type, so
``watch(q) | ops.match(...) | ops.debounce(...)`` is still a stream of ``(value, Meta)``.

Items: every operator accepts plain values and ``(value, meta)`` pairs as ``watch()`` emits
them. A 2-tuple whose second item is a :class:`~consul_streams.typing.Meta` is a pair: the
operator works on the value and passes the Meta through (``values()`` drops it; ``combine``
collects values). How a value splits into items, and what names an item, is the
:class:`~consul_streams.Query`'s declared identity when the pipe starts at a ``watch()``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Hashable
from collections.abc import Mapping as MappingABC
from typing import Any, Protocol, TypeVar, overload

from aiostream import stream as aiostream_stream
from aiostream.core import Stream, streamcontext

from consul_streams._clock import Clock, MonotonicClock
from consul_streams._decode import Decoder, Format, check_format, decode_value
from consul_streams._diff import Diff, diff_keyed, keyed, plain_identity
from consul_streams._identity import Identity
from consul_streams._ops_support import UNSET, OpStream, Puller, join, operator_pipe, split
from consul_streams._parse import parse_positive_duration
from consul_streams.exceptions import InvalidArgument
from consul_streams.typing import (
    Duration,
    Filter,
    KVEntry,
    Mapping,
    MappingMeta,
    Meta,
    parse_filter,
)

__all__ = [
    "DecodePipe",
    "Diff",
    "DiffPipe",
    "Pipe",
    "ValuesPipe",
    "combine",
    "debounce",
    "decode",
    "diff",
    "distinct",
    "match",
    "throttle",
    "values",
]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - the item of a collection
K = TypeVar("K")
V = TypeVar("V")

#: A pipe that keeps the item type: ``Stream[T] | pipe -> Stream[T]``.
Pipe = Callable[[AsyncIterable[T]], Stream[T]]


def _clock(clock: object) -> Clock:
    if clock is None:
        return MonotonicClock()
    if not isinstance(clock, Clock):
        raise InvalidArgument("clock", f"expected a Clock (now(), sleep()) or None, got {clock!r}")
    return clock


def _key(key: object, accepted: str) -> Any:
    if key is not None and not callable(key):
        raise InvalidArgument("key", f"expected {accepted} or None, got {key!r}")
    return key


# --- match -------------------------------------------------------------------------------

# Only for values that do not come from a watch (no declared identity).
_NAME_PATHS: tuple[tuple[str, ...], ...] = (
    ("Key",),
    ("ServiceName",),
    ("Service", "Service"),
    ("Node", "Node"),
    ("Node",),
    ("Name",),
)


def _lookup(item: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(item, MappingABC) or part not in item:
            return UNSET
        item = item[part]
    return item


def _guess_name(item: Any, paths: tuple[tuple[str, ...], ...]) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, MappingABC):
        for path in paths:
            found = _lookup(item, path)
            if isinstance(found, str):
                return found
    return None


def _filter_declared(value: Any, pattern: re.Pattern[str], identity: Identity) -> Any:
    def keep(item: Any) -> bool:
        name = identity.name_of(item)
        return isinstance(name, str) and pattern.search(name) is not None

    if value is None:
        return None
    if identity.shape == "mapping":
        return {k: v for k, v in value.items() if keep((k, v))}
    if identity.shape == "one":
        return value if keep(value) else None
    return [item for item in value if keep(item)]


def _filter_guessed(
    value: Any, pattern: re.Pattern[str], paths: tuple[tuple[str, ...], ...]
) -> Any:
    def keep(item: Any) -> bool:
        name = _guess_name(item, paths)
        return name is not None and pattern.search(name) is not None

    if value is None:
        return None
    if isinstance(value, MappingABC):
        if _guess_name(value, paths) is not None:  # one object (e.g. a KV entry): it or None
            return value if keep(value) else None
        return {k: v for k, v in value.items() if isinstance(k, str) and pattern.search(k)}
    if isinstance(value, (list, tuple)):
        return [item for item in value if keep(item)]
    raise TypeError(f"match() cannot filter a {type(value).__name__}")


async def _match(
    source: AsyncIterable[Any],
    identity: Identity | None,
    pattern: re.Pattern[str],
    field: str | None,
) -> AsyncIterator[Any]:
    paths = (tuple(field.split(".")),) if field else _NAME_PATHS
    declared = identity if field is None else None
    previous: Any = UNSET
    async with streamcontext(source) as streamer:
        async for item in streamer:
            value, meta = split(item)
            if declared is not None:
                kept = _filter_declared(value, pattern, declared)
            else:
                kept = _filter_guessed(value, pattern, paths)
            if previous is not UNSET and kept == previous:
                continue
            previous = kept
            yield join(kept, meta)


def match(pattern: Filter, *, field: str | None = None) -> Pipe[T]:
    """Keep the items of each collection whose name matches ``pattern`` (``re.search``).

    The name is what the watched Query declares (a KV key, a service name, a node name, the
    keys of ``catalog.services()``...); ``field`` (a dotted path such as
    ``"Service.Service"``) names another field. For plain values the name is the first of
    ``Key``, ``ServiceName``, ``Service.Service``, ``Node``, ``Name``; strings and the keys
    of a mapping match by themselves. A single object is passed through or replaced by
    ``None``.

    Note: a filtered result equal to the previous one is not emitted again.
    """
    compiled = parse_filter(pattern, "pattern")  # compiled once, here
    if field is not None and (not isinstance(field, str) or not field):
        raise InvalidArgument("field", f'expected a field name such as "Key", got {field!r}')
    return operator_pipe(_match, compiled, field)


# --- debounce, throttle ------------------------------------------------------------------


async def _debounce(
    source: AsyncIterable[Any],
    identity: Identity | None,
    quiet: float,
    max_wait: float | None,
    time: Clock,
) -> AsyncIterator[Any]:
    pending: Any = UNSET
    first_at = last_at = 0.0
    async with streamcontext(source) as streamer:
        puller = Puller(streamer, time)
        try:
            while True:
                timeout: float | None = None
                if pending is not UNSET:
                    deadline = last_at + quiet
                    if max_wait is not None:
                        deadline = min(deadline, first_at + max_wait)
                    timeout = deadline - time.now()
                if await puller.wait(timeout):
                    try:
                        item = puller.take()
                    except StopAsyncIteration:
                        break
                    last_at = time.now()
                    if pending is UNSET:
                        first_at = last_at
                    pending = item
                    continue
                item, pending = pending, UNSET
                yield item
            if pending is not UNSET:
                yield pending
        finally:
            await puller.aclose()


def debounce(
    quiet: Duration, *, max_wait: Duration | None = None, clock: Clock | None = None
) -> Pipe[T]:
    """Emit the latest item once ``quiet`` passes without a newer one.

    Under constant churn an item is still emitted at least every ``max_wait`` (when given).
    At the end of the source the pending item is emitted at once.

    Note: intermediate items within a quiet period are dropped (latest wins).
    """
    quiet_s = parse_positive_duration(quiet, "quiet")
    max_s = None if max_wait is None else parse_positive_duration(max_wait, "max_wait")
    return operator_pipe(_debounce, quiet_s, max_s, _clock(clock))


async def _throttle(
    source: AsyncIterable[Any], identity: Identity | None, interval: float, time: Clock
) -> AsyncIterator[Any]:
    pending: Any = UNSET
    next_at = float("-inf")
    async with streamcontext(source) as streamer:
        puller = Puller(streamer, time)
        try:
            while True:
                timeout = None if pending is UNSET else next_at - time.now()
                if await puller.wait(timeout):
                    try:
                        item = puller.take()
                    except StopAsyncIteration:
                        break
                    if pending is UNSET and time.now() >= next_at:
                        next_at = time.now() + interval
                        yield item
                    else:
                        pending = item
                    continue
                item, pending = pending, UNSET
                next_at = time.now() + interval
                yield item
            if pending is not UNSET:
                await time.sleep(next_at - time.now())
                yield pending
        finally:
            await puller.aclose()


def throttle(interval: Duration, *, clock: Clock | None = None) -> Pipe[T]:
    """Emit at most one item per ``interval``: the first at once, then the latest.

    An item arriving within the interval is held (replacing any held one) and emitted when the
    interval ends; the held item is also emitted when the source ends (after the interval).

    Note: intermediate items within an interval are dropped (latest wins).
    """
    return operator_pipe(_throttle, parse_positive_duration(interval, "interval"), _clock(clock))


# --- distinct ----------------------------------------------------------------------------


async def _distinct(
    source: AsyncIterable[Any], identity: Identity | None, key: Callable[[Any], Any] | None
) -> AsyncIterator[Any]:
    previous: Any = UNSET
    async with streamcontext(source) as streamer:
        async for item in streamer:
            value, _ = split(item)
            marker = key(value) if key is not None else value
            if previous is not UNSET and marker == previous:
                continue
            previous = marker
            yield item


def distinct(key: Callable[[Any], object] | None = None) -> Pipe[T]:
    """Drop items whose value (or ``key(value)``) equals the previous emitted one's."""
    return operator_pipe(_distinct, _key(key, "a callable value -> key"))


# --- diff --------------------------------------------------------------------------------


async def _diff(
    source: AsyncIterable[Any], identity: Identity | None, key: Callable[[Any], Hashable] | None
) -> AsyncIterator[Any]:
    # The previous collection is held keyed: each update keys only the new one.
    previous: dict[Hashable, Any] | None = None
    async with streamcontext(source) as streamer:
        async for item in streamer:
            value, meta = split(item)
            shape = identity if identity is not None else plain_identity(value)
            # key= replaces how items are named, not how the value splits into items.
            keying = shape if key is None else Identity("list", key=key)
            current = keyed(shape.items(value), keying)
            change = diff_keyed(previous or {}, current, keying)
            first, previous = previous is None, current
            if first or change:
                yield join(change, meta)


class DiffPipe(Protocol):
    """The type of ``ops.diff()``: collections (or ``(collection, Meta)``) in, Diffs out."""

    @overload
    def __call__(
        self, source: AsyncIterable[tuple[dict[K, V], Meta]], /
    ) -> Stream[tuple[Diff[tuple[K, V]], Meta]]: ...
    @overload
    def __call__(
        self, source: AsyncIterable[tuple[list[I], Meta]], /
    ) -> Stream[tuple[Diff[I], Meta]]: ...
    @overload
    def __call__(
        self, source: AsyncIterable[tuple[I | None, Meta]], /
    ) -> Stream[tuple[Diff[I], Meta]]: ...
    @overload
    def __call__(self, source: AsyncIterable[dict[K, V]], /) -> Stream[Diff[tuple[K, V]]]: ...
    @overload
    def __call__(self, source: AsyncIterable[list[I]], /) -> Stream[Diff[I]]: ...
    @overload
    def __call__(self, source: AsyncIterable[Any], /) -> Stream[Any]: ...


def diff(key: Callable[[Any], Hashable] | None = None) -> DiffPipe:
    """Emit a :class:`Diff` between each collection and the previous one.

    Items are matched by ``key(item)`` when given, else by the identity the watched Query
    declares (KV key, ``(node, service ID)``, event ID...; KV entries count as changed when
    their ``ModifyIndex`` does); for plain values, by a mapping's keys or the items
    themselves. ``None`` is an empty collection. The first result reports everything as added
    (and is emitted even when empty); later empty diffs are not emitted.
    """
    pipe: Any = operator_pipe(_diff, _key(key, "a callable item -> id"), keeps_identity=False)
    return pipe  # type: ignore[no-any-return]


# --- values, decode ----------------------------------------------------------------------


async def _values(source: AsyncIterable[Any], identity: Identity | None) -> AsyncIterator[Any]:
    async with streamcontext(source) as streamer:
        async for item in streamer:
            yield split(item)[0]


class ValuesPipe(Protocol):
    """The type of ``ops.values()``: ``(value, Meta)`` pairs in, values out."""

    @overload
    def __call__(self, source: AsyncIterable[tuple[T, Meta]], /) -> Stream[T]: ...
    @overload
    def __call__(self, source: AsyncIterable[T], /) -> Stream[T]: ...


def values() -> ValuesPipe:
    """Drop the Meta of ``(value, meta)`` pairs; plain values pass through."""
    pipe: Any = operator_pipe(_values)
    return pipe  # type: ignore[no-any-return]


def _decode_one(value: Any, fmt: str | Decoder, identity: Identity | None) -> Any:
    def entry(e: MappingABC[str, Any]) -> Any:
        return decode_value(bytes(e.get("Value") or b""), fmt, str(e["Key"]))

    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return decode_value(bytes(value), fmt)
    if identity is not None and identity.shape == "one":
        return entry(value)
    if isinstance(value, MappingABC) and "Key" in value:
        return entry(value)
    if isinstance(value, (list, tuple)):
        return {str(e["Key"]): entry(e) for e in value}
    raise TypeError(f"decode() expects KV entries or bytes, got {type(value).__name__}")


async def _decode(
    source: AsyncIterable[Any], identity: Identity | None, fmt: str | Decoder
) -> AsyncIterator[Any]:
    async with streamcontext(source) as streamer:
        async for item in streamer:
            value, meta = split(item)
            yield join(_decode_one(value, fmt, identity), meta)


class DecodePipe(Protocol):
    """The type of ``ops.decode()``: KV entries in, decoded values out."""

    @overload
    def __call__(
        self, source: AsyncIterable[tuple[list[KVEntry], Meta]], /
    ) -> Stream[MappingMeta]: ...
    @overload
    def __call__(self, source: AsyncIterable[tuple[Any, Meta]], /) -> Stream[tuple[Any, Meta]]: ...
    @overload
    def __call__(self, source: AsyncIterable[list[KVEntry]], /) -> Stream[Mapping]: ...
    @overload
    def __call__(self, source: AsyncIterable[Any], /) -> Stream[Any]: ...


def decode(fmt: Format | Decoder = "utf-8") -> DecodePipe:
    """Decode KV values: one entry -> its decoded value (``None`` stays ``None``); a list of
    entries -> ``{Key: decoded value}``; raw bytes -> decoded.

    ``fmt``: ``"utf-8"``/``"text"``, ``"json"``, ``"yaml"`` (with PyYAML), ``"toml"``,
    ``"bytes"``, ``"auto"`` (by the key's extension) or a callable ``bytes -> value``; the
    same decoder as the config recipes. A value that does not decode raises
    :class:`~consul_streams.exceptions.DecodeError` naming the key.
    """
    pipe: Any = operator_pipe(_decode, check_format(fmt, "fmt"), keeps_identity=False)
    return pipe  # type: ignore[no-any-return]


# --- combine -----------------------------------------------------------------------------


class _Tagger:
    """Pairs an item with its source's name (a class, not a lambda, to bind the name)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, item: Any, *_: Any) -> tuple[str, Any]:
        return (self.name, item)


async def _combine(sources: dict[str, AsyncIterable[Any]]) -> AsyncIterator[dict[str, Any]]:
    names = list(sources)
    tagged = [aiostream_stream.map(src, _Tagger(name)) for name, src in sources.items()]
    latest: dict[str, Any] = {}
    previous: dict[str, Any] | None = None
    async with streamcontext(aiostream_stream.merge(*tagged)) as streamer:
        async for name, item in streamer:
            latest[name] = split(item)[0]
            if len(latest) < len(names):
                continue
            current = {n: latest[n] for n in names}
            if current != previous:
                previous = current
                yield dict(current)


def combine(**streams: AsyncIterable[Any]) -> Stream[Mapping]:
    """A stream of ``{name: latest value}`` of several streams, once all have a first value.

    ``(value, meta)`` pairs contribute their value. A dict equal to the last emitted one is not
    emitted again.

    Note: latest wins per source; the stream ends when all sources have ended.
    """
    if not streams:
        raise InvalidArgument("streams", "expected at least one name=stream")
    for name, source in streams.items():
        if not isinstance(source, AsyncIterable):
            raise InvalidArgument(name, f"expected an async iterable (a stream), got {source!r}")
    sources = dict(streams)
    return OpStream(lambda: _combine(sources), None)
