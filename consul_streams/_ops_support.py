"""Plumbing shared by the operators in ``ops``: pairs, the identity-carrying stream, the
one-ahead reader of the timed operators.

While a timed operator waits for its timer it keeps one ``anext()`` of its source running in
a task, because cancelling an ``anext()`` would close the source; that task is cancelled and
awaited when the operator closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, TypeVar

from aiostream.core import Stream, Streamer

from consul_streams._clock import Clock
from consul_streams._identity import Identity
from consul_streams.typing import Meta

__all__ = ["OpStream", "Puller", "identity_of", "join", "operator_pipe", "split"]

T = TypeVar("T")

UNSET: Any = object()


def split(item: Any) -> tuple[Any, Meta | None]:
    """``(value, meta)`` for a watch pair, ``(item, None)`` for a plain value."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Meta):
        return item[0], item[1]
    return item, None


def join(value: Any, meta: Meta | None) -> Any:
    return value if meta is None else (value, meta)


def identity_of(source: object) -> Identity | None:
    """The identity a watch (or an operator applied to one) declares for its values."""
    identity = getattr(source, "identity", None)
    return identity if isinstance(identity, Identity) else None


class OpStream(Stream[T]):
    """An aiostream ``Stream`` that remembers the :class:`Identity` of the values it carries,
    so an operator further down the pipe (``diff``, ``match``) keys items as the Query
    declared them."""

    def __init__(self, factory: Callable[[], AsyncIterable[T]], identity: Identity | None) -> None:
        super().__init__(factory)
        self.identity = identity


Body = Callable[..., AsyncIterator[Any]]


def operator_pipe(
    body: Body, *args: Any, keeps_identity: bool = True, **kwargs: Any
) -> Callable[[AsyncIterable[Any]], OpStream[Any]]:
    """The pipe ``source -> Stream`` running ``body(source, identity, *args, **kwargs)``.

    ``body`` reads its source through ``streamcontext`` so closing propagates down the chain.
    """

    def apply(source: AsyncIterable[Any]) -> OpStream[Any]:
        identity = identity_of(source)
        return OpStream(
            lambda: body(source, identity, *args, **kwargs),
            identity if keeps_identity else None,
        )

    return apply


class Puller:
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
