"""Shared subscriptions: one long-poll per identical query, latest-value fan-out to consumers.

A :class:`Hub` runs a :class:`~consul_streams._engine.Poller` in a task started through its
:class:`~consul_streams._watch_engine.WatchEngine` (which registers shared hubs and cancels
their tasks when the client closes). Each consumer is a :class:`Subscription`; each sees the
newest round (a slow consumer skips intermediate rounds, nothing is buffered beyond one round
per hub). The hub stops its task when the last subscription closes, or ends every subscription
with an error (:class:`~consul_streams.exceptions.ClientClosed`) when its engine closes.

Delivery (#13): a consumer waiting for a round parks one future in :attr:`Subscription.waiter`;
the poll task decides, for every waiting consumer, what a round gives it and completes that
future with the item itself (or with the poll's error). A woken consumer then only resumes:
it runs none of the emit policy and no frame of ours, so a shared poll's cost per subscriber
is close to that of waking a bare task.

A poll with a single consumer has no task at all (#13): the consumer runs each round in its own
task when it asks for its next item (``watch.WatchIterator``), so an answer resumes the task that
wants it, with no hand-over to a second task. The hub is then :attr:`Hub.solo`; its
:attr:`Hub.driver` is the consumer's task while a round is in flight. A second consumer turns
the hub into a shared one: it starts the poll task, which takes over once the round in flight
(if any) has ended. Stopping the hub aborts a round in flight by cancelling the driver's task
once and taking that cancellation back (``Task.uncancel``, as ``asyncio.timeout`` does), so a
cancellation of the consumer's own is never lost; on Python 3.10, which cannot take it back,
every poll runs in a task (:data:`INLINE`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any, Union

from consul_streams._engine import Poller, Round, WatchStats

__all__ = ["INLINE", "SKIP", "Hub", "Subscription"]

#: What :meth:`Subscription.offer` returns for a round its consumer does not emit.
SKIP: Any = object()

#: Whether a poll with a single consumer runs in that consumer's task (Python >= 3.11, where a
#: cancellation can be taken back). Read when a hub is created; tests switch it to cover both.
INLINE: bool = hasattr(asyncio.Task, "uncancel")

#: What stopping a hub returns to await: its poll task, or the end of a consumer's round
Stopped = Union["asyncio.Task[None]", "asyncio.Future[None]"]


class Hub:
    """One poll and the subscriptions reading its latest round; the poll runs in a task of its
    own, or in the single consumer's task while the hub is :attr:`solo`.

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
        # A dict, not a set: rounds are handed out in the order consumers arrived.
        self._subscribers: dict[Subscription, None] = {}
        self.key = key
        self._spawn = spawn
        self._on_idle = on_idle
        self._task: asyncio.Task[None] | None = None
        #: set while the hub walks its subscribers: a consumer leaving then must wait (see
        #: ``_Consumer.abandon``), the walk cannot take a change of the dict
        self.busy = False
        #: no poll task and no error: the single consumer runs the rounds in its own task
        self.solo = INLINE
        #: the consumer's task while it runs a round (solo hubs), and that consumer
        self.driver: asyncio.Task[Any] | None = None
        self.driving: Subscription | None = None
        #: the hub cancelled the driver's round (it stopped)
        self._aborting = False
        #: completed when the driver's round ends (for the poll task taking over, or a close)
        self._handoff: asyncio.Future[None] | None = None

    @property
    def stats(self) -> WatchStats:
        return self.poller.settled_stats

    def publish(self, round_: Round) -> bool:
        """Make ``round_`` the latest and hand it to every waiting consumer that emits it;
        whether one was woken."""
        previous = self.latest
        if self.first is None:
            self.first = round_
        self.latest = round_
        changed = round_.changed
        woke = False
        self.busy = True
        try:
            for sub in self._subscribers:
                waiter = sub.waiter
                if waiter is None or waiter.done():
                    # Busy (it reads ``latest`` when it asks again) or cancelled (leaving).
                    continue
                seen = sub.seen
                if seen is previous and seen is not None and sub.follows:
                    # The common case, inlined: a consumer that holds the previous round emits
                    # a change (or any round, with heartbeats). They all get the same item.
                    sub.seen = round_
                    if not (changed or sub.heartbeat):
                        continue
                    item = round_.item
                else:
                    item = sub.offer(round_)
                    if item is SKIP:
                        continue
                sub.waiter = None
                sub.emits += 1
                waiter.set_result(item)
                woke = True
        finally:
            self.busy = False
        return woke

    def _interrupt(self) -> None:
        """Hand the hub's error to every waiting consumer."""
        error = self.error
        if error is None:
            return
        self.busy = True
        try:
            for sub in self._subscribers:
                sub.interrupt(error)
        finally:
            self.busy = False

    async def _run(self) -> None:
        try:
            if self.driver is not None:
                # A consumer is running a round in its own task: take over when it ends.
                await self._round_end()
                if self.error is not None:
                    return
            await self.poller.run(self.publish)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to every consumer, who raise it
            self.error = exc
            self._on_idle(self)
            self._interrupt()

    # --- a single consumer's rounds, run in its own task (see the module's docstring) ---------

    def begin_round(self, sub: Subscription, task: asyncio.Task[Any]) -> Poller:
        """``sub``, the single consumer, runs a round in ``task``: returns the poller to step."""
        self.driver = task
        self.driving = sub
        return self.poller

    def end_round(self) -> None:
        """The driver's round ended (a round, an error or a cancellation)."""
        self.driver = None
        self.driving = None
        self._aborting = False
        handoff, self._handoff = self._handoff, None
        if handoff is not None and not handoff.done():
            handoff.set_result(None)

    def aborted(self, task: asyncio.Task[Any]) -> bool:
        """Whether the cancellation that ended ``task``'s round was the hub's alone (taken back)."""
        # Task.uncancel exists wherever a hub is solo (INLINE: Python >= 3.11).
        return self._aborting and getattr(task, "uncancel")() == 0  # noqa: B009

    def _round_end(self) -> asyncio.Future[None]:
        handoff = self._handoff
        if handoff is None:
            assert self.driver is not None
            handoff = self._handoff = self.driver.get_loop().create_future()
        return handoff

    def _abort_round(self) -> asyncio.Future[None] | None:
        """Cancel the driver's round in flight, once; returns what completes when it ended."""
        driver = self.driver
        if driver is None or driver is asyncio.current_task():
            return None
        if not self._aborting:
            self._aborting = True
            self.poller.stopping = True
            driver.cancel()
        return self._round_end()

    # ---------------------------------------------------------------------------------------

    def attach(self, sub: Subscription) -> None:
        """Add ``sub``; start the poll task if it is not running and the hub has (now) more
        than one consumer, or polls in a task only."""
        sub.hub = self
        # A late subscriber gets the current value at once: it reads the hub's latest round.
        sub.arrived_at = self.latest
        self._subscribers[sub] = None
        if (
            self._task is None
            and self.error is None
            and (not self.solo or len(self._subscribers) > 1)
        ):
            self.solo = False
            self._task = self._spawn(
                self._run(), name=f"consul_streams.watch {self.poller.query!r}"
            )

    def fail(self, error: BaseException) -> Stopped | None:
        """End every subscription with ``error`` and stop the poll; returns what to await
        until it stopped."""
        if self.error is None:
            self.error = error
        stopped = self._stop()
        self._interrupt()
        return stopped

    def _stop(self) -> Stopped | None:
        self._on_idle(self)
        self.solo = False
        task, self._task = self._task, None
        if task is not None and not task.done():
            # Cancelling aborts the in-flight request at once; ``stopping`` tells the poller
            # this is not a long-poll preemption to recover from.
            self.poller.stopping = True
            task.cancel()
        round_end = self._abort_round()
        return task if task is not None else round_end

    def detach(self, sub: Subscription) -> Stopped | None:
        """Drop ``sub``; when it was the last, cancel the poll and return its task to await."""
        self._subscribers.pop(sub, None)
        if self._subscribers:
            return None
        return self._stop()


