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

import logging
import random
from collections.abc import AsyncIterator, Callable
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
from consul_streams._share import Subscription
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
_SKIP = object()


class _Consumer:
    """One iteration's emit policy: first result, changes only, heartbeats, new events."""

    __slots__ = ("_last", "_last_seq", "_seen", "emits", "stream", "subscription")

    def __init__(self, stream: WatchStream[Any]) -> None:
        self.stream = stream
        self.subscription: Subscription | None = None
        self.emits = 0
        self._last: tuple[Any] | None = None
        #: the seq of the round ``_last`` came from
        self._last_seq = 0
        self._seen: set[str] | None = None

    def decide(self, round_: Round, baseline: Round | None) -> Any:
        """The value to emit for ``round_``, or ``_SKIP``.

        ``baseline`` is the state when this consumer arrived: with ``initial=False`` (and for
        new events) later rounds are compared with it, even if latest-wins delivery skipped it.
        """
        opts = self.stream
        if opts.query.mode is BlockingMode.EVENT:
            return self._decide_events(round_, baseline)
        if self._last is None:
            if opts.initial:
                self._last, self._last_seq = (round_.value,), round_.seq
                return round_.value
            base = baseline if baseline is not None else round_
            self._last, self._last_seq = (base.value,), base.seq
            if round_.seq <= base.seq:  # the skipped initial value itself
                return _SKIP
        if round_.seq == self._last_seq + 1:
            # The poll compared this round with the previous one, which this consumer holds:
            # one comparison per change for all the subscribers of a shared poll.
            changed = round_.changed
        else:  # latest-wins delivery skipped rounds: compare with what this consumer holds
            changed = round_.value != self._last[0]
        self._last, self._last_seq = (round_.value,), round_.seq
        if changed:
            return round_.value
        return round_.value if opts.heartbeat else _SKIP

    def _decide_events(self, round_: Round, baseline: Round | None) -> Any:
        """New events as a list. The first emission (``initial``) is the whole buffer with
        ``events="all"``, else the events fired since this consumer arrived (often ``[]``)."""
        opts = self.stream
        events = round_.value
        first = self._seen is None
        if self._seen is None:
            if opts.events == "all" and opts.initial:
                self._seen = {str(e["ID"]) for e in events}
                return list(events)
            base = baseline if baseline is not None else round_
            self._seen = {str(e["ID"]) for e in base.value}
            if round_.seq <= base.seq and not opts.initial:
                return _SKIP
        # IDs, not the pseudo-index: that index is not ordered, so "newer" means "unseen".
        new = [e for e in events if str(e["ID"]) not in self._seen]
        self._seen = {str(e["ID"]) for e in events}
        if new or opts.heartbeat or (first and opts.initial):
            return new
        return _SKIP

    async def run(self) -> AsyncIterator[tuple[Any, Meta]]:
        stream = self.stream
        engine, own = stream.query.engine, None
        if not isinstance(engine, WatchEngine):
            # A Query built on a bare transport has no client engine: poll alone, in an
            # engine this iteration owns and closes.
            engine = own = WatchEngine(name=f"watch engine of {stream.query!r}")
        try:
            sub = self.subscription = engine.subscribe(
                stream.query, stream.config, share=stream.share
            )
        except BaseException:
            if own is not None:
                await own.aclose()
            raise
        seq = 0
        unlisten = None
        sink = stream.health_sink
        if sink is not None:
            # The poll's health, forwarded as it changes (a shared poll's is everyone's).
            sink.set(sub.hub.poller.health.health)
            unlisten = sub.hub.poller.health.add_listener(sink.set)
        try:
            while True:
                # Waiting happens here, outside any task group; the poll runs in the hub. The
                # wait is inlined (no coroutine per round): fan-out wakes every subscriber.
                round_ = sub.ready(seq)
                if round_ is None:
                    await sub.waiter()
                    continue
                seq = round_.seq
                item = self.decide(round_, sub.baseline)
                if item is _SKIP:
                    continue
                self.emits += 1
                yield item, round_.meta
        finally:
            try:
                if unlisten is not None:
                    unlisten()
                await sub.aclose()
            finally:
                if own is not None:
                    await own.aclose()

    def stats(self) -> WatchStats:
        sub = self.subscription
        stats = sub.hub.stats.copy() if sub is not None else WatchStats()
        stats.emits = self.emits
        return stats

    def health(self) -> Health:
        sub = self.subscription
        return sub.hub.poller.health.health if sub is not None else Health()


class WatchIterator(Streamer[T]):
    """One iteration of a watch (an aiostream ``Streamer``) that is its own context, so plain
    ``async for`` over a watch is clean; ``stats`` counts this iteration.

    aiostream warns when a streamer is iterated outside ``async with``; for a watch, iterating
    is the context: the first ``anext()`` enters it (through aiostream's public
    ``__aenter__``), the poll starts with the first item and stops when the iterator is closed
    or garbage-collected (breaking out of ``async for``).
    """

    def __init__(self, aiterator: AsyncIterator[T], consumer: _Consumer) -> None:
        super().__init__(aiterator)
        self._consumer = consumer
        self._entered = False
        self._closed = False

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
        return await super().__aexit__(typ, value, traceback)

    async def __anext__(self) -> T:
        if not self._entered:
            await self.__aenter__()
        return await super().__anext__()

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
        super().__init__(self._factory)

    def _factory(self) -> AsyncIterator[tuple[T, Meta]]:
        return _Consumer(self).run()

    def _streamer(self) -> WatchIterator[tuple[T, Meta]]:
        # Not next(self._generator): aiostream keeps the first iterator referenced from the
        # stream until the next iteration, which would delay closing a watch left by `break`.
        consumer = self._consumer = _Consumer(self)
        return WatchIterator(consumer.run(), consumer)

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
        # Returns None (never suppresses): a watch's generator does not swallow errors.
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
