"""Session locks and leader election against the dev agent."""

from __future__ import annotations

import asyncio
import sys
from contextlib import aclosing

import pytest

from consul_streams import Consul
from consul_streams._rules import parse_go_duration
from consul_streams.exceptions import InvalidArgument
from consul_streams.recipes import Leadership, Lock, LockLost, elect
from consul_streams.testing import DevAgent, VirtualClock

KEY = "service/x/leader"


async def test_lock_holds_the_key_with_a_ttl_session_and_cleans_up(client: Consul) -> None:
    async with Lock(client, KEY, value="me", lock_delay=0) as lock:
        assert lock.held
        entry, _ = await client.kv.get(KEY)
        assert entry is not None
        assert entry.get("Session") == lock.session
        assert entry["Value"] == b"me"
        assert lock.session is not None
        session, _ = await client.session.info(lock.session)
        assert session is not None
        assert parse_go_duration(session["TTL"]) == 15.0
        sid = lock.session
    assert not lock.held
    entry, _ = await client.kv.get(KEY)
    assert entry is not None
    assert "Session" not in entry
    assert entry["Value"] == b"me"  # release keeps the value
    gone, _ = await client.session.info(sid)
    assert gone is None


async def test_second_contender_gets_the_lock_after_release(client: Consul) -> None:
    first = Lock(client, KEY, lock_delay=0)
    second = Lock(client, KEY, lock_delay=0)
    await first.acquire()
    waiting = asyncio.create_task(second.acquire())
    done, _ = await asyncio.wait([waiting], timeout=0.2)
    assert not done  # blocked while the first holds it
    await first.release()
    await asyncio.wait_for(waiting, 5)
    assert second.held
    entry, _ = await client.kv.get(KEY)
    assert entry is not None
    assert entry.get("Session") == second.session
    await second.release()


async def test_destroyed_session_cancels_the_body_and_raises_lock_lost(client: Consul) -> None:
    lock = Lock(client, KEY, lock_delay=0)
    reached_end = False

    async def hold() -> None:
        nonlocal reached_end
        async with lock:
            assert lock.session is not None
            await client.session.destroy(lock.session)
            await asyncio.wait_for(asyncio.Event().wait(), 5)  # cancelled long before
            reached_end = True

    with pytest.raises(LockLost, match="session was invalidated") as info:
        await hold()
    assert not reached_end
    assert info.value.key == KEY
    assert lock.lost.is_set()
    task = asyncio.current_task()
    if sys.version_info >= (3, 11) and task is not None:
        assert not task.cancelling()  # the cancellation was ours and is fully absorbed


async def test_key_taken_away_is_reported_without_cancelling(client: Consul) -> None:
    lock = Lock(client, KEY, lock_delay=0, cancel_on_loss=False)
    async with lock:
        await client.kv.delete(KEY)
        reason = await asyncio.wait_for(lock.wait_lost(), 5)
        assert reason == "the key was deleted"
        assert not lock.held


async def test_lock_delay_is_waited_out(agent: DevAgent, client: Consul) -> None:
    holder = Lock(client, KEY, lock_delay=0.5)
    await holder.acquire()
    assert holder.session is not None
    await client.session.destroy(holder.session)  # invalidation starts the lock-delay
    await holder.release()
    contender = Lock(client, KEY, lock_delay=0, retry_interval=0.1)
    await asyncio.wait_for(contender.acquire(), 5)
    acquires = [
        r for r in agent.requests if r.method == "PUT" and ("acquire", contender.session) in r.query
    ]
    assert len(acquires) >= 2  # refused inside the window, then taken
    await contender.release()


async def test_session_is_renewed_on_the_injected_clock(agent: DevAgent, client: Consul) -> None:
    clock = VirtualClock()
    async with Lock(client, KEY, ttl=10, lock_delay=0, clock=clock) as lock:

        def renewals() -> int:
            return sum(1 for r in agent.requests if r.path == f"/v1/session/renew/{lock.session}")

        await clock.wait_for_sleepers(1)
        assert renewals() == 0
        await clock.advance(5)
        await clock.wait_for_sleepers(1)
        assert renewals() == 1


async def test_expired_session_is_lost() -> None:
    # time_scale speeds the agent's TTL reaper; nobody renews on a clock that never moves.
    async with DevAgent(jitter=False, time_scale=0.02) as agent, Consul(agent.address) as client:
        lock = Lock(client, KEY, ttl=10, lock_delay=0, clock=VirtualClock(), cancel_on_loss=False)
        await lock.acquire()
        reason = await asyncio.wait_for(lock.wait_lost(), 5)
        assert reason == "the session was invalidated"
        await lock.release()


async def test_bad_arguments_fail_at_call_time(client: Consul) -> None:
    with pytest.raises(InvalidArgument, match="ttl"):
        Lock(client, KEY, ttl=1)
    with pytest.raises(InvalidArgument, match="behavior"):
        Lock(client, KEY, behavior="keep")
    with pytest.raises(InvalidArgument, match="key"):
        Lock(client, "")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("/locks/a", "^key: must not begin with '/'"),
        ("locks/../a", "^key: must not contain '.' or '..'"),
        ("locks/\x01", "^key: must not contain control characters"),
        (7, "^key: expected a str"),
    ],
)
async def test_lock_key_follows_the_kv_key_rules(
    client: Consul, agent: DevAgent, key: object, message: str
) -> None:
    """A key kv.get() would refuse is refused by Lock() itself, before any session exists."""
    with pytest.raises(InvalidArgument, match=message):
        Lock(client, key)  # type: ignore[arg-type]
    assert agent.requests == []


async def test_election_yields_gained_then_lost(client: Consul) -> None:
    async with aclosing(elect(client, KEY, lock_delay=0)) as changes:
        gained = await asyncio.wait_for(anext(changes), 5)
        assert gained == Leadership(True, KEY, gained.session, fencing_token=gained.fencing_token)
        assert isinstance(gained.fencing_token, int)
        assert gained.session is not None
        await client.session.destroy(gained.session)
        lost = await asyncio.wait_for(anext(changes), 5)
        assert not lost.leader
        assert lost.reason == "the session was invalidated"
        again = await asyncio.wait_for(anext(changes), 5)
        assert again.leader
        assert again.session != gained.session


async def test_closing_the_election_hands_over_to_the_other_contender(client: Consul) -> None:
    async with aclosing(elect(client, KEY, lock_delay=0)) as a:
        first = await asyncio.wait_for(anext(a), 5)
        assert first.leader
        async with aclosing(elect(client, KEY, lock_delay=0)) as b:
            waiting = asyncio.create_task(anext(b))
            done, _ = await asyncio.wait([waiting], timeout=0.2)
            assert not done
            await a.aclose()
            second = await asyncio.wait_for(waiting, 5)
            assert second.leader
