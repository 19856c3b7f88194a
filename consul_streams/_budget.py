"""The long-poll budget: how many blocking reads one transport may hold open at once.

A blocking read holds a connection for up to ``wait`` (5 minutes by default). If long-polls
could take every one of the transport's ``max_connections`` slots, writes and one-shot reads on
the same client would queue behind them for minutes, and so would watches beyond the cap.
So long-polls take a *lease* from a smaller budget first
(``max_connections - max(1, max_connections // 4)``, at least 1), which leaves slots for
everything else, and the transport's semaphore stays the hard cap on concurrent requests.

When a poller waits for a lease and none is free, the lease held longest is *preempted*, once it
has been held for ``min_hold`` seconds: its holder aborts the in-flight request and queues
again at the back, with the same index (nothing was lost: the agent had no change for it yet).
So every watch is polled at least every ~(watches / slots) * ``min_hold`` seconds and blocking
requests stay bounded by ``slots / min_hold`` per second.

A *passive* waiter (a single-key KV watch, see ``_cover.py``) takes no part in that rotation:
it waits for a slot in FIFO order like the others, but is not a reason to preempt anyone,
because the engine's prefix cover watches its key and *nudges* it (``acquire`` returns None:
read now without a slot) when the key changes. An *urgent* waiter (the cover's own read) goes
to the front and preempts the oldest lease at once. With only passive waiters, nothing is
timed: no CPU is spent while nothing changes.

Each client's :class:`~consul_streams._watch_engine.WatchEngine` owns one budget (slots from
the client's ``max_connections``, ``min_hold`` from ``Consul(min_hold=)``) and the rotation
timer it starts; closing the engine cancels that timer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from typing import Any

from consul_streams._clock import Clock, MonotonicClock
from consul_streams._tasks import TaskOwner
from consul_streams.exceptions import InvalidArgument

__all__ = ["DEFAULT_MIN_HOLD", "Lease", "LongPollBudget", "check_min_hold", "slots_for"]

#: Seconds a lease is held before a waiting poller may preempt it.
DEFAULT_MIN_HOLD = 1.0


def check_min_hold(value: object) -> float:
    """``min_hold`` in seconds: a number >= 0 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidArgument("min_hold", f"expected seconds >= 0, got {value!r}")
    return float(value)


