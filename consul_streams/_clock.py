"""Injectable time: the clock that watch(), backoff, rate limits and timing operators read.

``MonotonicClock`` is the default (the running loop's monotonic time). ``VirtualClock`` is for
tests: its time stands still until ``await clock.advance(seconds)``, which wakes sleepers in
deadline order, so timing tests are exact and take no wall time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "MonotonicClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time in seconds and a matching sleep."""

    def now(self) -> float:
        """Monotonic time in seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend for ``seconds`` of this clock's time (``<= 0``: just yield)."""
        ...


class MonotonicClock:
    """The default clock: the running event loop's monotonic time and ``asyncio.sleep``."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "MonotonicClock()"


class VirtualClock:
    """A clock whose time advances only through :meth:`advance`.

    Note: a sleeper woken by :meth:`advance` runs before ``advance`` returns (as far as it gets
    without waiting on anything but this clock), so a test sees the effect of the time step.
    """

    #: event-loop turns given to woken tasks after each wake-up before time moves on; enough
    #: for a task to run through a few awaits (queues, events) and go back to sleep.
    SETTLE_TURNS = 8

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._changed: asyncio.Event | None = None

    def now(self) -> float:
        return self._now

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        self._notify()
        await future

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Return once at least ``count`` sleeps are pending (tests: "the watch is waiting")."""
        while self.sleepers < count:
            if self._changed is None:
                self._changed = asyncio.Event()
            self._changed.clear()
            await self._changed.wait()

    async def _settle(self) -> None:
        for _ in range(self.SETTLE_TURNS):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper whose deadline is reached."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        target = self._now + seconds
        await self._settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            if future.done():
                continue
            self._now = max(self._now, deadline)
            future.set_result(None)
            await self._settle()
        self._now = target
        await self._settle()

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:g}, sleepers={self.sleepers})"
