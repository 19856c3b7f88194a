"""The seed's polymorphic input types, their parsers, and :class:`Meta`.

Loose at the edge, strict inside: public methods accept the forms named by the aliases below
(``"2m30s"``, ``timedelta``, ``{"Index": 7}``, ``(meta, "10s")``) and normalise them once with
the ``parse_*`` functions, which raise :class:`~consul_streams.exceptions.InvalidArgument`
naming the parameter and the accepted forms.

``Payload`` decision: ``str`` is accepted and UTF-8 encoded, because KV values and event
payloads are usually text; ``bytes``, ``bytearray`` and ``memoryview`` pass through as bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from collections.abc import Mapping as _Mapping
from datetime import timedelta
from typing import Any, Literal, TypeAlias

from multidict import CIMultiDict, CIMultiDictProxy

from consul_streams._rules import parse_go_duration
from consul_streams._shapes import (
    AgentService,
    CatalogService,
    Event,
    HealthCheck,
    KVEntry,
    Node,
    ServiceEntry,
    Session,
    TxnError,
    TxnResponse,
    TxnResult,
    Weights,
)
from consul_streams.exceptions import DecodeError, InvalidArgument

__all__ = [
    "AgentService",
    "Blocking",
    "CatalogService",
    "Collection",
    "CollectionMeta",
    "Consistency",
    "Duration",
    "Event",
    "Filter",
    "HealthCheck",
    "KVEntry",
    "Mapping",
    "MappingMeta",
    "Meta",
    "Node",
    "Object",
    "ObjectID",
    "ObjectIndex",
    "ObjectMeta",
    "Payload",
    "ServiceEntry",
    "Session",
    "TxnError",
    "TxnResponse",
    "TxnResult",
    "Weights",
    "parse_blocking",
    "parse_consistency",
    "parse_duration",
    "parse_filter",
    "parse_hash_blocking",
    "parse_id",
    "parse_index",
    "parse_payload",
]

_UINT64_MAX = 2**64 - 1

# Header (lower-cased) -> Meta key, for the string-valued optional headers.
_TEXT_HEADERS = {
    "x-consul-contenthash": "ContentHash",
    "x-consul-effective-consistency": "EffectiveConsistency",
    "x-consul-query-backend": "QueryBackend",
    "x-consul-default-acl-policy": "DefaultACLPolicy",
    "x-cache": "Cache",
}
# Meta key -> constructor keyword, in repr order.
_KEYWORDS = {
    "Index": "index",
    "KnownLeader": "known_leader",
    "LastContact": "last_contact",
    "ContentHash": "content_hash",
    "EffectiveConsistency": "effective_consistency",
    "QueryBackend": "query_backend",
    "DefaultACLPolicy": "default_acl_policy",
    "ResultsFilteredByACLs": "results_filtered_by_acls",
    "Cache": "cache",
    "Age": "age",
}


_NO_CONTACT = timedelta(0)


def _lowered(headers: _Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


class Meta(_Mapping[str, object]):
    """Read-only response metadata from Consul's headers, as a mapping and as attributes.

    Keys ``Index`` (int, 0 when absent), ``KnownLeader`` (bool) and ``LastContact``
    (timedelta) are always present; ``ContentHash``, ``EffectiveConsistency``,
    ``QueryBackend``, ``DefaultACLPolicy``, ``ResultsFilteredByACLs``, ``Cache`` and ``Age``
    only when their header was. Build one with :meth:`from_headers` or with keywords
    (``Meta(index=7)``). Metas are equal when their items are, and hashable.
    """

    __slots__ = ("_data", "_index_present")

    def __init__(
        self,
        *,
        index: int = 0,
        known_leader: bool = False,
        last_contact: timedelta | float = timedelta(0),
        content_hash: str | None = None,
        effective_consistency: str | None = None,
        query_backend: str | None = None,
        default_acl_policy: str | None = None,
        results_filtered_by_acls: bool | None = None,
        cache: str | None = None,
        age: timedelta | float | None = None,
    ) -> None:
        data: dict[str, object] = {
            "Index": parse_index(index, "index"),
            "KnownLeader": _check_bool(known_leader, "known_leader"),
            "LastContact": _as_timedelta(last_contact, "last_contact"),
        }
        optional: dict[str, object] = {
            "ContentHash": content_hash,
            "EffectiveConsistency": effective_consistency,
            "QueryBackend": query_backend,
            "DefaultACLPolicy": default_acl_policy,
            "Cache": cache,
        }
        for key, value in optional.items():
            if value is not None:
                if not isinstance(value, str):
                    raise InvalidArgument(_KEYWORDS[key], f"expected a str, got {_show(value)}")
                data[key] = value
        if results_filtered_by_acls is not None:
            flag = _check_bool(results_filtered_by_acls, "results_filtered_by_acls")
            data["ResultsFilteredByACLs"] = flag
        if age is not None:
            data["Age"] = _as_timedelta(age, "age")
        self._data = data
        self._index_present = True

    @classmethod
    def from_headers(cls, headers: _Mapping[str, str]) -> Meta:
        """Read Consul's response headers, matching their names case-insensitively.

        Follows the Go client: booleans are true only for the exact text ``true``; a missing
        or unparsable ``X-Consul-LastContact`` reads as 0. A malformed ``X-Consul-Index``
        raises :class:`DecodeError`, since the watch engine cannot thread a garbled index.
        """
        # aiohttp's headers already match names case-insensitively; only other mappings
        # (tests, custom transports) pay for a lower-cased copy.
        h: _Mapping[str, str] = (
            headers if isinstance(headers, (CIMultiDictProxy, CIMultiDict)) else _lowered(headers)
        )
        meta = cls.__new__(cls)
        data: dict[str, object] = {"Index": 0, "KnownLeader": False, "LastContact": _NO_CONTACT}
        meta._data = data
        raw_index = h.get("x-consul-index")
        if raw_index is not None:
            if not raw_index.isdigit() or not raw_index.isascii() or int(raw_index) > _UINT64_MAX:
                raise DecodeError(f"invalid X-Consul-Index header {raw_index[:40]!r}")
            data["Index"] = int(raw_index)
        meta._index_present = raw_index is not None
        data["KnownLeader"] = h.get("x-consul-knownleader") == "true"
        contact = h.get("x-consul-lastcontact", "")
        if contact.isascii() and contact.isdigit():
            data["LastContact"] = timedelta(milliseconds=int(contact))
        for header, key in _TEXT_HEADERS.items():
            text = h.get(header)
            if text is not None:
                data[key] = text
        filtered = h.get("x-consul-results-filtered-by-acls")
        if filtered is not None:
            data["ResultsFilteredByACLs"] = filtered == "true"
        age = h.get("age", "")
        if age.isascii() and age.isdigit():
            data["Age"] = timedelta(seconds=int(age))
        return meta

    @property
    def index_present(self) -> bool:
        """Whether the answer carried ``X-Consul-Index`` (``Index`` reads 0 when it did not)."""
        return self._index_present

    def __getitem__(self, key: str) -> object:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Meta):
            return self._data == other._data
        return super().__eq__(other)

    def __repr__(self) -> str:
        fields = ", ".join(f"{_KEYWORDS[k]}={v!r}" for k, v in self._data.items())
        return f"Meta({fields})"

    @property
    def index(self) -> int:
        """``X-Consul-Index``, 0 when the response had none."""
        return self._data["Index"]  # type: ignore[return-value]

    @property
    def known_leader(self) -> bool:
        return self._data["KnownLeader"]  # type: ignore[return-value]

    @property
    def last_contact(self) -> timedelta:
        return self._data["LastContact"]  # type: ignore[return-value]

    @property
    def content_hash(self) -> str | None:
        return self._data.get("ContentHash")  # type: ignore[return-value]

    @property
    def effective_consistency(self) -> str | None:
        return self._data.get("EffectiveConsistency")  # type: ignore[return-value]

    @property
    def query_backend(self) -> str | None:
        return self._data.get("QueryBackend")  # type: ignore[return-value]

    @property
    def default_acl_policy(self) -> str | None:
        return self._data.get("DefaultACLPolicy")  # type: ignore[return-value]

    @property
    def results_filtered_by_acls(self) -> bool:
        return self._data.get("ResultsFilteredByACLs", False)  # type: ignore[return-value]

    @property
    def cache(self) -> str | None:
        """``X-Cache`` (``HIT``/``MISS``) when the agent cache answered."""
        return self._data.get("Cache")  # type: ignore[return-value]

    @property
    def age(self) -> timedelta | None:
        return self._data.get("Age")  # type: ignore[return-value]


# The seed's polymorphic input forms.
ObjectIndex: TypeAlias = int | str | _Mapping[str, Any] | Meta
ObjectID: TypeAlias = str | _Mapping[str, Any]
Object: TypeAlias = dict[str, Any]
Collection: TypeAlias = list[Object]
Mapping: TypeAlias = dict[str, Any]
ObjectMeta: TypeAlias = tuple[Object, Meta]
CollectionMeta: TypeAlias = tuple[Collection, Meta]
MappingMeta: TypeAlias = tuple[Mapping, Meta]
Filter: TypeAlias = str | re.Pattern[str]
Consistency: TypeAlias = Literal["default", "consistent", "stale"]
Duration: TypeAlias = str | timedelta | int | float
Blocking: TypeAlias = ObjectIndex | tuple[ObjectIndex, Duration | None]
Payload: TypeAlias = bytes | bytearray | memoryview | str

_INDEX_FORMS = "an int >= 0, a decimal string, a mapping with an 'Index' key, or a Meta"
_DURATION_FORMS = (
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


def _check_bool(value: object, parameter: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(parameter, f"expected True or False, got {_show(value)}")
    return value


def _as_timedelta(value: object, parameter: str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=parse_duration(value, parameter))


def parse_index(value: object, parameter: str = "index") -> int:
    """Normalise an :data:`ObjectIndex` to an int in Consul's uint64 range."""
    if isinstance(value, Meta):
        return value.index
    if isinstance(value, _Mapping) and "Index" in value:
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
    """Normalise an :data:`ObjectID` (a non-empty str or a mapping with an ``ID``) to a str."""
    candidate = value["ID"] if isinstance(value, _Mapping) and "ID" in value else value
    if isinstance(candidate, str) and candidate:
        return candidate
    raise InvalidArgument(
        parameter, f"expected a non-empty str or a mapping with an 'ID' key; got {_show(value)}"
    )


