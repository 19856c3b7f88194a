"""Shared subscriptions: one long-poll per identical query, latest-value fan-out to consumers.

A :class:`Hub` owns the background task that runs a :class:`~consul_streams._engine.Poller`.
Consumers hold a :class:`Subscription`; each sees the newest round (a slow consumer skips
intermediate rounds, nothing is buffered beyond one round per hub). The hub is registered per
transport object in a ``WeakKeyDictionary`` so the client needs no changes, and it stops its
task when the last subscription closes.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Hashable
from typing import Any

from consul_streams._engine import PollConfig, Poller, Round, WatchStats
from consul_streams._query import Query

__all__ = ["Hub", "Subscription", "subscribe"]

_Registry = dict[Hashable, "Hub"]
_registries: weakref.WeakKeyDictionary[Any, _Registry] = weakref.WeakKeyDictionary()


class Hub:
    """One poll task and the subscriptions reading its latest round."""

    def __init__(self, poller: Poller, registry: _Registry | None, key: Hashable) -> None:
        self.poller = poller
        self.latest: Round | None = None
        #: the poll's first round: the baseline of consumers that skip their initial value
        self.first: Round | None = None
        self.error: BaseException | None = None
        self._subscribers: set[Subscription] = set()
        self._registry = registry
        self._key = key
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
            self._unregister()
            for sub in self._subscribers:
                sub.notify()

    def _unregister(self) -> None:
        if self._registry is not None and self._registry.get(self._key) is self:
            del self._registry[self._key]

    def attach(self) -> Subscription:
        sub = Subscription(self)
        self._subscribers.add(sub)
        # A late subscriber gets the current value at once: next_round reads the hub's state.
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"consul_streams.watch {self.poller.query!r}"
            )
        return sub

    def detach(self, sub: Subscription) -> asyncio.Task[None] | None:
        """Drop ``sub``; when it was the last, cancel the poll and return its task to await."""
        self._subscribers.discard(sub)
        if self._subscribers:
            return None
        self._unregister()
        task, self._task = self._task, None
        if task is not None and not task.done():
            # Cancelling aborts the in-flight request at once; ``stopping`` tells the poller
            # this is not a long-poll preemption to recover from.
            self.poller.stopping = True
            task.cancel()
        return task


class Subscription:
    """A consumer's handle on a hub: wait for a newer round, read it, close."""

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

    async def next_round(self, after: int) -> Round:
        """The newest round with ``seq > after``; raises the poll's fatal error, if any."""
        while True:
            latest = self.hub.latest
            if latest is not None and latest.seq > after:
                return latest
            if self.hub.error is not None:
                raise self.hub.error
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

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


def subscribe(query: Query[Any], config: PollConfig, *, share: bool) -> Subscription:
    """Attach to the hub polling ``query`` with ``config``, creating it if needed."""
    if share:
        key = (query.key, query.index, query.hash, config.sharing_key())
        try:
            registry = _registries.setdefault(query.transport, {})
        except TypeError:  # a transport that cannot be weakly referenced is not shared
            pass
        else:
            hub = registry.get(key)
            if hub is None:
                hub = registry[key] = Hub(Poller(query, config), registry, key)
            return hub.attach()
    return Hub(Poller(query, config), None, None).attach()
