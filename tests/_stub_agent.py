"""Test support for the core-client tests: a scripted HTTP server on 127.0.0.1.

aioresponses 0.7.9 cannot build responses with aiohttp >= 3.14 (``stream_writer``), so the
transport and client tests talk to a real server on a loopback port and spy on the keyword
arguments the transport gives ``aiohttp.ClientSession.request``.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path_qs: str  # raw, as sent
    headers: dict[str, str]
    body: bytes


class StubAgent:
    """Answers queued replies (default ``200 []``) or runs ``handler``; records requests.

    ``in_flight``/``peak`` count requests being handled, for the concurrency tests.
    """

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.replies: deque[tuple[int, bytes, dict[str, str]]] = deque()
        self.handler: Handler | None = None
        self.in_flight = 0
        self.peak = 0
        self._runner: web.AppRunner | None = None
        self.address = ""

    def reply(self, status: int = 200, body: bytes = b"[]", **headers: str) -> None:
        self.replies.append((status, body, {k.replace("_", "-"): v for k, v in headers.items()}))

    async def start(
        self, unix_path: str | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> StubAgent:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site: web.BaseSite
        if unix_path is not None:
            site = web.UnixSite(self._runner, unix_path)
            self.address = f"unix://{unix_path}"
        else:
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        if unix_path is None:
            self.address = f"127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.raw_path, dict(request.headers), body))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.handler is not None:
                return await self.handler(request)
            status, payload, headers = self.replies.popleft() if self.replies else (200, b"[]", {})
            return web.Response(status=status, body=payload, headers=headers)
        finally:
            self.in_flight -= 1


async def raw_server(script: bytes, *, close: bool = True) -> tuple[asyncio.Server, int]:
    """A TCP server on 127.0.0.1 that reads a request head, writes ``script``, then closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(script)
        await writer.drain()
        if close:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def spy_requests(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record ``(method, url, **kwargs)`` of every ``ClientSession.request`` call."""
    calls: list[dict[str, Any]] = []
    original = aiohttp.ClientSession.request

    def spy(self: aiohttp.ClientSession, method: str, url: Any, **kwargs: Any) -> Any:
        calls.append({"method": method, "url": str(url), **kwargs})
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "request", spy)
    return calls


def self_signed(directory: Path, name: str = "consul.test") -> tuple[Path, Path]:
    """A self-signed certificate and key for ``name`` made with the openssl CLI (or skip)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
        "-addext", f"subjectAltName=DNS:{name}",
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("the openssl command is needed to make a test certificate")
    return cert, key


def mutual_tls_server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context presenting ``cert`` and requiring a client certificate signed by it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(cafile=cert)
    context.verify_mode = ssl.CERT_REQUIRED
    return context
