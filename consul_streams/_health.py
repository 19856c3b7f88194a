"""Health of a long-running watch or recipe: a frozen :class:`Health` value and its publisher.

A watch that retries a failure keeps running, so "is it working?" needs its own answer.
:class:`HealthMonitor` is the small helper every long-running object embeds (the watch engine,
``LiveConfig``, ``ServiceInstances``, locks, ``elect()``): it holds the current :class:`Health`,
records failures and recoveries on an injectable clock, and lets callers read the value, wait
until it is healthy, or follow its changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, replace

from consul_streams._clock import Clock, MonotonicClock
from consul_streams.exceptions import ConsulError

__all__ = ["Health", "HealthMonitor"]


@dataclass(frozen=True)
class Health:
    """A snapshot of how a watch or recipe is doing.

    ``ok``: the last attempt succeeded and what is served is current. ``last_error``: the most
    recent failure (kept after recovery, for diagnosis; ``ok`` says whether it is over).
    ``failing_since``: clock time of the first failure of the current run of failures (``None``
    when not failing). ``stale``/``stale_since``: what is served (a configuration, an instance
    list, a lock) may be out of date since then. ``retrying``: failing, and being retried with
    backoff; ``False`` while failing means the failure is final (:attr:`stopped`).
    ``failures``: consecutive failed attempts.
    """

    ok: bool = True
    last_error: ConsulError | None = None
    failing_since: float | None = None
    stale: bool = False
    stale_since: float | None = None
    retrying: bool = False
    failures: int = 0

    @property
    def stopped(self) -> bool:
        """A failure that is not retried ended it: it will not become healthy on its own."""
        return self.failing_since is not None and not self.retrying

    def __str__(self) -> str:
        if self.ok:
            return "healthy"
        state = "retrying" if self.retrying else ("stale" if not self.stopped else "stopped")
        error = f": {type(self.last_error).__name__}: {self.last_error}" if self.last_error else ""
        return f"{state} after {self.failures} failed attempt(s){error}"


HealthListener = Callable[[Health], None]


class HealthMonitor:
    """Publishes one :class:`Health` value: read it, wait for it, follow its changes.

    ``failed(exc)`` records a failed attempt (``retrying=False``: a final one), ``recovered()``
    a success; ``set_stale(flag)`` marks what is served as out of date (or current again).
    Times come from ``clock`` (default: the running loop's monotonic time).

    Note: listeners run synchronously inside ``failed``/``recovered``/``set_stale`` and must not
    block; :meth:`changes` is latest-wins (a slow reader skips intermediate values).
    """

    # Slots: one per poll, alive as long as the watch (#13, memory per watch).
    __slots__ = ("_clock", "_health", "_listeners", "_version", "_waiters")

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._health = Health()
        self._version = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._listeners: list[HealthListener] = []

    @property
    def health(self) -> Health:
        """The current value."""
        return self._health

    @property
    def clock(self) -> Clock:
        return self._clock

    def set(self, health: Health) -> None:
        """Publish ``health`` (a no-op when it equals the current value)."""
        if health == self._health:
            return
        self._health = health
        self._version += 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        for listener in list(self._listeners):
            listener(health)

    def failed(self, error: ConsulError, *, retrying: bool = True, stale: bool = True) -> Health:
        """Record a failed attempt; ``retrying=False`` marks it final. Returns the new value."""
        h = self._health
        now = self._clock.now()
        stale_since = h.stale_since if h.stale_since is not None else (now if stale else None)
        self.set(
            Health(
                ok=False,
                last_error=error,
                failing_since=h.failing_since if h.failing_since is not None else now,
                stale=stale or h.stale,
                stale_since=stale_since,
                retrying=retrying,
                failures=h.failures + 1,
            )
        )
        return self._health

    def recovered(self) -> Health:
        """Record a successful attempt: healthy and current again (``last_error`` is kept)."""
        self.set(Health(ok=True, last_error=self._health.last_error))
        return self._health

    def set_stale(self, stale: bool) -> Health:
        """Mark what is served as out of date (``True``) or current again (``False``)."""
        h = self._health
        if stale and not h.stale:
            h = replace(h, ok=False, stale=True, stale_since=self._clock.now())
        elif not stale and h.stale:
            h = replace(h, stale=False, stale_since=None, ok=h.failing_since is None)
        self.set(h)
        return self._health

    def add_listener(self, listener: HealthListener) -> Callable[[], None]:
        """Call ``listener(health)`` on every change; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def _next_change(self, version: int) -> None:
        while self._version == version:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def wait_healthy(self, timeout: float | None = None) -> Health:
        """Wait until healthy; raises ``last_error`` if it stopped for good, ``TimeoutError``
        (``asyncio.TimeoutError`` before 3.11) after ``timeout`` seconds."""

        async def wait() -> Health:
            while not self._health.ok:
                if self._health.stopped and self._health.last_error is not None:
                    raise self._health.last_error
                await self._next_change(self._version)
            return self._health

        return await asyncio.wait_for(wait(), timeout)

    async def changes(self) -> AsyncGenerator[Health, None]:
        """The current value, then each new one (latest-wins)."""
        version = self._version
        yield self._health
        while True:
            await self._next_change(version)
            version = self._version
            yield self._health

    def __repr__(self) -> str:
        return f"<HealthMonitor {self._health}>"
