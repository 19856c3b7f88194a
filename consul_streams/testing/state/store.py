"""The dev agent's state-store core: one raft-like index, topic notifications, timers.

Every write in the dev agent goes through :class:`StateStore`: it hands out the next index
(:meth:`StateStore.next_index`), and after the write it wakes blocked readers by *topic*
(:meth:`StateStore.notify`). A topic is any hashable value; the conventions are

* ``("kv", key)`` one KV key, ``("kv-prefix", prefix)`` every key starting with ``prefix``
  (:meth:`StateStore.notify_key` wakes the key and all its prefixes at once),
* ``("table", name)`` a whole table (``"kvs"``, ``"sessions"``, ``"nodes"``, ``"services"``,
  ``"checks"``, ...), ``("service", name)``, ``("node", name)``, ``("session", id)``.

Readers do not poll: a :class:`WatchSet` collects topics while a query runs and then waits on
one future registered under each topic. A write resolves every future of its topics, so all
waiters wake in the same loop iteration. 10,000 blocked queries cost 10,000 futures and set
entries, nothing else.

Sub-stores (KV, sessions, catalog, ...) are created once per agent with :meth:`StateStore.get`
and implement :class:`SubStore`, so that ``restart(keep_state=False)`` can clear everything
and a snapshot restore can shift all indexes down.

Agent time: :meth:`StateStore.now` and :meth:`StateStore.call_later` run on the event loop's
clock divided by ``time_scale`` (``time_scale=0.01`` makes a 10 s session TTL expire in
0.1-0.2 s of wall time), so TTL and lock-delay tests are fast and exact.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["StateStore", "SubStore", "WatchSet"]

T = TypeVar("T", bound="SubStore")


@runtime_checkable
class SubStore(Protocol):
    """What a table family (KV, sessions, catalog, ...) implements to live in a StateStore."""

    def reset(self) -> None:
        """Drop all data (``restart(keep_state=False)``); re-seed defaults such as the dev node."""

    def shift_indexes(self, delta: int) -> None:
        """Add ``delta`` (negative) to every stored index, never going below 1."""


class WatchSet:
    """Topics a query read, and the one future that fires when any of them is written."""

    __slots__ = ("_future", "_store", "abandoned", "topics")

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self.topics: set[Hashable] = set()
        self._future: asyncio.Future[bool] | None = None
        self.abandoned = False

    def add(self, *topics: Hashable) -> None:
        """Watch these topics (call while running the query)."""
        self.topics.update(topics)

    def add_prefix(self, table: str, prefix: str) -> None:
        """Watch every key of ``table`` that starts with ``prefix`` (``""`` = the whole table)."""
        self.topics.add((f"{table}-prefix", prefix))

    async def wait(self, timeout: float) -> bool:
        """Wait until a watched topic is written; True if woken, False on timeout.

        After a wake-up, :attr:`abandoned` tells whether the whole store was abandoned
        (snapshot restore or restart) rather than one topic written.
        """
        if timeout <= 0:
            return False
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._future = fut
        store = self._store
        store._register(self.topics, fut)
        store._blocked_changed(+1)
        try:
            self.abandoned = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            store._unregister(self.topics, fut)
            store._blocked_changed(-1)
            self._future = None
        return True


class StateStore:
    """The agent's index, notification hub, sub-store registry and clock."""

    def __init__(
        self,
        *,
        node_name: str = "dev",
        datacenter: str = "dc1",
        node_address: str = "127.0.0.1",
        node_meta: Mapping[str, str] | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.node_name = node_name
        self.datacenter = datacenter
        self.node_address = node_address
        self.node_meta = dict(node_meta or {})
        self.node_id = str(uuid.uuid4())
        self.time_scale = time_scale
        self.index = 1
        self._waiters: dict[Hashable, set[asyncio.Future[bool]]] = {}
        self._substores: dict[type[Any], SubStore] = {}
        self._listeners: dict[str, list[Callable[..., None]]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self.blocked = 0
        self._blocked_events: list[asyncio.Event] = []

    # -- index -----------------------------------------------------------------------------

    def next_index(self) -> int:
        """Allocate the index of a new write (strictly greater than every earlier one)."""
        self.index += 1
        return self.index

    # -- notifications ---------------------------------------------------------------------

    def _register(self, topics: Iterable[Hashable], fut: asyncio.Future[bool]) -> None:
        for topic in topics:
            self._waiters.setdefault(topic, set()).add(fut)

    def _unregister(self, topics: Iterable[Hashable], fut: asyncio.Future[bool]) -> None:
        for topic in topics:
            waiters = self._waiters.get(topic)
            if waiters is not None:
                waiters.discard(fut)
                if not waiters:
                    del self._waiters[topic]

    def notify(self, *topics: Hashable) -> None:
        """Wake every query watching any of ``topics``."""
        for topic in topics:
            waiters = self._waiters.pop(topic, None)
            if waiters:
                for fut in waiters:
                    if not fut.done():
                        fut.set_result(False)

    def notify_key(self, table: str, key: str) -> None:
        """Wake watchers of ``(table, key)``, of every prefix of ``key`` and of the table."""
        if not self._waiters:
            return
        # A key has len(key)+1 prefixes; looking each up is cheaper than scanning watchers.
        prefix_table = f"{table}-prefix"
        topics: list[Hashable] = [(table, key), ("table", table)]
        topics.extend((prefix_table, key[:i]) for i in range(len(key) + 1))
        self.notify(*topics)

    def notify_all(self) -> None:
        """Wake every blocked query (the store was abandoned: restore, restart)."""
        waiters, self._waiters = self._waiters, {}
        for futs in waiters.values():
            for fut in futs:
                if not fut.done():
                    fut.set_result(True)

    def _blocked_changed(self, delta: int) -> None:
        self.blocked += delta
        events, self._blocked_events = self._blocked_events, []
        for event in events:
            event.set()

    async def wait_blocked(self, count: int = 1) -> None:
        """Return once at least ``count`` queries are blocked waiting (no polling)."""
        while self.blocked < count:
            event = asyncio.Event()
            self._blocked_events.append(event)
            await event.wait()

    async def wait_unblocked(self, count: int = 0) -> None:
        """Return once at most ``count`` queries are blocked waiting (no polling)."""
        while self.blocked > count:
            event = asyncio.Event()
            self._blocked_events.append(event)
            await event.wait()

    @property
    def waiting(self) -> int:
        """How many (topic, query) registrations are pending (for tests and benchmarks)."""
        return sum(len(v) for v in self._waiters.values())

    # -- cross-store events ------------------------------------------------------------------

    def listen(self, event: str, callback: Callable[..., None]) -> None:
        """Call ``callback(*args)`` whenever a sub-store emits ``event``."""
        self._listeners.setdefault(event, []).append(callback)

    def emit(self, event: str, *args: Any) -> None:
        """Tell listeners about ``event`` (e.g. ``"check"``, node, check_id, status | None)."""
        for callback in list(self._listeners.get(event, ())):
            callback(*args)

    # -- sub-stores --------------------------------------------------------------------------

    def get(self, cls: type[T]) -> T:
        """The agent's single instance of sub-store ``cls``, created as ``cls(store)``."""
        existing = self._substores.get(cls)
        if existing is None:
            existing = cls(self)  # type: ignore[call-arg]
            self._substores[cls] = existing
        return existing  # type: ignore[return-value]

    def reset(self) -> None:
        """Clear all data (fresh agent) and wake everyone."""
        self.cancel_timers()
        self.index = 1
        for sub in list(self._substores.values()):
            sub.reset()
        self.notify_all()

    def shift_indexes(self, delta: int) -> None:
        """Move every index down by ``-delta`` (a snapshot restore with lower indexes)."""
        self.index = max(1, self.index + delta)
        for sub in list(self._substores.values()):
            sub.shift_indexes(delta)
        self.notify_all()

    # -- time --------------------------------------------------------------------------------

    def now(self) -> float:
        """Agent time in seconds: the loop clock, sped up by ``1 / time_scale``."""
        return asyncio.get_running_loop().time() / self.time_scale

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """Run ``callback`` after ``delay`` seconds of agent time (cancelled on reset/stop)."""
        loop = asyncio.get_running_loop()
        holder: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._timers.discard(holder[0])
            callback()

        handle = loop.call_later(max(0.0, delay * self.time_scale), fire)
        holder.append(handle)
        self._timers.add(handle)
        return handle

    def cancel_timer(self, handle: asyncio.TimerHandle | None) -> None:
        """Cancel a timer made by :meth:`call_later` (None is ignored)."""
        if handle is not None:
            handle.cancel()
            self._timers.discard(handle)

    def cancel_timers(self) -> None:
        """Cancel every pending timer (agent stop or reset)."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()


def clamp_index(value: int, delta: int) -> int:
    """``value + delta`` but never below 1 (indexes are >= 1)."""
    return max(1, value + delta)
