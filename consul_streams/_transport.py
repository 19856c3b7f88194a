"""The only module that speaks aiohttp: URLs, TLS, timeouts, the concurrency cap, error mapping.

:class:`AiohttpTransport` implements the :class:`~consul_streams._query.Transport` protocol.
It adds what every request needs (the ``X-Consul-Token`` header, the default ``dc``, the
default consistency flag), sends it, and turns the answer into a
:class:`~consul_streams._query.Response` or one of the errors of
:mod:`consul_streams.exceptions`. No aiohttp exception escapes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import ssl
import time
from collections.abc import Hashable
from typing import Any

import aiohttp
from yarl import URL

from consul_streams._address import Address
from consul_streams._query import Request, Response
from consul_streams.exceptions import (
    BadRequest,
    Conflict,
    ConnectError,
    ConsulError,
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

__all__ = ["AiohttpTransport", "map_status"]

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
# A request carrying one of these already chose its consistency; the default is not added.
_CONSISTENCY_FLAGS = frozenset({"stale", "consistent", "leader"})


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
    if cls is Conflict:
        return Conflict(status, text, method=method, url=url, errors=_txn_errors(body))
    return cls(status, text, method=method, url=url)


def _txn_errors(body: bytes) -> list[dict[str, Any]]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = document.get("Errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return []
    return [e for e in errors if isinstance(e, dict)]


class AiohttpTransport:
    """Sends :class:`Request` objects to one Consul agent over aiohttp.

    Owns its ``aiohttp.ClientSession`` only when it created it (lazily, on the first request,
    inside the running loop); a caller's session is used as is and never closed.
    ``max_connections`` caps concurrent requests with a semaphore (and, for an owned session,
    the connector's pool), so a caller's session is capped too.

    Timeouts: ``aiohttp.ClientTimeout(total=None, sock_read=t, sock_connect=...)``. Consul
    sends nothing while it holds a blocking read, so the time between reads is exactly what
    must outlast ``wait * 17/16``; a ``total`` would also cut a large answer that is still
    streaming steadily. ``t`` is the request's ``timeout`` or the transport default (30 s),
    never aiohttp's 300 s, which equals Consul's default wait.

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
        http_auth: tuple[str, str] | None = None,
    ) -> None:
        self._address = address
        # Basic auth (CONSUL_HTTP_AUTH) as a ready header: never in a URL, repr or log line.
        self._auth_header = aiohttp.BasicAuth(*http_auth).encode() if http_auth else None
        self._token = token or None
        self._datacenter = datacenter
        self._consistency = consistency
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self._max_connections = max_connections
        self._ssl = ssl_context
        self._server_name = tls_server_name
        self._semaphore = asyncio.Semaphore(max_connections)
        self._closed = False
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
            raise ConsulError("the Consul client is closed")
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
        read = self._timeout if timeout is None else timeout
        return aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=min(read, self._timeout), sock_read=read
        )

    def build_url(self, request: Request) -> URL:
        """The full URL of ``request`` with the default ``dc`` and consistency added."""
        params = list(request.params)
        names = {name for name, _ in params}
        if self._datacenter is not None and "dc" not in names:
            params.append(("dc", self._datacenter))
        if (
            request.method == "GET"
            and self._consistency != "default"
            and not names & _CONSISTENCY_FLAGS
        ):
            params.append((self._consistency, ""))
        url = URL(self._address.base_url + request.path, encoded=True)
        return url.with_query(params) if params else url

    def _headers(self, request: Request) -> dict[str, str]:
        headers = dict(request.headers)
        if self._token:
            headers["X-Consul-Token"] = self._token
        if self._auth_header:
            headers["Authorization"] = self._auth_header
        return headers

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
        url = self.build_url(request)
        shown = redact_url(str(url))
        method = request.method
        kwargs: dict[str, Any] = {}
        if self._ssl is not None:
            kwargs["ssl"] = self._ssl
        if self._server_name is not None:
            kwargs["server_hostname"] = self._server_name
        async with self._semaphore:
            started = time.monotonic()
            _log.debug("-> %s %s", method, shown)
            try:
                status, headers, body = await self._exchange(
                    session, request, url, shown, self._client_timeout(timeout), kwargs
                )
            except TransportError as exc:
                _log.debug("xx %s %s: %s", method, shown, type(exc).__name__)
                raise
            _log.debug("<- %s %s %d (%.3fs)", method, shown, status, time.monotonic() - started)
        if status not in ok_statuses:
            raise map_status(status, body, method=method, url=shown, secret=self._token)
        return Response(status, headers, body, method, shown)

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        request: Request,
        url: URL,
        shown: str,
        timeout: aiohttp.ClientTimeout,
        kwargs: dict[str, Any],
    ) -> tuple[int, Any, bytes]:
        """One HTTP exchange: ``(status, headers, body)``; aiohttp errors become ours."""
        where = {"method": request.method, "url": shown}
        try:
            response = await session.request(
                request.method,
                url,
                data=request.body,
                headers=self._headers(request),
                timeout=timeout,
                allow_redirects=False,
                **kwargs,
            )
            try:
                body = await response.read()
            except BaseException:
                # A half-read answer must not go back to the pool: drop the connection.
                response.close()
                raise
            response.release()
            return response.status, response.headers, body
        except _CONNECT_TIMEOUT as exc:
            raise ConnectError("timed out connecting to the agent", **where) from exc
        except (TimeoutError, asyncio.TimeoutError) as exc:  # distinct classes before 3.11
            raise ReadTimeout("no answer within the read timeout", **where) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
            raise ConnectError(
                f"connection failed: {_describe(exc, self._token)}", **where
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"HTTP failure: {_describe(exc, self._token)}", **where) from exc


def _describe(exc: BaseException, secret: str | None) -> str:
    try:
        text = redact_url(str(exc))[:200]
    except Exception:  # some aiohttp errors fail to format when built without a request
        text = ""
    if secret:
        text = text.replace(secret, "REDACTED")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
