"""The one owner of input parsing and validation: indexes, ids, durations, waits, booleans.

Every public parameter that takes one of these forms is normalised here, so each accepts the
same forms and fails with the same :class:`~consul_streams.exceptions.InvalidArgument`, naming
the parameter and the accepted forms. The seed's names for the forms
(:data:`~consul_streams.typing.Duration`, ``ObjectIndex``, ...) live in
``consul_streams.typing``, which re-exports these parsers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal

from consul_streams._rules import MAX_WAIT, parse_go_duration
from consul_streams.exceptions import InvalidArgument

__all__ = [
    "DURATION_FORMS",
    "parse_blocking",
    "parse_bool",
    "parse_consistency",
    "parse_duration",
    "parse_filter",
    "parse_hash_blocking",
    "parse_id",
    "parse_index",
    "parse_int",
    "parse_payload",
    "parse_positive_duration",
    "parse_timedelta",
    "parse_wait",
]

_UINT64_MAX = 2**64 - 1

_INDEX_FORMS = "an int >= 0, a decimal string, a mapping with an 'Index' key, or a Meta"
DURATION_FORMS = (
    "a Go duration string ('10s', '5m', '2m30s', '1.5h', '300ms'), a timedelta, "
    "or seconds as an int or float"
)
_CONSISTENCY_FORMS = ("default", "consistent", "stale")


def _show(value: object) -> str:
    """A short description of a rejected value (type and a truncated repr)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def parse_bool(value: object, parameter: str) -> bool:
    """Check a flag: exactly ``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise InvalidArgument(parameter, f"expected True or False, got {_show(value)}")
    return value


def parse_timedelta(value: object, parameter: str) -> timedelta:
    """A ``Duration`` as a timedelta (not negative)."""
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=parse_duration(value, parameter))


def parse_index(value: object, parameter: str = "index") -> int:
    """Normalise an ``ObjectIndex`` to an int in Consul's uint64 range."""
    if isinstance(value, Mapping) and "Index" in value:  # a Meta is one too
        inner = value["Index"]
        if isinstance(inner, (int, str)):
            return parse_index(inner, parameter)
    elif isinstance(value, str):
        # Go's ParseUint: ASCII digits only, no sign, leading zeros fine.
        if value.isascii() and value.isdigit() and int(value) <= _UINT64_MAX:
            return int(value)
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _UINT64_MAX:
        return value
    raise InvalidArgument(parameter, f"expected {_INDEX_FORMS}; got {_show(value)}")


def parse_id(value: object, parameter: str) -> str:
    """Normalise an ``ObjectID`` (a non-empty str or a mapping with an ``ID``) to a str."""
    candidate = value["ID"] if isinstance(value, Mapping) and "ID" in value else value
    if isinstance(candidate, str) and candidate:
        return candidate
    raise InvalidArgument(
        parameter, f"expected a non-empty str or a mapping with an 'ID' key; got {_show(value)}"
    )


def parse_duration(value: object, parameter: str, *, allow_negative: bool = False) -> float:
    """Normalise a ``Duration`` to seconds; negatives only with ``allow_negative``."""
    seconds: float
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise InvalidArgument(parameter, f"expected a finite duration; got {_show(value)}")
    elif isinstance(value, str):
        try:
            seconds = parse_go_duration(value)
        except ValueError:
            raise InvalidArgument(
                parameter, f"expected {DURATION_FORMS}; got {_show(value)}"
            ) from None
    else:
        raise InvalidArgument(parameter, f"expected {DURATION_FORMS}; got {_show(value)}")
    if seconds < 0 and not allow_negative:
        raise InvalidArgument(parameter, f"must not be negative; got {_show(value)}")
    return seconds


