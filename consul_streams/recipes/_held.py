"""What locks and semaphores share: a TTL session kept alive in the background, a ``lost``
state, and an ``async with`` scope that cancels its body when the hold is lost."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from consul_streams._parse import parse_bool, parse_duration
from consul_streams.endpoints.kv import check_key
from consul_streams.exceptions import ConsulError, InvalidArgument, LockLost
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

    Subclasses implement ``_take(session)`` (wait until held), ``_watch(session)`` (return
    when the hold is gone, after calling ``_mark_lost``) and ``_give_back(session)``.
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
        self._wait = wait
        self._wait_s = parse_duration(wait, "wait")
        #: the session while held (``None`` before acquire and after release).
        self.session: str | None = None
        #: set when the hold is lost; ``lost_reason`` says why.
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._owner: asyncio.Task[Any] | None = None
        self._cancelled_owner = False
        self._cancelling_at_enter = 0

    def __repr__(self) -> str:
        state = "held" if self.held else ("lost" if self.lost.is_set() else "free")
        return f"<{type(self).__name__} {self.key!r} {state}>"

    @property
    def held(self) -> bool:
        """True between a successful acquire and release or loss."""
        return self.session is not None and bool(self._tasks) and not self.lost.is_set()

    async def _take(self, session: str) -> None:
        raise NotImplementedError

    async def _watch(self, session: str) -> None:
        raise NotImplementedError

    async def _give_back(self, session: str) -> None:
        raise NotImplementedError

    async def acquire(self, timeout: Duration | None = None) -> None:
        """Create the session and wait until held (``timeout`` at most)."""
        timeout_s = None if timeout is None else parse_duration(timeout, "timeout")
        if self.held:
            raise InvalidArgument(self.kind, f"{self!r} is already held")
        self.lost = asyncio.Event()
        self.lost_reason = None
        self._cancelled_owner = False
        session = await self.client.session.create(
            name=self._name, ttl=self._ttl, behavior=self._behavior, lock_delay=self._lock_delay
        )
        try:
            await asyncio.wait_for(self._take(session), timeout_s)
        except BaseException:
            await self._destroy(session)
            raise
        self.session = session
        self._tasks = [
            self._spawn(self._renew(session), "renew"),
            self._spawn(self._guard(session), "monitor"),
        ]
        log.debug("acquired %s %s", self.kind, self.key)

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

    async def _renew(self, session: str) -> None:
        failures = 0
        while True:
            await self._clock.sleep(self._ttl / 2)
            try:
                renewed = await self.client.session.renew(session)
            except ConsulError as exc:
                # Transient: the session survives about 2 x TTL, so one more try is safe.
                failures += 1
                log.warning("renewing the session of %s %s failed: %s", self.kind, self.key, exc)
                if failures >= 2:
                    self._mark_lost(f"session could not be renewed: {exc}")
                    return
                continue
            failures = 0
            if renewed is None:
                self._mark_lost("the session was invalidated")
                return

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

    async def _destroy(self, session: str) -> None:
        try:
            await self.client.session.destroy(session)
        except ConsulError as exc:  # the TTL reaps it anyway
            log.warning("destroying the session of %s %s failed: %s", self.kind, self.key, exc)

    async def release(self) -> None:
        """Give the hold back and destroy the session; safe to call twice."""
        session, self.session = self.session, None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if session is None:
            return
        try:
            if not self.lost.is_set():
                await self._give_back(session)
        except ConsulError as exc:
            log.warning("releasing %s %s failed: %s", self.kind, self.key, exc)
        finally:
            await self._destroy(session)

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