def parse_duration(value: object, parameter: str, *, allow_negative: bool = False) -> float:
    """Normalise a :data:`Duration` to seconds; negatives only with ``allow_negative``."""
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
                parameter, f"expected {_DURATION_FORMS}; got {_show(value)}"
            ) from None
    else:
        raise InvalidArgument(parameter, f"expected {_DURATION_FORMS}; got {_show(value)}")
    if seconds < 0 and not allow_negative:
        raise InvalidArgument(parameter, f"must not be negative; got {_show(value)}")
    return seconds


def parse_blocking(value: object, parameter: str = "watch") -> tuple[int, float | None]:
    """Normalise a :data:`Blocking` seed to ``(index, wait_seconds_or_None)``.

    Accepts an :data:`ObjectIndex` (including a :class:`Meta`) or a 2-tuple
    ``(index, wait)`` whose wait is a :data:`Duration` or None (the server default).
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

    Accepts a hash string, a :class:`Meta` carrying ``ContentHash``, or a 2-tuple
    ``(hash_or_meta, wait)``.
    """
    forms = "a content hash str, a Meta with a ContentHash, or a tuple (hash, wait)"
    wait: float | None = None
    if isinstance(value, tuple):
        if len(value) != 2:
            raise InvalidArgument(parameter, f"expected {forms}; got {_show(value)}")
        value, raw_wait = value
        wait = None if raw_wait is None else parse_duration(raw_wait, f"{parameter} wait")
    digest = value.content_hash if isinstance(value, Meta) else value
    if isinstance(digest, str) and digest:
        return digest, wait
    raise InvalidArgument(parameter, f"expected {forms}; got {_show(value)}")


def parse_consistency(value: object, parameter: str = "consistency") -> Consistency:
    """Check a :data:`Consistency` mode: ``"default"``, ``"consistent"`` or ``"stale"``."""
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
    """Normalise a :data:`Filter` (a regex string or a compiled str pattern) to a pattern."""
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
    """Normalise a :data:`Payload` to bytes (a str is UTF-8 encoded)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise InvalidArgument(
        parameter, f"expected bytes, bytearray, memoryview or str; got {_show(value)}"
    )
