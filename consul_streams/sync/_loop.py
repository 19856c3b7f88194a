"""One background thread running one asyncio event loop: what a sync client runs the engine on.

Nothing here knows about Consul. :class:`LoopThread` starts the loop, runs coroutines on it
for other threads (:meth:`LoopThread.run`), and stops it cleanly (:meth:`LoopThread.close`):
every task cancelled, async generators finalised, transports given the loop iterations they
need to close, then the loop closed, so nothing logs "Event loop is closed" afterwards.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")
log = logging.getLogger("consul_streams.sync")


class LoopThread:
    """An event loop on a daemon thread of its own, started at construction.

    Note: the thread is a daemon so that a forgotten client never keeps the interpreter alive;
    the sync client closes it at interpreter exit (``atexit``) before daemons are stopped.
    Name resolution runs on an executor this object owns (shut down in :meth:`close`), so that
    closing never has to start a thread, which Python refuses during interpreter shutdown.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix=f"{name}-resolver"
        )
        self._loop.set_default_executor(self._executor)
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._closed = False
        self._thread.start()
        self._started.wait()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    @property
    def closed(self) -> bool:
        return self._closed

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._started.set)
        try:
            self._loop.run_forever()
        finally:
            try:
                self._finish()
            finally:
                asyncio.set_event_loop(None)
                self._loop.close()

    def _finish(self) -> None:
        """Cancel what is left, finalise async generators, let transports close."""
        loop = self._loop
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                log.error("task %r failed while the loop stopped", task, exc_info=task.exception())
        loop.run_until_complete(loop.shutdown_asyncgens())
        # Closed transports call connection_lost one iteration later: give them that turn.
        loop.run_until_complete(asyncio.sleep(0))

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; the returned future is safe to wait on anywhere."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.name}: the event loop thread is stopped")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block until it returns (or raise what it raised).

        If the waiting thread is interrupted (``KeyboardInterrupt``), the coroutine is
        cancelled. Calling this from the loop thread itself would deadlock: it raises.
        """
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError(
                "a blocking consul_streams.sync call was made on its own event loop thread; "
                "use the asyncio API (consul_streams.Consul) inside coroutines"
            )
        future = self.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def call(self, fn: Callable[[], T]) -> T:
        """Run the plain function ``fn`` on the loop thread and return its result."""

        async def call() -> T:
            return fn()

        if self.in_loop_thread():
            return fn()
        return self.run(call())

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Start ``coro`` as a task of the loop (created there) and return the task."""
        return self.call(lambda: self._loop.create_task(coro, name=name))

    def cancel(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` and block until it has unwound (no-op once the loop is stopped)."""

        async def cancel() -> None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        if self._closed or task.done():
            return
        self.run(cancel())

    def close(self) -> None:
        """Stop the loop (cancelling what still runs on it) and join the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            if not self.in_loop_thread():
                self._thread.join()
        self._executor.shutdown(wait=not self.in_loop_thread())

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return f"<LoopThread {self.name} {state}>"
