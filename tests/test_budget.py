"""The long-poll budget: reserved slots for other requests, fair rotation by preemption.

Unit tests drive ``LongPollBudget`` and the watch engine over a fake transport with a
``VirtualClock``; the end-to-end tests run the real client against the dev agent.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from test_watch_helpers import FakeTransport, Reply, json_query

from consul_streams._budget import Lease, LongPollBudget, slots_for
from consul_streams._client import Consul
from consul_streams._clock import VirtualClock
from consul_streams._engine import PollConfig, Poller
from consul_streams._query import KeyCover, Request
from consul_streams._watch_engine import WatchEngine
from consul_streams.exceptions import InvalidArgument, PermissionDenied
from consul_streams.testing import DevAgent
from consul_streams.watch import Backoff, watch

T = 5.0


async def within(aw: Any) -> Any:
    return await asyncio.wait_for(aw, T)


async def settled(before: set[asyncio.Task[Any]]) -> None:
    """Return once every task started since ``before`` has finished."""
    me = {asyncio.current_task(), *before}
    while extra := asyncio.all_tasks() - me:
        await asyncio.wait(extra)


# --- the budget itself -------------------------------------------------------------------


def test_slots_keep_a_quarter_of_the_cap_for_other_requests() -> None:
    assert [slots_for(n) for n in (1, 2, 4, 8, 64, 100)] == [1, 1, 3, 6, 48, 75]


def test_bad_budget_settings_fail_naming_the_parameter() -> None:
    with pytest.raises(InvalidArgument, match="slots"):
        LongPollBudget(0)
    with pytest.raises(InvalidArgument, match="min_hold"):
        LongPollBudget(1, min_hold=-1)
    with pytest.raises(InvalidArgument, match="slots"):
        WatchEngine(slots=0)
    with pytest.raises(InvalidArgument, match="min_hold"):
        WatchEngine(slots=1, min_hold=True)
    for bad in (-1, "soon", None):
        with pytest.raises(InvalidArgument, match="min_hold"):
            Consul("127.0.0.1:1", environ={}, min_hold=bad)  # type: ignore[arg-type]


class Holder:
    """A task that holds a lease until preempted (or cancelled) and records what happened."""

    def __init__(self, budget: LongPollBudget, name: str, log: list[str]) -> None:
        self.lease: Lease | None = None
        self.granted = asyncio.Event()
        self.task = asyncio.ensure_future(self._run(budget, name, log))

    async def _run(self, budget: LongPollBudget, name: str, log: list[str]) -> None:
        lease = self.lease = await budget.acquire()
        log.append(f"{name} holds")
        self.granted.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.append(f"{name} preempted" if lease.preempted else f"{name} cancelled")
        finally:
            lease.release()


async def test_try_acquire_grants_a_free_slot_at_once_and_never_waits() -> None:
    """The poll's fast path (#13): a lease at once when a slot is free, else None."""
    clock = VirtualClock()
    budget = LongPollBudget(1, min_hold=1.0, clock=clock)
    first = budget.try_acquire()
    assert first is not None
    assert first.task is asyncio.current_task()
    assert budget.held == 1
    assert budget.try_acquire() is None  # full: no lease, no queueing
    assert budget.waiting == 0
    log: list[str] = []
    waiter = Holder(budget, "w", log)
    await within(clock.wait_for_sleepers(1))  # queued for the held slot
    first.release()
    await within(waiter.granted.wait())  # the released slot went to the queue
    assert budget.try_acquire() is None
    waiter.task.cancel()
    await within(asyncio.wait({waiter.task}))
    assert budget.held == 0
    again = budget.try_acquire()
    assert again is not None
    again.release()
    assert budget.held == 0


async def test_waiters_preempt_the_oldest_lease_after_min_hold_in_fifo_order() -> None:
    clock = VirtualClock()
    budget = LongPollBudget(1, min_hold=1.0, clock=clock)
    log: list[str] = []
    a = Holder(budget, "a", log)
    await within(a.granted.wait())
    b, c = Holder(budget, "b", log), Holder(budget, "c", log)
    await within(clock.wait_for_sleepers(1))  # the rotation timer: waiters exist
    await clock.advance(0.5)
    assert log == ["a holds"]  # held for less than min_hold: not preempted yet
    await clock.advance(0.5)
    await within(b.granted.wait())
    assert log == ["a holds", "a preempted", "b holds"]
    await clock.advance(1.0)
    await within(c.granted.wait())
    assert log[3:] == ["b preempted", "c holds"]
    assert budget.preemptions == 2
    assert budget.held == 1
    assert budget.waiting == 0
    c.task.cancel()
    await within(asyncio.wait({a.task, b.task, c.task}))
    assert budget.held == 0


async def test_a_cancelled_waiter_leaves_no_rotation_task_behind() -> None:
    clock = VirtualClock()
    budget = LongPollBudget(1, clock=clock)
    before = asyncio.all_tasks()
    log: list[str] = []
    a = Holder(budget, "a", log)
    await within(a.granted.wait())
    b = Holder(budget, "b", log)
    await within(clock.wait_for_sleepers(1))
    rotator = budget.rotator
    assert rotator is not None
    b.task.cancel()
    a.task.cancel()
    await within(settled(before))
    assert rotator.done()
    assert budget.rotator is None
    assert budget.held == 0
    assert budget.waiting == 0
    assert log == ["a holds", "a cancelled"]


