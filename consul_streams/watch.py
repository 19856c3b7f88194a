"""``watch()``: turn a re-issuable Query into a stream of ``(value, meta)`` changes.

The engine (``_engine.py``) follows Consul's blocking-query rules for clients: first read
non-blocking, thread ``X-Consul-Index`` (or the content hash), reset to a non-blocking read when
the index goes backwards or after an error, rate-limit successful rounds with a token bucket,
retry retriable errors with exponential backoff and full jitter. Identical watches on one
client share one long-poll (``_share.py``) in the client's engine (``_watch_engine.py``), which
ends them with ``ClientClosed`` when the client closes. This module decides, per consumer, what
to emit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from aiostream.core import Stream, Streamer

from consul_streams._clock import Clock, MonotonicClock
from consul_streams._engine import Backoff, PollConfig, RateLimit, Round, WatchStats
from consul_streams._health import Health, HealthMonitor
from consul_streams._identity import Identity
from consul_streams._parse import parse_bool, parse_wait
from consul_streams._query import BlockingMode, Query
from consul_streams._rules import DEFAULT_WAIT, MAX_WAIT
from consul_streams._share import SKIP, Subscription
from consul_streams._watch_engine import WatchEngine
from consul_streams.exceptions import ConsulError, InvalidArgument
from consul_streams.typing import Duration, Meta

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "Backoff",
    "RateLimit",
    "WatchIterator",
    "WatchStats",
    "WatchStream",
    "watch",
]

T = TypeVar("T")
log = logging.getLogger("consul_streams.watch")

#: Consul's suggested token bucket: a burst of 2, then (here) one round per second.
DEFAULT_RATE_LIMIT = RateLimit()
DEFAULT_BACKOFF = Backoff()


class _Consumer(Subscription):
    """One iteration: its emit policy (first result, changes only, heartbeats, new events), its
    place in the hub and its lifecycle.

    It holds its :class:`WatchStream` only until it subscribes: a running iteration keeps
    the hub's objects alive, not its own watch's Query and settings (#13: memory per shared
    subscriber).
    """

    __slots__ = ("_ids", "_own", "_source", "_unlisten", "ended", "initial", "loop", "new")

    def __init__(self, stream: WatchStream[Any]) -> None:
        events = stream.query.mode is BlockingMode.EVENT
        super().__init__(follows=not events, heartbeat=stream.heartbeat)
        self._source: WatchStream[Any] | None = stream
        self.initial = stream.initial
        #: events: emit only unseen events (None: not an event watch); "all": the buffer first
        self.new: str | None = stream.events if events else None
        self._ids: set[str] | None = None
        #: the loop of the subscription (None: not subscribed yet)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._own: WatchEngine | None = None
        self._unlisten: Callable[[], None] | None = None
        self.ended = False

    # --- the emit policy (called by the hub for a waiting consumer, else by ready()) ---------

    def offer(self, round_: Round) -> Any:
        """The item to emit for ``round_``, or ``SKIP``.

        With ``initial=False`` (and for new events) later rounds are compared with the state
        when this consumer arrived (:attr:`baseline`), even if latest-wins delivery skipped it.
        """
        if self.new is not None:
            return self._offer_events(round_)
        if self.seen is None and not self.initial:
            base = self.baseline
            self.seen = base = base if base is not None else round_
            if round_.seq <= base.seq:  # the skipped initial value itself
                return SKIP
        return super().offer(round_)

    def _offer_events(self, round_: Round) -> Any:
        """New events as a list. The first emission (``initial``) is the whole buffer with
        ``events="all"``, else the events fired since this consumer arrived (often ``[]``)."""
        self.seen = round_
        events = round_.value
        first = self._ids is None
        if self._ids is None:
            if self.new == "all" and self.initial:
                self._ids = {str(e["ID"]) for e in events}
                return (list(events), round_.meta)
            base = self.baseline
            if base is None:
                base = round_
            self._ids = {str(e["ID"]) for e in base.value}
            if round_.seq <= base.seq and not self.initial:
                return SKIP
        # IDs, not the pseudo-index: that index is not ordered, so "newer" means "unseen".
        new = [e for e in events if str(e["ID"]) not in self._ids]
        self._ids = {str(e["ID"]) for e in events}
        if new or self.heartbeat or (first and self.initial):
            return (new, round_.meta)
        return SKIP

    # --- the lifecycle ----------------------------------------------------------------------

    def subscribe(self) -> None:
        """Join the hub of this iteration's query (the first ``anext()`` does)."""
        stream, self._source = self._source, None
        if stream is None:  # closed before its first item
            raise StopAsyncIteration
        engine = stream.query.engine
        if not isinstance(engine, WatchEngine):
            # A Query built on a bare transport has no client engine: poll alone, in an
            # engine this iteration owns and closes.
            engine = self._own = WatchEngine(name=f"watch engine of {stream.query!r}")
        loop = asyncio.get_running_loop()
        engine.subscribe(stream.query, stream.config, share=stream.share, subscription=self)
        self.loop = loop  # subscribed
        sink = stream.health_sink
        if sink is not None:
            # The poll's health, forwarded as it changes (a shared poll's is everyone's).
            health = self.hub.poller.health
            sink.set(health.health)
            self._unlisten = health.add_listener(sink.set)

    def interrupt(self, error: BaseException) -> None:
        # An error handed over ends the iteration (as it ends a generator): the next anext()
        # leaves the hub and raises StopAsyncIteration.
        if self.waiter is not None and not self.waiter.done():
            self.ended = True
        super().interrupt(error)

    def __aiter__(self) -> _Consumer:
        return self

    def __anext__(self) -> Awaitable[Any]:
        raise TypeError("iterate the WatchIterator, not its consumer")

    async def aclose(self) -> None:
        """End this iteration: leave the hub (stopping the poll if it was the last consumer)
        and wait until the poll has stopped."""
        self._source = None
        self.ended = True
        try:
            if self.loop is not None and not self.closed:
                if self._unlisten is not None:
                    self._unlisten()
                await Subscription.aclose(self)
        finally:
            own, self._own = self._own, None
            if own is not None:
                await own.aclose()

    def _abandon(self) -> None:
        """Leave without waiting: the poll is cancelled at once if nobody else listens.

        Runs on the event loop, never inside the hub's walk over its consumers.
        """
        self._source = None
        self.ended = True
        if self.loop is not None and not self.closed:
            if self._unlisten is not None:
                self._unlisten()
            # An owned engine's only task is this poll: stopping the poll ends the engine.
            self.close_nowait()

    def abandon(self) -> None:
        """Leave soon, from anywhere (the iterator was dropped: a finaliser runs this).

        On the loop's thread outside the hub's walk it leaves at once, so a cancelled consumer
        task has cancelled the poll by the time it ends; elsewhere, as asyncio finalises async
        generators, it schedules the leaving on the loop (a no-op once the loop is closed: its
        tasks, the poll's included, are gone already).
        """
        loop = self.loop
        if loop is None or self.closed:
            self._source = None
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # another thread (the sync layer's callers), or no loop at all
            running = None
        try:
            if running is not loop:
                loop.call_soon_threadsafe(self._abandon)
            elif self.hub.busy:
                loop.call_soon(self._abandon)
            else:
                self._abandon()
        except RuntimeError:
            pass  # the loop is closed

    def stats(self) -> WatchStats:
        stats = self.hub.stats.copy() if self.loop is not None else WatchStats()
        stats.emits = self.emits
        return stats

    def health(self) -> Health:
        return self.hub.poller.health.health if self.loop is not None else Health()


