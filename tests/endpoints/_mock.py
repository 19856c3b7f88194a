"""Test support: a canned-answer HTTP agent on 127.0.0.1 and the client under test.

aioresponses 0.7.9 cannot build responses with aiohttp >= 3.14 (``stream_writer``), so the
endpoint tests talk to a tiny real server on a loopback port instead; it records every request
exactly as it arrived (raw path, query pairs in order, headers, body).
"""

from __future__ import annotations

import importlib
import json
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from consul_streams.endpoints import KV, Agent, Catalog, Events, Health, Sessions, Status, Txn

TOKEN = "7f0c3e1a-secret-token"


@dataclass(frozen=True)
class Call:
    """One request as received: raw (percent-encoded) path, query pairs, headers, body."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]


class Wire:
    """A loopback HTTP server answering canned replies and recording the requests."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._replies: dict[tuple[str, str], deque[_Reply]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def reply(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        json_body: object = None,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue one answer for ``method`` on exactly ``path`` (raw form, any query)."""
        if json_body is not None:
            body = json.dumps(json_body)
        raw = body.encode() if isinstance(body, str) else body
        self._replies[(method, path)].append(_Reply(status, raw, dict(headers or {})))

    def only(self) -> Call:
        """The single request received (fails when there were none or several)."""
        assert len(self.calls) == 1, self.calls
        return self.calls[0]

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.rel_url.raw_path
        body = await request.read()
        self.calls.append(
            Call(
                request.method,
                path,
                list(request.rel_url.query.items()),
                dict(request.headers),
                body,
            )
        )
        queue = self._replies.get((request.method, path))
        if not queue:
            return web.Response(status=418, text=f"no canned reply for {request.method} {path}")
        answer = queue.popleft()
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


@dataclass
class Endpoints:
    """The endpoint attributes of a ``Consul`` client (or the same built by hand)."""

    kv: KV
    catalog: Catalog
    health: Health
    agent: Agent
    event: Events
    session: Sessions
    status: Status
    txn: Txn
    owner: Any


def make_client(url: str) -> Endpoints:
    """The real ``Consul`` client when it exists, else the endpoints over the transport."""
    try:
        module: Any = importlib.import_module("consul_streams._client")
    except ModuleNotFoundError:
        from consul_streams._address import parse_address
        from consul_streams._transport import AiohttpTransport

        transport = AiohttpTransport(parse_address(url), token=TOKEN)
        return Endpoints(
            KV(transport),
            Catalog(transport),
            Health(transport),
            Agent(transport),
            Events(transport),
            Sessions(transport),
            Status(transport),
            Txn(transport),
            owner=transport,
        )
    c = module.Consul(url, token=TOKEN, environ={})
    return Endpoints(
        c.kv, c.catalog, c.health, c.agent, c.event, c.session, c.status, c.txn, owner=c
    )
