"""A virtual-time event loop for whole-system tests: time jumps to the next timer when idle.

Everything in the test (dev agent, fault proxies, clients) runs in this one loop and talks over
loopback sockets. When no callback is ready and no socket has data, nothing can happen until the
next timer, so the loop moves its clock there at once instead of sleeping. Loopback delivery is
synchronous (a byte written is readable by the peer before ``send`` returns), so "no socket
ready" really means idle. Session TTLs, lock delays, HTTP timeouts, backoff and lease deadlines
all read ``loop.time()`` and so share one virtual clock.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class WarpSelector(selectors.DefaultSelector):
    """A selector that reports a timed wait as elapsed (advancing ``now``) instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.warps = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if events or timeout is None or timeout <= 0:
            return events if events or timeout is not None else super().select(None)
        self.now += timeout
        self.warps += 1
        return events


class WarpLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual and jumps forward whenever the loop is idle."""

    def __init__(self) -> None:
        self.warp = WarpSelector()
        super().__init__(self.warp)

    def time(self) -> float:
        return self.warp.now


def run_warped(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh :class:`WarpLoop`."""
    loop = WarpLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
