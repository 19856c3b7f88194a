"""The seed's polymorphic input types, their parsers, and :class:`Meta`.

``Mapping`` here is the seed's name for a JSON object (``dict[str, Any]``); the ABC is imported
as ``_Mapping``.

Loose at the edge, strict inside: public methods accept the forms named by the aliases below
(``"2m30s"``, ``timedelta``, ``{"Index": 7}``, ``(meta, "10s")``) and normalise them once with
the ``parse_*`` functions (owned by ``_parse.py``, re-exported here), which raise
:class:`~consul_streams.exceptions.InvalidArgument` naming the parameter and the accepted forms.

``Payload`` decision: ``str`` is accepted and UTF-8 encoded, because KV values and event
payloads are usually text; ``bytes``, ``bytearray`` and ``memoryview`` pass through as bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from collections.abc import Mapping as _Mapping
from datetime import timedelta
from typing import Any, Literal, TypeAlias

from multidict import CIMultiDict, CIMultiDictProxy

from consul_streams._parse import (
    _show,
    parse_blocking,
    parse_bool,
    parse_consistency,
    parse_duration,
    parse_filter,
    parse_hash_blocking,
    parse_id,
    parse_index,
    parse_payload,
    parse_timedelta,
)
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
    "parse_bool",
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

    Note: :meth:`from_headers` reads ``X-Consul-Index`` at once (the watch engine needs it and a
    garbled one is an error) and the other headers on first use, so the answer's path to a
    consumer parses only that one header (#13).
    """

    __slots__ = ("_data", "_headers", "_index_present")

    def __init__(
        self,
        *,
        index: ObjectIndex = 0,
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
            "KnownLeader": parse_bool(known_leader, "known_leader"),
            "LastContact": parse_timedelta(last_contact, "last_contact"),
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
            flag = parse_bool(results_filtered_by_acls, "results_filtered_by_acls")
            data["ResultsFilteredByACLs"] = flag
        if age is not None:
            data["Age"] = parse_timedelta(age, "age")
        self._data = data
        self._headers: _Mapping[str, str] | None = None
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
        index = 0
        raw_index = h.get("x-consul-index")
        if raw_index is not None:
            if not raw_index.isdigit() or not raw_index.isascii() or int(raw_index) > _UINT64_MAX:
                raise DecodeError(f"invalid X-Consul-Index header {raw_index[:40]!r}")
            index = int(raw_index)
        meta._data = {"Index": index}
        meta._headers = h  # the rest is read on first use (_read_headers)
        meta._index_present = raw_index is not None
        return meta

    def _read_headers(self) -> dict[str, object]:
        """Every key, reading the headers :meth:`from_headers` left for later (then drops them).

        A new dict replaces the partial one before the headers are dropped, so a reader in
        another thread (the sync layer's callback thread) never sees a half-filled one.
        """
        h = self._headers
        if h is None:
            return self._data
        data: dict[str, object] = {
            "Index": self._data["Index"],
            "KnownLeader": h.get("x-consul-knownleader") == "true",
            "LastContact": _NO_CONTACT,
        }
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
        self._data = data
        self._headers = None
        return data

    def __getstate__(self) -> tuple[None, dict[str, object]]:
        # Pickled and copied with every key read: the headers object need not pickle.
        data = self._read_headers()
        return None, {"_data": data, "_headers": None, "_index_present": self._index_present}

    @property
    def index_present(self) -> bool:
        """Whether the answer carried ``X-Consul-Index`` (``Index`` reads 0 when it did not)."""
        return self._index_present

    def __getitem__(self, key: str) -> object:
        return self._read_headers()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read_headers())

    def __len__(self) -> int:
        return len(self._read_headers())

    def __hash__(self) -> int:
        return hash(frozenset(self._read_headers().items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Meta):
            return self._read_headers() == other._read_headers()
        return super().__eq__(other)

    def __repr__(self) -> str:
        fields = ", ".join(f"{_KEYWORDS[k]}={v!r}" for k, v in self._read_headers().items())
        return f"Meta({fields})"

    @property
    def index(self) -> int:
        """``X-Consul-Index``, 0 when the response had none."""
        return self._data["Index"]  # type: ignore[return-value]

    @property
    def known_leader(self) -> bool:
        return self._read_headers()["KnownLeader"]  # type: ignore[return-value]

    @property
    def last_contact(self) -> timedelta:
        return self._read_headers()["LastContact"]  # type: ignore[return-value]

    @property
    def content_hash(self) -> str | None:
        return self._read_headers().get("ContentHash")  # type: ignore[return-value]

    @property
    def effective_consistency(self) -> str | None:
        return self._read_headers().get("EffectiveConsistency")  # type: ignore[return-value]

    @property
    def query_backend(self) -> str | None:
        return self._read_headers().get("QueryBackend")  # type: ignore[return-value]

    @property
    def default_acl_policy(self) -> str | None:
        return self._read_headers().get("DefaultACLPolicy")  # type: ignore[return-value]

    @property
    def results_filtered_by_acls(self) -> bool:
        return self._read_headers().get("ResultsFilteredByACLs", False)  # type: ignore[return-value]

    @property
    def cache(self) -> str | None:
        """``X-Cache`` (``HIT``/``MISS``) when the agent cache answered."""
        return self._read_headers().get("Cache")  # type: ignore[return-value]

    @property
    def age(self) -> timedelta | None:
        return self._read_headers().get("Age")  # type: ignore[return-value]


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
