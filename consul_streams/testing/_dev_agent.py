"""DevAgent: an in-process, Consul-compatible HTTP agent for tests (``consul agent -dev``)."""

from __future__ import annotations

import asyncio
import ipaddress
from types import TracebackType

from aiohttp import web

from ..exceptions import InvalidArgument
from .faults import Faults
from .routes import register_routes
from .server.dispatch import ConnectionTracker, Dispatcher, LoggedRequest, Router, TrackedProtocol
from .server.wire import AgentConfig
from .state.catalog import CatalogState
from .state.store import StateStore

__all__ = ["DevAgent", "is_ip_address", "is_loopback"]


def is_ip_address(host: object) -> bool:
    """Whether ``host`` is an IP address literal (or ``"localhost"``) the agent can bind."""
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the agent reachable from this machine only."""
    return host == "localhost" or (is_ip_address(host) and ipaddress.ip_address(host).is_loopback)


class DevAgent:
    """A Consul-compatible dev agent serving HTTP, on loopback unless told otherwise.

    ``async with DevAgent() as agent:`` starts it on ``127.0.0.1`` and a free port
    (``agent.url``); ``restart()`` keeps the port. ``jitter=False`` makes blocking waits exact,
    ``time_scale`` speeds up session TTLs and lock delays (0.01 = 100x faster),
    ``acl_default_policy="deny"`` with ``management_token`` turns on ACL enforcement.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        node_name: str = "dev",
        datacenter: str = "dc1",
        jitter: bool = True,
        acl_default_policy: str = "allow",
        management_token: str | None = None,
        http_max_conns_per_client: int = 200,
        time_scale: float = 1.0,
        default_query_time: float = 300.0,
        max_query_time: float = 600.0,
    ) -> None:
        if not is_ip_address(host):
            raise InvalidArgument(
                "host",
                f"expected an IP address: '127.0.0.1' (default), '::1', or, to listen beyond "
                f"this machine, e.g. '0.0.0.0'; got {host!r}",
            )
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise InvalidArgument("port", "must be an int in 0..65535 (0 = any free port)")
        if acl_default_policy not in ("allow", "deny"):
            raise InvalidArgument("acl_default_policy", "must be 'allow' or 'deny'")
        if not isinstance(time_scale, (int, float)) or time_scale <= 0:
            raise InvalidArgument("time_scale", "must be a number > 0 (1.0 = real time)")
        if not isinstance(http_max_conns_per_client, int) or http_max_conns_per_client < 0:
            raise InvalidArgument("http_max_conns_per_client", "must be an int >= 0 (0 = no cap)")
        for name, value in (
            ("default_query_time", default_query_time),
            ("max_query_time", max_query_time),
        ):
            if not isinstance(value, (int, float)) or value <= 0:
                raise InvalidArgument(name, "must be a number of seconds > 0")
        self.host = host
        self.port = port
        self.config = AgentConfig(
            node_name=node_name,
            datacenter=datacenter,
            jitter=jitter,
            acl_default_policy=acl_default_policy,
            management_token=management_token,
            default_query_time=float(default_query_time),
            max_query_time=float(max_query_time),
            http_max_conns_per_client=http_max_conns_per_client,
            time_scale=float(time_scale),
        )
        self.store = StateStore(
            node_name=node_name, datacenter=datacenter, time_scale=float(time_scale)
        )
        self.faults = Faults(self.store.shift_indexes)
        self.router = Router()
        register_routes(self.router)
        self._dispatcher = Dispatcher(self.router, self.store, self.config, self.faults)
        self._tracker = ConnectionTracker(self.config)
        self._server: asyncio.Server | None = None
        self._web: web.Server | None = None
        self._seeded = False

    # -- identity ----------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` (``[::1]:port`` for IPv6), as CONSUL_HTTP_ADDR expects."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.address}"

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- observation -------------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request seen: ``(method, path, query)``; ``token`` is never recorded."""
        return self._dispatcher.requests

    @property
    def active_connections(self) -> int:
        return self._tracker.active

    @property
    def peak_connections(self) -> int:
        return self._tracker.peak

    @property
    def blocked_queries(self) -> int:
        """How many blocking queries are waiting right now."""
        return self.store.blocked

    async def wait_blocked(self, count: int = 1) -> None:
        """Return once ``count`` blocking queries are waiting (use with asyncio.wait_for)."""
        await self.store.wait_blocked(count)

    async def wait_unblocked(self, count: int = 0) -> None:
        """Return once at most ``count`` blocking queries are parked (all answered, by default)."""
        await self.store.wait_unblocked(count)

    def add_token(self, token: str) -> None:
        """Make ``token`` valid (besides the management token) when ACLs are on."""
        if not isinstance(token, str) or not token:
            raise InvalidArgument("token", "must be a non-empty string")
        self.config.tokens.add(token)

    def restore_snapshot(self, index_offset: int) -> None:
        """Pretend a snapshot was restored: keep data, move every index by ``index_offset``.

        ``index_offset`` must be negative (indexes go backwards); blocked queries wake.
        """
        if not isinstance(index_offset, int) or index_offset >= 0:
            raise InvalidArgument("index_offset", "must be a negative int, e.g. -100")
        self.store.shift_indexes(index_offset)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve (the first start binds ``port``; 0 picks a free port)."""
        if self._server is not None:
            return
        if not self._seeded:
            self._seed()
        loop = asyncio.get_running_loop()
        self._web = web.Server(self._dispatcher, handler_cancellation=True, access_log=None)
        web_server = self._web
        tracker = self._tracker

        def factory() -> asyncio.Protocol:
            return TrackedProtocol(tracker, web_server())

        self._server = await loop.create_server(factory, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])

    def _seed(self) -> None:
        self._seeded = True
        self.store.get(CatalogState)

    async def stop(self) -> None:
        """Stop serving; open connections and blocked requests are cut."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._web is not None:
            # Like a crashing agent: in-flight handlers (mostly parked blocking queries) are
            # cut at once rather than waited for; every restart in a test pays this.
            await self._web.shutdown(0.005)
            self._web = None
        await server.wait_closed()

    async def restart(self, *, keep_state: bool = True) -> None:
        """Stop and start again on the same port; ``keep_state=False`` starts empty."""
        await self.stop()
        if not keep_state:
            self.store.reset()
            self.config.tokens.clear()
        await self.start()

    async def __aenter__(self) -> DevAgent:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.faults.clear()
        await self.stop()
        self.store.cancel_timers()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<DevAgent {self.address} {state}>"
