"""Route registry, request dispatch and connection accounting of the dev agent.

An endpoint module exposes ``register(router: Router) -> None`` and calls
:meth:`Router.add` for each Consul route with its allowed methods. A path ending in ``/`` is a
prefix route (as in Consul's mux: ``/v1/kv/`` serves every key), anything else is exact.
Dispatch reproduces Consul's wrapper: 404 texts for unknown paths, 405 with
``Allow: OPTIONS,<methods>``, ``OPTIONS`` 200, ACL checks, plain-text errors, and the
``X-Consul-Default-Acl-Policy`` header on every wrapped answer.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote, urlencode

from aiohttp import web
from aiohttp.web import ContentCoding

from ..state.agent_log import AgentLog
from .wire import AgentConfig, ApiError, Call, empty_response, error_response

if TYPE_CHECKING:
    from ..faults import Faults
    from ..state.store import StateStore

__all__ = [
    "RAFT_WRITES",
    "Dispatcher",
    "Handler",
    "LoggedRequest",
    "Route",
    "Router",
    "TrackedProtocol",
]

Handler = Callable[[Call], Awaitable[web.StreamResponse]]

_NOT_V1 = (
    "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n"
)
_NOT_FOUND = "Invalid URL path: not a recognized HTTP API endpoint\n"
#: How many routed paths the dispatcher remembers before it starts over.
_ROUTED_CACHE_SIZE = 4096
#: Consul wraps endpoints in a gzip handler that compresses bodies from this size on.
GZIP_MIN_SIZE = 1400
#: Routes whose writes go through Raft in Consul (exact paths, or prefixes ending in ``/``);
#: their non-GET requests wait ``AgentConfig.commit_delay`` before they apply.
RAFT_WRITES = (
    "/v1/kv/",
    "/v1/txn",
    "/v1/catalog/register",
    "/v1/catalog/deregister",
    "/v1/session/create",
    "/v1/session/destroy/",
    "/v1/operator/autopilot/configuration",
)
TOO_MANY_CONNS = (
    b"HTTP/1.1 429 Too Many Requests\r\n"
    b"Content-Type: text/plain\r\n"
    b"Connection: close\r\n\r\n"
    b"Your IP is issuing too many concurrent connections, please rate limit your calls\n"
)


@dataclass(frozen=True)
class Route:
    """One registered endpoint: path (prefix when it ends in ``/``), methods, handler."""

    path: str
    methods: tuple[str, ...]
    handler: Handler
    #: Whether ``acl_default_policy="deny"`` requires a valid token for this route.
    acl: bool = True
    #: The ``Allow`` header of its 405 and OPTIONS answers (derived from ``methods``).
    allow: str = field(init=False, repr=False, compare=False)
    #: Whether its non-GET requests go through the pretend Raft commit (``RAFT_WRITES``).
    raft: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow", ",".join(("OPTIONS", *self.methods)))
        object.__setattr__(self, "raft", self.path in RAFT_WRITES)


class LoggedRequest(NamedTuple):
    """One request the agent saw (``agent.requests``); the query never includes ``token``."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]


class Router:
    """Consul's HTTP mux: exact routes plus longest-prefix routes."""

    def __init__(self) -> None:
        self._exact: dict[str, Route] = {}
        self._prefixes: dict[str, Route] = {}

    def add(
        self, path: str, methods: tuple[str, ...], handler: Handler, *, acl: bool = True
    ) -> None:
        """Register ``handler`` for ``path`` answering ``methods`` (e.g. ``("GET", "PUT")``)."""
        route = Route(path, tuple(methods), handler, acl)
        if path.endswith("/"):
            self._prefixes[path] = route
        else:
            self._exact[path] = route

    def is_exact(self, path: str) -> bool:
        """Whether a pattern equals ``path`` (Go's exactMatch: exact or the subtree's root)."""
        return path in self._exact or path in self._prefixes

    def is_prefix(self, path: str) -> bool:
        """Whether ``path`` is registered as a subtree (prefix) pattern."""
        return path in self._prefixes

    def match(self, path: str) -> tuple[Route, str] | None:
        """The route serving ``path`` and the part of the path after the route's prefix."""
        route = self._exact.get(path)
        if route is not None:
            return route, ""
        # Every prefix pattern ends in "/", so the longest one that ``path`` starts with ends
        # at one of the path's slashes: try them from the last one back.
        prefixes = self._prefixes
        cut = path.rfind("/")
        while cut >= 0:
            route = prefixes.get(path[: cut + 1])
            if route is not None:
                return route, path[cut + 1 :]
            cut = path.rfind("/", 0, cut)
        return None


