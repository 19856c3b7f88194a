"""Shared subscriptions: one long-poll per identical query, latest-value fan-out to consumers.

A :class:`Hub` runs a :class:`~consul_streams._engine.Poller` in a task started through its
:class:`~consul_streams._watch_engine.WatchEngine` (which registers shared hubs and cancels
their tasks when the client closes). Consumers hold a :class:`Subscription`; each sees the
newest round (a slow consumer skips intermediate rounds, nothing is buffered beyond one round
per hub). The hub stops its task when the last subscription closes, or ends every subscription
with an error (:class:`~consul_streams.exceptions.ClientClosed`) when its engine closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

from consul_streams._engine import Poller, Round, WatchStats

__all__ = ["Hub", "Subscription"]


class Hub:
    """One poll task and the subscriptions reading its latest round.

    ``spawn(coro, name=)`` starts the poll task under the engine's ownership; ``on_idle(hub)``
    is called when the hub stops (last subscriber gone, fatal error, engine closed) so the
    engine forgets it.
    """

    def __init__(
        self,
        poller: Poller,
        key: Hashable,
        *,
        spawn: Callable[..., asyncio.Task[None]],
        on_idle: Callable[[Hub], None],
    ) -> None:
        self.poller = poller
        self.latest: Round | None = None
        #: the poll's first round: the baseline of consumers that skip their initial value
        self.first: Round | None = None
        self.error: BaseException | None = None
        self._subscribers: set[Subscription] = set()
        self.key = key
        self._spawn = spawn
        self._on_idle = on_idle
        self._task: asyncio.Task[None] | None = None

    @property
    def stats(self) -> WatchStats:
        return self.poller.stats

    def _publish(self, round_: Round) -> bool:
        """Make ``round_`` the latest; whether a waiting consumer was woken."""
        if self.first is None:
            self.first = round_
        self.latest = round_
        woke = False
        for sub in self._subscribers:
            woke = sub.notify() or woke
        return woke

    async def _run(self) -> None:
        try:
            await self.poller.run(self._publish)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to every consumer, who raise it
            self.error = exc
            self._on_idle(self)
            for sub in self._subscribers:
                sub.notify()

    def attach(self) -> Subscription:
        sub = Subscription(self)
        self._subscribers.add(sub)
        # A late subscriber gets the current value at once: ready() reads the hub's state.
        if self._task is None and self.error is None:
            self._task = self._spawn(
                self._run(), name=f"consul_streams.watch {self.poller.query!r}"
            )
        return sub

    def fail(self, error: BaseException) -> asyncio.Task[None] | None:
        """End every subscription with ``error`` and stop the poll; returns its task to await."""
        if self.error is None:
            self.error = error
        task = self._stop()
        for sub in self._subscribers:
            sub.notify()
        return task

    def _stop(self) -> asyncio.Task[None] | None:
        self._on_idle(self)
        task, self._task = self._task, None
        if task is not None and not task.done():
            # Cancelling aborts the in-flight request at once; ``stopping`` tells the poller
            # this is not a long-poll preemption to recover from.
            self.poller.stopping = True
            task.cancel()
        return task

    def detach(self, sub: Subscription) -> asyncio.Task[None] | None:
        """Drop ``sub``; when it was the last, cancel the poll and return its task to await."""
        self._subscribers.discard(sub)
        if self._subscribers:
            return None
        return self._stop()


class Subscription:
    """A consumer's handle on a hub: wait for a newer round, read it, close."""

    # Slots: a shared poll may have thousands of subscribers (#13: <= 2 KB each).
    __slots__ = ("_loop", "_waiter", "arrived_at", "closed", "hub")

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.closed = False
        # A bare future rather than an asyncio.Event: fan-out wakes one per consumer per round.
        self._waiter: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        #: the state when this consumer arrived (None: the poll's first round, still to come)
        self.arrived_at = hub.latest

    @property
    def baseline(self) -> Round | None:
        """The round a consumer that skips its initial value compares the next ones with."""
        return self.arrived_at if self.arrived_at is not None else self.hub.first

    def ready(self, after: int) -> Round | None:
        """The newest round with ``seq > after``, or None (then await :meth:`waiter`);
        raises the poll's fatal error, if any."""
        latest = self.hub.latest
        if latest is not None and latest.seq > after:
            return latest
        if self.hub.error is not None:
            raise self.hub.error
        return None

    def waiter(self) -> asyncio.Future[None]:
        """A future :meth:`notify` completes (one per wait: fan-out wakes one per consumer)."""
        waiter = self._waiter = self._loop.create_future()
        return waiter

    def notify(self) -> bool:
        """Wake the consumer if it is waiting for a round; whether it was."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
            return True
        return False

    def close_nowait(self) -> asyncio.Task[None] | None:
        if self.closed:
            return None
        self.closed = True
        return self.hub.detach(self)

    async def aclose(self) -> None:
        """Leave the hub; if this was the last consumer, wait until the poll has stopped."""
        task = self.close_nowait()
        if task is not None:
            # asyncio.wait does not re-raise the task's cancellation, only our own.
            await asyncio.wait({task})
