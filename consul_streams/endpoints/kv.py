"""The key/value store: ``/v1/kv/``.

Values are bytes both ways: the user never sees Consul's base64. A missing key is a value, not
an error: :meth:`KV.get` gives ``None``, :meth:`KV.items` and :meth:`KV.keys` give ``[]``, and
the Meta of that 404 still carries ``X-Consul-Index`` so a watch can block on the key appearing.

Note: values larger than Consul's ``kv_max_value_size`` (512 KiB by default, configurable on
the server) are not refused client-side; the server answers 413, raised as
:class:`~consul_streams.exceptions.RequestTooLarge`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, cast
from urllib.parse import quote

import msgspec

from consul_streams import _identity
from consul_streams._query import KeyCover, Query, Request, Response
from consul_streams.endpoints._base import (
    Endpoint,
    b64decode,
    check_bool,
    check_text,
    check_uint,
    common_params,
    decode_bool,
    decode_json,
    decode_typed,
    expect_list,
)
from consul_streams.exceptions import DecodeError, InvalidArgument
from consul_streams.typing import (
    Blocking,
    Consistency,
    KVEntry,
    ObjectID,
    Payload,
    parse_id,
    parse_payload,
)

__all__ = ["KV", "check_key", "decode_kv_entries", "decode_kv_entry", "kv_path"]

_OK_OR_MISSING = frozenset({200, 404})


def check_key(key: object, parameter: str = "key", *, allow_empty: bool = False) -> str:
    if not isinstance(key, str):
        raise InvalidArgument(parameter, f"expected a str, got {type(key).__name__}")
    if not key and not allow_empty:
        raise InvalidArgument(parameter, "must not be empty")
    if key.startswith("/"):
        raise InvalidArgument(parameter, "must not begin with '/'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidArgument(parameter, "must not contain control characters")
    # HTTP stacks normalise "." and ".." segments away, so such a key would address another.
    if any(seg in (".", "..") for seg in key.split("/")):
        raise InvalidArgument(parameter, "must not contain '.' or '..' path segments")
    return check_text(key, parameter)


def _prefix_read(prefix: str, params: tuple[tuple[str, str], ...]) -> Request:
    """The recursive read of ``prefix`` a :class:`KeyCover` watches its key through."""
    return Request("GET", kv_path(prefix), (("recurse", ""), *params))


def kv_path(key: str) -> str:
    """The request path of a (validated) key, percent-encoded with its "/" kept."""
    return "/v1/kv/" + quote(key, safe="/:@")


def decode_kv_entry(raw: object, response: Response | None = None) -> KVEntry:
    """A KVEntry from Consul's JSON (``Value`` base64 -> bytes, null -> ``b""``).

    ``raw`` is left unchanged; the entry is a new dict.
    """
    if not isinstance(raw, dict):
        raise _not_an_entry(raw, response)
    return decode_kv_entries([dict(raw)], response)[0]


def decode_kv_entries(raw: object, response: Response | None = None) -> list[KVEntry]:
    """KVEntries from a JSON array just parsed for this purpose (``null`` -> ``[]``).

    Note: the entry dicts of ``raw`` are completed in place and returned, not copied: a large
    prefix is 10,000s of entries per answer, and the parsed JSON has no other owner.
    """
    if not isinstance(raw, list):
        if raw is None:
            return []
        raise _error(f"expected a JSON array, got {type(raw).__name__}", response)
    # One loop, no call per entry but the base64 one: this runs for every key of a prefix on
    # every change of any of them.
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("Key"), str):
            raise _not_an_entry(entry, response)
        entry["Value"] = b64decode(entry.get("Value"), "Value", response)
        # Consul always sends Flags and LockIndex; membership tests cost less than setdefault.
        if "Flags" not in entry:
            entry["Flags"] = 0
        if "LockIndex" not in entry:
            entry["LockIndex"] = 0
        if "Session" in entry and not entry["Session"]:
            del entry["Session"]
    return cast(list[KVEntry], raw)


def _not_an_entry(raw: object, response: Response | None) -> DecodeError:
    return _error(f"expected a KV entry object, got {raw!r:.80}", response)


def _error(message: str, response: Response | None) -> DecodeError:
    if response is None:
        return DecodeError(message)
    return DecodeError(message, method=response.method, url=response.url, body=response.body)


class _WireEntryBase(TypedDict):
    Key: str


class _WireEntry(_WireEntryBase, total=False):
    """A KV entry as Consul sends it; msgspec decodes ``Value``'s base64 while parsing."""

    Value: bytes | None
    Flags: int
    LockIndex: int
    Session: str
    CreateIndex: int
    ModifyIndex: int
    Namespace: str
    Partition: str