def slots_for(max_connections: int) -> int:
    """Long-poll slots for a transport cap: a quarter (at least one) is kept for other requests."""
    return max(1, max_connections - max(1, max_connections // 4))


class Lease:
    """One long-poll slot, held from :meth:`LongPollBudget.acquire` until :meth:`release`."""

    __slots__ = ("_budget", "preempted", "since", "task")

    def __init__(self, budget: LongPollBudget) -> None:
        self._budget = budget
        #: when the holder started using it (None: granted, the holder has not resumed yet)
        self.since: float | None = None
        self.task: asyncio.Task[Any] | None = None
        #: set when a waiter took this slot away; the holder's task was cancelled for it
        self.preempted = False

    def release(self) -> None:
        """Give the slot back (to the oldest waiter, if any); idempotent."""
        self._budget._release(self)


class LongPollBudget:
    """A fair, preempting semaphore for blocking reads (see the module docstring).

    Note: a preempted holder sees ``CancelledError`` at its await point, with
    ``lease.preempted`` set; it must release the lease and may acquire again.
    """

    def __init__(
        self,
        slots: int,
        *,
        min_hold: float = DEFAULT_MIN_HOLD,
        clock: Clock | None = None,
        tasks: TaskOwner | None = None,
    ) -> None:
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise InvalidArgument("slots", f"expected an int >= 1, got {slots!r}")
        self.slots = slots
        self.min_hold = check_min_hold(min_hold)
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        #: owns the rotation timer (the engine's owner, or this budget's own)
        self._tasks = tasks if tasks is not None else TaskOwner("long-poll budget")
        #: leases in grant order (dicts keep insertion order: the first is the oldest)
        self._held: dict[Lease, None] = {}
        self._waiters: collections.deque[asyncio.Future[Lease | None]] = collections.deque()
        #: passive waiters and their tags (see the module docstring)
        self._passive: dict[asyncio.Future[Lease | None], Any] = {}
        self._urgent: set[asyncio.Future[Lease | None]] = set()
        #: called with (future, tag) when a passive waiter queues (the engine's prefix cover)
        self.on_passive: Callable[[asyncio.Future[Lease | None], Any], None] | None = None
        self._rotator: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None
        self.preemptions = 0

    def __repr__(self) -> str:
        return (
            f"<LongPollBudget held={len(self._held)}/{self.slots} "
            f"waiting={self.waiting} min_hold={self.min_hold:g}s>"
        )

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    @property
    def passive(self) -> int:
        """Waiters served by the prefix cover (never a reason to preempt)."""
        return sum(1 for f in self._passive if not f.done())

    def _active_waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done() and f not in self._passive)

    def passive_waiters(self) -> list[tuple[asyncio.Future[Lease | None], Any]]:
        """The passive waiters still queued, with their tags, oldest first."""
        return [(f, tag) for f, tag in self._passive.items() if not f.done()]

    def nudge(self, future: asyncio.Future[Lease | None]) -> None:
        """Wake a passive waiter without a lease (its ``acquire`` returns None)."""
        if not future.done():
            future.set_result(None)
        self._forget_waiter(future)

    def activate(self, future: asyncio.Future[Lease | None]) -> None:
        """Make a passive waiter an ordinary one (the cover cannot serve it): rotation resumes."""
        if self._passive.pop(future, None) is not None and not future.done():
            self._rebalance()

    @property
    def rotator(self) -> asyncio.Task[None] | None:
        """The task timing preemptions while pollers wait (tests await it to see it end)."""
        return self._rotator

    def try_acquire(self) -> Lease | None:
        """A lease at once when a slot is free and nobody queues, else None (never waits).

        The common case of :meth:`acquire` without its coroutines: a poll's every round (#13).
        """
        if len(self._held) < self.slots and not self._waiters:
            lease = self._grant()
            lease.since = self.clock.now()
            lease.task = asyncio.current_task()
            self._notify()
            return lease
        return None

    async def acquire(self, *, urgent: bool = False) -> Lease:
        """A lease, at once when a slot is free and nobody queues, else in FIFO order.

        ``urgent``: queue first and preempt the oldest lease at once (the prefix cover's read).
        """
        lease = await self._acquire(None, urgent)
        if lease is None:  # pragma: no cover (only passive waiters are nudged)
            raise RuntimeError("an active waiter was nudged")
        return lease

    async def acquire_passive(self, tag: object) -> Lease | None:
        """A lease like :meth:`acquire`, but waiting causes no preemption; None when
        :meth:`nudge` d instead (``on_passive(future, tag)`` is called once queued)."""
        return await self._acquire(tag, False)

    async def _acquire(self, passive: object, urgent: bool) -> Lease | None:
        if len(self._held) < self.slots and not self._waiters:
            lease = self._grant()
        else:
            future: asyncio.Future[Lease | None] = asyncio.get_running_loop().create_future()
            if urgent:
                self._waiters.appendleft(future)
                self._urgent.add(future)
            else:
                self._waiters.append(future)
            if passive is not None:
                self._passive[future] = passive
            self._rebalance()
            if passive is not None and self.on_passive is not None:
                self.on_passive(future, passive)
            try:
                granted = await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    granted = future.result()
                    if granted is not None:
                        granted.release()  # granted as we were cancelled: pass it on
                else:
                    future.cancel()
                    self._forget_waiter(future)
                raise
            finally:
                self._passive.pop(future, None)
                self._urgent.discard(future)
            if granted is None:
                return None
            lease = granted
        lease.since = self.clock.now()
        lease.task = asyncio.current_task()
        self._notify()
        return lease

    def _grant(self) -> Lease:
        lease = Lease(self)
        self._held[lease] = None
        return lease

    def _release(self, lease: Lease) -> None:
        if lease not in self._held:
            return
        del self._held[lease]
        if not self._waiters:  # the common case: nobody queues
            self._notify()
            return
        while self._waiters and len(self._held) < self.slots:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(self._grant())
        self._drop_done_waiters()
        self._notify()

    def _forget_waiter(self, future: asyncio.Future[Lease | None]) -> None:
        with contextlib.suppress(ValueError):  # already granted and popped
            self._waiters.remove(future)
        self._drop_done_waiters()

    def _drop_done_waiters(self) -> None:
        if not any(not f.done() for f in self._waiters):
            self._waiters.clear()
            rotator, self._rotator = self._rotator, None
            if rotator is not None and rotator is not asyncio.current_task():
                rotator.cancel()  # nobody waits: no timer may outlive the watches

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _rebalance(self) -> float | None:
        """Preempt old leases for the waiters; seconds until the next one is due (None: none)."""
        pending = sum(1 for lease in self._held if lease.preempted)
        wanted = self._active_waiting() - pending
        if wanted <= 0:
            return None
        urgent = sum(1 for f in self._urgent if not f.done()) - pending
        now = self.clock.now()
        due: float | None = None
        for lease in list(self._held):
            if wanted <= 0:
                break
            if lease.preempted or lease.since is None or lease.task is None:
                continue
            held_for = now - lease.since
            if held_for >= self.min_hold or urgent > 0:
                lease.preempted = True
                self.preemptions += 1
                wanted -= 1
                urgent -= 1
                lease.task.cancel()  # aborts the holder's request; it re-queues
            else:
                due = (
                    self.min_hold - held_for if due is None else min(due, self.min_hold - held_for)
                )
        if wanted > 0 and (self._rotator is None or self._rotator.done()):
            self._rotator = self._tasks.spawn(
                self._rotate(), name="consul_streams.long-poll rotation"
            )
        return due if wanted > 0 else None

    async def _rotate(self) -> None:
        """While pollers wait (passive ones excepted), preempt leases as they reach ``min_hold``."""
        while self._active_waiting():
            due = self._rebalance()
            if due is not None:
                await self.clock.sleep(due)
                continue
            # Nothing to time (every lease is already preempted or not yet started): wait for
            # a lease to start or end.
            if self._changed is None:
                self._changed = asyncio.Event()
            self._changed.clear()
            await self._changed.wait()
        if self._rotator is asyncio.current_task():
            self._rotator = None

    async def aclose(self) -> None:
        """Stop the rotation timer (the engine closes its pollers, which release their leases)."""
        self._rotator = None
        await self._tasks.aclose()
