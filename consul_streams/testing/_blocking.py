"""Consul's common read-parameter parsing and the server side of blocking queries.

:func:`parse_query` follows ``HTTPHandlers.parse`` (section 1.1 of consul-api.md): dc, token,
filter, consistency, Cache-Control, then wait/index; the first failure answers with the exact
400 text of section 1.2. :func:`blocking_query` is the loop of section 1.4: run the query,
return at once for index 0 or a newer result, else wait for a write to a watched topic (no
polling) or the timeout, and re-run.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._rules import JITTER_FRACTION, parse_go_duration
from .server.wire import ApiError, Call, meta_headers
from .state.store import WatchSet

__all__ = [
    "QueryOptions",
    "QueryResult",
    "blocking_query",
    "go_quote",
    "parse_query",
    "parse_uint",
    "query_timeout",
]

_UINT64_MAX = 2**64 - 1
_DIGITS = re.compile(r"[0-9]+")


def parse_uint(text: str) -> int | None:
    """Go's ``strconv.ParseUint(s, 10, 64)``: digits only, no sign; None when invalid."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= _UINT64_MAX else None


def go_quote(text: str) -> str:
    """Go's ``%q`` for ordinary strings (double quotes, backslash escapes)."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def parse_go_uint_or_500(text: str) -> int:
    """Parse a uint64 query value; errors are Go's raw ``strconv`` text with status 500."""
    value = parse_uint(text)
    if value is not None:
        return value
    if _DIGITS.fullmatch(text):
        raise ApiError(500, f"strconv.ParseUint: parsing {go_quote(text)}: value out of range")
    raise ApiError(500, f"strconv.ParseUint: parsing {go_quote(text)}: invalid syntax")


@dataclass(slots=True)
class QueryOptions:
    """The parsed common parameters of one request."""

    datacenter: str | None = None
    token: str | None = None
    filter: str | None = None
    allow_stale: bool = False
    require_consistent: bool = False
    max_stale: float = 0.0
    use_cache: bool = False
    max_age: int | None = None
    must_revalidate: bool = False
    stale_if_error: int | None = None
    wait: float | None = None
    index: int = 0

    @property
    def consistency(self) -> str:
        """``X-Consul-Effective-Consistency`` for this request."""
        if self.allow_stale:
            return "stale"
        if self.require_consistent:
            return "consistent"
        return "leader"


def _parse_consistency(call: Call, opts: QueryOptions) -> None:
    query = call.request.query
    if "stale" in query:
        opts.allow_stale = True
    max_stale = query.get("max_stale", "")
    if max_stale:
        try:
            opts.max_stale = parse_go_duration(max_stale)
        except ValueError:
            raise ApiError(400, f"Invalid max_stale value {go_quote(max_stale)}") from None
        if opts.max_stale > 0:
            opts.allow_stale = True
    if "consistent" in query:
        opts.require_consistent = True
    if "leader" in query:
        opts.allow_stale = False
        opts.require_consistent = False
    if "cached" in query:
        opts.use_cache = True
    if opts.allow_stale and opts.require_consistent:
        raise ApiError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
    if opts.use_cache and opts.require_consistent:
        raise ApiError(400, "Cannot specify ?cached with ?consistent, conflicting semantics.")


def _parse_cache_control(call: Call, opts: QueryOptions) -> None:
    header = call.request.headers.get("Cache-Control", "")
    if not header:
        return
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if name == "must-revalidate":
            opts.must_revalidate = True
        if name not in ("max-age", "stale-if-error"):
            continue
        number = parse_uint(value.strip())
        if number is None:
            raise ApiError(400, "Invalid Cache-Control header.")
        if name == "max-age":
            opts.max_age = number
        else:
            opts.stale_if_error = number


def parse_query(call: Call, *, consistency: bool = True) -> QueryOptions:
    """Parse dc, token, filter, consistency, Cache-Control, wait and index, in Consul's order.

    ``consistency=False`` skips the consistency step (``/v1/event/list`` does not parse it).
    Raises :class:`ApiError` with Consul's exact status and text on the first bad value.
    """
    query = call.request.query
    opts = QueryOptions(token=call.token)
    if not query:  # nothing below can fail or set anything but the Cache-Control options
        _parse_cache_control(call, opts)
        return opts
    opts.datacenter = query.get("dc") or None
    opts.filter = query.get("filter") or None
    if consistency:
        _parse_consistency(call, opts)
    _parse_cache_control(call, opts)
    wait = query.get("wait", "")
    if wait:
        try:
            opts.wait = parse_go_duration(wait)
        except ValueError:
            raise ApiError(400, "Invalid wait time") from None
    index = query.get("index", "")
    if index:
        parsed = parse_uint(index)
        if parsed is None:
            raise ApiError(400, "Invalid index")
        opts.index = parsed
    # CE rejects enterprise metadata (parseEntMeta); the message names the feature.
    for name, feature in (("ns", "Namespaces"), ("partition", "Partitions")):
        if query.get(name):
            raise ApiError(
                400,
                f'Bad request: Invalid query parameter: "{name}" - '
                f"{feature} are a Consul Enterprise feature",
            )
    if opts.datacenter is not None and opts.datacenter != call.config.datacenter:
        raise ApiError(500, "No path to datacenter")
    return opts


def query_timeout(
    wait: float | None,
    *,
    default: float = 300.0,
    maximum: float = 600.0,
    jitter: bool = True,
    rng: Callable[[], float] = random.random,
) -> float:
    """How long a blocking query may hold: Consul's ``RPCQueryTimeout`` plus jitter.

    ``wait <= 0`` or absent becomes ``default``; above ``maximum`` it is clamped; then up to
    ``timeout / 16`` of random jitter is added (``rng`` returns a float in [0, 1)).
    """
    timeout = default if wait is None or wait <= 0 else min(wait, maximum)
    if jitter:
        timeout += rng() * (timeout / JITTER_FRACTION)
    return timeout


@dataclass
class QueryResult:
    """What a query function returns: the index, the body and how to answer."""

    index: int
    body: Any = None
    status: int = 200
    #: The object does not exist (Consul's ErrNotFound): keep blocking until it appears.
    not_found: bool = False
    headers: dict[str, str] = field(default_factory=dict)


async def blocking_query(
    call: Call,
    opts: QueryOptions,
    run: Callable[[WatchSet], QueryResult],
) -> QueryResult:
    """Run ``run`` Consul-style: once for index 0, else until newer, woken, or timed out.

    ``run`` registers the topics it read on the WatchSet it is given. The returned result's
    ``headers`` carry the query-meta headers (index never 0).
    """
    store = call.store
    ws = WatchSet(store)
    result = run(ws)
    if opts.index > 0 and result.index <= opts.index:
        loop = asyncio.get_running_loop()
        config = call.config
        deadline = loop.time() + query_timeout(
            opts.wait,
            default=config.default_query_time,
            maximum=config.max_query_time,
            jitter=config.jitter,
        )
        min_index = opts.index
        seen_not_found = result.not_found
        while True:
            woken = await ws.wait(deadline - loop.time())
            abandoned = ws.abandoned
            ws = WatchSet(store)
            # Re-run even on timeout or abandon: Consul answers with the *current* result.
            result = run(ws)
            if not woken or abandoned:
                break
            if result.not_found:
                # A repeated "not found" must not return just because another write moved
                # the table index: block until this object exists (ErrNotFound).
                if seen_not_found:
                    min_index = max(min_index, result.index)
                seen_not_found = True
            if result.index > min_index:
                break
    result.headers = {**meta_headers(result.index), **result.headers}
    return result