def clean_path(path: str) -> str:
    """Go's ``net/http`` cleanPath: ``path.Clean`` that keeps a trailing slash."""
    if not path:
        return "/"
    if not path.startswith("/"):
        path = "/" + path
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def request_token(request: web.BaseRequest) -> str | None:
    """The request's ACL token: ``?token=`` first, then X-Consul-Token, then Bearer."""
    token = request.query.get("token", "")
    if token:
        return token
    token = request.headers.get("X-Consul-Token", "")
    if token:
        return token
    auth = request.headers.get("Authorization", "")
    if not auth:
        return None
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class Dispatcher:
    """The one aiohttp handler behind every path: logging, faults, routing, ACLs, errors."""

    def __init__(
        self, router: Router, store: StateStore, config: AgentConfig, faults: Faults
    ) -> None:
        self.router = router
        self.store = store
        self.config = config
        self.faults = faults
        self.requests: list[LoggedRequest] = []
        self._agent_log: AgentLog | None = None
        #: path -> (route, suffix) for paths that passed the mux's checks (see ``_dispatch``)
        self._routed: dict[str, tuple[Route, str]] = {}
        #: Writes waiting for their pretend Raft commit right now.
        self.committing = 0
        self._committing_events: list[asyncio.Event] = []

    async def _commit_delay(self) -> None:
        """Consul answers a write once Raft has committed it: never at once."""
        self._committing_changed(+1)
        try:
            await asyncio.sleep(self.config.commit_delay)
        finally:
            self._committing_changed(-1)

    def _committing_changed(self, delta: int) -> None:
        self.committing += delta
        events, self._committing_events = self._committing_events, []
        for event in events:
            event.set()

    async def wait_committing(self, count: int = 1) -> None:
        """Return once at least ``count`` writes wait for their commit (no polling)."""
        while self.committing < count:
            event = asyncio.Event()
            self._committing_events.append(event)
            await event.wait()

    def valid_token(self, token: str | None) -> bool:
        """Whether ``token`` is the management token or one added to the agent."""
        if token is None:
            return False
        return token == self.config.management_token or token in self.config.tokens

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        params = request.query
        query = tuple((k, v) for k, v in params.items() if k != "token") if params else ()
        self.requests.append(LoggedRequest(request.method, request.path, query))
        token = request_token(request)
        faults = self.faults
        if faults.armed:
            injected = await faults.before(request, token)
            if injected is not None:
                return injected
        started = asyncio.get_running_loop().time()
        response = await self._dispatch(request, token)
        log = self._agent_log
        if log is None:
            log = self._agent_log = self.store.get(AgentLog)
        if log.monitors:
            self._log(log, request, query, response, started)
        if faults.armed:
            return await faults.after(request, response)
        return response

    def _log(
        self,
        log: AgentLog,
        request: web.BaseRequest,
        query: tuple[tuple[str, str], ...],
        response: web.StreamResponse,
        started: float,
    ) -> None:
        """Log the request for ``/v1/agent/monitor`` (its ``token`` is never logged)."""
        url = request.path + ("?" + urlencode(query) if query else "")
        if "token" in request.query:
            # Consul's wrap replaces every token value in the logged URL.
            url += ("&" if query else "?") + "token=<hidden>"
        peer = request.transport.get_extra_info("peername") if request.transport else None
        origin = f"{peer[0]}:{peer[1]}" if peer else ""
        error = None
        # Consul logs "Request error" for handler errors, which it writes as plain text.
        if (
            response.status >= 400
            and isinstance(response, web.Response)
            and response.content_type == "text/plain"
        ):
            error = response.text
        latency = asyncio.get_running_loop().time() - started
        log.http_request(request.method, url, origin, response.status, latency, error)

    async def _dispatch(self, request: web.BaseRequest, token: str | None) -> web.StreamResponse:
        path = request.path
        found = self._routed.get(path)
        if found is None:
            if not path.isprintable():
                # go-cleanhttp PrintablePathCheckHandler wraps Consul's whole mux: bare 400.
                return web.Response(status=400)
            redirect = self._mux_redirect(request)
            if redirect is not None:
                return redirect
            if not path.startswith("/v1/"):
                return error_response(ApiError(404, _NOT_V1))
            found = self.router.match(path)
            if found is None:
                return error_response(ApiError(404, _NOT_FOUND))
            # Every check above depends on the path alone: remember where it goes.
            if len(self._routed) >= _ROUTED_CACHE_SIZE:
                self._routed.clear()
            self._routed[path] = found
        route, suffix = found
        policy = {"X-Consul-Default-Acl-Policy": self.config.acl_default_policy}
        if self.config.translate_wan_addrs:
            # agent/http.go wrap: setTranslateAddr before anything else.
            policy["X-Consul-Translate-Addresses"] = "true"
        method = request.method
        if method == "OPTIONS":
            return empty_response(200, {"Allow": route.allow, **policy})
        if method not in route.methods:
            return error_response(
                ApiError(405, f"method {method} not allowed", {"Allow": route.allow, **policy})
            )
        call = Call(request, self.store, self.config, suffix, token)
        try:
            self._check_acl(route, token)
            if self.config.commit_delay > 0 and method != "GET" and route.raft:
                await self._commit_delay()
            response = await route.handler(call)
        except ApiError as exc:
            response = error_response(exc)
        policy["Vary"] = "Accept-Encoding"
        response.headers.update(policy)
        if isinstance(response, web.Response):
            body = response.body
            if (
                body is not None
                and len(body if isinstance(body, bytes) else bytes(body))  # type: ignore[arg-type]
                >= GZIP_MIN_SIZE
                and "gzip" in request.headers.get("Accept-Encoding", "")
            ):
                response.enable_compression(ContentCoding.gzip)
        return response

    def _mux_redirect(self, request: web.BaseRequest) -> web.Response | None:
        """Go's ServeMux: 301 to the cleaned path, or to ``path/`` for a subtree pattern."""
        path = request.path
        # Only an empty, "." or ".." segment changes a rooted path: most paths have none.
        if path.startswith("/") and "//" not in path and "/." not in path:
            cleaned = path
        else:
            cleaned = clean_path(path)
        if (
            not cleaned.endswith("/")
            and not self.router.is_exact(cleaned)
            and self.router.is_prefix(cleaned + "/")
        ):
            target = cleaned + "/"
        elif cleaned != path:
            target = cleaned
        else:
            return None
        location = quote(target, safe="/:@!$&'()*+,;=-._~")
        if request.query_string:
            location += "?" + request.query_string
        headers = {"Location": location}
        body = b""
        if request.method in ("GET", "HEAD"):
            headers["Content-Type"] = "text/html; charset=utf-8"
        if request.method == "GET":
            body = f'<a href="{html.escape(location)}">Moved Permanently</a>.\n\n'.encode()
        return web.Response(status=301, body=body, headers=headers)

    def _check_acl(self, route: Route, token: str | None) -> None:
        if not route.acl or self.config.acl_default_policy != "deny":
            return
        if self.valid_token(token):
            return
        if token is not None and token != "anonymous":
            raise ApiError(403, "ACL not found")
        raise ApiError(403, "Permission denied")


