"""ops.debounce / ops.throttle / ops.combine, timed exactly on a VirtualClock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiostream import stream

from consul_streams import ops
from consul_streams._clock import VirtualClock
from consul_streams.exceptions import InvalidArgument
from consul_streams.typing import Meta

T = 2.0
_END = object()


class Feed:
    """A source the test feeds item by item; ``end()`` finishes it."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False

    def push(self, *items: Any) -> None:
        for item in items:
            self.queue.put_nowait(item)

    def end(self) -> None:
        self.queue.put_nowait(_END)

    async def items(self) -> AsyncIterator[Any]:
        try:
            while (item := await self.queue.get()) is not _END:
                yield item
        finally:
            self.closed = True


async def within(aw: Any) -> Any:
    return await asyncio.wait_for(aw, T)


class Reader:
    """Pulls one item at a time in the background so the test can advance time meanwhile."""

    def __init__(self, it: Any) -> None:
        self.it = it
        self.pending: asyncio.Future[Any] | None = None
        self.ready()  # start pulling now, so the operator sees items as they come

    def ready(self) -> bool:
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.it.__anext__())
        return self.pending.done()

    async def get(self) -> Any:
        self.ready()
        assert self.pending is not None
        pending, self.pending = self.pending, None
        item = await within(pending)
        self.ready()
        return item

    async def stop(self) -> None:
        """Cancel the pull in flight (as a consumer task being cancelled would)."""
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()
            await asyncio.wait({self.pending})


@contextlib.asynccontextmanager
async def reading(xs: Any) -> AsyncIterator[Reader]:
    async with xs.stream() as it:
        reader = Reader(it)
        try:
            yield reader
        finally:
            await reader.stop()


async def test_debounce_emits_latest_after_quiet_period() -> None:
    clock = VirtualClock()
    feed = Feed()
    async with reading(stream.iterate(feed.items()) | ops.debounce(0.5, clock=clock)) as r:
        feed.push(1)
        await clock.advance(0.4)
        assert not r.ready()
        feed.push(2)
        await clock.advance(0.4)  # 0.8: only 0.4 since the last item
        assert not r.ready()
        await clock.advance(0.1)  # 0.9: 0.5 quiet after item 2
        assert r.ready()
        assert await r.get() == 2


async def test_debounce_max_wait_emits_under_churn() -> None:
    clock = VirtualClock()
    feed = Feed()
    xs = stream.iterate(feed.items()) | ops.debounce(1.0, max_wait=2.0, clock=clock)
    async with reading(xs) as r:
        for i in range(4):  # an item every 0.5 s: never 1 s of quiet
            feed.push(i)
            await clock.advance(0.5)
        assert r.ready()
        assert await r.get() == 3
        assert clock.now() == 2.0


async def test_debounce_never_loses_the_last_value_at_end_of_stream() -> None:
    clock = VirtualClock()
    feed = Feed()
    feed.push(1, 2, 3)
    feed.end()
    xs = stream.iterate(feed.items()) | ops.debounce(10.0, clock=clock)
    assert await within(stream.list(xs)) == [3]
    assert clock.now() == 0.0


async def test_debounce_passes_meta_pairs_through() -> None:
    clock = VirtualClock()
    feed = Feed()
    feed.push(("a", Meta(index=1)), ("b", Meta(index=2)))
    feed.end()
    xs = stream.iterate(feed.items()) | ops.debounce(1.0, clock=clock)
    assert await within(stream.list(xs)) == [("b", Meta(index=2))]


async def test_throttle_first_at_once_then_latest_per_interval() -> None:
    clock = VirtualClock()
    feed = Feed()
    async with reading(stream.iterate(feed.items()) | ops.throttle(1.0, clock=clock)) as r:
        feed.push(1)
        assert await r.get() == 1  # no time passed
        feed.push(2, 3)
        await clock.advance(0.9)
        assert not r.ready()
        await clock.advance(0.1)
        assert await r.get() == 3  # 2 was replaced by 3
        feed.push(4)
        await clock.advance(0.5)
        assert not r.ready()
        feed.end()
        await clock.advance(0.5)  # the last one waits for its interval, then comes out
        assert await r.get() == 4
        with pytest.raises(StopAsyncIteration):
            await r.get()


async def test_throttle_item_after_a_quiet_interval_is_emitted_at_once() -> None:
    clock = VirtualClock()
    feed = Feed()
    async with reading(stream.iterate(feed.items()) | ops.throttle(1.0, clock=clock)) as r:
        feed.push(1)
        assert await r.get() == 1
        await clock.advance(5.0)
        feed.push(2)
        assert await r.get() == 2
        assert clock.now() == 5.0


async def test_closing_a_timed_operator_closes_its_source() -> None:
    clock = VirtualClock()
    feed = Feed()
    feed.push(1)
    async with reading(stream.iterate(feed.items()) | ops.debounce(1.0, clock=clock)) as r:
        await clock.advance(1.0)
        assert await r.get() == 1
        assert not feed.closed
        await r.stop()  # cancelling the consumer mid-pull
    assert feed.closed


async def test_combine_waits_for_all_then_emits_on_each_change() -> None:
    a, b = Feed(), Feed()
    xs = ops.combine(a=stream.iterate(a.items()), b=stream.iterate(b.items()))
    async with reading(xs) as r:
        a.push(("a1", Meta(index=1)))
        await asyncio.sleep(0)
        assert not r.ready()
        b.push("b1")
        assert await r.get() == {"a": "a1", "b": "b1"}
        a.push("a1")  # same value: nothing new
        a.push("a2")
        assert await r.get() == {"a": "a2", "b": "b1"}
        a.end()
        b.end()
        with pytest.raises(StopAsyncIteration):
            await r.get()


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda: ops.debounce(0), "quiet"),
        (lambda: ops.debounce("fast"), "quiet"),
        (lambda: ops.debounce(1, max_wait=-1), "max_wait"),
        (lambda: ops.debounce(1, clock="wall"), "clock"),  # type: ignore[arg-type]
        (lambda: ops.throttle(None), "interval"),  # type: ignore[arg-type]
        (lambda: ops.combine(a=[1, 2]), "a"),  # type: ignore[arg-type]
        (lambda: ops.combine(), "streams"),
    ],
)
def test_bad_arguments_fail_at_call_time(call: Any, parameter: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        call()
    assert info.value.parameter == parameter


def test_durations_accept_go_strings() -> None:
    ops.debounce("250ms", max_wait="2s")
    ops.throttle("1m")
