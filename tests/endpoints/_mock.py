"""Test support: canned answers through ``testing.MockTransport`` and the client under test.

Endpoint methods only build a :class:`~consul_streams.Request` and name a decoder, so their
tests need no server: the ``Consul(transport=MockTransport(...))`` seam records every request
exactly as the endpoint built it (path as percent-encoded, query pairs in order, headers,
body) and answers canned replies. What the transport adds (token header, ``dc``, timeouts)
is pinned in ``tests/test_transport.py`` against a real socket.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from consul_streams import Consul, Request, Response
from consul_streams.endpoints import KV, Agent, Catalog, Events, Health, Sessions, Status, Txn
from consul_streams.testing import MockTransport

TOKEN = "7f0c3e1a-secret-token"


@dataclass(frozen=True)
class Call:
    """One request as the endpoint built it: path, query pairs, headers, body."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    #: ``None`` when the request had no body at all
    raw_body: bytes | None = None

    def json(self) -> Any:
        return json.loads(self.body)


class Wire:
    """Canned replies by (method, path), and the requests received, over a MockTransport."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._replies: dict[tuple[str, str], deque[Response]] = defaultdict(deque)
        self.transport = MockTransport(self._handle)

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
        self._replies[(method, path)].append(Response(status, dict(headers or {}), raw))

    def only(self) -> Call:
        """The single request received (fails when there were none or several)."""
        assert len(self.calls) == 1, self.calls
        return self.calls[0]

    def _handle(self, request: Request) -> Response:
        self.calls.append(
            Call(
                request.method,
                request.path,
                list(request.params),
                dict(request.headers),
                request.body or b"",
                request.body,
            )
        )
        queue = self._replies.get((request.method, request.path))
        if not queue:
            text = f"no canned reply for {request.method} {request.path}"
            return Response(418, {}, text.encode())
        return queue.popleft()


@dataclass
class Endpoints:
    """The endpoint attributes of a ``Consul`` client."""

    kv: KV
    catalog: Catalog
    health: Health
    agent: Agent
    event: Events
    session: Sessions
    status: Status
    txn: Txn
    owner: Consul


def make_client(wire: Wire) -> Endpoints:
    c = Consul(transport=wire.transport, token=TOKEN, environ={})
    return Endpoints(
        c.kv, c.catalog, c.health, c.agent, c.event, c.session, c.status, c.txn, owner=c
    )
