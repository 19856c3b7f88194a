"""The error policy by failure class (docs/contracts.md "Error policy"), health and logs."""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_watch_helpers import FakeTransport, Reply, asking, fast, kv_query, nxt, within

from consul_streams import HealthMonitor
from consul_streams._clock import VirtualClock
from consul_streams._policy import LOG_SUMMARY_INTERVAL, hint
from consul_streams.exceptions import (
    BadRequest,
    ConnectError,
    ConsulError,
    DecodeError,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    RateLimited,
    ReadTimeout,
    ServerError,
)

RETRIED: list[ConsulError] = [
    ConnectError("connection refused"),
    ReadTimeout("no complete answer within the deadline"),
    RateLimited(429, "slow down"),
    ServerError(500, "boom"),
    ServerError(503, "No cluster leader"),
    DecodeError("invalid JSON in response"),
]
FINAL: list[ConsulError] = [
    BadRequest(400, "Failed to create boolean expression evaluator"),
    PermissionDenied(403, "ACL not found"),
    NotFound(404, "404 page not found"),
    MethodNotAllowed(405, "method GET not allowed"),
]


@pytest.mark.parametrize("error", RETRIED, ids=lambda e: type(e).__name__)
def test_the_table_retries_transient_failures(error: ConsulError) -> None:
    assert error.retriable
    assert hint(error) == ""


@pytest.mark.parametrize("error", FINAL, ids=lambda e: type(e).__name__)
def test_the_table_ends_on_failures_retrying_cannot_heal_and_says_what_to_fix(
    error: ConsulError,
) -> None:
    assert not error.retriable
    assert hint(error)


def test_hints_name_what_to_fix() -> None:
    assert "filter" in hint(BadRequest(400, "bad"))
    assert "token" in hint(PermissionDenied(403, "ACL not found"))
    assert "address" in hint(NotFound(404, "404 page not found"))
    assert hint(HTTPError(418, "teapot"))


@pytest.mark.parametrize("error", RETRIED, ids=lambda e: type(e).__name__)
async def test_a_retried_failure_is_reported_then_recovers(
    error: ConsulError, poll_mode: str
) -> None:
    t = FakeTransport()
    clock = VirtualClock(start=50.0)
    monitor = HealthMonitor(clock)
    t.push(Reply("a", index=5))
    stream = fast(kv_query(t), clock=clock, health=monitor)
    async with stream as it:
        assert (await nxt(it))[0] == "a"
        t.push(Reply(error=error))
        pending = asking(it)
        await within(clock.wait_for_sleepers())  # backing off
        health = monitor.health
        assert not health.ok
        assert health.retrying
        assert health.stale
        assert health.last_error is error
        assert health.failing_since == 50.0
        assert stream.health == health
        t.push(Reply("b", index=6))
        await clock.advance(30.0)
        assert (await within(pending))[0] == "b"
        assert (await within(monitor.wait_healthy())).ok
        assert monitor.health.last_error is error


async def test_a_garbage_2xx_body_is_retried_by_raw_watch(poll_mode: str) -> None:
    """A proxy's HTML page with a 200: DecodeError, retried (the raw watch's default)."""
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply("a", index=5))
    stream = fast(kv_query(t), clock=clock)
    async with stream as it:
        await nxt(it)
        t.push(Reply("<html>bad gateway</html>", index=6))  # decodes: a str, not a KV list
        t.push(Reply(error=DecodeError("invalid JSON in response")))
        t.push(Reply("c", index=7))
        assert (await nxt(it))[0] == "<html>bad gateway</html>"
        pending = asking(it)
        await within(clock.wait_for_sleepers())
        await clock.advance(30.0)
        assert (await within(pending))[0] == "c"
    assert stream.stats.errors == {"DecodeError": 1}


async def test_a_blocking_answer_without_index_is_a_retried_decode_error(poll_mode: str) -> None:
    """Consul sets X-Consul-Index on every blocking endpoint; without it the answer is not
    Consul's and cannot be threaded (Go api's parseQueryMeta reads it from every query)."""
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply("a", index=None))
    t.push(Reply("b", index=9))
    stream = fast(kv_query(t), clock=clock)
    async with stream as it:
        first = asyncio.ensure_future(nxt(it))
        await within(clock.wait_for_sleepers())
        assert isinstance(stream.health.last_error, DecodeError)
        assert "X-Consul-Index" in str(stream.health.last_error)
        await clock.advance(30.0)
        assert (await first)[0] == "b"
        assert "index" not in t.params(1)  # the retry re-reads without blocking
    assert stream.stats.errors == {"DecodeError": 1}