class WatchIterator(Streamer[T]):
    """One iteration of a watch (an aiostream ``Streamer``) that is its own context, so plain
    ``async for`` over a watch is clean; ``stats`` counts this iteration.

    aiostream warns when a streamer is iterated outside ``async with``; for a watch, iterating
    is the context: the first ``anext()`` enters it (through aiostream's public
    ``__aenter__``), the poll starts with the first item and stops when the iterator is closed
    or garbage-collected (breaking out of ``async for``, or a task cancelled while it waited).
    Like an async generator's, an iteration whose ``anext()`` was cancelled or raised is over:
    the next ``anext()`` raises ``StopAsyncIteration``.

    Note: while the iteration waits for a round, ``anext()`` returns the future that the poll
    completes with the item: no coroutine or generator of ours runs per item (#13, fan-out).
    """

    # Slots for what the hot path reads (aiostream's own state lives in the instance dict).
    __slots__ = ("_closed", "_consumer", "_entered", "_open")

    def __init__(self, consumer: _Consumer) -> None:
        super().__init__(consumer)
        self._consumer = consumer
        self._entered = False
        self._closed = False
        #: entered, subscribed and not closed: the fast path of ``__anext__``
        self._open = False

    async def __aenter__(self) -> WatchIterator[T]:
        if self._closed:
            raise RuntimeError("this watch iterator is closed and cannot be iterated")
        if not self._entered:
            self._entered = True
            await super().__aenter__()
        return self

    async def __aexit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        self._closed = True
        self._open = False
        # aiostream closes its iterator (our consumer: ``aclose()``) and never suppresses an
        # exception that the iterator cannot take (ours has no ``athrow``).
        return await super().__aexit__(typ, value, traceback)

    def __anext__(self) -> Awaitable[T]:
        consumer = self._consumer
        if self._open and consumer.waiter is None and not consumer.ended:
            hub = consumer.hub
            if hub.latest is consumer.seen and hub.error is None:
                if hub.solo:
                    if hub.driver is None:
                        # The only consumer, and no poll task: run the rounds right here.
                        return self._drive()
                else:
                    # Nothing new: wait for the future the poll completes with our next item.
                    waiter = consumer.waiter = consumer.loop.create_future()  # type: ignore[union-attr]
                    return waiter
        return self._next()

    async def _next(self) -> T:
        """Every other case: the first item, a ready round, errors, the end."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed and cannot be iterated")
        if not self._entered:
            await self.__aenter__()
        consumer = self._consumer
        waiter = consumer.waiter
        if consumer.loop is not None and consumer.hub.driving is consumer:
            raise RuntimeError("anext(): this watch iterator is already waiting for an item")
        if waiter is not None:
            if not waiter.done():
                raise RuntimeError("anext(): this watch iterator is already waiting for an item")
            consumer.waiter = None
            if waiter.cancelled():  # the previous anext() was cancelled: the iteration is over
                consumer.ended = True
        item: Any
        try:
            if consumer.ended:
                raise StopAsyncIteration
            if consumer.loop is None:
                consumer.subscribe()
                self._open = not self._closed
            item = consumer.ready()
            if item is SKIP:
                if consumer.hub.solo:
                    return await self._drive()
                # Waiting happens here, outside any task group; the poll runs in the hub,
                # which decides for us and completes the waiter with our item.
                waiter = consumer.waiter = consumer.loop.create_future()  # type: ignore[union-attr]
                item = await waiter
        except GeneratorExit:  # closed unfinished (its task was collected): no awaiting here
            consumer.abandon()
            raise
        except BaseException:
            # An error, the end, or our task's cancellation: leave the poll before raising.
            await consumer.aclose()
            raise
        return item  # type: ignore[no-any-return]

    async def _drive(self) -> T:
        """Run the poll's rounds in this task until one gives this consumer an item (#13).

        The hub is solo: this iteration is its only consumer and it has no poll task. Each
        round resumes this task directly when its answer arrives. A consumer who joins
        meanwhile starts the hub's poll task, which takes over after this round; from then on
        this iteration waits like every other consumer.
        """
        consumer = self._consumer
        hub = consumer.hub
        task = asyncio.current_task()
        assert task is not None
        try:
            while True:
                round_: Round | None = None
                error: Exception | None = None
                poller = hub.begin_round(consumer, task)
                try:
                    round_ = await poller.step()
                except asyncio.CancelledError:
                    if not hub.aborted(task):
                        raise  # our own cancellation: the iteration is over
                    # The hub stopped (this iteration closed elsewhere, or the client): said below.
                except Exception as exc:  # the poll's end: every consumer raises it
                    error = exc
                finally:
                    hub.end_round()
                if error is not None:
                    hub.fail(error)
                    error = None
                elif round_ is not None:
                    hub.publish(round_)  # to consumers who joined during the round
                if consumer.ended:
                    raise StopAsyncIteration  # closed meanwhile (aclose() from elsewhere)
                item = consumer.ready()  # raises the poll's error
                if item is not SKIP:
                    return item  # type: ignore[no-any-return]
                if not hub.solo:  # another consumer joined: the hub's task polls now
                    waiter = consumer.waiter = consumer.loop.create_future()  # type: ignore[union-attr]
                    return await waiter  # type: ignore[no-any-return]
        except GeneratorExit:
            consumer.abandon()
            raise
        except BaseException:
            await consumer.aclose()
            raise

    async def athrow(self, exc: Exception) -> T:
        """Raise ``exc`` here, as at a generator's ``yield``: the iteration ends with it."""
        await self.aclose()
        raise exc

    def __del__(self) -> None:
        # Dropped without being closed (``break`` out of ``async for``): leave the poll.
        consumer = getattr(self, "_consumer", None)
        if consumer is not None and not self._closed:
            consumer.abandon()

    @property
    def stats(self) -> WatchStats:
        """Counters of this iteration (see :class:`WatchStats`)."""
        return self._consumer.stats()

    @property
    def health(self) -> Health:
        """The poll's health: failing since when, the last error (see :class:`Health`)."""
        return self._consumer.health()


