"""DevAgent: an in-process, Consul-compatible HTTP agent for tests (``consul agent -dev``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from types import TracebackType

from aiohttp import web

from ..exceptions import InvalidArgument
from ._settings import is_ip_address, is_loopback, resolve_settings
from .faults import Faults
from .routes import register_routes
from .server.dispatch import ConnectionTracker, Dispatcher, LoggedRequest, Router, TrackedProtocol
from .server.wire import AgentConfig
from .state.catalog import CatalogState
from .state.store import StateStore

__all__ = ["DevAgent", "is_ip_address", "is_loopback"]


def _write_pid(path: str) -> None:
    """Write this process's id to ``path`` (Consul's ``-pid-file``)."""
    with open(path, "w", encoding="ascii") as fh:
        fh.write(str(os.getpid()))


class DevAgent:
    """A Consul-compatible dev agent serving HTTP, on loopback unless told otherwise.

    ``async with DevAgent() as agent:`` starts it on ``127.0.0.1`` and a free port
    (``agent.url``); ``restart()`` keeps the port. ``jitter=False`` makes blocking waits exact,
    ``time_scale`` speeds up session TTLs and lock delays (0.01 = 100x faster),
    ``acl_default_policy="deny"`` with ``management_token`` turns on ACL enforcement.

    The settings of ``consul agent -dev`` are keywords under Consul's config names
    (``docs/dev-agent.md``): ``node_name`` (default: the host name), ``datacenter``,
    ``client_addr`` (= ``host``), ``http_port`` (= ``port``; default a free port),
    ``bind_addr`` (the node's address), ``node_meta``, ``enable_script_checks``,
    ``acl_enabled``, ``acl_default_policy``, ``management_token``
    (``acl.tokens.initial_management``), ``data_dir`` (accepted; state stays in memory as in
    dev mode), ``pid_file`` (written on start, removed on stop), ``log_level`` and
    ``config_file`` / ``config_dir`` (JSON; keywords win over them). ``commit_delay`` (seconds
    or a Go duration, default 10 ms, 0 allowed) is how long a Raft-backed write (KV, txn,
    catalog register/deregister, session create/destroy) waits before it applies and answers.
    """

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        node_name: str | None = None,
        datacenter: str | None = None,
        jitter: bool = True,
        acl_default_policy: str | None = None,
        management_token: str | None = None,
        http_max_conns_per_client: int = 200,
        time_scale: float = 1.0,
        default_query_time: float = 300.0,
        max_query_time: float = 600.0,
        client_addr: str | None = None,
        http_port: int | None = None,
        bind_addr: str | None = None,
        node_meta: Mapping[str, str] | None = None,
        enable_script_checks: bool | None = None,
        translate_wan_addrs: bool | None = None,
        acl_enabled: bool | None = None,
        data_dir: str | None = None,
        pid_file: str | None = None,
        log_level: str | None = None,
        commit_delay: float | str | None = None,
        config_file: str | Sequence[str] | None = None,
        config_dir: str | Sequence[str] | None = None,
    ) -> None:
        if host is not None and client_addr is not None:
            raise InvalidArgument("host", "give host or client_addr (the same setting), not both")
        if port is not None and http_port is not None:
            raise InvalidArgument("port", "give port or http_port (the same setting), not both")
        if host is not None and not is_ip_address(host):
            raise InvalidArgument(
                "host",
                f"expected an IP address: '127.0.0.1' (default), '::1', or, to listen beyond "
                f"this machine, e.g. '0.0.0.0'; got {host!r}",
            )
        if port is not None and (
            not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535
        ):
            raise InvalidArgument("port", "must be an int in 0..65535 (0 = any free port)")
        if acl_default_policy is not None and acl_default_policy not in ("allow", "deny"):
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
        settings = resolve_settings(
            config_file=config_file,
            config_dir=config_dir,
            node_name=node_name,
            datacenter=datacenter,
            client_addr=host if host is not None else client_addr,
            http_port=port if port is not None else http_port,
            bind_addr=bind_addr,
            node_meta=node_meta,
            enable_script_checks=enable_script_checks,
            translate_wan_addrs=translate_wan_addrs,
            acl_enabled=acl_enabled,
            acl_default_policy=acl_default_policy,
            management_token=management_token,
            data_dir=data_dir,
            pid_file=pid_file,
            log_level=log_level,
            commit_delay=commit_delay,
        )
        self.settings = settings
        self.host = settings.client_addr
        self.port = settings.http_port if settings.http_port is not None else 0
        self.config = AgentConfig(
            node_name=settings.node_name,
            datacenter=settings.datacenter,
            jitter=jitter,
            acl_default_policy=settings.enforced_policy,
            management_token=settings.management_token,
            default_query_time=float(default_query_time),
            max_query_time=float(max_query_time),
            http_max_conns_per_client=http_max_conns_per_client,
            time_scale=float(time_scale),
            enable_script_checks=settings.enable_script_checks,
            translate_wan_addrs=settings.translate_wan_addrs,
            commit_delay=settings.commit_delay,
        )
        self.store = StateStore(
            node_name=settings.node_name,
            datacenter=settings.datacenter,
            node_address=settings.bind_addr,
            node_meta=settings.node_meta,
            time_scale=float(time_scale),
        )
        self.faults = Faults(self.store.shift_indexes)
        self.router = Router()
        register_routes(self.router)
        self._dispatcher = Dispatcher(self.router, self.store, self.config, self.faults)
        self._tracker = ConnectionTracker(self.config)
        self._server: asyncio.Server | None = None
        self._web: web.Server | None = None
        self._seeded = False
        # PUT /v1/agent/leave stops the agent (Consul's ShutdownAgent); the task is ours.
        self._leaving: asyncio.Task[None] | None = None
        self._left = asyncio.Event()
        self.store.listen("leave", self._on_leave)

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

    @property
    def committing_writes(self) -> int:
        """How many writes wait for their commit delay right now."""
        return self._dispatcher.committing

    async def wait_committing(self, count: int = 1) -> None:
        """Return once ``count`` writes wait for their commit (use with asyncio.wait_for)."""
        await self._dispatcher.wait_committing(count)

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
        if self.settings.pid_file:
            _write_pid(self.settings.pid_file)

    def _on_leave(self) -> None:
        if self._leaving is None or self._leaving.done():
            self._left.clear()
            self._leaving = asyncio.get_running_loop().create_task(self._leave())

    async def _leave(self) -> None:
        await self.stop()
        self._left.set()

    async def wait_left(self) -> None:
        """Return once a ``PUT /v1/agent/leave`` has shut the agent down (no polling)."""
        await self._left.wait()

    def _seed(self) -> None:
        self._seeded = True
        self.store.get(CatalogState)

    async def stop(self) -> None:
        """Stop serving; open connections and blocked requests are cut."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self.settings.pid_file:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.settings.pid_file)
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
        if self._leaving is not None:
            await self._leaving
        await self.stop()
        self.store.cancel_timers()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<DevAgent {self.address} {state}>"
