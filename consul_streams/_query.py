"""Query: a lazy, awaitable, re-issuable read.

Endpoint methods build a :class:`Query` (a :class:`Request` plus a decoder) and return it
without doing I/O. Awaiting it performs one request; :meth:`Query.fetch` performs one request
with an explicit index (or content hash) and wait, which is what ``watch()`` does forever.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Generator, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from consul_streams._identity import Identity
from consul_streams._rules import format_go_duration, read_timeout_for_wait
from consul_streams.typing import Meta

__all__ = ["BlockingMode", "KeyCover", "Query", "Request", "Response", "Transport"]

T = TypeVar("T")
#: A watch sends the same wait on every round: format it once.
_wait_text = functools.lru_cache(maxsize=64)(format_go_duration)
T_co = TypeVar("T_co", covariant=True)


class BlockingMode(enum.Enum):
    """How a read blocks, which decides what ``watch()`` threads between requests."""

    #: ``?index=`` with ``X-Consul-Index`` (KV, catalog, health, session).
    INDEX = "index"
    #: ``?hash=`` with ``X-Consul-ContentHash`` (agent-local endpoints).
    HASH = "hash"
    #: ``/v1/event/list``: a UUID-derived index that is not monotonic (equality blocking).
    EVENT = "event"
    #: Not blocking at all (agent/self, status, writes).
    NONE = "none"


# The modes as module names: a class attribute costs about five times a global to read on
# Python 3.11, and :meth:`Query.build` runs for every round of a watch (#13).
_INDEX, _HASH, _EVENT = BlockingMode.INDEX, BlockingMode.HASH, BlockingMode.EVENT


@dataclass(frozen=True)
class Request:
    """One HTTP request to the agent, before index/hash/wait/consistency/token are added.

    ``path`` starts with ``/v1/`` and is already percent-encoded where needed. ``params`` keeps
    order and repeats (``tag`` may appear twice); a value of ``""`` is a presence flag.
    """

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    #: The request this one extends (:meth:`with_params`): a transport may encode the shared
    #: part once and re-use it, so a watch's rounds only encode their index and wait.
    origin: Request | None = field(default=None, compare=False, repr=False)

    def with_params(self, *extra: tuple[str, str]) -> Request:
        """This request with ``extra`` parameters appended (its ``origin`` kept)."""
        # Every field is written straight into the new instance's dict: the generated
        # __init__ of a frozen dataclass sets each one through object.__setattr__, which
        # costs twice as much, and a watch builds one Request per round (#13).
        # tests/test_request_encoding.py checks the result equals the __init__-built one.
        request = object.__new__(Request)
        fields = request.__dict__
        fields["method"] = self.method
        fields["path"] = self.path
        fields["params"] = self.params + extra
        fields["body"] = self.body
        fields["headers"] = self.headers
        fields["origin"] = self.origin or self
        return request


@dataclass(frozen=True)
class Response:
    """What the transport hands back: status, headers (case-insensitive mapping), raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    method: str = ""
    url: str = ""  # redacted; for error messages only

    @property
    def meta(self) -> Meta:
        return Meta.from_headers(self.headers)


def new_response(
    status: int, headers: Mapping[str, str], body: bytes, method: str, url: str
) -> Response:
    """``Response(status, headers, body, method, url)``, built as :meth:`Request.with_params`
    builds its request (fields written directly): the transport makes one per round (#13)."""
    response = object.__new__(Response)
    fields = response.__dict__
    fields["status"] = status
    fields["headers"] = headers
    fields["body"] = body
    fields["method"] = method
    fields["url"] = url
    return response


class Transport(Protocol):
    """The one thing that speaks HTTP (implemented in ``_transport.py`` over aiohttp)."""

    async def send(
        self,
        request: Request,
        *,
        timeout: float | None,
        ok_statuses: frozenset[int] = frozenset({200}),
    ) -> Response:
        """Send ``request`` and return the response if its status is in ``ok_statuses``.

        Any other status raises the mapped :class:`~consul_streams.exceptions.HTTPError`;
        transport failures raise :class:`~consul_streams.exceptions.TransportError`. The
        transport adds the token header, the default datacenter and consistency.
        """
        ...

    @property
    def identity(self) -> Hashable:
        """Hashable identity of (address, token, dc): queries that share it may share a poll."""
        ...


