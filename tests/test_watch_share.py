"""watch(): usage forms, shared polls, cancellation, events, connection budget, logging."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from typing import Any

import pytest
from aiostream import pipe, stream
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
from consul_streams._query import BlockingMode, Request
from consul_streams._rules import event_id_to_index
from consul_streams.exceptions import ConnectError, PermissionDenied, RateLimited


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


# --- usage forms -------------------------------------------------------------------------


async def test_plain_async_for_is_clean_and_break_aborts_the_request(poll_mode: str) -> None:
    """Breaking out leaves no request and no task: the poll task's next blocking read is
    aborted; a poll run inline has no task, so nothing was sent while the body ran."""
    t = FakeTransport()
    t.push(Reply("a", index=1))
    before = asyncio.all_tasks()
    async for value, meta in fast(kv_query(t)):
        assert (value, meta.index) == ("a", 1)
        if poll_mode == "task":
            await within(t.wait_requests(2))  # the next blocking read is in flight
        else:
            assert t.engine.tasks == 0  # nothing polls between two anext() calls
        break
    if poll_mode == "task":
        await within(t.cancelled.wait())
    else:
        assert (len(t.requests), t.cancellations) == (1, 0)
    assert t.inflight == 0
    assert t.engine.polls == 0
    await within(_settled(before))


async def _settled(before: set[asyncio.Task[Any]]) -> None:
    """Wait until every task started since ``before`` has finished (run inside wait_for)."""
    me = {asyncio.current_task(), *before}
    while extra := asyncio.all_tasks() - me:
        await asyncio.wait(extra)


async def test_async_with_form_and_aclose_leave_no_task(poll_mode: str) -> None:
    t = FakeTransport()
    t.push(Reply("a", index=1))
    before = other_tasks()
    async with fast(kv_query(t)) as s:
        assert (await nxt(s))[0] == "a"
        pending = asking(s)
        await within(t.wait_requests(2))
        # Inline, the blocking read runs in the consumer's own task: the watch owns none.
        assert t.engine.tasks == (1 if poll_mode == "task" else 0)
    # Leaving the block waited for the poll (or the consumer's round) to stop.
    assert t.cancellations == 1
    assert t.inflight == 0
    with pytest.raises(StopAsyncIteration):
        await within(pending)  # the waiting anext() ends with the iteration
    assert t.engine.tasks == 0
    assert other_tasks() == before


async def test_stream_method_form() -> None:
    t = FakeTransport()
    t.push(Reply("a", index=1))
    async with fast(kv_query(t)).stream() as s:
        assert (await nxt(s))[0] == "a"


def _upper_value(item: tuple[str, object], *_: object) -> str:
    return item[0].upper()


async def test_pipes_into_aiostream_operators_without_warnings() -> None:
    t = FakeTransport()
    t.push(Reply("a", index=1))
    xs = fast(kv_query(t)) | pipe.map(_upper_value) | pipe.take(1)
    assert await within(stream.list(xs)) == ["A"]
    # The consumer takes the value before the poll sends its next request, so closing after
    # one item leaves nothing to abort: one request, none in flight.
    assert len(t.requests) == 1
    assert t.inflight == 0


async def test_a_woken_consumer_gets_the_value_before_the_next_request_is_sent() -> None:
    """The poll yields once after waking consumers (latency: the send would delay them)."""
    t = FakeTransport()
    t.push(Reply("a", index=1))
    sent = -1
    async for value, _ in fast(kv_query(t)):
        assert value == "a"
        sent = len(t.requests)
        break
    assert sent == 1


async def test_cancelling_the_consumer_aborts_the_request_at_once() -> None:
    t = FakeTransport()
    t.push(Reply("a", index=1))
    before = other_tasks()
    got = asyncio.Event()

    async def consume() -> None:
        async for _ in fast(kv_query(t)):
            got.set()

    task = asyncio.ensure_future(consume())
    await within(got.wait())
    await within(t.wait_requests(2))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert t.cancellations == 1
    assert t.inflight == 0
    assert other_tasks() == before


async def test_repeated_iteration_is_an_independent_consumer(poll_mode: str) -> None:
    t = FakeTransport()
    w = fast(kv_query(t), share=False)
    t.push(Reply("a", index=1))
    async with w.stream() as s:
        assert (await nxt(s))[0] == "a"
        pending = asking(s)
        await within(t.wait_requests(2))  # its blocking read is in flight when we leave
    with pytest.raises(StopAsyncIteration):
        await within(pending)
    assert t.cancellations == 1
    t.push(Reply("b", index=2))
    async with w.stream() as s:
        assert (await nxt(s))[0] == "b"  # a new poll, which starts non-blocking
    assert "index" not in t.params(2)


# --- sharing -----------------------------------------------------------------------------


async def test_identical_watches_share_one_poll_and_late_subscriber_gets_value_at_once() -> None:
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply("a", index=1))
    async with fast(kv_query(t), clock=clock) as s1:
        assert (await nxt(s1))[0] == "a"
        pending = asking(s1)  # alone, s1 polls while it asks (inline: in its own task)
        await within(t.wait_requests(2))
        async with fast(kv_query(t), clock=clock) as s2:
            assert (await nxt(s2))[0] == "a"  # from the shared state, no new request
            assert len(t.requests) == 2
            t.push(Reply("b", index=2))
            assert (await within(pending))[0] == "b"
            assert (await nxt(s2))[0] == "b"
            # Shared now: the hub's task polls on while neither consumer asks.
            await within(t.wait_requests(3))  # the next blocking read is in flight
        assert t.cancellations == 0  # s1 still listens
    assert t.cancellations == 1  # the last consumer left: the poll stopped
    assert len(t.requests) == 3


async def test_share_false_polls_separately(poll_mode: str) -> None:
    t = FakeTransport()
    t.push(Reply("a", index=1))
    async with fast(kv_query(t), share=False) as s1, fast(kv_query(t), share=False) as s2:
        await nxt(s1)
        waiting = asking(s1)
        await within(t.wait_requests(2))  # s1's blocking read is waiting
        pending = asking(s2)
        await within(t.wait_requests(3))
        t.push(Reply("a", index=1))  # answers s1's (older) blocking read: unchanged
        t.push(Reply("a", index=1))  # answers s2's first read
        assert (await within(pending))[0] == "a"
        await within(t.wait_requests(4))  # s1 blocks again: it emitted nothing
        assert not waiting.done()
    with pytest.raises(StopAsyncIteration):
        await within(waiting)
    assert "index" not in t.params(0)
    assert "index" not in t.params(2)


async def test_different_options_that_change_polling_do_not_share(poll_mode: str) -> None:
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply("a", index=1))
    async with fast(kv_query(t), clock=clock, wait="10s") as s1:
        await nxt(s1)
        waiting = asking(s1)
        await within(t.wait_requests(2))
        async with fast(kv_query(t), clock=clock, wait="20s") as s2:
            pending = asking(s2)
            await within(t.wait_requests(3))  # s2 sent its own first read
            t.push(Reply("a", index=1))  # s1's blocking read times out
            t.push(Reply("a", index=1))  # s2's first read
            await within(pending)
            pending = asking(s2)
            await within(t.wait_requests(5))  # both polls block again
            assert not waiting.done()  # s1's timeout emitted nothing
        with pytest.raises(StopAsyncIteration):
            await within(pending)
    with pytest.raises(StopAsyncIteration):
        await within(waiting)
    waits = [dict(r.params).get("wait", "") for r, _ in t.requests]
    assert sorted(waits) == ["", "", "10000ms", "10000ms", "20000ms"]


async def test_slow_consumer_skips_intermediate_states_but_gets_the_newest() -> None:
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply(0, index=1))
    async with fast(kv_query(t), clock=clock) as fast_one, fast(kv_query(t), clock=clock) as slow:
        assert (await nxt(fast_one))[0] == 0
        assert (await nxt(slow))[0] == 0
        for i in range(1, 6):
            t.push(Reply(i, index=i + 1))
            assert (await nxt(fast_one))[0] == i
        assert (await nxt(slow))[0] == 5


async def test_per_consumer_emit_policy_on_a_shared_poll() -> None:
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply("a", index=1))
    async with fast(kv_query(t), clock=clock) as plain:
        await nxt(plain)
        async with fast(kv_query(t), clock=clock, heartbeat=True, initial=False) as beat:
            pending = asyncio.ensure_future(nxt(beat))
            await within(t.wait_requests(2))
            t.push(Reply("a", index=1))  # unchanged timeout
            assert (await within(pending))[0] == "a"
            t.push(Reply("c", index=3))
            assert (await nxt(plain))[0] == "c"  # plain skipped the heartbeat
            assert (await nxt(beat))[0] == "c"


async def test_fatal_error_reaches_every_consumer_and_a_new_watch_starts_fresh() -> None:
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply("a", index=1))
    async with fast(kv_query(t), clock=clock) as s1, fast(kv_query(t), clock=clock) as s2:
        await nxt(s1)
        await nxt(s2)
        t.push(Reply(error=PermissionDenied(403, "Permission denied")))
        with pytest.raises(PermissionDenied):
            await nxt(s1)
        with pytest.raises(PermissionDenied):
            await nxt(s2)
        t.push(Reply("b", index=2))
        async with fast(kv_query(t), clock=clock) as s3:
            assert (await nxt(s3))[0] == "b"
    assert "index" not in t.params(2)


# --- stats and logging -------------------------------------------------------------------


async def test_stats_count_requests_emits_unchanged_resets_errors(poll_mode: str) -> None:
    t = FakeTransport()
    clock = VirtualClock()
    w = fast(kv_query(t), clock=clock)
    assert w.stats.requests == 0
    t.push(Reply("a", index=5))
    async with w as s:
        await nxt(s)
        t.push(Reply("a", index=5))
        t.push(Reply(error=ConnectError("reset")))
        pending = asking(s)
        await within(clock.wait_for_sleepers())
        await clock.advance(30)
        t.push(Reply("b", index=3))
        assert (await within(pending))[0] == "b"
        pending = asking(s)
        await within(t.wait_requests(5))
        stats = s.stats
    with pytest.raises(StopAsyncIteration):
        await within(pending)
    # the fifth read (blocking on 3) is in flight
    assert (stats.requests, stats.emits, stats.unchanged) == (5, 2, 1)
    assert (stats.retries, stats.errors, stats.last_index) == (1, {"ConnectError": 1}, 3)
    assert stats.index_resets == 0  # the error already reset the index to 0
    assert stats.last_contact is not None
    assert stats.last_contact.total_seconds() == 0


async def test_debug_log_names_the_query_never_a_token(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTransport()
    q = kv_query(t).replace(
        request=Request("GET", "/v1/kv/k", headers=(("X-Consul-Token", "s3cr3t"),))
    )
    t.push(Reply("a", index=1))
    with caplog.at_level(logging.DEBUG, logger="consul_streams.watch"):
        async with fast(q) as s:
            await nxt(s)
    assert "/v1/kv/k" in caplog.text
    assert "s3cr3t" not in caplog.text
    assert "s3cr3t" not in repr(fast(q))


# --- events ------------------------------------------------------------------------------

E1 = "b54fe110-7af5-cafc-d1fb-afc8ba432b1c"
E2 = "00000000-0000-0000-0000-000000000009"
E3 = "00000000-0000-0000-0000-000000000005"


def ev(*ids: str) -> list[dict[str, Any]]:
    return [{"ID": i, "Name": "deploy"} for i in ids]


def event_query(t: FakeTransport) -> Any:
    return json_query(t, "/v1/event/list", mode=BlockingMode.EVENT)


def push_events(t: FakeTransport, *ids: str) -> None:
    index = event_id_to_index(ids[-1]) if ids else 1
    t.push(Reply(ev(*ids), index=index), "/v1/event/list")


async def test_events_new_skips_the_existing_buffer_and_emits_only_unseen_events(
    poll_mode: str,
) -> None:
    t = FakeTransport()
    push_events(t, E1)
    async with fast(event_query(t)) as s:
        assert (await nxt(s))[0] == []  # the first result: subscribed, nothing new
        pending = asking(s)
        await within(t.wait_requests(2))
        # E3's pseudo-index is lower than E1's: no backwards reset for events.
        assert event_id_to_index(E3) < event_id_to_index(E1)
        push_events(t, E1, E3)
        value, _ = await within(pending)
        assert [e["ID"] for e in value] == [E3]
        pending = asking(s)
        push_events(t, E1, E3)  # timeout, nothing new
        await within(t.wait_requests(4))
        assert not pending.done()
        push_events(t, E1, E3, E2)
        assert [e["ID"] for e in (await within(pending))[0]] == [E2]
    assert t.params(1)["index"] == str(event_id_to_index(E1))
    assert t.params(2)["index"] == str(event_id_to_index(E3))  # equality rule: no reset


async def test_events_new_without_initial_emits_nothing_until_an_event() -> None:
    t = FakeTransport()
    push_events(t, E1)
    async with fast(event_query(t), initial=False) as s:
        pending = asyncio.ensure_future(nxt(s))
        await within(t.wait_requests(2))
        assert not pending.done()
        push_events(t, E1, E2)
        assert [e["ID"] for e in (await within(pending))[0]] == [E2]


async def test_events_all_delivers_the_whole_buffer_first() -> None:
    t = FakeTransport()
    push_events(t, E1, E2)
    async with fast(event_query(t), events="all") as s:
        assert [e["ID"] for e in (await nxt(s))[0]] == [E1, E2]
        push_events(t, E1, E2, E3)
        assert [e["ID"] for e in (await nxt(s))[0]] == [E3]


async def test_events_empty_buffer_uses_index_one() -> None:
    t = FakeTransport()
    push_events(t)
    async with fast(event_query(t), initial=False) as s:
        pending = asyncio.ensure_future(nxt(s))
        await within(t.wait_requests(2))
        push_events(t, E2)
        assert [e["ID"] for e in (await within(pending))[0]] == [E2]
    assert t.params(1)["index"] == "1"


# --- connection budget -------------------------------------------------------------------


async def test_watches_beyond_the_connection_budget_wait_their_turn_and_converge(
    poll_mode: str,
) -> None:
    """Five watches on a transport capped at 2 concurrent requests, first answers 429: all
    get their values (429 is backpressure, not the end of a watch) and the cap holds while
    the consumers keep asking (their blocking reads take connections too)."""
    throttled: set[str] = set()
    gate = {"timeout": asyncio.Event()}

    async def handler(request: Request) -> Reply:
        if "index" in dict(request.params):
            await gate["timeout"].wait()  # a blocking read, held until the test times it out
            return Reply(request.path, index=1)
        if request.path not in throttled:
            throttled.add(request.path)
            return Reply(
                error=RateLimited(429, "Your IP is issuing too many concurrent connections")
            )
        return Reply(request.path, index=1)

    t = FakeTransport(max_connections=2, handler=handler)
    clock = VirtualClock()
    watches = [fast(json_query(t, f"/v1/kv/k{i}"), clock=clock, wait="1s") for i in range(5)]
    values: dict[int, str] = {}
    done = asyncio.Event()

    async def consume(i: int) -> None:
        async with watches[i] as s:
            values[i] = (await s.__anext__())[0]
            if len(values) == 5:
                done.set()
                return
            # Asking on: its blocking reads (timing out unchanged) take connections too.
            more = asking(s)
            await done.wait()
        with pytest.raises(StopAsyncIteration):
            await within(more)

    tasks = [asyncio.ensure_future(consume(i)) for i in range(5)]
    for _ in range(100):  # rounds of "backoffs elapse, blocking reads time out"
        if done.is_set():
            break
        await clock.advance(30.0)
        old, gate["timeout"] = gate["timeout"], asyncio.Event()
        old.set()
    await within(asyncio.gather(*tasks))
    assert values == {i: f"/v1/kv/k{i}" for i in range(5)}
    assert t.peak_inflight == 2


async def test_watch_pipes_into_consul_streams_ops() -> None:
    from consul_streams import ops

    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply({"Key": "k", "Value": "e30="}, index=1))
    xs = fast(kv_query(t), clock=clock) | ops.debounce(0.5, clock=clock) | ops.values()
    async with xs.stream() as s:
        pending = asyncio.ensure_future(nxt(s))
        await within(t.wait_requests(2))
        await clock.advance(0.5)
        assert await within(pending) == {"Key": "k", "Value": "e30="}
    assert t.cancellations == 1


async def test_a_query_without_an_engine_polls_alone_and_leaves_no_task() -> None:
    """A Query built on a bare transport (no client): each watch runs in an engine it owns."""
    before = asyncio.all_tasks()
    parked = asyncio.Event()

    async def handler(request: Request) -> Reply:
        if dict(request.params).get("index"):
            await parked.wait()  # a blocking read with no change: held until cancelled
        return Reply("a", index=1)

    t = FakeTransport(handler=handler)
    query = kv_query(t).replace(engine=None)
    async with fast(query) as s1, fast(query) as s2:
        assert (await nxt(s1))[0] == "a"
        assert (await nxt(s2))[0] == "a"
        first_reads = [r for r, _ in t.requests if "index" not in dict(r.params)]
        assert len(first_reads) == 2  # two polls, not one shared
    assert asyncio.all_tasks() - before <= {asyncio.current_task()}
    assert t.inflight == 0


# --- fan-out delivery (#13) ----------------------------------------------------------------


async def test_a_waiting_consumer_gets_the_shared_item_from_the_poll() -> None:
    """The poll hands each waiting consumer its item: one (value, meta) pair for all of them."""
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply("a", index=1))
    async with fast(kv_query(t), clock=clock) as s1, fast(kv_query(t), clock=clock) as s2:
        await nxt(s1)
        await nxt(s2)
        pending = [asyncio.ensure_future(nxt(s)) for s in (s1, s2)]
        await within(t.wait_requests(2))
        t.push(Reply("b", index=2))
        first, second = await within(asyncio.gather(*pending))
        assert first[0] == "b"
        assert first is second
        assert (s1.stats.emits, s2.stats.emits) == (2, 2)


async def test_a_cancelled_anext_ends_the_iteration_and_leaves_the_poll() -> None:
    """As with an async generator: the next anext() after a cancelled one ends the iteration."""
    t = FakeTransport()
    t.push(Reply("a", index=1))
    it = fast(kv_query(t)).__aiter__()
    assert (await nxt(it))[0] == "a"
    waiting = asyncio.ensure_future(it.__anext__())
    await within(t.wait_requests(2))
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    with pytest.raises(StopAsyncIteration):
        await nxt(it)
    assert t.cancellations == 1
    assert t.inflight == 0
    await it.aclose()


async def test_a_second_concurrent_anext_is_refused() -> None:
    t = FakeTransport()
    t.push(Reply("a", index=1))
    async with fast(kv_query(t)) as it:
        await nxt(it)
        waiting = asyncio.ensure_future(it.__anext__())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already waiting"):
            await it.__anext__()
        t.push(Reply("b", index=2))
        assert (await within(waiting))[0] == "b"  # the first one still gets its item


async def test_a_fatal_error_reaches_a_waiting_consumer_then_the_iteration_ends() -> None:
    t = FakeTransport()
    t.push(Reply("a", index=1))
    it = fast(kv_query(t)).__aiter__()
    await nxt(it)
    waiting = asyncio.ensure_future(it.__anext__())
    await within(t.wait_requests(2))
    t.push(Reply(error=PermissionDenied(403, "Permission denied")))
    with pytest.raises(PermissionDenied):
        await within(waiting)
    with pytest.raises(StopAsyncIteration):
        await nxt(it)


async def test_an_iteration_keeps_no_watch_stream_or_query_alive() -> None:
    """Memory per shared subscriber (#13): once subscribed, an iteration holds the hub's
    objects, not its own WatchStream, Query and settings."""
    t = FakeTransport()
    clock = VirtualClock()
    t.push(Reply("a", index=1))
    async with fast(kv_query(t), clock=clock) as first:
        await nxt(first)
        stream = fast(kv_query(t), clock=clock)
        ref = weakref.ref(stream)
        it = stream.__aiter__()
        del stream
        assert (await nxt(it))[0] == "a"  # the second subscriber of the same poll
        gc.collect()
        assert ref() is None
        await within(t.wait_requests(2))  # shared: the hub's task polls for both
        assert it.stats.requests == first.stats.requests == 2  # the hub's counters
        await it.aclose()
