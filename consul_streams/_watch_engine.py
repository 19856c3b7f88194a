"""The per-client watch engine: one owner for shared polls, the long-poll budget and their tasks.

A :class:`~consul_streams._client.Consul` creates one :class:`WatchEngine` (on first use; it
binds to the running loop only when it starts its first task) and closes it in ``aclose()``.
Every watch of a Query built by that client goes through it:

- the hub registry: identical watches (same request, same poll settings) share one
  :class:`~consul_streams._share.Hub`, i.e. one long-poll;
- the long-poll budget (:class:`~consul_streams._budget.LongPollBudget`), sized from the
  client's ``max_connections`` and ``min_hold``;
- every task the two start (poll tasks, the budget's rotation timer), through one
  :class:`~consul_streams._tasks.TaskOwner`.

Closing the engine ends every open watch with :class:`~consul_streams.exceptions.ClientClosed`
(after the round it may already hold), cancels the in-flight requests and waits until every
task has ended; a watch started afterwards fails the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

from consul_streams._budget import DEFAULT_MIN_HOLD, LongPollBudget, check_min_hold
from consul_streams._clock import Clock
from consul_streams._cover import PrefixCover
from consul_streams._engine import PollConfig, Poller
from consul_streams._query import Query
from consul_streams._share import Hub, Subscription
from consul_streams._tasks import TaskOwner
from consul_streams.exceptions import ClientClosed, InvalidArgument

__all__ = ["WatchEngine"]


class WatchEngine:
    """Owns one client's shared polls, long-poll budget and background tasks.

    ``slots``: how many blocking reads may be held open at once (None: no budget);
    ``min_hold``: seconds a long-poll slot is held before a waiting watch may preempt it;
    ``clock``: times the preemptions (None: the clock of the first watch that needs a slot).
    """

    def __init__(
        self,
        *,
        slots: int | None = None,
        min_hold: float = DEFAULT_MIN_HOLD,
        clock: Clock | None = None,
        name: str = "consul_streams watch engine",
        cover_prefixes: bool = True,
    ) -> None:
        if slots is not None and (
            isinstance(slots, bool) or not isinstance(slots, int) or slots < 1
        ):
            raise InvalidArgument("slots", f"expected an int >= 1 or None, got {slots!r}")
        self.slots = slots
        self.min_hold = check_min_hold(min_hold)
        self._clock = clock
        self._tasks = TaskOwner(name)
        #: shared hubs by sharing key
        self._hubs: dict[Hashable, Hub] = {}
        #: every running hub, shared or not (what close must end)
        self._live: set[Hub] = set()
        self._budget: LongPollBudget | None = None
        #: serve single-key KV watches waiting for a slot from one prefix read (``_cover.py``)
        #: instead of rotating slots; set before the first watch (benchmarks compare both)
        self.cover_prefixes = cover_prefixes
        self._cover: PrefixCover | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._live)} polls, {len(self._tasks)} tasks"
        return f"<WatchEngine {state} budget={self._budget!r}>"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def polls(self) -> int:
        """How many polls (hubs) are running."""
        return len(self._live)

    @property
    def tasks(self) -> int:
        """How many background tasks this engine owns right now."""
        return len(self._tasks)

    @property
    def budget(self) -> LongPollBudget | None:
        """The long-poll budget, once a watch has needed it (None before, or without slots)."""
        return self._budget

    def budget_for(self, clock: Clock) -> LongPollBudget | None:
        """The long-poll budget, created on first use (timed by the engine's clock or ``clock``)."""
        if self.slots is None:
            return None
        if self._budget is None:
            self._budget = LongPollBudget(
                self.slots,
                min_hold=self.min_hold,
                clock=self._clock if self._clock is not None else clock,
                tasks=self._tasks,
            )
            if self.cover_prefixes:
                self._cover = PrefixCover(self._budget, self._tasks)
        return self._budget

    @property
    def cover(self) -> PrefixCover | None:
        """The prefix cover, once the budget exists (None when ``cover_prefixes`` is off)."""
        return self._cover

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("the Consul client is closed: it starts no new watch")

    def subscribe(
        self, query: Query[Any], config: PollConfig, *, share: bool, subscription: Subscription
    ) -> None:
        """Attach ``subscription`` to the hub polling ``query`` with ``config``, creating it
        if needed."""
        self._check_open()
        if not share:
            self._new_hub(query, config, None).attach(subscription)
            return
        key = (query.key, query.index, query.hash, config.sharing_key())
        hub = self._hubs.get(key)
        if hub is None:
            hub = self._hubs[key] = self._new_hub(query, config, key)
        hub.attach(subscription)

    def _new_hub(self, query: Query[Any], config: PollConfig, key: Hashable) -> Hub:
        budget = self.budget_for(config.clock)
        poller = Poller(query, config, budget, self._cover)
        hub = Hub(poller, key, spawn=self._tasks.spawn, on_idle=self._forget)
        self._live.add(hub)
        return hub

    def _forget(self, hub: Hub) -> None:
        self._live.discard(hub)
        if hub.key is not None and self._hubs.get(hub.key) is hub:
            del self._hubs[hub.key]

    async def aclose(self) -> None:
        """End every watch with :class:`ClientClosed`, cancel and await every task; idempotent."""
        self._closed = True
        rounds = []
        error = "the Consul client was closed while this watch was open"
        for hub in list(self._live):
            stopped = hub.fail(ClientClosed(error))
            if stopped is not None and not isinstance(stopped, asyncio.Task):
                rounds.append(stopped)  # a round in a consumer's own task, being aborted
        await self._tasks.aclose()
        if rounds:
            await asyncio.wait(rounds)
