"""A TCP fault proxy on loopback: put it between a client and an agent to break the network.

``FaultProxy(upstream)`` listens on ``127.0.0.1`` and forwards every connection to
``upstream`` (``"host:port"``, e.g. ``agent.address``). Faults apply to the whole proxy (every
open and future connection) or to one :class:`ProxiedConnection`:

- :meth:`~FaultProxy.blackhole`: bytes stop flowing both ways, as in a network partition. They
  are held, not dropped (TCP retransmits), and flow again after :meth:`~FaultProxy.heal`;
  new connections are accepted but not forwarded until then.
- :meth:`~FaultProxy.delay`: every chunk is forwarded ``seconds`` late.
- :meth:`~FaultProxy.trickle`: bytes are forwarded at ``bytes_per_second``.
- :meth:`~FaultProxy.reset`: open connections are closed with a TCP reset (RST).

Example::

    async with DevAgent() as agent, FaultProxy(agent.address) as proxy:
        async with Consul(proxy.address) as client:
            proxy.blackhole()  # the client is partitioned from the agent
            ...
            proxy.heal()

Delays and trickle rates run on ``clock`` (an injectable :class:`~consul_streams._clock.Clock`;
default: the loop's time). The proxy only listens on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType

from .._clock import Clock, MonotonicClock
from ..exceptions import InvalidArgument

__all__ = ["FaultProxy", "ProxiedConnection"]

_CHUNK = 65536


def _parse_upstream(upstream: object) -> tuple[str, int]:
    accepted = '"host:port" (e.g. agent.address) or a (host, port) tuple'
    if isinstance(upstream, tuple) and len(upstream) == 2:
        host, port = upstream
    elif isinstance(upstream, str) and ":" in upstream:
        host, _, port_text = upstream.rpartition(":")
        host = host.strip("[]")
        try:
            port = int(port_text)
        except ValueError:
            raise InvalidArgument("upstream", f"expected {accepted}, got {upstream!r}") from None
    else:
        raise InvalidArgument("upstream", f"expected {accepted}, got {upstream!r}")
    if not isinstance(host, str) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidArgument("upstream", f"expected {accepted}, got {upstream!r}")
    return host, port


def _check_seconds(value: object, parameter: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidArgument(parameter, f"expected a number of seconds >= 0, got {value!r}")
    if positive and value == 0:
        raise InvalidArgument(parameter, f"expected a number > 0, got {value!r}")
    return float(value)


class _Mode:
    """What happens to bytes: forwarded, held (black hole), delayed or trickled."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.delay = 0.0
        self.rate: float | None = None

    def copy_from(self, other: _Mode) -> None:
        self.delay, self.rate = other.delay, other.rate
        if other.open.is_set():
            self.open.set()
        else:
            self.open.clear()


