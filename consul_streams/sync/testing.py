"""Test kit for sync code: the embedded dev agent, served from a thread of its own.

``with DevAgentThread() as agent:`` starts :class:`consul_streams.testing.DevAgent` on its own
event-loop thread, so a synchronous test (or a Flask/Django test client) can point a
:class:`consul_streams.sync.Consul` at ``agent.address``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from consul_streams.sync._loop import LoopThread
from consul_streams.testing import DevAgent

__all__ = ["DevAgentThread"]

T = TypeVar("T")


class DevAgentThread:
    """A :class:`~consul_streams.testing.DevAgent` (same keyword arguments) on a loop thread.

    :attr:`agent` is the agent itself: call its coroutine methods through :meth:`run`
    (``agent_thread.run(agent_thread.agent.restart())``).
    """

    def __init__(self, **options: Any) -> None:
        self.agent = DevAgent(**options)  # bad options raise before a thread starts
        self._loop = LoopThread("consul_streams dev agent")

    @property
    def address(self) -> str:
        """``host:port``, as ``Consul(address)`` and ``CONSUL_HTTP_ADDR`` take it."""
        return self.agent.address

    @property
    def url(self) -> str:
        return self.agent.url

    def run(self, coro: Any) -> Any:
        """Run a coroutine of the agent (``restart()``, ``wait_blocked()``) on its thread."""
        return self._loop.run(coro)

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` on the agent's thread (e.g. ``lambda: agent.faults.fail_next(1)``)."""
        return self._loop.call(fn)

    def start(self) -> DevAgentThread:
        self._loop.run(self.agent.start())
        return self

    def stop(self) -> None:
        """Stop the agent and its thread. Idempotent."""
        if not self._loop.closed:
            try:
                self._loop.run(self.agent.stop())
            finally:
                self._loop.close()

    def __enter__(self) -> DevAgentThread:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
