"""A thread-safe record of callback calls that tests wait on (with a timeout, never a sleep)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

TIMEOUT = 30.0


class Recorder:
    """Records ``(thread, args)`` of each call; :meth:`wait_for` blocks on a condition."""

    def __init__(self, fn: Callable[..., Any] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.threads: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._fn = fn

    def __call__(self, *args: Any) -> None:
        with self._cond:
            self.calls.append(args)
            self.threads.append(threading.current_thread())
            self._cond.notify_all()
        if self._fn is not None:
            self._fn(*args)

    def wait_for(self, predicate: Callable[[list[tuple[Any, ...]]], bool]) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self.calls), TIMEOUT)
        assert ok, f"condition not met; calls: {self.calls}"

    def wait_value(self, value: Any) -> None:
        """Wait until the latest call's value (see :meth:`values`) is ``value``."""
        self.wait_for(lambda calls: bool(calls) and _value(calls[-1][0]) == value)

    def values(self) -> list[Any]:
        """The first argument of each call, the KV entry's value where it is one."""
        with self._cond:
            return [_value(args[0]) for args in self.calls]


def _value(item: Any) -> Any:
    if isinstance(item, dict) and "Value" in item:
        return item["Value"]
    return item
