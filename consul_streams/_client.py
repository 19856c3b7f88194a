"""The :class:`Consul` client: configuration, lifecycle and the endpoint attributes."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp

from consul_streams._budget import DEFAULT_MIN_HOLD, check_min_hold, slots_for
from consul_streams._config import PathArg, resolve_settings
from consul_streams._query import Transport
from consul_streams._transport import COMPRESSIONS, AiohttpTransport, Compression
from consul_streams._watch_engine import WatchEngine
from consul_streams.endpoints import KV, Agent, Catalog, Events, Health, Sessions, Status, Txn
from consul_streams.exceptions import InvalidArgument
from consul_streams.typing import Consistency, Duration, parse_duration

if TYPE_CHECKING:
    from consul_streams.recipes.lock import Lock

__all__ = ["Consul"]


class Consul:
    """An asyncio client for one Consul agent.

    Arguments left as ``None`` are read from Consul's ``CONSUL_*`` environment variables
    (``CONSUL_HTTP_ADDR``, ``CONSUL_HTTP_TOKEN``, ``CONSUL_HTTP_TOKEN_FILE``,
    ``CONSUL_HTTP_SSL``, ``CONSUL_HTTP_SSL_VERIFY``, ``CONSUL_CACERT``, ``CONSUL_CAPATH``,
    ``CONSUL_CLIENT_CERT``, ``CONSUL_CLIENT_KEY``, ``CONSUL_TLS_SERVER_NAME``), as Consul's Go
    client does, then from defaults (``127.0.0.1:8500``, no token, TLS verified). Explicit
    arguments always win. Pass ``environ={}`` to ignore the environment, or use
    :meth:`from_env` to read another mapping.

    ``session``: an ``aiohttp.ClientSession`` of yours, used as is and never closed (a unix
    socket address then needs your session's connector to reach it). Without one, the client
    creates its own on the first request and closes it in :meth:`aclose`; use
    ``async with Consul() as consul:``. ``timeout`` is the default read timeout (blocking
    reads derive theirs from ``wait``); ``max_connections`` caps concurrent requests.
    ``compression``: ``"auto"`` (default) asks a local agent (loopback, unix socket) for plain
    bodies, since inflating costs more CPU than loopback bytes, and a remote one for gzip;
    ``"gzip"`` or ``"identity"`` force one.

    ``transport``: send requests through this :class:`~consul_streams.Transport` instead of
    aiohttp (``consul_streams.testing.MockTransport(handler)`` in unit tests); the client
    closes it in :meth:`aclose`.

    ``min_hold``: how long a long-poll holds its slot before a watch waiting for one may take
    it (when there are more watches than long-poll slots; a Duration, default 1s).

    :meth:`aclose` also closes the client's watch engine (:attr:`engine`): every open watch of
    this client's Queries ends with :class:`~consul_streams.exceptions.ClientClosed`.

    Endpoints: ``kv``, ``catalog``, ``health``, ``agent``, ``event``, ``session``,
    ``status``, ``txn``.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | None = None,
        token_file: PathArg | None = None,
        datacenter: str | None = None,
        consistency: Consistency | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: Duration = 30.0,
        max_connections: int = 64,
        verify: bool | None = None,
        ca_file: PathArg | None = None,
        ca_path: PathArg | None = None,
        cert: PathArg | None = None,
        key: PathArg | None = None,
        tls_server_name: str | None = None,
        compression: Compression = "auto",
        environ: Mapping[str, str] | None = None,
        min_hold: Duration = DEFAULT_MIN_HOLD,
        transport: Transport | None = None,
    ) -> None:
        if transport is not None:
            if not (callable(getattr(transport, "send", None)) and hasattr(transport, "identity")):
                raise InvalidArgument(
                    "transport",
                    "expected a Transport (send(), identity), e.g. "
                    f"consul_streams.testing.MockTransport; got {type(transport).__name__}",
                )
            if session is not None:
                raise InvalidArgument("session", "cannot be given together with transport=")
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise InvalidArgument(
                "session",
                f"expected an aiohttp.ClientSession or None; got {type(session).__name__}",
            )
        if compression not in COMPRESSIONS:
            raise InvalidArgument(
                "compression", f"expected 'auto', 'gzip' or 'identity'; got {compression!r}"
            )
        settings = resolve_settings(
            address=address,
            token=token,
            token_file=token_file,
            datacenter=datacenter,
            consistency=consistency,
            timeout=timeout,
            max_connections=max_connections,
            verify=verify,
            ca_file=ca_file,
            ca_path=ca_path,
            cert=cert,
            key=key,
            tls_server_name=tls_server_name,
            environ=os.environ if environ is None else environ,
        )
        self._min_hold = check_min_hold(parse_duration(min_hold, "min_hold"))
        self._engine: WatchEngine | None = None
        self.address: str = settings.address.url
        self.datacenter: str | None = settings.datacenter
        self.consistency: Consistency = settings.consistency
        self.timeout: float = settings.timeout
        self.transport: Transport = transport or AiohttpTransport(
            settings.address,
            token=settings.token,
            datacenter=settings.datacenter,
            consistency=settings.consistency,
            session=session,
            timeout=settings.timeout,
            max_connections=settings.max_connections,
            ssl_context=settings.ssl_context,
            tls_server_name=settings.tls_server_name,
            compression=compression,
        )
        self.kv = KV(self.transport, self)
        self.catalog = Catalog(self.transport, self)
        self.health = Health(self.transport, self)
        self.agent = Agent(self.transport, self)
        self.event = Events(self.transport, self)
        self.session = Sessions(self.transport, self)
        self.status = Status(self.transport, self)
        self.txn = Txn(self.transport, self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Consul:
        """A client configured from ``environ`` (default ``os.environ``); ``kwargs`` win."""
        return cls(environ=os.environ if environ is None else environ, **kwargs)

    def lock(self, key: str, **options: Any) -> Lock:
        """A session-backed lock on ``key``: ``async with client.lock("service/x/leader"):``.

        See :class:`consul_streams.recipes.Lock` for the options (ttl, lock_delay, value, ...).
        """
        # Imported here: recipes sit above the client in the layering.
        from consul_streams.recipes.lock import Lock

        return Lock(self, key, **options)

    @property
    def engine(self) -> WatchEngine:
        """The watch engine every watch of this client's Queries runs in (created on first use).

        It owns the shared polls, the long-poll budget and their tasks; recipes that wait for a
        change (locks, semaphores) wait through ``watch()`` and so through it.
        """
        engine = self._engine
        if engine is None:
            # A transport= without a connection cap (a MockTransport may have none) gets no
            # long-poll budget.
            cap = getattr(self.transport, "max_connections", None)
            engine = self._engine = WatchEngine(
                slots=None if cap is None else slots_for(cap),
                min_hold=self._min_hold,
                name=f"watch engine of {self!r}",
            )
        return engine

    @property
    def closed(self) -> bool:
        return bool(getattr(self.transport, "closed", False))

    async def aclose(self) -> None:
        """End this client's watches (:class:`ClientClosed`), then close the HTTP session it
        created (a caller's session stays open), or the ``transport=`` given."""
        try:
            await self.engine.aclose()
        finally:
            aclose = getattr(self.transport, "aclose", None)
            if aclose is not None:
                await aclose()

    async def __aenter__(self) -> Consul:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        token = "set" if getattr(self.transport, "has_token", False) else "none"
        return f"<Consul {self.address} dc={self.datacenter!r} token={token}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # Warn, never close: closing needs the loop, which may be gone or another one.
        transport = self.__dict__.get("transport")
        if transport is not None and getattr(transport, "owns_open_session", False):
            _warn(
                f"unclosed {self!r}: use 'async with Consul(...)' or 'await consul.aclose()'",
                ResourceWarning,
                source=self,
            )
