"""The blocking-query loop behind ``watch()``: index/hash threading, resets, backoff, rate limit.

One :class:`Poller` re-issues one :class:`~consul_streams._query.Query` forever and reports
every successful round (changed or not) to a callback; deciding what to emit is the consumer's
job (``watch.py``), so several consumers with different emit policies can share one poll.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

from consul_streams._budget import Lease, LongPollBudget
from consul_streams._clock import Clock
from consul_streams._health import HealthMonitor
from consul_streams._policy import WATCH_NONBLOCKING_TIMEOUT, FailureLog, check_index, detach
from consul_streams._query import BlockingMode, Query, Request, Response
from consul_streams.exceptions import ConsulError, InvalidArgument
from consul_streams.typing import Meta

__all__ = [
    "Backoff",
    "Cover",
    "PollConfig",
    "Poller",
    "RateLimit",
    "Round",
    "TokenBucket",
    "WatchStats",
]

log = logging.getLogger("consul_streams.watch")

# The modes as module names: a class attribute (``BlockingMode.INDEX``) costs about five times
# a global to read on Python 3.11, and a round reads them several times (#13).
_INDEX, _HASH, _EVENT, _NONE = (
    BlockingMode.INDEX,
    BlockingMode.HASH,
    BlockingMode.EVENT,
    BlockingMode.NONE,
)

RetryPolicy = Callable[[ConsulError], bool]


def _positive_number(value: object, parameter: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidArgument(parameter, f"expected a positive number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RateLimit:
    """Token bucket for successful rounds: ``burst`` rounds at once, then ``per_second``.

    Consul's guidance: proceed without waiting in the happy case, degrade into bounded polling
    when the data churns.
    """

    burst: int = 2
    per_second: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise InvalidArgument("rate_limit", f"burst must be an int >= 1, got {self.burst!r}")
        _positive_number(self.per_second, "rate_limit.per_second")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n sleeps ``U(0, min(cap, base * 2**n))``."""

    base: float = 0.5
    cap: float = 30.0

    def __post_init__(self) -> None:
        base = _positive_number(self.base, "backoff.base")
        cap = _positive_number(self.cap, "backoff.cap")
        if cap < base:
            raise InvalidArgument("backoff", f"cap ({cap}) must be >= base ({base})")

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the sleep after ``attempt`` consecutive failures (0-based)."""
        # 2**attempt overflows floats eventually; the cap is reached long before.
        return self.cap if attempt >= 64 else min(self.cap, self.base * 2.0**attempt)

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))


class TokenBucket:
    """A token bucket read from an injectable clock; starts full."""

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        self._limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._stamp: float | None = None

    def _refill(self) -> None:
        now = self._clock.now()
        if self._stamp is not None:
            elapsed = max(now - self._stamp, 0.0)
            self._tokens = min(
                float(self._limit.burst), self._tokens + elapsed * self._limit.per_second
            )
        self._stamp = now

    async def take(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds slept."""
        self._refill()
        waited = 0.0
        if self._tokens < 1.0:
            waited = (1.0 - self._tokens) / self._limit.per_second
            await self._clock.sleep(waited)
            self._refill()
            # A clock may wake us a hair early (float rounding); never go below zero for long.
            self._tokens = max(self._tokens, 1.0)
        self._tokens -= 1.0
        return waited


# Slots: one per poll, alive as long as the watch (#13, memory per watch).
@dataclass(slots=True)
class WatchStats:
    """Counters of one watch (the shared poll's counters plus this consumer's emits)."""

    requests: int = 0
    emits: int = 0
    unchanged: int = 0  #: successful rounds whose value equalled the previous round's
    index_resets: int = 0
    retries: int = 0
    rate_limited: int = 0  #: rounds delayed by the token bucket
    #: blocking requests aborted to give their long-poll slot to a waiting watch (re-sent with
    #: the same index; not errors)
    preempted: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_index: int = 0
    last_hash: str | None = None
    last_contact: timedelta | None = None

    def copy(self) -> WatchStats:
        copied = replace(self)
        copied.errors = dict(self.errors)
        return copied