class ProxiedConnection:
    """One client connection through the proxy, with its own faults."""

    def __init__(
        self, proxy: FaultProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        self._proxy = proxy
        self._reader = reader
        self._writer = writer
        self._upstream: asyncio.StreamWriter | None = None
        self.mode = _Mode()
        self.mode.copy_from(proxy.mode)
        self.closed = asyncio.Event()
        #: bytes forwarded (client to agent, agent to client).
        self.sent = 0
        self.received = 0

    def blackhole(self) -> None:
        """Hold every byte of this connection (both ways) until :meth:`heal`."""
        self.mode.open.clear()

    def delay(self, seconds: float) -> None:
        """Forward each chunk ``seconds`` late (0: no delay)."""
        self.mode.delay = _check_seconds(seconds, "seconds")

    def trickle(self, bytes_per_second: float) -> None:
        """Forward at most ``bytes_per_second`` (one byte at a time)."""
        self.mode.rate = _check_seconds(bytes_per_second, "bytes_per_second", positive=True)

    def heal(self) -> None:
        """Forward normally again (held bytes flow)."""
        self.mode.delay, self.mode.rate = 0.0, None
        self.mode.open.set()

    def reset(self) -> None:
        """Close both sides with a TCP reset."""
        for writer in (self._writer, self._upstream):
            if writer is None:
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self.closed.set()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool
    ) -> None:
        clock = self._proxy.clock
        while True:
            chunk = await reader.read(_CHUNK)
            if not chunk:
                break
            await self.mode.open.wait()
            if self.mode.delay:
                await clock.sleep(self.mode.delay)
                await self.mode.open.wait()
            if self.mode.rate is None:
                writer.write(chunk)
            else:
                for i in range(len(chunk)):
                    writer.write(chunk[i : i + 1])
                    await writer.drain()
                    await clock.sleep(1.0 / (self.mode.rate or 1.0))
                    await self.mode.open.wait()
            await writer.drain()
            if upstream:
                self.sent += len(chunk)
            else:
                self.received += len(chunk)
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()

    @staticmethod
    async def _both(pumps: list[asyncio.Future[object]]) -> None:
        await asyncio.gather(*pumps)

    async def run(self) -> None:
        try:
            await self.mode.open.wait()
            host, port = self._proxy.upstream
            try:
                up_reader, up_writer = await asyncio.open_connection(host, port)
            except OSError:
                self.reset()
                return
            self._upstream = up_writer
            if self.closed.is_set():
                up_writer.transport.abort()
                return
            pumps: list[asyncio.Future[object]] = [
                asyncio.ensure_future(self._pump(self._reader, up_writer, True)),
                asyncio.ensure_future(self._pump(up_reader, self._writer, False)),
            ]
            both: asyncio.Future[object] = asyncio.ensure_future(self._both(pumps))
            closed: asyncio.Future[object] = asyncio.ensure_future(self.closed.wait())
            try:
                await asyncio.wait([both, closed], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (*pumps, both, closed):
                    task.cancel()
                await asyncio.gather(*pumps, both, closed, return_exceptions=True)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (self._writer, self._upstream):
                if writer is not None:
                    writer.transport.abort()
            self.closed.set()


class FaultProxy:
    """A TCP proxy on loopback to ``upstream`` with black-hole, delay, trickle and reset.

    ``async with FaultProxy(agent.address) as proxy:`` starts it on a free port
    (``proxy.address`` / ``proxy.url``). Proxy-wide faults apply to every open connection and
    to new ones; :attr:`connections` gives each open connection for per-connection faults.
    """

    def __init__(
        self,
        upstream: str | tuple[str, int],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.upstream = _parse_upstream(upstream)
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise InvalidArgument("host", f"expected a loopback address, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
            raise InvalidArgument("port", f"expected an int in 0..65535 (0: any), got {port!r}")
        if clock is not None and not isinstance(clock, Clock):
            raise InvalidArgument("clock", f"expected a Clock (now(), sleep()), got {clock!r}")
        self.host = host
        self.port = port
        self.clock: Clock = clock or MonotonicClock()
        self.mode = _Mode()
        self._server: asyncio.Server | None = None
        self._connections: set[ProxiedConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: connections accepted so far.
        self.accepted = 0

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def connections(self) -> list[ProxiedConnection]:
        """The connections open right now."""
        return [c for c in self._connections if not c.closed.is_set()]

    # -- faults ------------------------------------------------------------------------------

    def blackhole(self) -> None:
        """Partition: hold every byte on every connection, old and new, until :meth:`heal`."""
        self.mode.open.clear()
        for conn in self.connections:
            conn.blackhole()

    def delay(self, seconds: float) -> None:
        """Forward each chunk ``seconds`` late, on every connection."""
        self.mode.delay = _check_seconds(seconds, "seconds")
        for conn in self.connections:
            conn.delay(seconds)

    def trickle(self, bytes_per_second: float) -> None:
        """Forward at most ``bytes_per_second`` on every connection."""
        self.mode.rate = _check_seconds(bytes_per_second, "bytes_per_second", positive=True)
        for conn in self.connections:
            conn.trickle(bytes_per_second)

    def reset(self) -> None:
        """Close every open connection with a TCP reset (new ones are served normally)."""
        for conn in self.connections:
            conn.reset()

    def heal(self) -> None:
        """End every fault: held bytes flow, no delay or trickle."""
        self.mode.delay, self.mode.rate = 0.0, None
        self.mode.open.set()
        for conn in self.connections:
            conn.heal()

    # -- lifecycle ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        conn = ProxiedConnection(self, reader, writer)
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)

    async def start(self) -> None:
        if self._server is not None:
            return

        def spawn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.ensure_future(self._accept(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._server = await asyncio.start_server(spawn, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and cut every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self._connections):
            conn.reset()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        state = "running" if self._server is not None else "stopped"
        return f"<FaultProxy {self.address} -> {self.upstream[0]}:{self.upstream[1]} {state}>"
