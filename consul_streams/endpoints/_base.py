"""Shared machinery of the endpoint classes: path encoding, parameter builders and decoders.

Endpoint methods only build a :class:`~consul_streams._query.Request` and name a decoder; the
helpers here turn the seed's loose argument forms into query parameters (failing with
:class:`~consul_streams.exceptions.InvalidArgument` before anything is sent) and turn response
bodies into Python values (failing with :class:`~consul_streams.exceptions.DecodeError`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, runtime_checkable
from urllib.parse import quote

import msgspec

from consul_streams._identity import Identity
from consul_streams._parse import parse_bool, parse_int
from consul_streams._query import BlockingMode, KeyCover, Query, Request, Response, Transport
from consul_streams.exceptions import DecodeError, InvalidArgument
from consul_streams.typing import parse_blocking, parse_consistency

if TYPE_CHECKING:
    from consul_streams._watch_engine import WatchEngine

__all__ = [
    "Endpoint",
    "NodeMeta",
    "Params",
    "b64decode",
    "b64encode",
    "check_bool",
    "check_name",
    "check_text",
    "check_uint",
    "common_params",
    "decode_bool",
    "decode_dict",
    "decode_json",
    "decode_list",
    "decode_none",
    "decode_typed",
    "expect_dict",
    "expect_list",
    "filter_params",
    "json_body",
    "near_params",
    "node_meta_params",
    "path_segment",
    "tag_params",
]

T = TypeVar("T")
Params = list[tuple[str, str]]
#: Node metadata filters: ``{"rack": "r1"}`` or ``["rack:r1"]``.
NodeMeta: TypeAlias = Mapping[str, str] | Sequence[str]

#: Characters Go's path checker refuses and that have no business in a name or key.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")
_UINT64_MAX = 2**64 - 1


def check_name(value: object, parameter: str, *, what: str = "a non-empty string") -> str:
    """Return ``value`` if it is a non-empty string without control characters."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(parameter, f"expected {what}, got {value!r}")
    if _UNPRINTABLE.search(value):
        raise InvalidArgument(parameter, "must not contain control characters")
    check_text(value, parameter)
    return value


def check_text(value: str, parameter: str) -> str:
    """Refuse text that cannot go on the wire as UTF-8 (lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(parameter, "must be valid Unicode (no lone surrogates)") from None
    return value


def check_bool(value: object, parameter: str) -> bool:
    """Return ``value`` if it is a bool; a truthy ``"yes"`` or ``1`` must not pass as True."""
    return parse_bool(value, parameter)


def path_segment(value: object, parameter: str) -> str:
    """Percent-encode one path segment (a service, node, check or session name)."""
    # "/" is encoded too: a name is one segment, Consul decodes it back before routing.
    return quote(check_name(value, parameter), safe=":@")


def check_uint(value: object, parameter: str) -> int:
    """Return ``value`` if it is an int in Consul's uint64 range (bool rejected)."""
    return parse_int(value, parameter)


def b64encode(value: bytes) -> str:
    """Base64 text of ``value``, as Consul's JSON carries []byte fields."""
    return base64.b64encode(value).decode("ascii")


if sys.version_info >= (3, 11):
    # What base64.b64decode(validate=True) runs on 3.11+, minus its two Python layers:
    # non-alphabet characters, bad padding and data after padding all raise.
    _a2b_strict: Callable[[str], bytes] = functools.partial(binascii.a2b_base64, strict_mode=True)
else:  # pragma: no cover - Python 3.10 has no strict_mode
    _a2b_strict = functools.partial(base64.b64decode, validate=True)


def b64decode(value: object, field: str, response: Response | None = None) -> bytes:
    """Decode a base64 []byte field; ``null`` and ``""`` both mean empty."""
    if type(value) is str:  # the hot path: one KV value per entry of a large prefix
        if not value:
            return b""
        try:
            return _a2b_strict(value)
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise _decode_error(f"{field}: invalid base64 ({exc})", response) from None
    if value is None:
        return b""
    if not isinstance(value, str):
        raise _decode_error(f"{field}: expected base64 text, got {type(value).__name__}", response)
    return b64decode(str(value), field, response)  # a str subclass: decode its plain text


def _decode_error(message: str, response: Response | None) -> DecodeError:
    if response is None:
        return DecodeError(message)
    return DecodeError(message, method=response.method, url=response.url, body=response.body)


#: One untyped JSON decoder for every answer without a typed fast path (msgspec parses JSON in
#: about 0.6x the time of ``json.loads``, to the same Python values).
_JSON = msgspec.json.Decoder()


def decode_json(response: Response) -> Any:
    """The JSON value of a response body; a body that is not JSON raises DecodeError."""
    return decode_typed(_JSON, response)


def decode_typed(decoder: msgspec.json.Decoder[T], response: Response) -> T:
    """``response.body`` decoded by a typed msgspec decoder; any failure raises DecodeError.

    A typed decoder parses the JSON, checks the shape and decodes base64 ``bytes`` fields in one
    pass in C; its messages name the failing place (``... - at `$[3].Value```).
    """
    try:
        return decoder.decode(response.body)
    except msgspec.ValidationError as exc:
        raise _decode_error(f"unexpected JSON shape in response: {exc}", response) from None
    except msgspec.DecodeError as exc:
        raise _decode_error(f"invalid JSON in response: {exc}", response) from None