@dataclass(frozen=True)
class PollConfig:
    """Everything that changes how a poll runs (and so must match for two watches to share)."""

    wait: float
    rate_limit: RateLimit | None
    backoff: Backoff
    retry: RetryPolicy | None
    clock: Clock
    rng: random.Random

    def sharing_key(self) -> Hashable:
        # The clock and RNG themselves (hashed by identity), never their id(): an id can be
        # re-used by a new object once the old one is collected.
        return (self.wait, self.rate_limit, self.backoff, self.retry, self.clock, self.rng)


class Round:
    """One successful answer: ``seq`` counts rounds; ``changed``: differs from the previous one.

    ``item`` is the ``(value, meta)`` pair a watch emits, built once for every consumer.
    """

    __slots__ = ("changed", "item", "meta", "seq", "value")

    def __init__(self, seq: int, value: Any, meta: Meta, changed: bool) -> None:
        self.seq = seq
        self.value = value
        self.meta = meta
        self.changed = changed
        self.item = (value, meta)

    def __repr__(self) -> str:
        return f"<Round {self.seq} changed={self.changed}>"


class Cover(Protocol):
    """What a Poller asks of the engine's prefix cover (``_cover.PrefixCover``), which sits
    above it: whether a poll of ``query`` may wait for a slot passively."""

    def accepts(self, query: Query[Any]) -> bool: ...


