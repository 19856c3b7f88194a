"""The only module that speaks aiohttp: URLs, TLS, timeouts, the concurrency cap, error mapping.

:class:`AiohttpTransport` implements the :class:`~consul_streams._query.Transport` protocol.
It adds what every request needs (the ``X-Consul-Token`` header, the default ``dc``, the
default consistency flag), sends it, and turns the answer into a
:class:`~consul_streams._query.Response` or one of the errors of
:mod:`consul_streams.exceptions`. No aiohttp exception escapes it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import ipaddress
import json
import logging
import ssl
import time
from collections.abc import Hashable
from typing import Any, Literal

import aiohttp
from yarl import URL

from consul_streams._address import Address
from consul_streams._query import Request, Response, new_response
from consul_streams.exceptions import (
    BadRequest,
    ClientClosed,
    Conflict,
    ConnectError,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    RateLimited,
    ReadTimeout,
    RequestTooLarge,
    ServerError,
    TransportError,
    redact_url,
)
from consul_streams.typing import Consistency

__all__ = ["AiohttpTransport", "Compression", "is_local", "map_status"]

#: ``Accept-Encoding`` policy: ``"auto"`` asks a local agent (loopback or unix socket) for
#: identity bodies and a remote one for gzip; ``"gzip"`` and ``"identity"`` force one.
Compression = Literal["auto", "gzip", "identity"]
COMPRESSIONS: tuple[Compression, ...] = ("auto", "gzip", "identity")

_log = logging.getLogger("consul_streams.transport")

#: Error bodies are kept in exceptions, cut to this many characters.
BODY_LIMIT = 1024
_STATUS_ERRORS: dict[int, type[HTTPError]] = {
    400: BadRequest,
    403: PermissionDenied,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: RequestTooLarge,
    429: RateLimited,
}
# aiohttp >= 3.10 tells connect timeouts apart; older ones raise ServerTimeoutError (read).
_CONNECT_TIMEOUT: tuple[type[BaseException], ...] = tuple(
    getattr(aiohttp, name) for name in ("ConnectionTimeoutError",) if hasattr(aiohttp, name)
)
#: go-bexpr's CreateFilter error, which Consul sends back as a 500.
_BAD_FILTER = "Failed to create boolean expression evaluator"
# A request carrying one of these already chose its consistency; the default is not added.
_CONSISTENCY_FLAGS = frozenset({"stale", "consistent", "leader"})
#: Parameters whose presence changes the defaults the transport adds.
_DEFAULT_PARAMS = _CONSISTENCY_FLAGS | {"dc"}
_ENCODED_CACHE_SIZE = 1024
_EMPTY_URL = URL("http://localhost/")


def _encode_query(params: tuple[tuple[str, str], ...]) -> str:
    """``params`` as a query string, encoded exactly as yarl's ``with_query`` encodes them."""
    # A plain loop, no generator: a watch's round runs this for its index and wait (#13).
    parts = []
    for name, value in params:
        if not (name.isalnum() and value.isalnum() and name.isascii() and value.isascii()):
            return _EMPTY_URL.with_query(params).raw_query_string
        parts.append(f"{name}={value}")  # index, wait, hash
    return "&".join(parts)


def _and(first: str, second: str) -> str:
    """Two encoded query strings as one (either may be empty)."""
    if first and second:
        return f"{first}&{second}"
    return first or second


def map_status(status: int, body: bytes, *, method: str, url: str, secret: str | None) -> HTTPError:
    """The exception for an unexpected status; ``body`` is decoded, cut to ~1 KiB, scrubbed.

    A 409 from ``/v1/txn`` carries ``{"Errors": [...]}``; those are parsed into
    :attr:`Conflict.errors` (an unparsable body just leaves them empty).
    """
    text = body.decode("utf-8", errors="replace")
    if secret:
        # Consul does not echo tokens today; this keeps it that way if a proxy ever does.
        text = text.replace(secret, "REDACTED")
    if len(text) > BODY_LIMIT:
        text = text[:BODY_LIMIT] + "...(truncated)"
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else HTTPError)
    if status >= 500 and text.startswith(_BAD_FILTER):
        # Consul answers a filter it cannot parse with the RPC error as a 500; retrying
        # cannot heal it, so it is the bad parameter it is (the error policy, #11).
        cls = BadRequest
    if cls is Conflict:
        return Conflict(status, text, method=method, url=url, errors=_txn_errors(body))
    return cls(status, text, method=method, url=url)