# --- the engine over a fake transport ----------------------------------------------------


class Store:
    """A tiny KV model behind a FakeTransport: blocking reads park until their key changes."""

    def __init__(self, keys: int) -> None:
        self.values = {f"/v1/kv/k{i}": (1, "v0") for i in range(keys)}
        self.events = {path: asyncio.Event() for path in self.values}
        self.log: list[tuple[str, str | None]] = []  # (path, index sent or None)
        self.parked = 0
        self.peak_parked = 0

    def write(self, path: str, value: str) -> None:
        index = max(i for i, _ in self.values.values()) + 1
        self.values[path] = (index, value)
        old, self.events[path] = self.events[path], asyncio.Event()
        old.set()

    async def handler(self, request: Request) -> Reply:
        sent = dict(request.params).get("index")
        self.log.append((request.path, sent))
        if sent is not None:
            self.parked += 1
            self.peak_parked = max(self.peak_parked, self.parked)
            try:
                while int(sent) >= self.values[request.path][0]:
                    await self.events[request.path].wait()
            finally:
                self.parked -= 1
        index, value = self.values[request.path]
        return Reply(value, index=index)


def _key_cover(path: str) -> KeyCover:
    """What KV.get declares, for the fake store's paths."""
    return KeyCover(
        path.removeprefix("/v1/kv/"),
        (),
        lambda prefix, params: Request("GET", f"/v1/kv/{prefix}", (("recurse", ""), *params)),
    )


class Watchers:
    """One consumer task per key, each recording the latest value it emitted."""

    def __init__(
        self, transport: FakeTransport, store: Store, clock: VirtualClock, *, cover: bool = False
    ) -> None:
        self.latest: dict[str, str] = {}
        self.changed = asyncio.Event()
        self.streams = [
            watch(
                json_query(transport, path, cover=_key_cover(path) if cover else None),
                clock=clock,
                rate_limit=None,
                wait="5m",
            )
            for path in store.values
        ]
        self.iterators: list[Any] = []
        self.tasks = [
            asyncio.ensure_future(self._consume(s, p))
            for s, p in zip(self.streams, store.values, strict=True)
        ]

    async def _consume(self, stream: Any, path: str) -> None:
        async with stream as it:
            self.iterators.append(it)
            async for value, _meta in it:
                self.latest[path] = value
                self.changed.set()

    async def until(self, expected: dict[str, str]) -> None:
        while any(self.latest.get(p) != v for p, v in expected.items()):
            self.changed.clear()
            await self.changed.wait()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.wait(self.tasks)


async def test_more_watches_than_slots_converge_and_every_watch_is_rotated_in() -> None:
    """8 watches, 3 long-poll slots (cap 4): a round of writes converges; then a write to any
    single key is seen within a rotation (~8/3 min_holds), though parked polls never return."""
    clock = VirtualClock()
    store = Store(8)
    t = FakeTransport(max_connections=4, handler=store.handler)
    watchers = Watchers(t, store, clock)
    await within(watchers.until({p: "v0" for p in store.values}))
    store_all = {p: "v1" for p in store.values}
    for path in store.values:
        store.write(path, "v1")
    await within(watchers.until(store_all))
    # Reverse order: FIFO rotation would otherwise always have the next key's poll parked.
    for n, path in enumerate(reversed(list(store.values))):
        store.write(path, f"single{n}")
        for _ in range(4):  # > ceil(5 waiting / 3 slots) min_holds
            await clock.advance(1.0)
        await within(watchers.until({path: f"single{n}"}))
    assert store.peak_parked <= 3
    assert t.peak_inflight <= 4
    budget = t.engine.budget
    assert budget is not None
    assert budget.preemptions > 0
    await watchers.close()


async def test_when_the_prefix_read_is_refused_waiting_key_watches_rotate_again() -> None:
    """A token that may read each key but not list their prefix (403 on ?recurse): the
    prefix cover gives its waiters back to rotation, and every watch still converges."""
    clock = VirtualClock()
    store = Store(5)

    async def handler(request: Request) -> Reply:
        if "recurse" in dict(request.params):
            return Reply(error=PermissionDenied(403, "Permission denied", method="GET"))
        return await store.handler(request)

    t = FakeTransport(max_connections=2, handler=handler)  # 1 long-poll slot
    watchers = Watchers(t, store, clock, cover=True)
    await within(watchers.until({p: "v0" for p in store.values}))
    for n, path in enumerate(reversed(list(store.values))):  # single writes: need rotation
        store.write(path, f"w{n}")
        for _ in range(60):  # bounded: rotation reaches it within a few min_holds
            if watchers.latest.get(path) == f"w{n}":
                break
            await within(clock.advance(1.0))
        assert watchers.latest.get(path) == f"w{n}"
    cover = t.engine.cover
    assert cover is not None
    assert cover.reads >= 1
    assert cover.nudges == 0
    budget = t.engine.budget
    assert budget is not None
    assert budget.preemptions > 1
    await watchers.close()


