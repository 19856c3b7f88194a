"""An owner for background tasks: every task it starts is cancelled and awaited by :meth:`aclose`.

The watch engine's poll tasks and the long-poll budget's rotation timer are started through one
of these (trio's nursery idea, without the "wait for children" exit): nothing they start can
outlive the client that owns them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["TaskOwner"]


class TaskOwner:
    """Starts tasks, forgets them when they end, cancels and awaits the rest on :meth:`aclose`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._tasks)} tasks"
        return f"<TaskOwner {self.name} {state}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Start ``coro`` as a task this owner cancels on close (RuntimeError once closed)."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.name} is closed: it starts no new task")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        """Refuse new tasks, cancel the running ones and wait until they have all ended."""
        self._closed = True
        while self._tasks:
            pending = set(self._tasks)
            for task in pending:
                task.cancel()
            # asyncio.wait re-raises only our own cancellation, never the tasks'.
            await asyncio.wait(pending)
