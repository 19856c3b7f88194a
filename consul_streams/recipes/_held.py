"""What locks and semaphores share: a TTL session kept alive in the background, a ``lost``
state, and an ``async with`` scope that cancels its body when the hold is lost."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from consul_streams._health import Health, HealthMonitor
from consul_streams._parse import parse_bool, parse_duration
from consul_streams.endpoints.kv import check_key
from consul_streams.exceptions import ConsulError, InvalidArgument, LockLost
from consul_streams.recipes._lease import SessionLease, within
from consul_streams.typing import Duration

if TYPE_CHECKING:
    from consul_streams import Consul  # the public client: recipes build on the public API
    from consul_streams._clock import Clock

__all__ = ["LockLost", "SessionHold", "seconds"]

log = logging.getLogger("consul_streams.recipes.lock")
H = TypeVar("H", bound="SessionHold")


def seconds(value: object, parameter: str, *, minimum: float = 0.0) -> float:
    """Check a :data:`~consul_streams.typing.Duration` (Go string, timedelta or seconds)."""
    parsed = parse_duration(value, parameter)
    if parsed < minimum:
        raise InvalidArgument(parameter, f"expected at least {minimum:g}s, got {value!r}")
    return parsed


class SessionHold:
    """Base of :class:`~consul_streams.recipes.Lock` and ``Semaphore``.

    Subclasses implement ``_take(lease)`` (wait until held by ``lease.session``),
    ``_watch(session)`` (return when the hold is gone, after calling ``_mark_lost``) and
    ``_give_back(session)``.
    """

    kind = "lock"

    def __init__(
        self,
        client: Consul,
        key: str,
        *,
        ttl: Duration,
        lock_delay: Duration,
        behavior: str,
        session_name: str | None,
        cancel_on_loss: bool,
        clock: Clock | None,
        wait: Duration,
        health: HealthMonitor | None = None,
    ) -> None:
        # The KV endpoint's own rules, so that a bad key fails here and not at the agent.
        check_key(key, "key")
        self._ttl = seconds(ttl, "ttl", minimum=10.0)
        self._lock_delay = seconds(lock_delay, "lock_delay")
        if behavior not in ("release", "delete"):
            raise InvalidArgument("behavior", f"expected 'release' or 'delete', got {behavior!r}")
        parse_bool(cancel_on_loss, "cancel_on_loss")
        from consul_streams._clock import MonotonicClock

        self.client = client
        self.key = key
        self._behavior = behavior
        self._name = session_name or f"consul_streams {self.kind} {key}"
        self._cancel_on_loss = cancel_on_loss
        self._clock: Clock = clock or MonotonicClock()
        if health is not None and not isinstance(health, HealthMonitor):
            raise InvalidArgument("health", f"expected a HealthMonitor or None, got {health!r}")
        self._health = health if health is not None else HealthMonitor(self._clock)
        self._wait = wait
        self._wait_s = parse_duration(wait, "wait")
        #: the session while held (``None`` before acquire and after release).
        self.session: str | None = None
        #: set when the hold is lost; ``lost_reason`` says why.
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        self._token: int | None = None
        self._retry = 1.0
        self._lease: SessionLease | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._owner: asyncio.Task[Any] | None = None
        self._cancelled_owner = False
        self._cancelling_at_enter = 0

    def __repr__(self) -> str:
        state = "held" if self.held else ("lost" if self.lost.is_set() else "free")
        return f"<{type(self).__name__} {self.key!r} {state}>"

    @property
    def fencing_token(self) -> int | None:
        """The key's ``ModifyIndex`` as this holder acquired it (``None`` before that, and
        always for a ``Semaphore``, whose holders share the prefix).

        Consul's index only grows and every new holder's acquire is a later write than the
        previous holder's, so tokens strictly increase across the holders of one key, even when
        the key is deleted and created again (``LockIndex`` restarts then). Send it with every
        write to a downstream store that refuses tokens lower than the highest it has seen: a
        stale holder (partitioned, paused) is refused even before it notices its loss. The
        token stays readable after a loss, so the stale holder's writes carry it.
        """
        return self._token

    @property
    def health(self) -> Health:
        """How talking to Consul goes: failed renewals, reads and writes (``last_error``,
        ``failing_since``), whether waiting or holding. A lost hold is :attr:`lost`, not this.
        """
        return self._health.health

    async def wait_healthy(self, timeout: float | None = None) -> Health:
        """Wait until the last attempt succeeded (``timeout`` seconds at most)."""
        return await self._health.wait_healthy(timeout)

    def health_changes(self) -> AsyncGenerator[Health, None]:
        """The current :class:`Health`, then each change (latest-wins)."""
        return self._health.changes()

    @property
    def held(self) -> bool:
        """True between a successful acquire and release or loss."""
        return self.session is not None and bool(self._tasks) and not self.lost.is_set()

    async def _take(self, lease: SessionLease) -> None:
        raise NotImplementedError

    async def _watch(self, session: str) -> None:
        raise NotImplementedError

    async def _give_back(self, session: str) -> None:
        raise NotImplementedError

    async def acquire(self, timeout: Duration | None = None) -> None:
        """Wait until held (``timeout`` at most, on the loop's clock).

        The session is created at once and renewed while waiting, however long that is; a
        waiter that gives up (timeout, cancellation, error) destroys it.
        """
        timeout_s = None if timeout is None else parse_duration(timeout, "timeout")
        if self.held:
            raise InvalidArgument(self.kind, f"{self!r} is already held")
        self.lost = asyncio.Event()
        self.lost_reason = None
        self._cancelled_owner = False
        self._token = None
        lease = SessionLease(
            self.client,
            self._clock,
            name=self._name,
            ttl=self._ttl,
            behavior=self._behavior,
            lock_delay=self._lock_delay,
            what=f"{self.kind} {self.key}",
            health=self._health,
        )
        try:
            await asyncio.wait_for(self._take(lease), timeout_s)
        except BaseException:
            await lease.close(destroy=True)
            raise
        session = lease.session
        if session is None:  # pragma: no cover - _take returns holding a session
            raise RuntimeError(f"{self.kind} {self.key!r}: acquired without a session")
        self._lease = lease
        self.session = session
        self._tasks = [
            self._spawn(self._guard(session), "monitor"),
            self._spawn(self._expiry(lease), "lease"),
        ]
        log.debug("acquired %s %s", self.kind, self.key)

    async def _session(self, lease: SessionLease) -> str:
        """The waiter's live session: a new one when the last expired or was invalidated."""
        while lease.session is None or lease.expired.is_set():
            if lease.session is not None:
                await lease.close(destroy=True)  # frees whatever it may still hold
            try:
                return await lease.open()
            except ConsulError as exc:
                if not exc.retriable:
                    self._health.failed(exc, retrying=False)
                    raise
                self._health.failed(exc)
                log.debug("creating a session for %s %s failed: %s", self.kind, self.key, exc)
                await self._clock.sleep(self._retry)
        return lease.session

    async def _try(self, lease: SessionLease, attempt: Callable[[str], Awaitable[bool]]) -> bool:
        """One write on behalf of the waiter; ``False`` on a refusal or a retriable failure."""
        session = await self._session(lease)
        try:
            return await attempt(session)
        except ConsulError as exc:
            if "invalid session" in str(exc):
                # The agent dropped our session (TTL, destroy): the next attempt uses a new one.
                lease.expired.set()
                return False
            if not exc.retriable:
                self._health.failed(exc, retrying=False)
                raise
            self._health.failed(exc)
            log.debug("%s %s: attempt failed, retrying: %s", self.kind, self.key, exc)
            await self._clock.sleep(self._retry)
            return False

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        return asyncio.create_task(coro, name=f"{type(self).__name__} {what} {self.key}")

    def _mark_lost(self, reason: str) -> None:
        if self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost.set()
        log.warning("%s %s lost: %s", self.kind, self.key, reason)
        owner = self._owner
        if self._cancel_on_loss and owner is not None and not owner.done():
            self._cancelled_owner = True
            owner.cancel(f"{self.kind} on {self.key!r} lost: {reason}")

    async def _expiry(self, lease: SessionLease) -> None:
        await lease.expired.wait()
        self._mark_lost(lease.reason)

    async def _guard(self, session: str) -> None:
        try:
            await self._watch(session)
        except ConsulError as exc:
            self._mark_lost(f"watching the key failed: {exc}")

    async def _session_gone(self, session: str) -> bool:
        try:
            info, _ = await self.client.session.info(session)
        except ConsulError:
            return False
        return info is None

    async def wait_lost(self) -> str:
        """Wait until the hold is lost; returns the reason."""
        await self.lost.wait()
        return self.lost_reason or "lost"

    async def release(self) -> None:
        """Give the hold back and destroy the session; safe to call twice.

        Each step is one attempt bounded by the TTL: after a loss (or in a partition) the
        agent's own TTL reaps whatever is left, so nothing is retried or logged above DEBUG.
        """
        session, self.session = self.session, None
        lease, self._lease = self._lease, None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if session is None or lease is None:
            return
        await lease.close()
        try:
            if not self.lost.is_set():
                await within(self._clock, self._ttl, self._give_back(session))
        except ConsulError as exc:
            log.debug("releasing %s %s failed: %s", self.kind, self.key, exc)
        lease.session = session
        await lease.close(destroy=True)

    async def __aenter__(self: H) -> H:
        await self.acquire()
        self._owner = asyncio.current_task()
        if sys.version_info >= (3, 11) and self._owner is not None:
            self._cancelling_at_enter = self._owner.cancelling()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._owner = None
        cancelled_by_us = self._cancelled_owner
        if cancelled_by_us and exc_type is None:
            # The body finished before our cancellation reached it: absorb it here.
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                exc_type = asyncio.CancelledError
        await self.release()
        if cancelled_by_us and exc_type is asyncio.CancelledError:
            task = asyncio.current_task()
            if sys.version_info >= (3, 11) and task is not None:
                if task.uncancel() > self._cancelling_at_enter:
                    return  # someone else cancelled the task too: let that cancellation go on
            raise LockLost(self.key, self.lost_reason or "lost") from exc