def parse_blocking(value: object, parameter: str = "watch") -> tuple[int, float | None]:
    """Normalise a ``Blocking`` seed to ``(index, wait_seconds_or_None)``.

    Accepts an ``ObjectIndex`` (including a ``Meta``) or a 2-tuple
    ``(index, wait)`` whose wait is a ``Duration`` or None (the server default).
    """
    if isinstance(value, tuple):
        if len(value) != 2:
            raise InvalidArgument(
                parameter, f"expected {_INDEX_FORMS}, or a tuple (index, wait); got {_show(value)}"
            )
        index, wait = value
        parsed_wait = None if wait is None else parse_duration(wait, f"{parameter} wait")
        return parse_index(index, parameter), parsed_wait
    return parse_index(value, parameter), None


def parse_hash_blocking(value: object, parameter: str = "watch") -> tuple[str, float | None]:
    """Like :func:`parse_blocking` for hash-blocking endpoints: ``(content_hash, wait)``.

    Accepts a hash string, a ``Meta`` carrying ``ContentHash``, or a 2-tuple
    ``(hash_or_meta, wait)``.
    """
    forms = "a content hash str, a Meta with a ContentHash, or a tuple (hash, wait)"
    wait: float | None = None
    if isinstance(value, tuple):
        if len(value) != 2:
            raise InvalidArgument(parameter, f"expected {forms}; got {_show(value)}")
        value, raw_wait = value
        wait = None if raw_wait is None else parse_duration(raw_wait, f"{parameter} wait")
    digest = value.get("ContentHash") if isinstance(value, Mapping) else value  # a Meta
    if isinstance(digest, str) and digest:
        return digest, wait
    raise InvalidArgument(parameter, f"expected {forms}; got {_show(value)}")


def parse_consistency(
    value: object, parameter: str = "consistency"
) -> Literal["default", "consistent", "stale"]:
    """Check a ``Consistency`` mode: ``"default"``, ``"consistent"`` or ``"stale"``."""
    if value == "default" and isinstance(value, str):
        return "default"
    if value == "consistent" and isinstance(value, str):
        return "consistent"
    if value == "stale" and isinstance(value, str):
        return "stale"
    raise InvalidArgument(
        parameter, f"expected one of {', '.join(map(repr, _CONSISTENCY_FORMS))}; got {_show(value)}"
    )


def parse_filter(value: object, parameter: str) -> re.Pattern[str]:
    """Normalise a ``Filter`` (a regex string or a compiled str pattern) to a pattern."""
    if isinstance(value, re.Pattern):
        if isinstance(value.pattern, str):
            return value
    elif isinstance(value, str):
        try:
            return re.compile(value)
        except re.error as exc:
            raise InvalidArgument(parameter, f"invalid regular expression: {exc}") from None
    raise InvalidArgument(
        parameter,
        f"expected a regular expression str or a compiled str pattern; got {_show(value)}",
    )


def parse_payload(value: object, parameter: str) -> bytes:
    """Normalise a ``Payload`` to bytes (a str is UTF-8 encoded)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise InvalidArgument(
        parameter, f"expected bytes, bytearray, memoryview or str; got {_show(value)}"
    )


def parse_positive_duration(value: object, parameter: str) -> float:
    """A ``Duration`` that must be above zero (debounce quiet, intervals), in seconds."""
    seconds = parse_duration(value, parameter)
    if seconds <= 0:
        raise InvalidArgument(parameter, f"expected a positive duration, got {_show(value)}")
    return seconds


def parse_wait(value: object, parameter: str = "wait") -> float:
    """A blocking wait in seconds, in (0, 10m]: Consul reads 0 as "the default" and caps at
    10m, so both are refused rather than silently watching with another wait."""
    seconds = parse_duration(value, parameter, allow_negative=True)
    if not 0 < seconds <= MAX_WAIT:
        raise InvalidArgument(
            parameter, f"expected {DURATION_FORMS}, above 0s and at most 10m; got {_show(value)}"
        )
    return seconds


def parse_int(
    value: object, parameter: str, *, minimum: int = 0, maximum: int = _UINT64_MAX
) -> int:
    """An int (not a bool) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        top = "2**64-1" if maximum == _UINT64_MAX else str(maximum)
        bounds = f"between {minimum} and {top}"
        raise InvalidArgument(parameter, f"expected an int {bounds}; got {_show(value)}")
    return value
