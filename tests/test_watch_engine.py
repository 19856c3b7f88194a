"""The per-client watch engine: closing a client ends its watches with ``ClientClosed``.

End to end against the dev agent: the real client, its transport and its engine.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from test_watch_helpers import asking

from consul_streams._client import Consul
from consul_streams._clock import VirtualClock
from consul_streams.exceptions import ClientClosed, ConsulError
from consul_streams.testing import DevAgent
from consul_streams.watch import Backoff, watch

T = 5.0
BACKOFF = Backoff(base=0.01, cap=0.05)


async def within(aw: Any) -> Any:
    return await asyncio.wait_for(aw, T)


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[DevAgent]:
    async with DevAgent(jitter=False) as a:
        yield a


async def test_an_open_watch_ends_with_client_closed_when_its_client_closes(
    agent: DevAgent, poll_mode: str
) -> None:
    """The parked long-poll is aborted and the consumer sees the typed error, not a retry."""
    client = Consul(agent.url, environ={})
    await client.kv.put("k", b"v")
    it = watch(client.kv.get("k"), rate_limit=None, backoff=BACKOFF).__aiter__()
    entry, _ = await within(it.__anext__())
    assert entry is not None
    assert entry["Value"] == b"v"
    pending = asking(it, T)
    await within(agent.wait_blocked(1))
    await within(client.aclose())
    with pytest.raises(ClientClosed):
        await within(pending)
    with pytest.raises(StopAsyncIteration):  # an anext() raised: the iteration is over
        await within(it.__anext__())
    assert isinstance(ClientClosed(), ConsulError)
    await within(agent.wait_unblocked())


async def test_every_watch_of_the_client_ends_and_no_task_is_left(agent: DevAgent) -> None:
    """Shared, unshared and not-yet-started watches: all end with ClientClosed; the engine's
    tasks (polls and the budget's rotation timer) are all cancelled and awaited by aclose()."""
    before = asyncio.all_tasks()
    # One long-poll slot for three polls: a rotation timer is running when the client closes.
    client = Consul(agent.url, environ={}, max_connections=2)
    for key in ("a", "b"):
        await client.kv.put(key, b"v")
    iterators = [
        watch(client.kv.get("a"), rate_limit=None).__aiter__(),
        watch(client.kv.get("a"), rate_limit=None).__aiter__(),  # shares the first's poll
        watch(client.kv.get("a"), rate_limit=None, share=False).__aiter__(),
        watch(client.kv.get("b"), rate_limit=None).__aiter__(),
    ]
    for it in iterators:
        await within(it.__anext__())
    assert client.engine.polls == 3
    budget = client.engine.budget
    assert budget is not None
    assert budget.slots == 1
    await within(agent.wait_blocked(1))
    late = watch(client.kv.get("a"), rate_limit=None).__aiter__()
    await within(client.aclose())
    assert client.engine.tasks == 0
    assert asyncio.all_tasks() - before == {asyncio.current_task()} - before
    for it in [*iterators, late]:
        with pytest.raises(ClientClosed):
            await within(it.__anext__())
    with pytest.raises(ClientClosed):
        await within(client.kv.get("a"))
    assert client.engine.polls == 0
    assert budget.held == 0


async def test_a_clients_watches_take_their_long_poll_slots_from_its_own_budget(
    agent: DevAgent, poll_mode: str
) -> None:
    """Two clients of one agent: each watch holds a lease in its own client's engine only."""
    async with (
        Consul(agent.url, environ={}) as one,
        Consul(agent.url, environ={}, max_connections=8, min_hold=2.5) as two,
    ):
        await one.kv.put("k", b"v")
        it = watch(one.kv.get("k"), rate_limit=None).__aiter__()
        await within(it.__anext__())
        pending = asking(it, T)
        await within(agent.wait_blocked(1))
        assert one.engine.budget is not None
        assert one.engine.budget.held == 1
        assert two.engine.budget is None  # no watch of its own: never needed one
        assert two.engine.min_hold == 2.5
        assert two.engine.slots == 6
        await it.aclose()  # from another task than the one waiting for the item
        assert one.engine.budget.held == 0
        assert one.engine.polls == 0
        with pytest.raises(StopAsyncIteration):
            await within(pending)


class Latest:
    """The latest value each key's watch emitted, and a way to wait for expected values."""

    def __init__(self) -> None:
        self.values: dict[str, bytes | None] = {}
        self.changed = asyncio.Event()

    async def consume(self, client: Consul, key: str, clock: VirtualClock) -> None:
        async for entry, _ in watch(client.kv.get(key), rate_limit=None, clock=clock):
            self.values[key] = entry["Value"] if entry else None
            self.changed.set()

    async def until(self, expected: dict[str, bytes | None]) -> None:
        while any(self.values.get(k, b"?") != v for k, v in expected.items()):
            self.changed.clear()
            await self.changed.wait()


async def test_key_watches_beyond_the_slots_converge_without_rotation(agent: DevAgent) -> None:
    """10 key watches over 3 long-poll slots with a min_hold that never elapses: the waiting
    ones are served by one recursive read of their prefix, so every write and delete is seen
    with no rotation and no timer left while idle. Relies on Consul answering a single-key read
    with the entry's ModifyIndex (agent/consul/kvs_endpoint.go, KVS.Get)."""
    clock = VirtualClock()  # the budget's clock: never advanced, so min_hold never elapses
    keys = [f"w/{i}" for i in range(10)]
    latest = Latest()
    async with Consul(agent.url, environ={}, max_connections=4) as client:
        for key in keys:
            await client.kv.put(key, b"0")
        tasks = [asyncio.ensure_future(latest.consume(client, k, clock)) for k in keys]
        await within(latest.until(dict.fromkeys(keys, b"0")))
        budget, cover = client.engine.budget, client.engine.cover
        assert budget is not None
        assert cover is not None
        for n, key in enumerate(reversed(keys)):
            assert await within(client.kv.put(key, f"v{n}".encode())) is True
            await within(latest.until({key: f"v{n}".encode()}))
        for key in keys[:2] + keys[-2:]:
            await client.kv.delete(key)
        await within(latest.until(dict.fromkeys(keys[:2] + keys[-2:])))
        # A watch outside the prefix: the cover restarts its read with a shorter prefix.
        await client.kv.put("other", b"o")
        tasks.append(asyncio.ensure_future(latest.consume(client, "other", clock)))
        await within(latest.until({"other": b"o"}))
        await within(client.kv.put("other", b"p"))
        await within(latest.until({"other": b"p"}))
        # The prefix read took its slot by preemption (urgent, not timed: the clock never
        # moved, so no rotation could have served anyone).
        assert budget.preemptions >= 1
        assert cover.nudges > 0  # watches waiting for a slot were served by the prefix read
        assert budget.rotator is None  # nothing timed while the waiters are covered
        assert clock.sleepers == 0
        assert agent.blocked_queries <= 3
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        await within(agent.wait_unblocked())  # the prefix read stops with its last waiter
        assert client.engine.tasks == 0


async def test_with_the_cover_off_waiting_key_watches_rotate(agent: DevAgent) -> None:
    """The previous design, still selectable (benchmarks compare both): rotation serves them."""
    clock = VirtualClock()
    keys = [f"w/{i}" for i in range(5)]
    latest = Latest()
    async with Consul(agent.url, environ={}, max_connections=2) as client:
        client.engine.cover_prefixes = False
        for key in keys:
            await client.kv.put(key, b"0")
        tasks = [asyncio.ensure_future(latest.consume(client, k, clock)) for k in keys]
        await within(latest.until(dict.fromkeys(keys, b"0")))
        await within(clock.wait_for_sleepers(1))  # the rotation timer
        assert client.engine.cover is None
        for n, key in enumerate(keys):
            await client.kv.put(key, f"v{n}".encode())
        while any(latest.values[k] != f"v{n}".encode() for n, k in enumerate(keys)):
            await within(clock.advance(1.0))
        budget = client.engine.budget
        assert budget is not None
        assert budget.preemptions > 0
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_bursts_of_writes_and_deletes_converge_through_the_cover(
    agent: DevAgent, seed: int
) -> None:
    """30 key watches over 3 slots, no rotation possible (the budget's clock never moves):
    after each burst of random puts and deletes, every watch holds the key's final state."""
    rng = random.Random(seed)
    clock = VirtualClock()
    keys = [f"b/{i:02d}" for i in range(30)]
    latest = Latest()
    state: dict[str, bytes | None] = dict.fromkeys(keys, b"0")
    async with Consul(agent.url, environ={}, max_connections=4) as client:
        for key in keys:
            await client.kv.put(key, b"0")
        tasks = [asyncio.ensure_future(latest.consume(client, k, clock)) for k in keys]
        await within(latest.until(state))
        for burst in range(5):
            for op in range(10):
                key = rng.choice(keys)
                if rng.random() < 0.3:
                    await client.kv.delete(key)
                    state[key] = None
                else:
                    value = f"{burst}.{op}".encode()
                    await client.kv.put(key, value)
                    state[key] = value
            await within(latest.until(state))
        budget = client.engine.budget
        assert budget is not None
        assert budget.preemptions >= 1  # the prefix read's slot (rotation cannot happen here)
        assert clock.sleepers == 0
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)


def test_single_key_reads_declare_how_a_prefix_read_covers_them() -> None:
    """kv.get/kv.raw declare their key and parameters; kv.items/keys (prefix reads) do not."""
    client = Consul("127.0.0.1:1", environ={})
    get = client.kv.get("app/x y", dc="dc2", consistency="stale")
    raw = client.kv.raw("app/z", dc="dc2", consistency="stale")
    assert get.cover is not None
    assert raw.cover is not None
    assert get.cover.key == "app/x y"
    assert get.cover.group == raw.cover.group  # one prefix read may serve both
    request = get.cover.prefix_request("app/x", get.cover.group)
    assert request.method == "GET"
    assert request.path == "/v1/kv/app/x"
    assert dict(request.params) == {"recurse": "", "dc": "dc2", "stale": ""}
    assert client.kv.items("app/").cover is None
    assert client.kv.keys("app/").cover is None
    other = client.kv.get("app/x y").cover  # the default datacenter: another group
    assert other is not None
    assert other.group != get.cover.group