@pytest.mark.parametrize("error", FINAL, ids=lambda e: type(e).__name__)
async def test_a_final_failure_ends_the_stream_and_health_says_stopped(
    error: ConsulError, poll_mode: str
) -> None:
    t = FakeTransport()
    monitor = HealthMonitor(VirtualClock())
    t.push(Reply("a", index=5))
    t.push(Reply(error=error))
    async with fast(kv_query(t), health=monitor) as it:
        await nxt(it)
        with pytest.raises(type(error)):
            await nxt(it)
    assert monitor.health.stopped
    assert monitor.health.last_error is error
    with pytest.raises(type(error)):
        await within(monitor.wait_healthy())


async def test_failed_attempts_are_logged_rate_limited_then_recovery(
    caplog: pytest.LogCaptureFixture, poll_mode: str
) -> None:
    t = FakeTransport()
    clock = VirtualClock()
    caplog.set_level(logging.INFO, logger="consul_streams.watch")
    async with fast(kv_query(t), clock=clock) as it:
        first = asyncio.ensure_future(nxt(it))
        # 1 + 4 failures within the first 30 s, then one more after it: one summary.
        for n in range(6):
            t.push(Reply(error=ConnectError(f"connection refused #{n}")))
            await within(clock.wait_for_sleepers())
            step = 7.0 if n < 4 else LOG_SUMMARY_INTERVAL  # failures at 0, 7, ..., 28, 58
            await clock.advance(step)
        t.push(Reply("ok", index=3))
        await within(first)
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    warnings = [m for level, m in records if level == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "failed: ConnectError: connection refused #0" in warnings[0]
    assert "still failing: 5 failed attempts" in warnings[1]
    assert "connection refused #5" in warnings[1]
    infos = [m for level, m in records if level == logging.INFO]
    assert len(infos) == 1
    assert "recovered after 6 failed attempts" in infos[0]


async def test_a_final_failure_is_logged_with_what_to_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = FakeTransport()
    caplog.set_level(logging.WARNING, logger="consul_streams.watch")
    t.push(Reply(error=BadRequest(400, "Failed to create boolean expression evaluator")))
    async with fast(kv_query(t)) as it:
        with pytest.raises(BadRequest):
            await nxt(it)
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "stopped: BadRequest" in message
    assert "check the filter expression" in message


async def test_health_is_checked_at_call_time() -> None:
    from consul_streams import InvalidArgument
    from consul_streams.watch import watch

    with pytest.raises(InvalidArgument, match=r"^health: "):
        watch(kv_query(FakeTransport()), health=object())  # type: ignore[arg-type]


def test_consuls_500_for_a_bad_filter_is_a_bad_request() -> None:
    """Consul sends go-bexpr's CreateFilter error back as a plain RPC error, i.e. a 500
    (agent/http.go wrap: errors that are not ACL errors are 500; consul-api.md section 2)."""
    from consul_streams._transport import map_status

    body = b"Failed to create boolean expression evaluator: 1:5 (4): no match found"
    error = map_status(500, body, method="GET", url="/v1/catalog/services", secret=None)
    assert isinstance(error, BadRequest)
    assert not error.retriable
    assert error.status == 500
    other = map_status(500, b"rpc error: No cluster leader", method="GET", url="/", secret=None)
    assert isinstance(other, ServerError)


async def test_a_retried_error_is_kept_without_its_frames(poll_mode: str) -> None:
    """Health keeps the last error; its traceback (the failed request's frames, connection
    and buffers) must not live on with it (the reset fault's retention, #11)."""
    t = FakeTransport()
    clock = VirtualClock()
    monitor = HealthMonitor(clock)
    try:
        raise OSError("connection reset by peer")
    except OSError as cause:
        error = ConnectError("connection failed")
        error.__cause__ = cause
    t.push(Reply(error=error))
    async with fast(kv_query(t), clock=clock, health=monitor) as it:
        first = asyncio.ensure_future(nxt(it))
        await within(clock.wait_for_sleepers())
        kept = monitor.health.last_error
        assert kept is error
        assert kept.__traceback__ is None
        assert kept.__cause__ is not None
        assert kept.__cause__.__traceback__ is None
        t.push(Reply("ok", index=2))
        await clock.advance(30.0)
        await within(first)


async def test_non_blocking_reads_in_a_watch_take_the_shorter_deadline(poll_mode: str) -> None:
    """min(client timeout, 10 s): a black-holed non-blocking read does not wait 30 s."""
    t = FakeTransport()
    t.timeout = 3.0  # type: ignore[attr-defined]  # the client's default, as the transport has
    t.push(Reply("a", index=5))
    async with fast(kv_query(t), wait="30s") as it:
        await nxt(it)
        pending = asking(it)
        await within(t.wait_requests(2))
    with pytest.raises(StopAsyncIteration):  # closing ends the pending anext()
        await within(pending)
    assert t.requests[0][1] == 3.0  # non-blocking: the client's shorter timeout
    assert t.requests[1][1] is not None
    assert t.requests[1][1] > 30 * 17 / 16  # blocking: derived from wait
