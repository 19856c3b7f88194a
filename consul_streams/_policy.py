"""The error policy of watches and recipes: which failures are retried, what to fix, the logs.

The table (also in docs/contracts.md, "Error policy"):

=================================================  =========  ===================================
Failure                                            Retried?   Error
=================================================  =========  ===================================
connection refused / reset, TLS failure            yes        ``ConnectError``
no answer within the deadline (incl. a trickle)    yes        ``ReadTimeout``
429 Too Many Requests                              yes        ``RateLimited``
5xx                                                yes        ``ServerError``
2xx body that does not decode, truncated body      yes        ``DecodeError`` / ``ConnectError``
2xx blocking read without ``X-Consul-Index``       yes        ``DecodeError``
400 bad filter or parameter, and Consul's 500     no         ``BadRequest``
"Failed to create boolean expression evaluator"
403 token missing, unknown or without permission   no         ``PermissionDenied``
404 unknown endpoint                               no         ``NotFound``
other 4xx (405, 409, 413, ...)                     no         ``HTTPError`` subclasses
=================================================  =========  ===================================

Retried failures back off (``Backoff``) and re-read non-blocking, forever: a long-running watch
outlives any outage. The others end the stream at once: retrying cannot heal them. Every
failed attempt is logged at WARNING, rate-limited per watch (:class:`FailureLog`), and a
recovery at INFO. Nothing here ever sees the ACL token: errors carry redacted URLs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from consul_streams._clock import Clock
from consul_streams.exceptions import (
    BadRequest,
    ConsulError,
    DecodeError,
    HTTPError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from consul_streams.typing import Meta

__all__ = [
    "LOG_SUMMARY_INTERVAL",
    "WATCH_NONBLOCKING_TIMEOUT",
    "FailureLog",
    "check_index",
    "detach",
    "hint",
    "policy_retry",
    "widen",
]

#: Seconds between two WARNING summaries of one watch's failures.
LOG_SUMMARY_INTERVAL = 30.0
#: The deadline of a watch's non-blocking reads (the first read, the re-read after an error),
#: capped by the client's own timeout. A non-blocking read answers at once; one that does not
#: answer in 10 s hangs on a dead peer, and the watch is better off retrying.
WATCH_NONBLOCKING_TIMEOUT = 10.0

RetryPolicy = Callable[[ConsulError], bool]

_HINTS: tuple[tuple[type[ConsulError], str], ...] = (
    (BadRequest, "Consul rejected a parameter: check the filter expression and arguments"),
    (
        PermissionDenied,
        "the ACL token is missing, unknown or lacks permission: check token= / "
        "CONSUL_HTTP_TOKEN and the token's policy",
    ),
    (NotFound, "the endpoint does not exist: check the address points at a Consul agent"),
    (HTTPError, "the request is not accepted by this agent; retrying would not change that"),
)


def hint(exc: ConsulError) -> str:
    """What to fix for an error that is not retried (``""`` for retried ones)."""
    if exc.retriable:
        return ""
    for cls, text in _HINTS:
        if isinstance(exc, cls):
            return text
    return ""


def policy_retry(exc: ConsulError) -> bool:
    """The policy of the table above: exactly the errors marked ``retriable``."""
    return exc.retriable


def widen(retry: RetryPolicy | None) -> RetryPolicy | None:
    """A recipe's retry policy: the table's, plus whatever ``retry`` also retries.

    A recipe never stops following on a retriable failure, whatever the caller's policy says.
    """
    if retry is None:
        return None
    if not callable(retry):
        raise InvalidArgument("retry", f"expected a callable exc -> bool or None, got {retry!r}")

    def combined(exc: ConsulError) -> bool:
        return exc.retriable or bool(retry(exc))

    return combined


def detach(exc: ConsulError) -> ConsulError:
    """``exc`` without its tracebacks (and its causes'), for keeping after it was handled.

    A retried error lives on in the watch's health as ``last_error``; its traceback would keep
    every frame of the failed request alive (the connection, the buffers, aiohttp's objects):
    measured at ~120 blocks per watch after an agent restart, held until the next error.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
    return exc


def check_index(meta: Meta, what: object) -> None:
    """Raise :class:`DecodeError` when a blocking answer has no ``X-Consul-Index``.

    Consul sets it on every blocking endpoint; an answer without it comes from something
    else (a proxy, a cache) and cannot be threaded, so it is a failed attempt.
    """
    if not meta.index_present:
        raise DecodeError(f"answer without an X-Consul-Index header for {what!r}")


class FailureLog:
    """Logs a watch's failed attempts at WARNING, rate-limited, and its recovery at INFO.

    The first failure of a run is logged at once; later ones are counted and summarised at most
    every :data:`LOG_SUMMARY_INTERVAL` seconds of ``clock`` time; a success after failures logs
    the recovery. A failure that is not retried is always logged, with what to fix.
    """

    # Slots: one per poll, alive as long as the watch (#13, memory per watch).
    __slots__ = ("_clock", "_first", "_last_logged", "_log", "_total", "_unlogged", "_what")

    def __init__(self, logger: logging.Logger, what: object, clock: Clock) -> None:
        self._log = logger
        self._what = what
        self._clock = clock
        self._first: float | None = None
        self._last_logged = 0.0
        self._total = 0
        self._unlogged = 0

    def failed(self, exc: ConsulError, *, retrying: bool, delay: float = 0.0) -> None:
        now = self._clock.now()
        self._total += 1
        error = f"{type(exc).__name__}: {exc}"
        if not retrying:
            fix = hint(exc)
            self._log.warning(
                "watch %r stopped: %s%s", self._what, error, f" ({fix})" if fix else ""
            )
            return
        if self._first is None:
            self._first, self._last_logged, self._unlogged = now, now, 0
            self._log.warning("watch %r failed: %s; retrying in %.1fs", self._what, error, delay)
            return
        self._unlogged += 1
        if now - self._last_logged >= LOG_SUMMARY_INTERVAL:
            self._log.warning(
                "watch %r still failing: %d failed attempts in the last %.0fs, %d since %.0fs "
                "ago; last: %s",
                self._what,
                self._unlogged,
                now - self._last_logged,
                self._total,
                now - self._first,
                error,
            )
            self._last_logged, self._unlogged = now, 0

    def recovered(self) -> None:
        if self._first is None:
            return
        self._log.info(
            "watch %r recovered after %d failed attempts over %.1fs",
            self._what,
            self._total,
            self._clock.now() - self._first,
        )
        self._first, self._total, self._unlogged = None, 0, 0
