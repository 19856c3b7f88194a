"""Shared pieces of the reliability tests: deterministic backoff, request bounds, trackers."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from consul_streams.testing import DevAgent
from consul_streams.watch import Backoff, RateLimit

__all__ = [
    "BACKOFF",
    "RATE",
    "MaxJitter",
    "Tracker",
    "max_error_requests",
    "success_bound",
    "watched_requests",
]

T = TypeVar("T")

#: Small explicit settings so faults recover fast and the request bounds stay tight.
RATE = RateLimit(burst=2, per_second=20.0)
BACKOFF = Backoff(base=0.02, cap=0.2)


class MaxJitter(random.Random):
    """A jitter source that always picks the top of the range: backoff delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


def max_error_requests(backoff: Backoff, seconds: float) -> int:
    """Most failing requests a watch can make in ``seconds`` with :class:`MaxJitter` backoff."""
    count, elapsed = 1, 0.0
    while elapsed + backoff.ceiling(count - 1) <= seconds:
        elapsed += backoff.ceiling(count - 1)
        count += 1
    return count


def success_bound(rate: RateLimit, seconds: float) -> int:
    """Most successful rounds a token bucket lets through in ``seconds`` (starting full)."""
    return rate.burst + math.ceil(seconds * rate.per_second)


def watched_requests(agent: DevAgent, path: str, since: int = 0) -> int:
    """How many GETs of ``path`` (exact, or a prefix when it ends with ``/``) the agent saw."""
    count = 0
    for logged in agent.requests[since:]:
        if logged.method != "GET":
            continue
        if logged.path == path or (path.endswith("/") and logged.path.startswith(path)):
            count += 1
    return count


class Tracker(Generic[T]):
    """Consumes a stream in a task and keeps its folded state; tests wait on predicates.

    ``fold(state, item) -> state`` turns each emitted item into the tracked state; an error
    ending the stream is kept in :attr:`error`.
    """

    def __init__(self, source: AsyncIterator[Any], fold: Callable[[T | None, Any], T]) -> None:
        self.state: T | None = None
        self.items = 0
        self.error: BaseException | None = None
        self.done = False
        self._fold = fold
        self._source = source
        self._changed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            async for item in self._source:
                self.state = self._fold(self.state, item)
                self.items += 1
                self._changed.set()
        except Exception as exc:  # kept for the test to assert on
            self.error = exc
        finally:
            self.done = True
            self._changed.set()

    async def until(self, predicate: Callable[[T | None], bool], timeout: float) -> None:
        """Wait until ``predicate(state)`` holds or the stream ends; TimeoutError otherwise."""

        async def wait() -> None:
            while not predicate(self.state):
                if self.done:
                    return
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    async def ended(self, timeout: float) -> BaseException | None:
        """Wait for the stream to end; its error (None if it ended cleanly)."""
        await self.until(lambda _: False, timeout)
        return self.error

    async def aclose(self) -> None:
        """Stop consuming (cancels the task; closing propagates to the stream)."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            await aclose()