_ENTRIES = msgspec.json.Decoder(list[_WireEntry] | None)


def _decode_entries(response: Response) -> list[KVEntry]:
    """The typed fast path of :func:`decode_kv_entries` for a whole answer.

    One msgspec pass parses the JSON, checks each entry's shape and decodes every base64 value
    (about a third of ``json.loads`` plus per-value base64 on a 10,000-key prefix); the loop
    below only fills what Consul may leave out. ``tests/endpoints/test_kv_decode.py`` checks it
    against :func:`decode_kv_entries` on generated answers.
    """
    if response.status == 404:
        return []
    entries = decode_typed(_ENTRIES, response)
    if entries is None:
        return []
    for entry in entries:
        if entry.get("Value") is None:
            entry["Value"] = b""
        if "Flags" not in entry:
            entry["Flags"] = 0
        if "LockIndex" not in entry:
            entry["LockIndex"] = 0
        if "Session" in entry and not entry["Session"]:
            del entry["Session"]
    return cast(list[KVEntry], entries)


def _decode_one(response: Response) -> KVEntry | None:
    entries = _decode_entries(response)
    return entries[0] if entries else None


def _decode_keys(response: Response) -> list[str]:
    if response.status == 404:
        return []
    keys = expect_list(decode_json(response), response)
    if not all(isinstance(k, str) for k in keys):
        raise DecodeError(
            "expected a JSON array of key strings",
            method=response.method,
            url=response.url,
            body=response.body,
        )
    return cast(list[str], keys)


def _decode_raw(response: Response) -> bytes | None:
    return None if response.status == 404 else response.body