def expect_list(value: Any, response: Response) -> list[Any]:
    """``value`` if it is a JSON array (``null`` counts as empty), else DecodeError."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _decode_error(f"expected a JSON array, got {type(value).__name__}", response)
    return value


def expect_dict(value: Any, response: Response) -> dict[str, Any]:
    """``value`` if it is a JSON object (``null`` counts as empty), else DecodeError."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _decode_error(f"expected a JSON object, got {type(value).__name__}", response)
    return value


def decode_bool(response: Response) -> bool:
    """Consul's ``true``/``false`` write answers."""
    value = decode_json(response)
    if not isinstance(value, bool):
        raise _decode_error(f"expected true or false, got {value!r}", response)
    return value


def decode_none(response: Response) -> None:
    """Agent writes answer 200 with an empty body; anything else is ignored."""
    return None


def decode_list(response: Response) -> list[Any]:
    return expect_list(decode_json(response), response)


def decode_dict(response: Response) -> dict[str, Any]:
    return expect_dict(decode_json(response), response)


def common_params(dc: object = None, consistency: object = None) -> Params:
    """``dc`` and a per-call consistency override as query parameters.

    Consistency is sent as Consul's presence flag: ``stale``, ``consistent``, or ``leader``
    for an explicit ``"default"`` (Consul's own flag for default mode; its presence also tells
    the transport not to add the client-wide default).
    """
    params: Params = []
    if dc is not None:
        params.append(("dc", check_name(dc, "dc", what="a datacenter name")))
    if consistency is not None:
        mode = parse_consistency(consistency)
        params.append(("leader" if mode == "default" else mode, ""))
    return params


def tag_params(tag: object) -> Params:
    """One ``tag`` parameter per tag (Consul ANDs repeated tags)."""
    if tag is None:
        return []
    tags = [tag] if isinstance(tag, str) else _strings(tag, "tag")
    return [
        ("tag", check_name(t, "tag", what="a tag string or a list of tag strings")) for t in tags
    ]


def near_params(near: object) -> Params:
    if near is None:
        return []
    return [("near", check_name(near, "near", what="a node name or '_agent'"))]


def filter_params(filter: object) -> Params:
    """A server-side go-bexpr ``filter`` expression, passed through verbatim."""
    if filter is None:
        return []
    return [("filter", check_name(filter, "filter", what="a filter expression string"))]


def node_meta_params(node_meta: object) -> Params:
    """``node-meta=key:value`` pairs from a mapping or from ``"key:value"`` strings."""
    if node_meta is None:
        return []
    accepted = "a mapping of str to str or a list of 'key:value' strings"
    pairs: list[str] = []
    if isinstance(node_meta, Mapping):
        for k, v in node_meta.items():
            if not isinstance(k, str) or not k or not isinstance(v, str):
                raise InvalidArgument("node_meta", f"expected {accepted}, got {node_meta!r}")
            pairs.append(f"{k}:{v}")
    else:
        for item in _strings(node_meta, "node_meta", accepted=accepted):
            if not isinstance(item, str) or not item:
                raise InvalidArgument("node_meta", f"expected {accepted}, got {node_meta!r}")
            pairs.append(item)
    return [("node-meta", check_name(p, "node_meta", what=accepted)) for p in pairs]


def _strings(value: object, parameter: str, *, accepted: str | None = None) -> list[object]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidArgument(
            parameter, f"expected {accepted or 'a list of strings'}, got {value!r}"
        )
    return list(value)


@runtime_checkable
class _EngineOwner(Protocol):
    """A client whose watch engine the Queries it builds carry (``Consul``)."""

    @property
    def engine(self) -> WatchEngine: ...


class Endpoint:
    """Base of the endpoint classes: holds the transport and builds Queries and writes."""

    def __init__(self, transport: Transport, client: object = None) -> None:
        self._transport = transport
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def _query(
        self,
        request: Request,
        decode: Callable[[Response], T],
        *,
        watch: object = None,
        mode: BlockingMode = BlockingMode.INDEX,
        ok_statuses: frozenset[int] = frozenset({200}),
        identity: Identity | None = None,
        cover: KeyCover | None = None,
    ) -> Query[T]:
        """A Query for ``request``; ``watch`` seeds its index and wait (one blocking read)."""
        index, wait = (0, None) if watch is None else parse_blocking(watch, "watch")
        return Query(
            self._transport,
            request,
            decode,
            mode=mode,
            ok_statuses=ok_statuses,
            index=index,
            wait=wait,
            identity=identity,
            engine=self._client.engine if isinstance(self._client, _EngineOwner) else None,
            cover=cover,
        )

    async def _write(
        self,
        request: Request,
        decode: Callable[[Response], T],
        *,
        ok_statuses: frozenset[int] = frozenset({200}),
    ) -> T:
        """Send a write (never blocking; the transport's default timeout) and decode it."""
        response = await self._transport.send(request, timeout=None, ok_statuses=ok_statuses)
        return decode(response)


def json_body(value: object) -> bytes:
    """Compact JSON for a request body."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
