"""A scripted fake Transport for watch/ops unit tests (no network, no sleeps).

Each request waits for a reply pushed by the test (per path), so a test decides exactly when
a blocking read "returns". Requests, timeouts, concurrency and cancellations are recorded.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from consul_streams._budget import slots_for
from consul_streams._query import BlockingMode, Query, Request, Response
from consul_streams._watch_engine import WatchEngine
from consul_streams.exceptions import ConsulError

__all__ = [
    "FakeTransport",
    "Reply",
    "T",
    "asking",
    "fast",
    "json_query",
    "kv_query",
    "nxt",
    "within",
]

T = 2.0  # generous upper bound for anything that should happen "at once"


async def nxt(it: Any) -> Any:
    """The iterator's next item, or a test failure after ``T`` seconds."""
    return await asyncio.wait_for(it.__anext__(), T)


def asking(it: Any, timeout: float = T) -> asyncio.Task[Any]:
    """Ask for the iterator's next item in the background (await the task for it, within
    ``timeout``: tests against the dev agent, in real time, give more than ``T``).

    A watch with one consumer polls while that consumer asks for its next item (#13: the
    rounds run in the consumer's own task), as Consul's own ``watch.Plan`` calls its handler
    between blocking queries: a test that looks at the next requests keeps asking meanwhile.
    """
    return asyncio.ensure_future(asyncio.wait_for(it.__anext__(), timeout))


async def within(aw: Any) -> Any:
    """Await ``aw``, or fail the test after ``T`` seconds."""
    return await asyncio.wait_for(aw, T)


def fast(query: Any, **kw: Any) -> Any:
    """A watch on the virtual clock with no rate limit, unless the test says otherwise."""
    from consul_streams._clock import VirtualClock
    from consul_streams.watch import watch

    kw.setdefault("clock", VirtualClock())
    kw.setdefault("rate_limit", None)
    return watch(query, **kw)


@dataclass
class Reply:
    """One scripted answer: a JSON body and headers, or an error to raise."""

    body: Any = None
    index: int | None = None
    status: int = 200
    content_hash: str | None = None
    error: BaseException | None = None

    def response(self, request: Request) -> Response:
        if self.error is not None:
            raise self.error
        headers = {"X-Consul-Knownleader": "true", "X-Consul-Lastcontact": "0"}
        if self.index is not None:
            headers["X-Consul-Index"] = str(self.index)
        if self.content_hash is not None:
            headers["X-Consul-Contenthash"] = self.content_hash
        body = b"" if self.body is None else json.dumps(self.body).encode()
        return Response(self.status, headers, body, request.method, request.path)


class FakeTransport:
    """A Transport whose answers the test pushes with :meth:`push`."""

    def __init__(
        self,
        *,
        max_connections: int | None = None,
        handler: Callable[[Request], Awaitable[Reply]] | None = None,
    ) -> None:
        self.requests: list[tuple[Request, float | None]] = []
        self.inflight = 0
        self.peak_inflight = 0
        self.cancellations = 0
        self.cancelled = asyncio.Event()
        self._stored: dict[str, collections.deque[Reply]] = {}
        self._waiting: dict[str, collections.deque[asyncio.Future[Reply]]] = {}
        self._changed = asyncio.Event()
        self._limit = asyncio.Semaphore(max_connections) if max_connections else None
        self.max_connections = max_connections
        #: what a client would own: the watch engine of the Queries built on this transport
        #: (its long-poll budget sized from ``max_connections``; None: no budget)
        self.engine = WatchEngine(slots=slots_for(max_connections) if max_connections else None)
        self._handler = handler

    @property
    def identity(self) -> tuple[str, int]:
        return ("fake", id(self))

    def push(self, reply: Reply, path: str = "/v1/kv/k") -> None:
        """Answer the oldest request waiting on ``path``, or the next one to come."""
        waiting = self._waiting.setdefault(path, collections.deque())
        while waiting:
            future = waiting.popleft()
            if not future.done():
                future.set_result(reply)
                return
        self._stored.setdefault(path, collections.deque()).append(reply)

    async def _next_reply(self, path: str) -> Reply:
        stored = self._stored.get(path)
        if stored:
            return stored.popleft()
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(path, collections.deque()).append(future)
        return await future

    def params(self, n: int) -> dict[str, str]:
        """The query parameters of the n-th request (0-based)."""
        return dict(self.requests[n][0].params)

    async def wait_requests(self, count: int) -> None:
        """Return once ``count`` requests have been sent."""
        while len(self.requests) < count:
            self._changed.clear()
            await self._changed.wait()

    async def send(
        self,
        request: Request,
        *,
        timeout: float | None,
        ok_statuses: frozenset[int] = frozenset({200}),
    ) -> Response:
        if self._limit is not None:
            await self._limit.acquire()
        try:
            self.requests.append((request, timeout))
            self.inflight += 1
            self.peak_inflight = max(self.peak_inflight, self.inflight)
            self._changed.set()
            try:
                if self._handler is not None:
                    reply = await self._handler(request)
                else:
                    reply = await self._next_reply(request.path)
            except asyncio.CancelledError:
                self.cancellations += 1
                self.cancelled.set()
                raise
            finally:
                self.inflight -= 1
            response = reply.response(request)
            if response.status not in ok_statuses:
                raise ConsulError(f"unexpected status {response.status}")
            return response
        finally:
            if self._limit is not None:
                self._limit.release()


def _decode_json(response: Response) -> Any:
    if response.status == 404:
        return None
    return json.loads(response.body) if response.body else None


def json_query(
    transport: FakeTransport,
    path: str = "/v1/kv/k",
    *,
    mode: BlockingMode = BlockingMode.INDEX,
    **fields: Any,
) -> Query[Any]:
    """A Query for ``path`` decoding JSON (404 -> None)."""
    return Query(
        transport,
        Request("GET", path),
        _decode_json,
        mode=mode,
        ok_statuses=frozenset({200, 404}),
        **{"engine": transport.engine, **fields},
    )


def kv_query(transport: FakeTransport, key: str = "k") -> Query[Any]:
    return json_query(transport, f"/v1/kv/{key}")
