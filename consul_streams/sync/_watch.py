"""``watch(reply, callback)``: the async engine's watch, with callbacks on a thread of its own.

The watch itself is :func:`consul_streams.watch` (and :func:`consul_streams.ops.debounce`)
running on the client's loop thread; this module only hands each emitted ``(value, meta)``
to a :class:`~consul_streams.sync._dispatch.Dispatcher`, one thread hop away.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from consul_streams._query import Query
from consul_streams.exceptions import InvalidArgument
from consul_streams.sync._dispatch import Dispatcher
from consul_streams.sync._forward import Reply
from consul_streams.typing import Meta
from consul_streams.watch import WatchStats
from consul_streams.watch import watch as async_watch

__all__ = ["WatchHandle", "watch"]

T = TypeVar("T")
log = logging.getLogger("consul_streams.sync")


class WatchHandle(Generic[T]):
    """A running watch: its callback gets every change on the watch's callback thread.

    ``handle.stop()`` (or leaving ``with watch(...) as handle:``) ends it: the blocking query
    is cancelled, and once ``stop()`` returns no callback of this watch runs any more (unless
    ``stop()`` was called from that callback, which then finishes first). :attr:`error` is the
    error that ended the watch, if one did; :attr:`done` is set when it ended either way.

    Note: callbacks run in order, on one thread per watch (never the event-loop thread). A
    callback slower than the changes sees the latest value: intermediate ones are skipped.
    An exception in a callback is logged and the watch goes on.
    """

    def __init__(
        self,
        reply: Reply[T],
        callback: Callable[[T, Meta], object],
        on_error: Callable[[BaseException], object] | None,
        options: dict[str, Any],
        debounce: float | None,
    ) -> None:
        self.query: Query[T] = reply.query
        self.client = reply.client
        self._callback = callback
        self._on_error = on_error
        #: set when the watch has ended (stopped, or ended by an error).
        self.done = threading.Event()
        #: the error that ended the watch (``None`` while running or after ``stop()``).
        self.error: BaseException | None = None
        stream: Any = async_watch(self.query, **options)  # bad options raise here
        self._stream = stream
        if debounce is not None:
            from consul_streams import ops

            stream = stream | ops.debounce(debounce)
        self._dispatcher = Dispatcher(f"consul_streams.sync watch {self.query!r}")
        self._loop = self.client.loop
        self.client._register(self)
        try:
            self._task = self._loop.spawn(self._run(stream), name=repr(self))
        except BaseException:
            self.client._unregister(self)
            self._dispatcher.stop()
            raise

    async def _run(self, stream: Any) -> None:
        try:
            async with stream.stream() as items:
                async for value, meta in items:
                    self._dispatcher.post("value", self._callback, value, meta)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = exc
            log.error("watch %r ended: %s", self.query, exc)
            if self._on_error is not None:
                self._dispatcher.post("error", self._on_error, exc)
        finally:
            # Set from the callback thread, after the last callback: done means "all delivered".
            self._dispatcher.post("done", self.done.set)

    @property
    def callback_thread(self) -> threading.Thread:
        """The thread this watch's callbacks run on."""
        return self._dispatcher.thread

    @property
    def stats(self) -> WatchStats:
        """The engine's counters for this watch (requests, emits, retries, ...)."""
        return self._stream.stats  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Cancel the watch and wait for its callback thread to end. Idempotent."""
        self.client._unregister(self)
        self._close()

    def _close(self) -> None:
        # The task unwinds (its request cancelled) before the callback thread ends.
        self._loop.cancel(self._task)
        self._dispatcher.stop()
        self.done.set()

    def _forked(self) -> None:
        # The loop and the callback thread stayed in the parent.
        self.done.set()

    def __enter__(self) -> WatchHandle[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<sync WatchHandle {self.query!r} {'done' if self.done.is_set() else 'running'}>"


def watch(
    reply: Reply[T],
    callback: Callable[[T, Meta], object],
    *,
    debounce: float | None = None,
    on_error: Callable[[BaseException], object] | None = None,
    **options: Any,
) -> WatchHandle[T]:
    """Call ``callback(value, meta)`` with the read's value now and after every change.

    ``reply`` is what a sync read returned (``client.kv.items("app/")``); its query is
    re-issued as a blocking query by the async engine: the same index rules, backoff and
    sharing as :func:`consul_streams.watch`, which takes ``options`` (``wait``, ``initial``,
    ``heartbeat``, ``rate_limit``, ``backoff``, ``retry``, ...). ``debounce`` (seconds): calls
    closer together than that collapse into one, with the latest value.
    ``on_error(exc)`` is called (on the callback thread) if an error ends the watch.

    Note: see :class:`WatchHandle` for threads, ordering and coalescing.
    """
    if not isinstance(reply, Reply):
        raise InvalidArgument(
            "reply",
            "expected what a consul_streams.sync read returned (e.g. client.kv.items('app/')), "
            f"got {type(reply).__name__}",
        )
    if not callable(callback):
        raise InvalidArgument("callback", f"expected a callable (value, meta), got {callback!r}")
    if on_error is not None and not callable(on_error):
        raise InvalidArgument("on_error", f"expected a callable (exc) or None, got {on_error!r}")
    if debounce is not None and (
        isinstance(debounce, bool) or not isinstance(debounce, (int, float)) or debounce < 0
    ):
        raise InvalidArgument("debounce", f"expected seconds >= 0 or None, got {debounce!r}")
    return WatchHandle(reply, callback, on_error, options, float(debounce) if debounce else None)