class Poller:
    """Re-issues a query forever, threading the index (or hash) by Consul's client rules."""

    # Slots: one per poll, alive as long as the watch (#13, memory per watch).
    __slots__ = (
        "_bucket",
        "_budget",
        "_cover",
        "_failure_log",
        "_failures",
        "_hash",
        "_index",
        "_owe_token",
        "_previous",
        "_round_timeout",
        "_seq",
        "_unsettled",
        "config",
        "health",
        "query",
        "stats",
        "stopping",
    )

    def __init__(
        self,
        query: Query[Any],
        config: PollConfig,
        budget: LongPollBudget | None = None,
        cover: Cover | None = None,
    ) -> None:
        """``budget``: the owning engine's long-poll budget (None: long-polls are not limited);
        ``cover``: its prefix cover, which serves this poll while it waits for a slot."""
        self.query = query
        self.config = config
        self.stats = WatchStats()
        self._index = max(query.index, 0)
        self._hash = query.hash
        self._failures = 0
        self._seq = 0
        self._previous: tuple[Any] | None = None
        #: the last round's meta until the stats are read (:attr:`settled_stats`)
        self._unsettled: Meta | None = None
        #: a successful round owes the rate limit a token, taken before the next request
        self._owe_token = False
        self._bucket = TokenBucket(config.rate_limit, config.clock) if config.rate_limit else None
        self._budget = budget
        self._cover = cover
        #: a blocking round's deadline: the query and the wait never change, so neither does it
        self._round_timeout = query.timeout_for(config.wait, True)
        #: set by the hub before it cancels the poll: a cancellation then is never a preemption
        self.stopping = False
        #: failing, since when, the last error: published for recipes and ``stream.health``
        self.health = HealthMonitor(config.clock)
        self._failure_log = FailureLog(log, query, config.clock)

    def _should_retry(self, exc: ConsulError) -> bool:
        policy = self.config.retry
        return exc.retriable if policy is None else bool(policy(exc))

    def _thread(self, meta: Meta) -> None:
        """Compute the next request's index/hash from an answer's meta."""
        mode = self.query.mode
        if mode is _HASH:
            self._hash = meta.content_hash
            self.stats.last_hash = meta.content_hash
            return
        new = meta.index
        self.stats.last_index = new
        if new < 1:
            # Docs: always safe to block on 1; an index of 0 would make every read non-blocking.
            new = 1
        if mode is _INDEX and new < self._index:
            # Docs: a lower index (snapshot restore, restart, reaped tombstone) restarts the loop.
            # Events are excluded: their UUID-derived index is not ordered.
            self.stats.index_resets += 1
            log.debug("%r: index went back from %d to %d, re-reading", self.query, self._index, new)
            self._index = 0
            return
        self._index = new

    def _blocking(self) -> bool:
        mode = self.query.mode
        if mode is _NONE:
            return False
        if mode is _HASH:
            return bool(self._hash)
        return self._index > 0

    def _nonblocking_timeout(self) -> float:
        """The deadline of a non-blocking read: short, a dead peer must not hold the watch."""
        default = getattr(self.query.transport, "timeout", None)
        if isinstance(default, (int, float)) and default > 0:
            return min(float(default), WATCH_NONBLOCKING_TIMEOUT)
        return WATCH_NONBLOCKING_TIMEOUT

    def _unleased(self) -> tuple[Request, float | None]:
        """The request and deadline of a round that takes no long-poll slot."""
        query = self.query
        if query.mode is _NONE:
            return query.request, self._nonblocking_timeout()
        if self._blocking():  # no budget to lease from
            return self._blocking_round()
        # Non-blocking reads return at once: they take no long-poll slot.
        request = query.build(index=self._index, hash=self._hash, wait=self.config.wait)
        return request, self._nonblocking_timeout()

    def _blocking_round(self) -> tuple[Request, float | None]:
        """The request of a blocking round at the current index or hash, and its deadline."""
        query = self.query
        request = query.build(index=self._index, hash=self._hash, wait=self.config.wait)
        if request is query.request:  # nothing to block on after all: query.timeout_for's rule
            return request, None
        return request, self._round_timeout

    def cover_state(self) -> tuple[str, int, bool]:
        """For the prefix cover: this poll's key, the index it last read, whether it existed."""
        cover = self.query.cover
        key = cover.key if cover is not None else ""
        return key, self._index, self._previous is not None and self._previous[0] is not None

    def _preempted(self, lease: Lease) -> bool:
        """Whether a CancelledError is only the budget's preemption (not a real cancel).

        The budget's cancel request is taken back either way (Python >= 3.11 counts them), so
        what is left is the real one's: the hub's (``stopping``), which it takes back itself
        when the round ran in a consumer's task, or the task owner's.
        """
        if not lease.preempted:
            return False
        task = asyncio.current_task()
        uncancel = getattr(task, "uncancel", None)
        if uncancel is None:  # Python 3.10: no count; every poll runs in a task of the hub's
            return not self.stopping
        # More requests than the budget's means a real one arrived too.
        return uncancel() == 0 and not self.stopping

    def _failed(self, exc: ConsulError) -> float:
        """Count and report a failed attempt; the backoff delay, or raise ``exc`` if final."""
        kind = type(exc).__name__
        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1
        retrying = self._should_retry(exc)
        # A retried error is kept (health) but never raised: drop its frames.
        self.health.failed(detach(exc) if retrying else exc, retrying=retrying)
        if not retrying:
            self._failure_log.failed(exc, retrying=False)
            raise exc
        delay = self.config.backoff.delay(self._failures, self.config.rng)
        self._failure_log.failed(exc, retrying=True, delay=delay)
        self._failures += 1
        self.stats.retries += 1
        # After an error the agent may have restarted: the next read must not block.
        self._index, self._hash = 0, None
        log.debug("%r: %s, retry %d in %.3fs", self.query, kind, self._failures, delay)
        return delay

    @property
    def settled_stats(self) -> WatchStats:
        """:attr:`stats`, with the last round's LastContact read from its headers (parsing
        them is left out of the rounds, for when someone reads the stats)."""
        meta, self._unsettled = self._unsettled, None
        if meta is not None:
            self.stats.last_contact = meta.last_contact
        return self.stats

    async def run(self, publish: Callable[[Round], bool]) -> None:
        """Poll until cancelled, handing every round to ``publish``; raise the first error the
        retry policy does not retry.

        ``publish`` returns whether it woke a consumer: the poll then yields once before
        its next request, so the consumers get the value before a new request goes out.
        """
        while True:
            if publish(await self.step()):
                # Let the woken consumers take the value before anything else is done here,
                # above all before the next request is sent: that send (a syscall that wakes
                # the agent) would otherwise delay them.
                await asyncio.sleep(0)

    async def step(self) -> Round:
        """The next successful round: retries, backoff, resets and preemptions included;
        raises the first error the retry policy does not retry.

        Driven by a hub's task (:meth:`run`) or, for a watch with one consumer, by that
        consumer's own task (``_share.Hub``). The previous round's bookkeeping (the
        rate limit's token) is done here, after its consumers had it; its LastContact is
        read only when :attr:`settled_stats` are.
        """
        if self._owe_token:
            self._owe_token = False
            bucket = self._bucket
            if bucket is not None:
                waited = await bucket.take()
                if waited:
                    self.stats.rate_limited += 1
                    log.debug("%r: rate limited for %.3fs", self.query, waited)
        clock = self.config.clock
        query = self.query
        index_mode = query.mode in (_INDEX, _EVENT)
        requeued = False
        while True:
            if not requeued:  # a preempted request is sent again, not counted again
                self.stats.requests += 1
                log.debug("%r: request index=%d hash=%s", query, self._index, self._hash)
            requeued = False
            delay: float | None = None
            # The round is sent from here, not from a helper coroutine or Query.fetch: each
            # frame would stay alive with every parked poll and be resumed by every answer (#13).
            try:
                lease: Lease | None = None
                budget = self._budget
                if budget is None or query.mode is _NONE or not self._blocking():
                    request, timeout = self._unleased()
                else:
                    lease = budget.try_acquire()  # a free slot: no waiting, no cover check
                    if lease is None:
                        cover = self._cover
                        passive = cover is not None and cover.accepts(query)
                        acquiring = budget.acquire_passive(self) if passive else budget.acquire()
                        lease = await acquiring
                    if lease is None:
                        # Nudged by the prefix cover: the key changed; read it now, no slot.
                        request, timeout = query.request, None
                    else:
                        request, timeout = self._blocking_round()
                try:
                    response: Response | None = await query.transport.send(
                        request, timeout=timeout, ok_statuses=query.ok_statuses
                    )
                except asyncio.CancelledError:
                    if lease is None or not self._preempted(lease):
                        raise
                    response = None
                finally:
                    if lease is not None:
                        lease.release()
                if response is None:
                    # Preempted: not an error. Same index, no backoff; the lease queue is
                    # FIFO, so this poll goes to the back and every other waiting watch is
                    # served first.
                    self.stats.preempted += 1
                    log.debug("%r: preempted, re-queued with index=%d", query, self._index)
                    requeued = True
                    continue
                value, meta = query.decode(response), response.meta
                # Not kept through the next parked request: the body and headers are done.
                response = None
                if index_mode:
                    check_index(meta, query)
            except ConsulError as exc:
                response = None  # a body that failed to decode is not kept through the backoff
                delay = self._failed(exc)  # raises what is not retried
            if delay is not None:
                # Slept outside the except block: the error (its frames, the failed request's
                # connection and buffers) is not kept alive through the backoff.
                await clock.sleep(delay)
                continue
            if self._failures:
                self._failure_log.recovered()
                self._failures = 0
            if not self.health.health.ok:  # the hot path allocates nothing
                self.health.recovered()
            self._thread(meta)
            previous = self._previous
            changed = previous is None or previous[0] != value
            if not changed:
                self.stats.unchanged += 1
            self._previous = (value,)
            self._seq += 1
            self._unsettled = meta
            self._owe_token = True
            return Round(self._seq, value, meta, changed)
