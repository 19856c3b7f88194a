"""watch(): index threading, emit policy, errors and timing, against a scripted fake transport."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from test_watch_helpers import (
    FakeTransport,
    Reply,
    asking,
    fast,
    json_query,
    kv_query,
    nxt,
    within,
)

from consul_streams._clock import VirtualClock
from consul_streams._policy import WATCH_NONBLOCKING_TIMEOUT
from consul_streams._query import BlockingMode
from consul_streams.exceptions import (
    BadRequest,
    ConnectError,
    ConsulError,
    InvalidArgument,
    PermissionDenied,
    RateLimited,
    ServerError,
)
from consul_streams.watch import Backoff, RateLimit, watch


async def test_first_request_is_non_blocking_then_threads_index_with_explicit_wait(
    poll_mode: str,
) -> None:
    t = FakeTransport()
    t.push(Reply({"v": 1}, index=5))
    async with fast(kv_query(t), wait="30s") as it:
        value, meta = await nxt(it)
        assert value == {"v": 1}
        assert meta.index == 5
        pending = asking(it)
        await within(t.wait_requests(2))
    with pytest.raises(StopAsyncIteration):  # closing ends the pending anext()
        await within(pending)
    assert "index" not in t.params(0)
    # Non-blocking inside a watch: a short deadline (#11), not the client's 30 s default.
    assert t.requests[0][1] == WATCH_NONBLOCKING_TIMEOUT
    assert t.params(1) == {"index": "5", "wait": "30000ms"}
    assert t.requests[1][1] is not None
    assert t.requests[1][1] > 30 * 17 / 16


async def test_default_wait_is_five_minutes_and_always_sent(poll_mode: str) -> None:
    t = FakeTransport()
    t.push(Reply(1, index=3))
    async with fast(kv_query(t)) as it:
        await nxt(it)
        pending = asking(it)
        await within(t.wait_requests(2))
    with pytest.raises(StopAsyncIteration):
        await within(pending)
    assert t.params(1)["wait"] == "300000ms"


async def test_seed_index_makes_the_first_request_block(poll_mode: str) -> None:
    t = FakeTransport()
    async with fast(kv_query(t).replace(index=7, wait=10.0)) as it:
        t.push(Reply(1, index=8))
        await nxt(it)
    assert t.params(0) == {"index": "7", "wait": "10000ms"}


async def test_index_below_one_is_raised_to_one(poll_mode: str) -> None:
    t = FakeTransport()
    t.push(Reply("a", index=0))
    async with fast(kv_query(t)) as it:
        await nxt(it)
        pending = asking(it)
        await within(t.wait_requests(2))
    with pytest.raises(StopAsyncIteration):
        await within(pending)
    assert t.params(1)["index"] == "1"


async def test_backwards_index_resets_to_a_non_blocking_read(poll_mode: str) -> None:
    t = FakeTransport()
    t.push(Reply("a", index=10))
    stream = fast(kv_query(t))
    async with stream as it:
        assert (await nxt(it))[0] == "a"
        t.push(Reply("b", index=4))  # e.g. the agent restarted with older data
        assert (await nxt(it))[0] == "b"
        t.push(Reply("b", index=4))
        pending = asking(it)
        await within(t.wait_requests(4))
        assert stream.stats.index_resets == 1
        assert not pending.done()  # the re-read's unchanged "b" is not emitted again
    with pytest.raises(StopAsyncIteration):
        await within(pending)
    assert t.params(1)["index"] == "10"
    assert "index" not in t.params(2)
    assert t.params(3)["index"] == "4"


async def test_timeout_with_same_index_emits_nothing_and_reuses_index(poll_mode: str) -> None:
    t = FakeTransport()
    t.push(Reply("a", index=5))
    stream = fast(kv_query(t))
    async with stream as it:
        await nxt(it)
        t.push(Reply("a", index=5))  # the blocking read timed out
        pending = asking(it)
        await within(t.wait_requests(3))
        assert not pending.done()
        t.push(Reply("b", index=6))
        value, meta = await within(pending)
        assert (value, meta.index) == ("b", 6)
        assert stream.stats.unchanged == 1
    assert t.params(2)["index"] == "5"


async def test_index_change_alone_is_not_a_change(poll_mode: str) -> None:
    t = FakeTransport()
    t.push(Reply("a", index=5))
    async with fast(kv_query(t)) as it:
        await nxt(it)
        t.push(Reply("a", index=9))
        t.push(Reply("c", index=10))
        value, meta = await nxt(it)
    assert (value, meta.index) == ("c", 10)
    assert t.params(2)["index"] == "9"


async def test_missing_key_emits_none_once_and_keeps_watching(poll_mode: str) -> None:
    t = FakeTransport()
    t.push(Reply(None, index=3, status=404))
    async with fast(kv_query(t)) as it:
        value, meta = await nxt(it)
        assert value is None
        assert meta.index == 3
        t.push(Reply(None, index=3, status=404))
        t.push(Reply("now", index=4))
        assert (await nxt(it))[0] == "now"
    assert t.params(1)["index"] == "3"


async def test_initial_false_skips_the_first_value() -> None:
    t = FakeTransport()
    t.push(Reply("a", index=1))
    t.push(Reply("b", index=2))
    async with fast(kv_query(t), initial=False) as it:
        assert (await nxt(it))[0] == "b"


async def test_heartbeat_emits_unchanged_rounds() -> None:
    t = FakeTransport()
    t.push(Reply("a", index=1))
    async with fast(kv_query(t), heartbeat=True) as it:
        first = await nxt(it)
        t.push(Reply("a", index=1))
        second = await nxt(it)
    assert first[0] == second[0] == "a"


async def test_retriable_error_backs_off_then_rereads_non_blocking(poll_mode: str) -> None:
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply("a", index=5))
    stream = fast(kv_query(t), clock=clock, backoff=Backoff(base=1.0, cap=8.0))
    async with stream as it:
        await nxt(it)
        t.push(Reply(error=ConnectError("connection reset")))
        pending = asking(it)
        await within(clock.wait_for_sleepers())
        assert len(t.requests) == 2
        await clock.advance(1.0)  # attempt 0 sleeps at most base
        await within(t.wait_requests(3))
        t.push(Reply("b", index=6))
        assert (await within(pending))[0] == "b"
        assert stream.stats.retries == 1
        assert stream.stats.errors == {"ConnectError": 1}
    assert "index" not in t.params(2)


async def test_unchanged_value_after_an_error_is_not_emitted_again(poll_mode: str) -> None:
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply("a", index=5))
    async with fast(kv_query(t), clock=clock) as it:
        await nxt(it)
        t.push(Reply(error=ServerError(500, "boom")))
        t.push(Reply("a", index=5))
        t.push(Reply("z", index=7))
        pending = asking(it)
        await within(clock.wait_for_sleepers())
        await clock.advance(30.0)
        assert (await within(pending))[0] == "z"


@pytest.mark.parametrize(
    "error",
    [PermissionDenied(403, "ACL not found"), BadRequest(400, "bad filter")],
    ids=["403", "400"],
)
async def test_non_retriable_error_raises_out_of_the_iterator(
    error: ConsulError, poll_mode: str
) -> None:
    t = FakeTransport()
    t.push(Reply("a", index=5))
    t.push(Reply(error=error))
    async with fast(kv_query(t)) as it:
        await nxt(it)
        with pytest.raises(type(error)):
            await nxt(it)


async def test_retry_policy_can_retry_a_non_retriable_error(poll_mode: str) -> None:
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply(error=PermissionDenied(403, "ACL not found")))
    t.push(Reply("ok", index=2))
    seen: list[ConsulError] = []

    def policy(exc: ConsulError) -> bool:
        seen.append(exc)
        return True

    async with fast(kv_query(t), clock=clock, retry=policy) as it:
        first = asyncio.ensure_future(nxt(it))  # the poll starts with the first read
        await within(clock.wait_for_sleepers())
        await clock.advance(30.0)
        assert (await first)[0] == "ok"
    assert [type(e) for e in seen] == [PermissionDenied]


async def test_retry_policy_can_stop_retrying_a_retriable_error(poll_mode: str) -> None:
    t = FakeTransport()
    t.push(Reply(error=RateLimited(429, "slow down")))
    async with fast(kv_query(t), retry=lambda exc: False) as it:
        with pytest.raises(RateLimited):
            await nxt(it)


class RecordingRandom(random.Random):
    def __init__(self) -> None:
        super().__init__(0)
        self.bounds: list[float] = []

    def uniform(self, a: float, b: float) -> float:
        assert a == 0.0
        self.bounds.append(b)
        return b  # the worst case, to check the ceiling


async def test_backoff_is_exponential_capped_full_jitter_and_reset_by_success(
    poll_mode: str,
) -> None:
    t = FakeTransport()
    clock = VirtualClock()
    rng = RecordingRandom()
    for _ in range(5):
        t.push(Reply(error=ConnectError("refused")))
    t.push(Reply("a", index=2))
    t.push(Reply(error=ConnectError("refused")))
    stream = fast(kv_query(t), clock=clock, rng=rng, backoff=Backoff(base=1.0, cap=5.0))
    async with stream as it:
        first = asyncio.ensure_future(nxt(it))
        for n in range(5):
            await within(clock.wait_for_sleepers())
            await clock.advance(rng.bounds[n])
        await first
        pending = asking(it)
        await within(clock.wait_for_sleepers())  # the failure after the success
    with pytest.raises(StopAsyncIteration):
        await within(pending)
    assert rng.bounds == [1.0, 2.0, 4.0, 5.0, 5.0, 1.0]
    assert clock.now() == pytest.approx(17.0)


def test_backoff_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    rng = random.Random(42)
    b = Backoff(base=0.5, cap=4.0)
    draws = [b.delay(3, rng) for _ in range(200)]
    assert all(0.0 <= d <= 4.0 for d in draws)
    assert min(draws) < 1.0 < 3.0 < max(draws)  # spread over the range, not a fixed sleep
    assert b.ceiling(1000) == 4.0


async def test_rate_limit_allows_a_burst_then_one_round_per_interval(poll_mode: str) -> None:
    """Re-issues after a success take a token: two proceed at once, the next waits 1/rate."""
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply(1, index=1))
    stream = fast(kv_query(t), clock=clock, rate_limit=RateLimit(burst=2, per_second=0.5))
    async with stream as it:
        for i in (1, 2, 3):
            assert (await nxt(it))[0] == i
            t.push(Reply(i + 1, index=i + 1))
        pending = asking(it)
        await within(clock.wait_for_sleepers())
        assert len(t.requests) == 3  # burst spent: the fourth request waits for a token
        await clock.advance(1.9)
        assert len(t.requests) == 3
        await clock.advance(0.1)
        assert (await within(pending))[0] == 4
        assert stream.stats.rate_limited == 1


async def test_rate_limit_none_never_waits(poll_mode: str) -> None:
    t = FakeTransport()
    async with fast(kv_query(t), rate_limit=None) as it:
        for i in range(1, 6):
            t.push(Reply(i, index=i))
            assert (await nxt(it))[0] == i


async def test_hash_mode_threads_the_content_hash(poll_mode: str) -> None:
    t = FakeTransport()
    q = json_query(t, "/v1/agent/service/web", mode=BlockingMode.HASH)
    t.push(Reply({"ID": "web"}, content_hash="h1"), q.request.path)
    async with fast(q, wait="1m") as it:
        await nxt(it)
        t.push(Reply({"ID": "web"}, content_hash="h1"), q.request.path)
        pending = asking(it)
        await within(t.wait_requests(3))
        assert not pending.done()
        t.push(Reply({"ID": "web", "Tags": ["x"]}, content_hash="h2"), q.request.path)
        assert (await within(pending))[0] == {"ID": "web", "Tags": ["x"]}
    assert "hash" not in t.params(0)
    assert t.params(1) == {"hash": "h1", "wait": "60000ms"}
    assert t.params(2)["hash"] == "h1"


@pytest.mark.parametrize(
    ("value", "parameter"),
    [
        ({"wait": "10"}, "wait"),
        ({"wait": 0}, "wait"),
        ({"wait": "11m"}, "wait"),
        ({"wait": True}, "wait"),
        ({"initial": 1}, "initial"),
        ({"heartbeat": "yes"}, "heartbeat"),
        ({"events": "old"}, "events"),
        ({"rate_limit": 5}, "rate_limit"),
        ({"backoff": 1.0}, "backoff"),
        ({"retry": "always"}, "retry"),
        ({"clock": object()}, "clock"),
        ({"rng": 4}, "rng"),
    ],
)
def test_bad_arguments_fail_at_call_time(value: dict[str, Any], parameter: str) -> None:
    t = FakeTransport()
    with pytest.raises(InvalidArgument) as info:
        watch(kv_query(t), **value)
    assert info.value.parameter == parameter
    assert "expected" in str(info.value)


def test_bad_query_and_bad_policies_fail_at_call_time() -> None:
    with pytest.raises(InvalidArgument, match="query"):
        watch("kv/a")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="burst"):
        RateLimit(burst=0)
    with pytest.raises(InvalidArgument, match="per_second"):
        RateLimit(per_second=0)
    with pytest.raises(InvalidArgument, match="cap"):
        Backoff(base=2.0, cap=1.0)


async def test_wait_accepts_timedelta_and_seconds() -> None:
    from datetime import timedelta

    t = FakeTransport()
    assert watch(kv_query(t), wait=timedelta(seconds=90)).config.wait == 90.0
    assert watch(kv_query(t), wait=2.5).config.wait == 2.5


async def test_initial_false_with_heartbeat_still_skips_the_first_value(poll_mode: str) -> None:
    t = FakeTransport()
    t.push(Reply("a", index=1))
    async with fast(kv_query(t), initial=False, heartbeat=True) as it:
        pending = asking(it)
        await within(t.wait_requests(2))
        assert not pending.done()
        t.push(Reply("a", index=1))
        assert (await within(pending))[0] == "a"  # the unchanged timeout, not the first read
        pending = asking(it)
        await within(t.wait_requests(3))
        assert not pending.done()
    with pytest.raises(StopAsyncIteration):
        await within(pending)
    assert len(t.requests) == 3


async def test_initial_false_emits_a_change_even_if_the_first_round_was_skipped_over() -> None:
    """Latest-wins delivery may skip the baseline round; the change after it still counts."""
    t = FakeTransport()
    t.push(Reply("a", index=1))
    t.push(Reply("b", index=2))  # both answered before the consumer looks
    async with fast(kv_query(t), initial=False) as it:
        assert (await nxt(it))[0] == "b"


async def test_events_initial_false_with_all_behaves_like_new() -> None:
    t = FakeTransport()
    t.push(Reply([{"ID": "00000000-0000-0000-0000-000000000001"}], index=1), "/v1/event/list")
    q = json_query(t, "/v1/event/list", mode=BlockingMode.EVENT)
    async with fast(q, events="all", initial=False) as it:
        pending = asyncio.ensure_future(nxt(it))
        await within(t.wait_requests(2))
        new = {"ID": "00000000-0000-0000-0000-000000000002"}
        t.push(
            Reply([{"ID": "00000000-0000-0000-0000-000000000001"}, new], index=2), q.request.path
        )
        assert (await within(pending))[0] == [new]


def test_non_blocking_query_needs_a_rate_limit() -> None:
    t = FakeTransport()
    q = json_query(t, "/v1/agent/self", mode=BlockingMode.NONE)
    with pytest.raises(InvalidArgument, match="rate_limit"):
        watch(q, rate_limit=None)


async def test_non_blocking_query_is_polled_at_the_rate_limit(poll_mode: str) -> None:
    t = FakeTransport()
    clock = VirtualClock()
    q = json_query(t, "/v1/agent/self", mode=BlockingMode.NONE)
    t.push(Reply(1), q.request.path)
    limit = RateLimit(burst=1, per_second=0.1)
    async with watch(q, clock=clock, rate_limit=limit) as it:
        assert (await nxt(it))[0] == 1
        t.push(Reply(2), q.request.path)
        assert (await nxt(it))[0] == 2  # the burst of one re-issue: no wait
        pending = asking(it)
        await within(clock.wait_for_sleepers())
        assert len(t.requests) == 2  # then wait 10 s
        await clock.advance(10.0)
        await within(t.wait_requests(3))
    with pytest.raises(StopAsyncIteration):
        await within(pending)
    assert all(not r.params for r, _ in t.requests)
