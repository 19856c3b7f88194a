"""The N-holder semaphore against the dev agent."""

from __future__ import annotations

import asyncio
import json

import pytest

from consul_streams import Consul
from consul_streams.exceptions import InvalidArgument
from consul_streams.recipes import LockLost, Semaphore, SemaphoreConflict
from consul_streams.recipes.semaphore import SEMAPHORE_FLAGS

PREFIX = "service/x/workers/"


async def test_limit_holders_at_once_then_the_next_gets_a_freed_slot(client: Consul) -> None:
    a, b, c = (Semaphore(client, PREFIX, 2) for _ in range(3))
    await a.acquire()
    await b.acquire()
    third = asyncio.create_task(c.acquire())
    done, _ = await asyncio.wait([third], timeout=0.2)
    assert not done  # two holders already
    entry, _ = await client.kv.get(PREFIX + ".lock")
    assert entry is not None
    assert entry["Flags"] == SEMAPHORE_FLAGS
    assert json.loads(entry["Value"]) == {"Limit": 2, "Holders": {a.session: True, b.session: True}}
    await a.release()
    await asyncio.wait_for(third, 5)
    assert c.held
    entry, _ = await client.kv.get(PREFIX + ".lock")
    assert entry is not None
    assert set(json.loads(entry["Value"])["Holders"]) == {b.session, c.session}
    await b.release()
    await c.release()
    keys, _ = await client.kv.keys(PREFIX)
    assert keys == [PREFIX + ".lock"]  # contender keys are gone


async def test_dead_holder_is_pruned(client: Consul) -> None:
    a = Semaphore(client, PREFIX, 1, cancel_on_loss=False)
    await a.acquire()
    assert a.session is not None
    waiting = Semaphore(client, PREFIX, 1)
    task = asyncio.create_task(waiting.acquire())
    await client.session.destroy(a.session)  # its contender key is deleted with it
    await asyncio.wait_for(task, 5)
    assert waiting.held
    assert await asyncio.wait_for(a.wait_lost(), 5) == "the session was invalidated"
    await a.release()
    await waiting.release()


async def test_lost_slot_cancels_the_body(client: Consul) -> None:
    sem = Semaphore(client, PREFIX, 1)

    async def hold() -> None:
        async with sem:
            assert sem.session is not None
            await client.kv.delete(PREFIX + sem.session)
            await asyncio.wait_for(asyncio.Event().wait(), 5)

    with pytest.raises(LockLost, match="contender key was removed"):
        await hold()


async def test_limit_mismatch_is_a_conflict(client: Consul) -> None:
    async with Semaphore(client, PREFIX, 2):
        other = Semaphore(client, PREFIX, 3)
        with pytest.raises(SemaphoreConflict, match="has limit 2"):
            await other.acquire()
        assert other.session is None


async def test_bad_arguments_fail_at_call_time(client: Consul) -> None:
    with pytest.raises(InvalidArgument, match="limit"):
        Semaphore(client, PREFIX, 0)
    with pytest.raises(InvalidArgument, match="prefix"):
        Semaphore(client, "", 1)
    with pytest.raises(InvalidArgument, match=r"^prefix: must not begin with '/'"):
        Semaphore(client, "/sem/", 1)
    with pytest.raises(InvalidArgument, match=r"^prefix: must not contain '\.' or '\.\.'"):
        Semaphore(client, "sem/../x/", 1)
