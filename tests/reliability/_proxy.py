"""A minimal loopback TCP proxy that can black-hole or trickle a connection's bytes.

The dev agent's faults act on whole answers; these two act below HTTP, as a dead peer or a
congested link does: ``blackhole`` swallows bytes both ways (the peer never answers), and
``trickle`` lets the agent's answers through one byte every ``interval`` seconds (a read
timeout alone never fires). ``heal()`` passes bytes through again. A stand-in until the
per-connection fault proxy of ``consul_streams.testing`` lands.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

__all__ = ["FaultProxy"]

Mode = Literal["pass", "blackhole", "trickle"]


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target`` (``host:port``), misbehaving on demand."""

    def __init__(self, target: str, *, interval: float = 0.05) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))
        self.interval = interval
        self.mode: Mode = "pass"
        #: bytes swallowed by the black hole and bytes sent one by one
        self.dropped = 0
        self.trickled = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def heal(self) -> None:
        self.mode = "pass"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        loop = asyncio.get_running_loop()
        pipes = [
            loop.create_task(self._pipe(reader, up_writer, slow=False)),
            loop.create_task(self._pipe(up_reader, writer, slow=True)),
        ]
        self._tasks.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            self._tasks.difference_update(pipes)
            for w in (writer, up_writer):
                w.close()
                self._writers.discard(w)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, slow: bool
    ) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                if self.mode == "blackhole":
                    self.dropped += len(chunk)
                    continue
                if slow and self.mode == "trickle":
                    for i in range(len(chunk)):
                        if self.mode != "trickle":
                            writer.write(chunk[i:])
                            break
                        writer.write(chunk[i : i + 1])
                        self.trickled += 1
                        await writer.drain()
                        # The trickle's pace: this is the fault being modelled, not a wait.
                        await asyncio.sleep(self.interval)
                else:
                    writer.write(chunk)
                await writer.drain()