class TrackedProtocol(asyncio.Protocol):
    """Wraps aiohttp's per-connection protocol to count connections and cap them per IP."""

    def __init__(self, owner: ConnectionTracker, inner: asyncio.Protocol) -> None:
        self._owner = owner
        self._inner = inner
        self._ip: str | None = None
        self._passed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._ip = str(peer[0]) if peer else ""
        if not self._owner.opened(self._ip):
            # Consul's connlimit answers with raw bytes and closes: no HTTP parsing at all.
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(TOO_MANY_CONNS)
            transport.close()
            return
        self._passed = True
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._passed:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._passed:
            return self._inner.eof_received()
        return None

    def pause_writing(self) -> None:
        if self._passed:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._passed:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._passed:
            self._owner.closed(self._ip or "")
            self._inner.connection_lost(exc)


class ConnectionTracker:
    """Counts open connections (total, peak, per client IP) and enforces the per-IP cap."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.active = 0
        self.peak = 0
        self.per_ip: dict[str, int] = {}

    def opened(self, ip: str) -> bool:
        """Account a new connection; False (and not counted) when over the per-IP limit."""
        limit = self.config.http_max_conns_per_client
        count = self.per_ip.get(ip, 0)
        if limit > 0 and count >= limit:
            return False
        self.per_ip[ip] = count + 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        return True

    def closed(self, ip: str) -> None:
        """Account a closed connection."""
        self.active -= 1
        left = self.per_ip.get(ip, 1) - 1
        if left > 0:
            self.per_ip[ip] = left
        else:
            self.per_ip.pop(ip, None)