class Subscription:
    """A consumer of a hub: the round it saw last, the future it waits on, its emit policy.

    The policy is :meth:`offer` (subclasses override it). A subscription with ``follows``
    set declares the common policy, which the hub applies inline: holding the previous round,
    it emits the next one if it changed (any round, with ``heartbeat``).
    """

    # Slots: a shared poll may have thousands of subscribers (#13: <= 2 KB each).
    __slots__ = ("arrived_at", "closed", "emits", "follows", "heartbeat", "hub", "seen", "waiter")

    hub: Hub

    def __init__(self, *, follows: bool = True, heartbeat: bool = False) -> None:
        self.closed = False
        self.follows = follows
        self.heartbeat = heartbeat
        #: the last round this consumer looked at (emitted or not)
        self.seen: Round | None = None
        #: what the consumer waits on: the hub completes it with the item to emit (or an error)
        self.waiter: asyncio.Future[Any] | None = None
        self.emits = 0
        #: the state when this consumer arrived (None: the poll's first round, still to come)
        self.arrived_at: Round | None = None

    @property
    def baseline(self) -> Round | None:
        """The round a consumer that skips its initial value compares the next ones with."""
        return self.arrived_at if self.arrived_at is not None else self.hub.first

    def offer(self, round_: Round) -> Any:
        """What ``round_`` gives this consumer (``SKIP``: nothing); records it as seen.

        The base policy: the first round, then changed ones (a skipped-over round is compared
        by value with the one this consumer saw).
        """
        seen, self.seen = self.seen, round_
        if seen is None:
            return round_.item
        # After skipped rounds (latest-wins delivery) compare with what this consumer holds.
        in_step = round_.seq == seen.seq + 1
        changed = round_.changed if in_step else round_.value != seen.value
        return round_.item if changed or self.heartbeat else SKIP

    def ready(self) -> Any:
        """The item of a round this consumer has not looked at, else ``SKIP`` (then wait on
        a :attr:`waiter`); raises the poll's fatal error, if any."""
        latest = self.hub.latest
        if latest is not None and latest is not self.seen:
            item = self.offer(latest)
            if item is not SKIP:
                self.emits += 1
                return item
        if self.hub.error is not None:
            raise self.hub.error
        return SKIP

    def interrupt(self, error: BaseException) -> None:
        """Raise ``error`` to the consumer if it waits (the poll failed, or a close)."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            self.waiter = None
            waiter.set_exception(error)
            # Retrieved by whoever awaits it; if nobody does (cancelled meanwhile), asyncio
            # must not log it as an exception never retrieved: every consumer gets it.
            waiter.exception()

    def close_nowait(self) -> Stopped | None:
        if self.closed:
            return None
        self.closed = True
        self.interrupt(StopAsyncIteration())
        return self.hub.detach(self)

    async def aclose(self) -> None:
        """Leave the hub; if this was the last consumer, wait until the poll has stopped."""
        task = self.close_nowait()
        if task is not None:
            # asyncio.wait does not re-raise the task's cancellation, only our own.
            await asyncio.wait({task})