async def test_a_preempted_poll_resends_the_same_index_without_error_or_reread() -> None:
    clock = VirtualClock()
    store = Store(2)
    t = FakeTransport(max_connections=2, handler=store.handler)  # 1 long-poll slot
    watchers = Watchers(t, store, clock)
    await within(watchers.until({p: "v0" for p in store.values}))
    for _ in range(4):
        await within(clock.wait_for_sleepers(1))  # one poll parked, one queued
        await clock.advance(1.0)
    for path in store.values:
        sent = [index for p, index in store.log if p == path]
        assert sent[0] is None  # the first read only
        assert sent[1:]
        assert set(sent[1:]) == {"1"}
    stats = [it.stats for it in watchers.iterators]
    assert sum(s.preempted for s in stats) >= 3
    assert all(s.retries == 0 and s.errors == {} and s.index_resets == 0 for s in stats)
    assert all(s.emits == 1 for s in stats)  # a preemption emits nothing
    assert store.peak_parked == 1
    await watchers.close()


async def test_closing_every_watch_leaves_no_task_or_request_behind() -> None:
    before = asyncio.all_tasks()
    clock = VirtualClock()
    store = Store(5)
    t = FakeTransport(max_connections=2, handler=store.handler)
    watchers = Watchers(t, store, clock)
    await within(watchers.until({p: "v0" for p in store.values}))
    await within(clock.wait_for_sleepers(1))
    budget = t.engine.budget
    assert budget is not None
    assert budget.waiting == 4
    await watchers.close()
    await within(settled(before))
    assert t.inflight == 0
    assert store.parked == 0
    assert budget.held == 0
    assert budget.waiting == 0
    assert budget.rotator is None


# --- end to end against the dev agent ----------------------------------------------------


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[DevAgent]:
    async with DevAgent(jitter=False) as a:
        yield a


async def test_writes_get_through_while_long_polls_fill_their_budget(agent: DevAgent) -> None:
    """6 watches on Consul(max_connections=4): 3 long-polls at most, the cap holds, a put on
    the same client completes, and single writes reach every watch (real-time rotation)."""
    before = asyncio.all_tasks()
    keys = [f"k{i}" for i in range(6)]
    latest: dict[str, bytes] = {}
    changed = asyncio.Event()

    async def until(expected: dict[str, bytes]) -> None:
        while any(latest.get(k) != v for k, v in expected.items()):
            changed.clear()
            await changed.wait()

    # Real time here: rotate fast.
    async with Consul(agent.url, environ={}, max_connections=4, min_hold=0.05) as c:
        for key in keys:
            await c.kv.put(key, b"0")

        async def consume(key: str) -> None:
            async for entry, _ in watch(
                c.kv.get(key), rate_limit=None, backoff=Backoff(0.01, 0.05)
            ):
                latest[key] = entry["Value"] if entry else b""
                changed.set()

        tasks = [asyncio.ensure_future(consume(k)) for k in keys]
        await within(until(dict.fromkeys(keys, b"0")))
        await within(agent.wait_blocked(3))
        assert await within(c.kv.put("other", b"x")) is True
        for n, key in enumerate(reversed(keys)):  # not FIFO order: needs rotation
            await within(c.kv.put(key, f"w{n}".encode()))
            await within(until({key: f"w{n}".encode()}))
        assert agent.blocked_queries <= 3
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        await within(agent.wait_unblocked())
    await within(settled(before))
    assert agent.peak_connections <= 4


async def _poller_parked(transport: FakeTransport) -> tuple[Poller, asyncio.Task[None], Lease]:
    """A Poller whose blocking read is in flight, holding the only long-poll lease."""
    clock = VirtualClock()
    config = PollConfig(300.0, None, Backoff(), None, clock, random.Random(1))
    budget = transport.engine.budget_for(clock)
    assert budget is not None
    poller = Poller(json_query(transport, "/v1/kv/k"), config, budget)
    transport.push(Reply("a", index=1), "/v1/kv/k")
    task = asyncio.ensure_future(poller.run(lambda _round: False))
    await within(transport.wait_requests(2))
    (lease,) = list(budget._held)
    return poller, task, lease


@pytest.mark.parametrize("how", ["stopping", "second cancel"])
async def test_a_real_cancel_racing_a_preemption_still_stops_the_poll(how: str) -> None:
    """A preemption must never swallow the hub's (or the loop's) own cancellation."""
    if how == "second cancel" and sys.version_info < (3, 11):
        pytest.skip("Task.uncancel() counts cancel requests from Python 3.11")
    t = FakeTransport(max_connections=2)
    poller, task, lease = await _poller_parked(t)
    lease.preempted = True
    task.cancel()  # the preemption
    if how == "stopping":
        poller.stopping = True  # what Hub.detach sets before its cancel
    else:
        task.cancel()  # e.g. asyncio.run() cancelling every task at shutdown
    await asyncio.wait({task}, timeout=T)
    assert task.cancelled()
    assert poller.stats.preempted == 0
    assert t.inflight == 0