def _parse_cas(value: object, parameter: str = "cas") -> int:
    """A cas index: an int >= 0 (0 = "only if absent") or an entry with ``ModifyIndex``."""
    if isinstance(value, Mapping) and "ModifyIndex" in value:
        value = value["ModifyIndex"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(
            parameter, f"expected an int >= 0 or a KV entry with ModifyIndex, got {value!r}"
        )
    return check_uint(value, parameter)


class KV(Endpoint):
    """``/v1/kv/``: reads return Queries, writes return Consul's true/false."""

    def _read(
        self,
        key: str,
        extra: list[tuple[str, str]],
        dc: object,
        consistency: object,
    ) -> Request:
        return Request("GET", kv_path(key), tuple(extra + common_params(dc, consistency)))

    def _cover(self, key: str, dc: object, consistency: object) -> KeyCover:
        """How the engine may watch ``key`` through a recursive read of a prefix."""
        return KeyCover(key, tuple(common_params(dc, consistency)), _prefix_read)

    def get(
        self,
        key: str,
        *,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[KVEntry | None]:
        """The entry at ``key``, or ``None`` when it does not exist."""
        request = self._read(check_key(key), [], dc, consistency)
        return self._query(
            request,
            _decode_one,
            watch=watch,
            ok_statuses=_OK_OR_MISSING,
            identity=_identity.KV_ENTRY,
            cover=self._cover(key, dc, consistency),
        )

    def raw(
        self,
        key: str,
        *,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[bytes | None]:
        """The raw value bytes at ``key`` (``?raw``), or ``None`` when it does not exist."""
        request = self._read(check_key(key), [("raw", "")], dc, consistency)
        cover = self._cover(key, dc, consistency)
        return self._query(
            request, _decode_raw, watch=watch, ok_statuses=_OK_OR_MISSING, cover=cover
        )

    def items(
        self,
        prefix: str = "",
        *,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[list[KVEntry]]:
        """Every entry whose key starts with ``prefix`` (a plain string prefix), sorted by key."""
        key = check_key(prefix, "prefix", allow_empty=True)
        request = self._read(key, [("recurse", "")], dc, consistency)
        return self._query(
            request,
            _decode_entries,
            watch=watch,
            ok_statuses=_OK_OR_MISSING,
            identity=_identity.KV_ENTRIES,
        )

    def keys(
        self,
        prefix: str = "",
        *,
        separator: str | None = None,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[list[str]]:
        """The keys under ``prefix``; with ``separator``, cut after its first occurrence."""
        key = check_key(prefix, "prefix", allow_empty=True)
        extra = [("keys", "")]
        if separator is not None:
            if not isinstance(separator, str) or not separator:
                raise InvalidArgument("separator", f"expected a non-empty str, got {separator!r}")
            extra.append(("separator", check_text(separator, "separator")))
        request = self._read(key, extra, dc, consistency)
        return self._query(
            request,
            _decode_keys,
            watch=watch,
            ok_statuses=_OK_OR_MISSING,
            identity=_identity.STRINGS,
        )

    async def put(
        self,
        key: str,
        value: Payload = b"",
        *,
        flags: int | None = None,
        cas: int | Mapping[str, Any] | None = None,
        acquire: ObjectID | None = None,
        release: ObjectID | None = None,
        dc: str | None = None,
    ) -> bool:
        """Write ``value`` at ``key``; ``False`` when a ``cas``/``acquire``/``release`` fails.

        At most one of ``cas`` (an index, or an entry whose ModifyIndex is used), ``acquire``
        and ``release`` (a session ID or ``{"ID": ...}``) may be given.
        """
        key = check_key(key)
        body = parse_payload(value, "value")
        params: list[tuple[str, str]] = []
        if flags is not None:
            params.append(("flags", str(check_uint(flags, "flags"))))
        chosen = [
            n
            for n, v in (("cas", cas), ("acquire", acquire), ("release", release))
            if v is not None
        ]
        if len(chosen) > 1:
            raise InvalidArgument(chosen[1], f"cannot be combined with {chosen[0]!r}")
        if cas is not None:
            params.append(("cas", str(_parse_cas(cas))))
        if acquire is not None:
            params.append(("acquire", parse_id(acquire, "acquire")))
        if release is not None:
            params.append(("release", parse_id(release, "release")))
        params += common_params(dc)
        request = Request("PUT", kv_path(key), tuple(params), body=body)
        return await self._write(request, decode_bool)

    set = put

    async def cas(
        self,
        key: str,
        value: Payload,
        *,
        index: int | Mapping[str, Any],
        flags: int | None = None,
        dc: str | None = None,
    ) -> bool:
        """Write only if ``key``'s ModifyIndex is ``index`` (0: only if the key is absent)."""
        return await self.put(key, value, flags=flags, cas=_parse_cas(index, "index"), dc=dc)

    async def acquire(
        self,
        key: str,
        session: ObjectID,
        value: Payload = b"",
        *,
        flags: int | None = None,
        dc: str | None = None,
    ) -> bool:
        """Take the lock on ``key`` for ``session`` (writing ``value``); ``False`` if held."""
        sid = parse_id(session, "session")
        return await self.put(key, value, flags=flags, acquire=sid, dc=dc)

    async def release(
        self,
        key: str,
        session: ObjectID,
        value: Payload = b"",
        *,
        flags: int | None = None,
        dc: str | None = None,
    ) -> bool:
        """Release ``session``'s lock on ``key``.

        Note: like any PUT, a release writes ``value`` (empty by default) to the key; pass the
        current value to keep it.
        """
        sid = parse_id(session, "session")
        return await self.put(key, value, flags=flags, release=sid, dc=dc)

    async def delete(
        self,
        key: str,
        *,
        recurse: bool = False,
        cas: int | Mapping[str, Any] | None = None,
        dc: str | None = None,
    ) -> bool:
        """Delete ``key`` (every key with that prefix when ``recurse``); ``False`` on cas failure.

        Note: ``recurse=True`` with an empty key deletes the whole store, as in Consul.
        """
        recurse = check_bool(recurse, "recurse")
        key = check_key(key, allow_empty=recurse)
        params: list[tuple[str, str]] = []
        if recurse:
            if cas is not None:
                raise InvalidArgument("cas", "cannot be combined with recurse=True")
            params.append(("recurse", ""))
        elif cas is not None:
            params.append(("cas", str(_parse_cas(cas))))
        params += common_params(dc)
        return await self._write(Request("DELETE", kv_path(key), tuple(params)), decode_bool)