@dataclass(frozen=True, slots=True)
class KeyCover:
    """Declared by a single-key KV read: the watch engine may watch the key through one
    recursive read of a prefix shared with other such keys (``_cover.py``).

    ``group``: the read's other parameters (datacenter, consistency); reads with equal groups
    may share a prefix read, built by ``prefix_request(prefix, group)`` (a plain function, so
    that a Query carries no closure: thousands of subscribers build one each).
    """

    key: str
    group: tuple[tuple[str, str], ...]
    prefix_request: Callable[[str, tuple[tuple[str, str], ...]], Request] = field(compare=False)


# Slots: every watch() of a shared query builds one; thousands of subscribers, thousands of them.
@dataclass(frozen=True, eq=False, slots=True)
class Query(Generic[T]):
    """A read that has not been performed yet.

    Awaiting a Query performs one request and returns ``(value, meta)``. The same Query can be
    re-issued any number of times with :meth:`fetch`, each time with a new index or hash.

    Note: a Query holds no state between requests; ``watch()`` owns the index.
    """

    transport: Transport
    request: Request
    decode: Callable[[Response], T]
    mode: BlockingMode = BlockingMode.INDEX
    #: statuses that are values, not errors (KV reads: 404 means "missing").
    ok_statuses: frozenset[int] = frozenset({200})
    #: the index/hash and wait given with the seed's ``watch=`` argument, used when awaited.
    index: int = 0
    hash: str | None = None
    wait: float | None = None
    #: seconds added to the derived read timeout; None: the transport's default timeout.
    timeout_slack: float = 5.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: how the value splits into named items (what ``ops.diff``/``ops.match`` key by)
    identity: Identity | None = None
    #: the watch engine of the client that built this Query (its shared polls and long-poll
    #: budget); None for a Query built on a bare transport: each watch of it polls on its own.
    #: Typed ``object``: the engine sits above Query, which must not import it even for types
    #: (tests/test_imports.py); ``watch()`` checks it is a ``WatchEngine``.
    engine: object | None = field(default=None, repr=False)
    #: set by single-key KV reads: lets the engine watch the key through a prefix read
    cover: KeyCover | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        """Identity for sharing one long-poll between consumers: same agent, token, request."""
        r = self.request
        return (self.transport.identity, r.method, r.path, r.params, r.headers, self.mode)

    def __await__(self) -> Generator[Any, None, tuple[T, Meta]]:
        return self.fetch(index=self.index, hash=self.hash, wait=self.wait).__await__()

    def timeout_for(self, wait: float | None, blocking: bool) -> float | None:
        """The read timeout for one request: derived from ``wait`` when it blocks."""
        if not blocking:
            return None
        return read_timeout_for_wait(wait if wait is not None else 0.0, slack=self.timeout_slack)

    def build(
        self, *, index: int = 0, hash: str | None = None, wait: float | None = None
    ) -> Request:
        """The request for one round: adds ``index``/``hash`` and ``wait`` by the mode's rules."""
        mode = self.mode
        extra: tuple[tuple[str, str], ...]
        if index > 0 and (mode is _INDEX or mode is _EVENT):
            extra = (("index", str(index)),)
        elif hash and mode is _HASH:
            extra = (("hash", hash),)
        else:
            return self.request
        if wait is not None:
            extra += (("wait", _wait_text(wait)),)
        return self.request.with_params(*extra)

    async def fetch(
        self,
        *,
        index: int = 0,
        hash: str | None = None,
        wait: float | None = None,
        timeout: float | None = None,
    ) -> tuple[T, Meta]:
        """Perform one request; blocks when ``index > 0`` (or ``hash`` is set) for ``wait``.

        ``timeout``: the request's total deadline (default: derived from ``wait`` when it
        blocks, else the transport's default).
        """
        request = self.build(index=index, hash=hash, wait=wait)
        blocking = request is not self.request
        response = await self.transport.send(
            request,
            timeout=timeout if timeout is not None else self.timeout_for(wait, blocking),
            ok_statuses=self.ok_statuses,
        )
        return self.decode(response), response.meta

    def replace(self, **changes: Any) -> Query[T]:
        """A copy with some fields changed (e.g. a new seed ``index``/``wait``)."""
        return replace(self, **changes)

    def __repr__(self) -> str:
        params = "&".join(f"{k}={v}" if v else k for k, v in self.request.params)
        q = f"?{params}" if params else ""
        return f"<Query {self.request.method} {self.request.path}{q} mode={self.mode.value}>"