def is_local(address: Address) -> bool:
    """True for a unix socket or a loopback host (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if address.unix_path is not None or address.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.host.strip("[]")).is_loopback
    except ValueError:
        return False


def accept_encoding(compression: Compression, address: Address) -> str:
    """The ``Accept-Encoding`` header for ``compression`` towards ``address``.

    Inflating gzip costs more CPU than the JSON it carries (13 ms for a 10,000-key prefix of
    256-byte values, against 7 ms to decode it): worth paying over a network, not over loopback,
    where bytes are nearly free. See docs/benchmarks.md, "Compression".
    """
    if compression == "auto":
        compression = "identity" if is_local(address) else "gzip"
    return "identity" if compression == "identity" else "gzip"


def _txn_errors(body: bytes) -> list[dict[str, Any]]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = document.get("Errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return []
    return [e for e in errors if isinstance(e, dict)]


class _Slots:
    """The cap on concurrent requests: a FIFO semaphore whose free case costs no call.

    ``asyncio.Semaphore.acquire`` is a coroutine and its ``locked()`` test builds a generator:
    a few thousand instructions per request when a slot is free (#13). Here the caller takes a
    free slot inline (``free > 0 and not waiters``, then ``free -= 1``) and awaits :meth:`wait`
    only when none is; :meth:`release` hands the slot straight to the oldest waiter, so
    ``free`` never counts a slot a waiter is owed and the cap stays hard.
    """

    __slots__ = ("free", "waiters")

    def __init__(self, slots: int) -> None:
        self.free = slots
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def wait(self) -> None:
        """Wait in line for a slot (handed over by :meth:`release`)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed a slot as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # already popped by a release
                    self.waiters.remove(future)
            raise

    def release(self) -> None:
        """Give a slot back: to the oldest live waiter, else to the free count."""
        waiters = self.waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.free += 1


class AiohttpTransport:
    """Sends :class:`Request` objects to one Consul agent over aiohttp.

    Owns its ``aiohttp.ClientSession`` only when it created it (lazily, on the first request,
    inside the running loop); a caller's session is used as is and never closed.
    ``max_connections`` caps concurrent requests with a FIFO semaphore (and, for an owned session,
    the connector's pool), so a caller's session is capped too.

    Timeouts: ``aiohttp.ClientTimeout(total=t, sock_connect=...)``: ``t`` is the request's
    whole deadline, so a peer that trickles bytes cannot hold a request past it. No
    ``sock_read``: it could never fire before ``total`` (it restarts with every byte), and
    aiohttp re-arms a timer for it on every chunk received. ``t`` is the request's ``timeout`` (a
    blocking read's is ``wait * 17/16`` plus a connect allowance, see ``Query.timeout_for``) or
    the transport default (30 s), never aiohttp's 300 s, which equals Consul's default wait.

    Note: cancelling :meth:`send` at any point closes the half-read connection (it is not
    returned to the pool) and releases the concurrency slot.
    """

    def __init__(
        self,
        address: Address,
        *,
        token: str | None = None,
        datacenter: str | None = None,
        consistency: Consistency = "default",
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        max_connections: int = 64,
        ssl_context: ssl.SSLContext | None = None,
        tls_server_name: str | None = None,
        compression: Compression = "auto",
        http_auth: tuple[str, str] | None = None,
    ) -> None:
        self._address = address
        # Basic auth (CONSUL_HTTP_AUTH) as a ready header: never in a URL, repr or log line.
        self._auth_header = aiohttp.BasicAuth(*http_auth).encode() if http_auth else None
        self._base_url = address.base_url
        #: per-origin URL encodings and per-timeout ClientTimeouts, re-used by every round
        self._encoded: dict[Request, tuple[str, str, str, str]] = {}
        # The scheme and authority of every URL (a round's URL is built from its parts).
        base = URL(self._base_url, encoded=True)
        self._scheme, self._authority = base.scheme, base.raw_authority
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._accept_encoding = accept_encoding(compression, address)
        self._token = token or None
        self._datacenter = datacenter
        self._consistency = consistency
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self._max_connections = max_connections
        self._ssl = ssl_context
        self._slots = _Slots(max_connections)
        self._closed = False
        # Built once: a request without headers of its own sends exactly these.
        self._credentials: dict[str, str] = {}
        if self._token:
            self._credentials["X-Consul-Token"] = self._token
        if self._auth_header:
            self._credentials["Authorization"] = self._auth_header
        self._default_headers = {"Accept-Encoding": self._accept_encoding, **self._credentials}
        self._request_kwargs: dict[str, Any] = {}
        if ssl_context is not None:
            self._request_kwargs["ssl"] = ssl_context
        if tls_server_name is not None:
            self._request_kwargs["server_hostname"] = tls_server_name
        digest = hashlib.sha256(self._token.encode()).hexdigest()[:16] if self._token else None
        self._identity = (address.url, datacenter, digest)

    def __repr__(self) -> str:
        token = "set" if self._token else "none"
        return f"<AiohttpTransport {self._address.url} dc={self._datacenter!r} token={token}>"

    @property
    def identity(self) -> Hashable:
        """``(address, datacenter, sha256(token)[:16] or None)``: never the token itself."""
        return self._identity

    @property
    def max_connections(self) -> int:
        """The cap on concurrent requests; long-polls get a smaller budget (``_budget.py``)."""
        return self._max_connections

    @property
    def timeout(self) -> float:
        """The default deadline of a request that sets none (seconds)."""
        return self._timeout

    @property
    def has_token(self) -> bool:
        return self._token is not None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def owns_open_session(self) -> bool:
        """True when this transport created a session that is still open (``aclose`` owed)."""
        return self._owns_session and self._session is not None and not self._session.closed

    async def aclose(self) -> None:
        """Close the session if this transport created it; a caller's session stays open."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosed("the Consul client is closed")
        if self._session is None:
            # Created here, not in __init__: a ClientSession binds to the running loop.
            connector: aiohttp.BaseConnector
            if self._address.unix_path is not None:
                connector = aiohttp.UnixConnector(
                    path=self._address.unix_path, limit=self._max_connections
                )
            else:
                connector = aiohttp.TCPConnector(
                    limit=self._max_connections, limit_per_host=0, ssl=self._ssl or True
                )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._client_timeout(None)
            )
        return self._session

    def _client_timeout(self, timeout: float | None) -> aiohttp.ClientTimeout:
        deadline = self._timeout if timeout is None else timeout
        cached = self._timeouts.get(deadline)
        if cached is None:
            # ``total``: the request's whole deadline (#11), so a trickling peer cannot hold it.
            # No ``sock_read``: it restarts with every byte, so it cannot fire before ``total``,
            # and aiohttp re-arms a timer for it on every chunk (#13).
            cached = aiohttp.ClientTimeout(
                total=deadline,
                connect=None,
                sock_connect=min(deadline, self._timeout),
                sock_read=None,
            )
            if len(self._timeouts) >= _ENCODED_CACHE_SIZE:
                self._timeouts.clear()
            self._timeouts[deadline] = cached
        return cached

    def build_url(self, request: Request) -> URL:
        """The full URL of ``request`` with the default ``dc`` and consistency added.

        A request made by :meth:`Request.with_params` (a watch's round) re-uses its origin's
        encoding, cached here, and encodes only the parameters it adds.
        """
        return self._url(request)[1]

    def _url(self, request: Request) -> tuple[str, URL]:
        """:meth:`build_url` as ``(encoded text, URL)``.

        A watch's round builds its URL from its origin's parsed path (``URL.build``, about
        half the cost of parsing the whole text again); other requests parse their text.
        """
        origin = request.origin
        if origin is not None and origin.body is None:
            extra = request.params[len(origin.params) :]
            for name, _ in extra:
                if name in _DEFAULT_PARAMS:
                    break
            else:
                head, params, defaults, path = self._cached_parts(origin)
                added = _encode_query(extra)
                query = _and(_and(params, added), defaults)
                url = URL.build(
                    scheme=self._scheme,
                    authority=self._authority,
                    path=path,
                    query_string=query,
                    encoded=True,
                )
                return (f"{head}?{query}" if query else head), url
        head, params, defaults = self._parts(request)
        query = _and(params, defaults)
        text = f"{head}?{query}" if query else head
        return text, URL(text, encoded=True)

    def _parts(self, request: Request) -> tuple[str, str, str]:
        """``(base URL + path, encoded params, encoded default dc/consistency)``."""
        names = {name for name, _ in request.params}
        defaults: list[tuple[str, str]] = []
        if self._datacenter is not None and "dc" not in names:
            defaults.append(("dc", self._datacenter))
        if (
            request.method == "GET"
            and self._consistency != "default"
            and not names & _CONSISTENCY_FLAGS
        ):
            defaults.append((self._consistency, ""))
        return (
            self._base_url + request.path,
            _encode_query(request.params),
            _encode_query(tuple(defaults)),
        )

    def _cached_parts(self, origin: Request) -> tuple[str, str, str, str]:
        """``_parts(origin)`` and the head's path as yarl parses it, cached per origin."""
        parts = self._encoded.get(origin)
        if parts is None:
            head, params, defaults = self._parts(origin)
            # Only the path is kept (a whole parsed URL per watched query costs ~270 B), and
            # the request's own string when it is the same (it is, unless yarl splits it).
            path = URL(head, encoded=True).raw_path
            parts = (head, params, defaults, origin.path if path == origin.path else path)
            if len(self._encoded) >= _ENCODED_CACHE_SIZE:
                self._encoded.clear()
            self._encoded[origin] = parts
        return parts

    def _headers(self, request: Request) -> dict[str, str]:
        if not request.headers:
            return self._default_headers  # aiohttp copies what it is given
        headers = {"Accept-Encoding": self._accept_encoding, **dict(request.headers)}
        return {**headers, **self._credentials}

    async def send(
        self,
        request: Request,
        *,
        timeout: float | None,
        ok_statuses: frozenset[int] = frozenset({200}),
    ) -> Response:
        """Send ``request``; return the response when its status is in ``ok_statuses``.

        ``timeout=None`` uses the transport's default. Raises the mapped
        :class:`~consul_streams.exceptions.HTTPError` for any other status,
        :class:`ConnectError` / :class:`ReadTimeout` when no answer arrives.
        """
        session = self._get_session()
        text, url = self._url(request)
        shown = text
        if "oken=" in text.lower():  # only a caller's own ?token= parameter needs redacting
            shown = redact_url(text)
        method = request.method
        # Checked once: the answer's path (body in -> value delivered) carries no logging work.
        debug = _log.isEnabledFor(logging.DEBUG)
        # A free slot is taken inline, without a coroutine (see _Slots).
        slots = self._slots
        if slots.free > 0 and not slots.waiters:
            slots.free -= 1
        else:
            await slots.wait()
        try:
            if debug:
                started = time.monotonic()
                _log.debug("-> %s %s", method, shown)
            # The exchange is inline, not a helper coroutine: one frame fewer per parked
            # request (#13). aiohttp's errors become ours.
            timeouts = self._client_timeout(timeout)
            try:
                response = await session.request(
                    method,
                    url,
                    data=request.body,
                    headers=self._headers(request),
                    timeout=timeouts,
                    allow_redirects=False,
                    **self._request_kwargs,
                )
                try:
                    body = await response.read()
                except BaseException:
                    # A half-read answer must not go back to the pool: drop the connection.
                    response.close()
                    raise
                response.release()
            except _CONNECT_TIMEOUT as exc:
                error: TransportError = ConnectError(
                    "timed out connecting to the agent", method=method, url=shown
                )
                raise self._failed(error, debug) from exc
            except (TimeoutError, asyncio.TimeoutError) as exc:  # distinct classes before 3.11
                error = ReadTimeout(
                    f"no complete answer within the deadline ({timeouts.total:g}s)",
                    method=method,
                    url=shown,
                )
                raise self._failed(error, debug) from exc
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
                error = ConnectError(
                    f"connection failed: {_describe(exc, self._token)}", method=method, url=shown
                )
                raise self._failed(error, debug) from exc
            except aiohttp.ClientError as exc:
                error = TransportError(
                    f"HTTP failure: {_describe(exc, self._token)}", method=method, url=shown
                )
                raise self._failed(error, debug) from exc
            status = response.status
            if debug:
                elapsed = time.monotonic() - started
                _log.debug("<- %s %s %d (%.3fs)", method, shown, status, elapsed)
        finally:
            slots.release()
        if status not in ok_statuses:
            raise map_status(status, body, method=method, url=shown, secret=self._token)
        return new_response(status, response.headers, body, method, shown)

    @staticmethod
    def _failed(error: TransportError, debug: bool) -> TransportError:
        if debug:
            _log.debug("xx %s %s: %s", error.method, error.url, type(error).__name__)
        return error


def _describe(exc: BaseException, secret: str | None) -> str:
    try:
        text = redact_url(str(exc))[:200]
    except Exception:  # some aiohttp errors fail to format when built without a request
        text = ""
    if secret:
        text = text.replace(secret, "REDACTED")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
