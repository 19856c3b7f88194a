"""The callback thread of one watch or recipe: callbacks in order, latest value wins.

The loop thread only :meth:`Dispatcher.post` s (a dict write and a notify, never a wait); a
thread of the dispatcher's own runs the callbacks. That is the one thread hop of the sync
layer, and it keeps a slow callback from stalling the loop or any other watch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["Dispatcher"]

log = logging.getLogger("consul_streams.sync")


class Dispatcher:
    """Runs posted calls on one daemon thread, in posting order.

    Each call is posted under a ``key``; a post whose key is already pending replaces that
    pending call's arguments (and moves it to the back): a callback that is slower than the
    updates sees the latest value, never a backlog. An exception in a callback is logged and
    the thread goes on.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._pending: dict[Hashable, tuple[Callable[..., object], tuple[Any, ...]]] = {}
        self._stopped = False
        self._busy = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def post(self, key: Hashable, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)``, replacing a pending call posted under the same ``key``."""
        with self._cond:
            if self._stopped:
                return
            self._pending.pop(key, None)
            self._pending[key] = (fn, args)
            self._cond.notify()

    def _main(self) -> None:
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()  # for wait_idle()
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                key = next(iter(self._pending))
                fn, args = self._pending.pop(key)
                self._busy = True
            try:
                fn(*args)
            except Exception:
                log.exception("callback %r of %s failed; the watch goes on", fn, self.name)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending or running; False if ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._stopped or (not self._pending and not self._busy), timeout
            )

    def stop(self) -> None:
        """Drop pending calls and end the thread; joins it unless called from a callback."""
        with self._cond:
            self._stopped = True
            self._pending.clear()
            self._cond.notify_all()
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join()

    def __repr__(self) -> str:
        return f"<Dispatcher {self.name} {'stopped' if self._stopped else 'running'}>"
