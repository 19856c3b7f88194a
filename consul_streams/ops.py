"""Stream operators for watches, in aiostream's pipe form: ``watch(q) | ops.debounce(0.5)``.

Each function here checks its arguments at call time (raising
:class:`~consul_streams.exceptions.InvalidArgument`) and returns an aiostream pipe, so it
composes with ``aiostream.pipe`` operators. The underlying aiostream ``pipable_operator``\\ s
(with ``.raw`` and the ``op(source, ...)`` call form) are in :class:`operators`.

Items: every operator accepts plain values and ``(value, meta)`` pairs as ``watch()`` emits
them. A 2-tuple whose second item is a :class:`~consul_streams.typing.Meta` is a pair: the
operator works on the value and passes the Meta through (``values()`` drops it; ``combine``
collects values).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Callable, Hashable
from datetime import timedelta
from typing import Any

from aiostream.core import Stream

from consul_streams import _ops_items, _ops_time
from consul_streams._clock import Clock
from consul_streams._ops_items import Diff, Format, natural_id
from consul_streams.exceptions import InvalidArgument
from consul_streams.typing import parse_duration, parse_filter

__all__ = [
    "Diff",
    "combine",
    "debounce",
    "decode",
    "diff",
    "distinct",
    "match",
    "natural_id",
    "operators",
    "throttle",
    "values",
]

Pipe = Callable[[AsyncIterable[Any]], Stream[Any]]
Seconds = float | timedelta | str


def _seconds(value: object, parameter: str) -> float:
    seconds = parse_duration(value, parameter)
    if seconds <= 0:
        raise InvalidArgument(parameter, f"expected a positive duration, got {value!r}")
    return seconds


def _clock(clock: object) -> Clock | None:
    if clock is not None and not isinstance(clock, Clock):
        raise InvalidArgument("clock", f"expected a Clock (now(), sleep()) or None, got {clock!r}")
    return clock


def _key(key: object) -> Any:
    if key is not None and not callable(key):
        raise InvalidArgument("key", f"expected a callable or None, got {key!r}")
    return key


def match(pattern: str | re.Pattern[str], *, field: str | None = None) -> Pipe:
    """Keep the items whose name matches ``pattern`` (see ``_ops_items.match``)."""
    compiled = parse_filter(pattern, "pattern")  # compiled once, here
    if field is not None and (not isinstance(field, str) or not field):
        raise InvalidArgument("field", f'expected a field name such as "Key", got {field!r}')
    return _ops_items.match.pipe(compiled, field=field)


def debounce(
    quiet: Seconds, *, max_wait: Seconds | None = None, clock: Clock | None = None
) -> Pipe:
    """Emit the latest item after ``quiet`` without news; at least every ``max_wait``."""
    quiet_s = _seconds(quiet, "quiet")
    max_s = None if max_wait is None else _seconds(max_wait, "max_wait")
    return _ops_time.debounce.pipe(quiet_s, max_wait=max_s, clock=_clock(clock))


def throttle(interval: Seconds, *, clock: Clock | None = None) -> Pipe:
    """At most one item per ``interval``; latest wins; the last is not lost."""
    return _ops_time.throttle.pipe(_seconds(interval, "interval"), clock=_clock(clock))


def distinct(key: Callable[[Any], Any] | None = None) -> Pipe:
    """Drop items equal (by value, or ``key(value)``) to the previous one."""
    return _ops_items.distinct.pipe(_key(key))


def diff(key: Callable[[Any], Hashable] | None = None) -> Pipe:
    """Emit a :class:`Diff` (added, removed, changed) between consecutive collections."""
    return _ops_items.diff.pipe(_key(key))


def values() -> Pipe:
    """Drop the Meta of ``(value, meta)`` pairs."""
    return _ops_items.values.pipe()


def decode(fmt: Format = "utf-8") -> Pipe:
    """Decode KV values as ``"utf-8"``/``"text"``, ``"json"`` or ``"yaml"``."""
    _ops_items._decoder(fmt)  # validates fmt (and PyYAML's presence) now
    return _ops_items.decode.pipe(fmt)


def combine(**streams: AsyncIterable[Any]) -> Stream[dict[str, Any]]:
    """A stream of ``{name: latest value}`` of several streams, once all have a first value."""
    if not streams:
        raise InvalidArgument("streams", "expected at least one name=stream")
    for name, source in streams.items():
        if not isinstance(source, AsyncIterable):
            raise InvalidArgument(name, f"expected an async iterable (a stream), got {source!r}")
    return _ops_time.combine(**streams)


class operators:  # lower-case: a namespace used like a module
    """The aiostream operators behind the pipes: ``ops.operators.debounce(source, 1.0)``,
    ``.raw``; they check their arguments only when iterated."""

    match = _ops_items.match
    debounce = _ops_time.debounce
    throttle = _ops_time.throttle
    distinct = _ops_items.distinct
    diff = _ops_items.diff
    values = _ops_items.values
    decode = _ops_items.decode
    combine = _ops_time.combine
