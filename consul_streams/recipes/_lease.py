"""A TTL session held as a client-side lease: renewed in the background, with a deadline.

The guarantee locks build on: Consul never invalidates a TTL session earlier than TTL after it
last received a renewal (it waits up to twice that, ``SessionTTLMultiplier``). The lease here
ends on the client's own clock at ``start + TTL * LEASE_FRACTION``, where ``start`` is when the
last renewal that succeeded was *sent* (before the agent could have received it). Each renewal's
own timeout is the time left on the lease, so no HTTP timeout can keep a holder past the lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from consul_streams._health import HealthMonitor
from consul_streams.exceptions import ConsulError, ReadTimeout

if TYPE_CHECKING:
    from consul_streams import Consul  # the public client: recipes build on the public API
    from consul_streams._clock import Clock

__all__ = ["LEASE_FRACTION", "RENEW_TIMEOUT_FRACTION", "SessionLease", "within"]

log = logging.getLogger("consul_streams.recipes.lock")
T = TypeVar("T")

#: A renewal waits at most this fraction of the TTL (and never past the lease), so a hung
#: request leaves time to retry before the lease ends.
RENEW_TIMEOUT_FRACTION = 0.2

#: The lease ends this fraction of the TTL after the last successful renewal was sent: the
#: remaining tenth absorbs a client clock running up to 10% slower than the agent's.
LEASE_FRACTION = 0.9


async def within(clock: Clock, seconds: float, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` for at most ``seconds`` of ``clock``'s time, else ``ReadTimeout``.

    Unlike ``asyncio.wait_for`` the deadline is read on the injected clock, so leases and
    request timeouts run on the same (possibly virtual) time.
    """
    task = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(max(seconds, 0.0)))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, timer, return_exceptions=True)
    if task.done() and not task.cancelled():
        return task.result()
    raise ReadTimeout(f"no answer within {seconds:g}s")


class SessionLease:
    """One TTL session, renewed every ``ttl / 2`` until closed or expired.

    Each renewal waits at most ``ttl / 5`` (never past the lease); failures are recorded on
    ``health`` and recovery too.

    ``expired`` is set (with ``reason``) when the agent answers that the session is gone, or
    when the lease deadline passes without a successful renewal (a partition, a dead agent).
    Renewal failures are retried every ``ttl / 10``; only the first of a run is logged.
    """

    def __init__(
        self,
        client: Consul,
        clock: Clock,
        *,
        name: str,
        ttl: float,
        behavior: str,
        lock_delay: float,
        what: str,
        health: HealthMonitor | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.ttl = ttl
        self._name = name
        self._behavior = behavior
        self._lock_delay = lock_delay
        self._what = what
        self._health = health if health is not None else HealthMonitor(clock)
        self.session: str | None = None
        #: clock time at which the lease ends unless a renewal succeeds first.
        self.deadline = 0.0
        self.expired = asyncio.Event()
        self.reason = ""
        self._task: asyncio.Task[None] | None = None

    @property
    def span(self) -> float:
        return self.ttl * LEASE_FRACTION

    def remaining(self) -> float:
        return self.deadline - self.clock.now()

    async def open(self) -> str:
        """Create a fresh session (closing the previous one) and start renewing it."""
        await self.close()
        self.expired = asyncio.Event()
        self.reason = ""
        start = self.clock.now()
        session = await self.client.session.create(
            name=self._name, ttl=self.ttl, behavior=self._behavior, lock_delay=self._lock_delay
        )
        self.session = session
        self.deadline = start + self.span
        self._task = asyncio.create_task(self._run(session), name=f"renew {self._what}")
        return session

    def _expire(self, reason: str) -> None:
        if not self.expired.is_set():
            self.reason = reason
            self.expired.set()

    async def _run(self, session: str) -> None:
        retry = self.ttl / 10
        next_renewal = self.deadline - self.span + self.ttl / 2
        failing = False
        while True:
            now = self.clock.now()
            if now >= self.deadline:
                self._expire(f"the session lease ran out ({self.span:g}s without a renewal)")
                return
            if now < next_renewal:
                await self.clock.sleep(min(next_renewal, self.deadline) - now)
                continue
            start = now
            try:
                timeout = min(self.deadline - start, self.ttl * RENEW_TIMEOUT_FRACTION)
                renewed = await within(self.clock, timeout, self.client.session.renew(session))
            except ConsulError as exc:
                if not failing:
                    log.warning("renewing the session of %s failed (retrying): %s", self._what, exc)
                failing = True
                self._health.failed(exc)
                next_renewal = self.clock.now() + retry
                continue
            if renewed is None:
                self._expire("the session was invalidated")
                return
            if failing:
                log.info("renewing the session of %s works again", self._what)
                self._health.recovered()
            failing = False
            self.deadline = start + self.span
            next_renewal = start + self.ttl / 2

    async def close(self, *, destroy: bool = False) -> None:
        """Stop renewing; with ``destroy``, also destroy the session (best effort, bounded)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        session, self.session = self.session, None
        if destroy and session is not None:
            try:
                # Destroying an unknown session answers true; a failure is reaped by the TTL.
                await within(self.clock, self.ttl, self.client.session.destroy(session))
            except ConsulError as exc:
                log.debug("destroying the session of %s failed: %s", self._what, exc)
