"""``MockTransport``: answer a client's requests with a function, no server (httpx's idea).

::

    def handler(request: Request) -> Response:
        if request.path == "/v1/kv/app/flag":
            return Response(200, {"X-Consul-Index": "7"}, b'[{"Key": "app/flag", ...}]')
        return Response(404, {}, b"")

    async with Consul(transport=MockTransport(handler)) as client:
        entry, meta = await client.kv.get("app/flag")

The handler gets the :class:`~consul_streams.Request` the endpoint built (with the round's
``index``/``hash``/``wait`` added) and returns a :class:`~consul_streams.Response` (or an
awaitable of one, so it may block like a long-poll). A status outside the request's
``ok_statuses`` raises the same mapped error as the real transport. Use the dev agent
(``DevAgent``) for behaviour, this for unit seams.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from consul_streams._query import Request, Response
from consul_streams._transport import map_status
from consul_streams.exceptions import ClientClosed, InvalidArgument

__all__ = ["Handler", "MockTransport"]

Handler = Callable[[Request], "Response | Awaitable[Response]"]


class MockTransport:
    """A :class:`~consul_streams.Transport` that calls ``handler`` instead of speaking HTTP.

    ``requests`` records every request sent, in order; ``max_connections`` sizes the
    long-poll budget as the real transport's does.
    """

    def __init__(self, handler: Handler, *, max_connections: int = 64) -> None:
        if not callable(handler):
            raise InvalidArgument(
                "handler", f"expected a callable Request -> Response, got {handler!r}"
            )
        self._handler = handler
        self.max_connections = max_connections
        self.requests: list[Request] = []
        self.closed = False

    @property
    def identity(self) -> Hashable:
        return ("mock", id(self))

    async def send(
        self,
        request: Request,
        *,
        timeout: float | None,
        ok_statuses: frozenset[int] = frozenset({200}),
    ) -> Response:
        if self.closed:
            raise ClientClosed("the client (its MockTransport) is closed")
        self.requests.append(request)
        answer: Any = self._handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if not isinstance(answer, Response):
            raise TypeError(f"the MockTransport handler returned {answer!r}, not a Response")
        if answer.status not in ok_statuses:
            raise map_status(
                answer.status, answer.body, method=request.method, url=request.path, secret=None
            )
        return answer

    async def aclose(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"<MockTransport {len(self.requests)} requests>"
