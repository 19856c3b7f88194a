"""Timed operators: debounce, throttle (read an injectable clock) and combine.

While a timed operator waits for its timer it keeps one ``anext()`` of its source running in
a task, because cancelling an ``anext()`` would close the source; that task is cancelled and
awaited when the operator closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from aiostream import stream as aiostream_stream
from aiostream.core import Streamer, operator, pipable_operator, streamcontext

from consul_streams._clock import Clock, MonotonicClock
from consul_streams._ops_items import split

__all__ = ["combine", "debounce", "throttle"]

_UNSET: Any = object()


class _Puller:
    """Reads a streamer one item ahead in a task, racing it against a clock timer."""

    def __init__(self, streamer: Streamer[Any], clock: Clock) -> None:
        self._streamer = streamer
        self._clock = clock
        self._task: asyncio.Task[Any] | None = None

    async def wait(self, timeout: float | None) -> bool:
        """True when the next item (or the end) is ready; False when ``timeout`` ran out."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._streamer.__anext__())
        if timeout is None:
            await asyncio.wait({self._task})
            return True
        if timeout <= 0:
            await asyncio.sleep(0)
            return self._task.done()
        timer = asyncio.ensure_future(self._clock.sleep(timeout))
        try:
            await asyncio.wait({self._task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not timer.done():
                timer.cancel()
                await asyncio.wait({timer})
        return self._task.done()

    def take(self) -> Any:
        """The ready item; raises ``StopAsyncIteration`` at the end, or the source's error."""
        task, self._task = self._task, None
        if task is None or not task.done():
            raise RuntimeError("take() before wait() returned True")
        return task.result()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})


def _clock_or_default(clock: Clock | None) -> Clock:
    return clock if clock is not None else MonotonicClock()


@pipable_operator
async def debounce(
    source: AsyncIterable[Any],
    quiet: float,
    *,
    max_wait: float | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[Any]:
    """Emit the latest item once ``quiet`` seconds pass without a newer one.

    Under constant churn an item is still emitted at least every ``max_wait`` seconds (when
    given). At the end of the source the pending item is emitted at once.

    Note: intermediate items within a quiet period are dropped (latest wins).
    """
    time = _clock_or_default(clock)
    pending: Any = _UNSET
    first_at = last_at = 0.0
    async with streamcontext(source) as streamer:
        puller = _Puller(streamer, time)
        try:
            while True:
                timeout: float | None = None
                if pending is not _UNSET:
                    deadline = last_at + quiet
                    if max_wait is not None:
                        deadline = min(deadline, first_at + max_wait)
                    timeout = deadline - time.now()
                if await puller.wait(timeout):
                    try:
                        item = puller.take()
                    except StopAsyncIteration:
                        break
                    last_at = time.now()
                    if pending is _UNSET:
                        first_at = last_at
                    pending = item
                    continue
                item, pending = pending, _UNSET
                yield item
            if pending is not _UNSET:
                yield pending
        finally:
            await puller.aclose()


@pipable_operator
async def throttle(
    source: AsyncIterable[Any], interval: float, *, clock: Clock | None = None
) -> AsyncIterator[Any]:
    """Emit at most one item per ``interval`` seconds: the first at once, then the latest.

    An item arriving within the interval is held (replacing any held one) and emitted when the
    interval ends; the held item is also emitted when the source ends (after the interval).

    Note: intermediate items within an interval are dropped (latest wins).
    """
    time = _clock_or_default(clock)
    pending: Any = _UNSET
    next_at = float("-inf")
    async with streamcontext(source) as streamer:
        puller = _Puller(streamer, time)
        try:
            while True:
                timeout = None if pending is _UNSET else next_at - time.now()
                if await puller.wait(timeout):
                    try:
                        item = puller.take()
                    except StopAsyncIteration:
                        break
                    if pending is _UNSET and time.now() >= next_at:
                        next_at = time.now() + interval
                        yield item
                    else:
                        pending = item
                    continue
                item, pending = pending, _UNSET
                next_at = time.now() + interval
                yield item
            if pending is not _UNSET:
                await time.sleep(next_at - time.now())
                yield pending
        finally:
            await puller.aclose()


@operator
async def combine(**sources: AsyncIterable[Any]) -> AsyncIterator[dict[str, Any]]:
    """Emit ``{name: latest value}`` whenever one source changes, once all have a value.

    ``(value, meta)`` pairs contribute their value. A dict equal to the last emitted one is not
    emitted again.

    Note: latest wins per source; the stream ends when all sources have ended.
    """
    names = list(sources)
    tagged = [aiostream_stream.map(src, _Tagger(name)) for name, src in sources.items()]
    latest: dict[str, Any] = {}
    previous: dict[str, Any] | None = None
    if not tagged:
        return
    async with streamcontext(aiostream_stream.merge(*tagged)) as streamer:
        async for name, item in streamer:
            latest[name] = split(item)[0]
            if len(latest) < len(names):
                continue
            current = {n: latest[n] for n in names}
            if current != previous:
                previous = current
                yield dict(current)


class _Tagger:
    """Pairs an item with its source's name (a class, not a lambda, to bind the name)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, item: Any, *_: Any) -> tuple[str, Any]:
        return (self.name, item)