class WatchStream(Stream[tuple[T, Meta]], Generic[T]):
    """A stream of ``(value, meta)`` for one watched Query (an aiostream ``Stream``).

    Use it with ``async for``, ``async with watch(q) as s: async for ...`` or pipe it into
    aiostream operators (``watch(q) | ops.debounce(1) | pipe.map(f)``). Each iteration is an
    independent consumer.

    Note: values are latest-wins: a slow consumer skips intermediate states but always gets the
    newest; nothing is buffered beyond one state. A value equal to the last emitted one is not
    emitted again (except with ``heartbeat=True``). Closing, breaking out or cancelling aborts
    the in-flight request when this was the last consumer of the poll.
    """

    def __init__(
        self,
        query: Query[T],
        config: PollConfig,
        *,
        initial: bool,
        heartbeat: bool,
        share: bool,
        events: Literal["new", "all"],
        health: HealthMonitor | None = None,
    ) -> None:
        # aiostream's Stream.__init__ is not called: all it does is build (eagerly, through
        # the factory) the iterator its own __aiter__ hands out first, and we override
        # __aiter__ and stream(). Each iteration builds its consumer when it starts (#13).
        self.query = query
        #: where each iteration publishes its poll's health (``watch(health=...)``)
        self.health_sink = health
        self.config = config
        self.initial = initial
        self.heartbeat = heartbeat
        self.share = share
        self.events = events
        self._consumer: _Consumer | None = None
        self._entered: WatchIterator[tuple[T, Meta]] | None = None

    def _streamer(self) -> WatchIterator[tuple[T, Meta]]:
        consumer = self._consumer = _Consumer(self)
        return WatchIterator(consumer)

    def __aiter__(self) -> WatchIterator[tuple[T, Meta]]:
        return self._streamer()

    def stream(self) -> WatchIterator[tuple[T, Meta]]:
        return self._streamer()

    async def __aenter__(self) -> WatchIterator[tuple[T, Meta]]:  # type: ignore[override]
        if self._entered is not None:
            raise RuntimeError("this watch is already open; iterate it or watch() again")
        self._entered = self._streamer()
        return await self._entered.__aenter__()

    async def __aexit__(  # type: ignore[override]
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Returns None (never suppresses): a watch's iteration does not swallow errors.
        entered, self._entered = self._entered, None
        if entered is not None:
            await entered.__aexit__(typ, value, traceback)

    @property
    def identity(self) -> Identity | None:
        """How the watched value splits into named items (the Query's declaration)."""
        return self.query.identity

    @property
    def stats(self) -> WatchStats:
        """Counters of the most recent iteration: requests, emits, resets, retries, errors..."""
        return self._consumer.stats() if self._consumer is not None else WatchStats()

    @property
    def health(self) -> Health:
        """The health of the most recent iteration's poll (healthy before the first)."""
        return self._consumer.health() if self._consumer is not None else Health()

    def __repr__(self) -> str:
        return f"<WatchStream {self.query!r} wait={self.config.wait:g}s>"


def watch(
    query: Query[T],
    *,
    wait: Duration | None = None,
    initial: bool = True,
    heartbeat: bool = False,
    rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
    backoff: Backoff = DEFAULT_BACKOFF,
    retry: Callable[[ConsulError], bool] | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    share: bool = True,
    events: Literal["new", "all"] = "new",
    health: HealthMonitor | None = None,
) -> WatchStream[T]:
    """Watch ``query``: emit its value first, then every time it changes.

    ``wait``: how long each blocking request may be held (Go duration, timedelta or seconds;
    default: the query's seed wait, else 5 minutes; always sent explicitly).
    ``initial=False`` skips the first value; ``heartbeat=True`` also emits when a blocking
    request returns unchanged. ``rate_limit``: token bucket on successful rounds (``None``
    disables). ``backoff``: exponential backoff with full jitter for retried errors.
    ``retry``: ``exc -> bool`` deciding which errors are retried (default: ``exc.retriable``,
    the error policy of docs/contracts.md); errors not retried end the stream by raising.
    ``health``: a :class:`~consul_streams._health.HealthMonitor` that each iteration keeps
    up to date with the poll's :class:`Health` (``stream.health`` reads it too). Each failed
    attempt is logged at WARNING on ``consul_streams.watch`` (rate-limited), a recovery at
    INFO. ``clock``/``rng``: injectable time and
    randomness. ``share``: identical watches on one client share one long-poll.
    ``events`` (event lists only): ``"new"`` (default) emits only events fired after the watch
    started (its first emission, with ``initial=True``, is ``[]``: "subscribed, nothing new");
    ``"all"`` first emits the agent's whole buffer, as Consul's Go watch does. Every emitted
    event value is the list of events not emitted before, matched by event ID.

    Note: see :class:`WatchStream` for buffering, duplicates and cancellation.
    """
    if not isinstance(query, Query):
        raise InvalidArgument("query", f"expected a Query (e.g. client.kv.get(key)), got {query!r}")
    if wait is None:
        wait_s = query.wait if query.wait and query.wait > 0 else DEFAULT_WAIT
        wait_s = min(wait_s, MAX_WAIT)
    else:
        wait_s = parse_wait(wait)
    for name, flag in (("initial", initial), ("heartbeat", heartbeat), ("share", share)):
        parse_bool(flag, name)
    if rate_limit is not None and not isinstance(rate_limit, RateLimit):
        raise InvalidArgument(
            "rate_limit", f"expected RateLimit(burst=, per_second=) or None, got {rate_limit!r}"
        )
    if not isinstance(backoff, Backoff):
        raise InvalidArgument("backoff", f"expected Backoff(base=, cap=), got {backoff!r}")
    if retry is not None and not callable(retry):
        raise InvalidArgument("retry", f"expected a callable exc -> bool or None, got {retry!r}")
    if clock is not None and not isinstance(clock, Clock):
        raise InvalidArgument("clock", f"expected a Clock (now(), sleep()) or None, got {clock!r}")
    if rng is not None and not isinstance(rng, random.Random):
        raise InvalidArgument("rng", f"expected a random.Random or None, got {rng!r}")
    if query.mode is BlockingMode.NONE and rate_limit is None:
        raise InvalidArgument(
            "rate_limit", "a non-blocking query is polled at the rate limit: it cannot be None"
        )
    if events not in ("new", "all"):
        raise InvalidArgument("events", f'expected "new" or "all", got {events!r}')
    if health is not None and not isinstance(health, HealthMonitor):
        raise InvalidArgument("health", f"expected a HealthMonitor or None, got {health!r}")
    config = PollConfig(
        wait=wait_s,
        rate_limit=rate_limit,
        backoff=backoff,
        retry=retry,
        clock=clock if clock is not None else _DEFAULT_CLOCK,
        rng=rng if rng is not None else _DEFAULT_RNG,
    )
    log.debug("watch %r wait=%gs share=%s", query, wait_s, share)
    return WatchStream(
        query,
        config,
        initial=initial,
        heartbeat=heartbeat,
        share=share,
        events=events,
        health=health,
    )


# Shared defaults keep PollConfig.sharing_key() equal across watches that use them.
_DEFAULT_CLOCK: Clock = MonotonicClock()
_DEFAULT_RNG = random.Random()
