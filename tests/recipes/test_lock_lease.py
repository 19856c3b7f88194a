"""Locks as leases: long waits, partitioned holders, the long-poll budget, fencing tokens.

The cases run on a virtual-time loop (``consul_streams.testing._warp``): the dev agent's session
TTLs, lock delays, HTTP timeouts and the lease deadlines all read the same clock, so minutes of
lock traffic take milliseconds and the order of events is what the code makes it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from consul_streams import Consul, HealthMonitor
from consul_streams.exceptions import ReadTimeout
from consul_streams.recipes import Lock, LockLost, Semaphore, elect
from consul_streams.recipes._lease import LEASE_FRACTION
from consul_streams.testing import DevAgent, FaultProxy
from consul_streams.testing._warp import run_warped

KEY = "service/x/leader"


def test_a_waiter_that_waits_many_ttls_still_acquires() -> None:
    """Issue 10 item 1: the waiter's session is renewed while it waits (as Go's api.Lock does:
    ``Lock()`` starts ``RenewPeriodic`` before it blocks), so it is valid when the key frees."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        async with DevAgent(jitter=False) as agent, Consul(agent.address) as client:
            holder = Lock(client, KEY, ttl=10, lock_delay=0)
            waiter = Lock(client, KEY, ttl=10, lock_delay=0)
            await holder.acquire()
            waiting = asyncio.ensure_future(waiter.acquire())
            await asyncio.sleep(250)  # 25 TTLs
            assert not waiting.done()
            released = loop.time()
            await holder.release()
            await waiting
            assert waiter.held
            await waiter.release()
            sessions, _ = await client.session.list()
            assert sessions == []
            return loop.time() - released

    assert run_warped(main()) < 1.0


def test_a_waiter_that_gives_up_destroys_its_session() -> None:
    async def main() -> None:
        async with DevAgent(jitter=False) as agent, Consul(agent.address) as client:
            holder = Lock(client, KEY, lock_delay=0)
            await holder.acquire()
            waiter = Lock(client, KEY, lock_delay=0)
            try:
                await asyncio.wait_for(waiter.acquire(), 30)
            except asyncio.TimeoutError:
                pass
            else:
                raise AssertionError("the waiter acquired a held lock")
            sessions, _ = await client.session.list()
            assert [s["ID"] for s in sessions] == [holder.session]
            await holder.release()

    run_warped(main())


def test_a_partitioned_holder_stops_before_the_next_body_starts() -> None:
    """Issue 10 item 2, with lock_delay=0: the holder's lease ends 0.9 TTL after its last
    renewal was sent; Consul keeps the session at least TTL after receiving it (it arms
    ``ttl * SessionTTLMultiplier`` in ``agent/consul/session_ttl.go``)."""

    async def main() -> list[tuple[float, str]]:
        loop = asyncio.get_running_loop()
        log: list[tuple[float, str]] = []
        async with (
            DevAgent(jitter=False) as agent,
            FaultProxy(agent.address) as p1,
            FaultProxy(agent.address) as p2,
            Consul(p1.address) as c1,
            Consul(p2.address) as c2,
        ):
            holding = asyncio.Event()

            async def hold(client: Consul, name: str) -> None:
                try:
                    async with Lock(client, KEY, ttl=10, lock_delay=0):
                        log.append((loop.time(), f"{name} start"))
                        holding.set()
                        try:
                            await asyncio.sleep(3600)
                        finally:
                            log.append((loop.time(), f"{name} stop"))
                except LockLost:
                    log.append((loop.time(), f"{name} lost"))

            first = asyncio.ensure_future(hold(c1, "a"))
            await holding.wait()
            second = asyncio.ensure_future(hold(c2, "b"))
            await asyncio.sleep(20)
            p1.blackhole()
            await first
            await asyncio.sleep(60)
            p1.heal()
            second.cancel()
            await asyncio.gather(second, return_exceptions=True)
        return log

    log = run_warped(main())
    names = [what for _, what in log]
    assert names[:4] == ["a start", "a stop", "a lost", "b start"], log
    stopped = log[1][0]
    assert stopped - 20 <= 10 * LEASE_FRACTION  # within the lease of the last renewal


def test_lock_waiters_count_against_the_long_poll_budget() -> None:
    """Issue 10 item 3: waiters watch through the engine, so two of them on a client capped at
    two connections leave a connection for the client's own writes."""

    async def main() -> None:
        async with (
            DevAgent(jitter=False) as dev,
            Consul(dev.address) as other,
            Consul(dev.address, max_connections=2) as client,
        ):
            holder = Lock(other, KEY, lock_delay=0)
            await holder.acquire()
            waiters = [Lock(client, KEY, lock_delay=0) for _ in range(2)]
            tasks = [asyncio.ensure_future(w.acquire()) for w in waiters]
            await dev.wait_blocked(1)
            assert await asyncio.wait_for(client.kv.put("other", b"1"), 5) is True
            assert not any(t.done() for t in tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await holder.release()

    run_warped(main())


def test_fencing_tokens_grow_with_every_holder_even_across_a_delete() -> None:
    async def main() -> list[int]:
        tokens: list[int] = []
        async with DevAgent(jitter=False) as agent, Consul(agent.address) as client:
            for i in range(4):
                async with Lock(client, KEY, lock_delay=0) as lock:
                    assert lock.fencing_token is not None
                    tokens.append(lock.fencing_token)
                    entry, _ = await client.kv.get(KEY)
                    assert entry is not None
                    assert lock.fencing_token == entry["ModifyIndex"]
                if i == 1:
                    await client.kv.delete(KEY)  # LockIndex restarts; the token does not
        return tokens

    tokens = run_warped(main())
    assert tokens == sorted(set(tokens))


def test_election_terms_carry_increasing_fencing_tokens() -> None:
    async def main() -> list[int | None]:
        seen: list[int | None] = []
        async with DevAgent(jitter=False) as agent, Consul(agent.address) as client:
            for _ in range(3):
                terms = elect(client, KEY, lock_delay=0)
                term = await anext(terms)
                assert term.leader
                seen.append(term.fencing_token)
                await terms.aclose()
        return seen

    seen = [token for token in run_warped(main()) if token is not None]
    assert len(seen) == 3
    assert seen == sorted(set(seen))


def test_semaphore_waiter_outlives_many_ttls() -> None:
    async def main() -> None:
        async with DevAgent(jitter=False) as agent, Consul(agent.address) as client:
            holder = Semaphore(client, "workers/", 1, ttl=10)
            await holder.acquire()
            waiter = Semaphore(client, "workers/", 1, ttl=10)
            waiting = asyncio.ensure_future(waiter.acquire())
            await asyncio.sleep(200)
            assert not waiting.done()
            await holder.release()
            await asyncio.wait_for(waiting, 30)
            assert waiter.held
            await waiter.release()

    run_warped(main())


def test_health_reports_failing_renewals_and_recovery_while_the_lock_holds() -> None:
    """Issue 11 on locks: a partition shorter than the lease shows in ``health`` (last_error,
    failing_since) without losing the lock, and recovery is published."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with (
            DevAgent(jitter=False) as agent,
            FaultProxy(agent.address) as proxy,
            Consul(proxy.address) as client,
        ):
            lock = Lock(client, KEY, ttl=10, lock_delay=0)
            await lock.acquire()
            assert lock.health.ok
            changes = lock.health_changes()
            assert (await anext(changes)).ok
            await asyncio.sleep(4)
            proxy.blackhole()  # the renewal at t=5 hangs and times out at t=7
            failing = await anext(changes)
            assert not failing.ok
            assert isinstance(failing.last_error, ReadTimeout)
            assert failing.failing_since == loop.time()
            await asyncio.sleep(1)
            proxy.heal()
            healthy = await asyncio.wait_for(lock.wait_healthy(), 5)
            assert healthy.ok
            assert lock.held
            assert not lock.lost.is_set()
            await changes.aclose()
            await lock.release()

    run_warped(main())


def test_election_health_is_a_monitor_the_caller_passes() -> None:
    async def main() -> None:
        async with (
            DevAgent(jitter=False) as agent,
            FaultProxy(agent.address) as proxy,
            Consul(proxy.address) as client,
        ):
            monitor = HealthMonitor()
            terms = elect(client, KEY, ttl=10, lock_delay=0, health=monitor)
            assert (await anext(terms)).leader
            proxy.blackhole()
            lost = await anext(terms)
            assert not lost.leader
            assert "lease ran out" in lost.reason
            assert not monitor.health.ok
            assert isinstance(monitor.health.last_error, ReadTimeout)
            proxy.heal()
            await terms.aclose()

    run_warped(main())


def test_release_after_the_session_was_invalidated_is_quiet_and_tried_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Consul answers a destroy of an unknown session with ``true`` (``deleteSessionTxn`` in
    ``agent/consul/state/session.go`` returns early) and a release by a session that no longer
    holds the key with ``false`` (``kvsUnlockTxn`` in ``kvs.go``): neither is an error, so
    cleanup after a loss logs nothing above DEBUG and sends each request at most once."""

    async def main() -> None:
        async with DevAgent(jitter=False) as agent, Consul(agent.address) as client:
            lock = Lock(client, KEY, lock_delay=0, cancel_on_loss=False)
            await lock.acquire()
            session = lock.session
            assert session is not None
            await client.session.destroy(session)
            await asyncio.wait_for(lock.wait_lost(), 30)
            before = len(agent.requests)
            caplog.clear()
            with caplog.at_level(logging.DEBUG, logger="consul_streams"):
                await lock.release()
                await lock.release()  # twice: nothing more
            sent = [(r.method, r.path) for r in agent.requests[before:]]
            assert sent == [("PUT", f"/v1/session/destroy/{session}")]
            assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []

    run_warped(main())


def test_release_in_a_partition_gives_up_after_one_bounded_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No retry storm: each cleanup step is tried once, bounded by the TTL; the agent's TTL
    reaps the session (and frees the key) once the partition heals."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with (
            DevAgent(jitter=False) as agent,
            FaultProxy(agent.address) as proxy,
            Consul(proxy.address) as client,
            Consul(agent.address) as admin,
        ):
            lock = Lock(client, KEY, ttl=10, lock_delay=0)
            await lock.acquire()
            proxy.blackhole()
            start = loop.time()
            caplog.clear()
            with caplog.at_level(logging.DEBUG, logger="consul_streams"):
                await lock.release()
            assert loop.time() - start <= 2 * 10  # give back + destroy, each at most one TTL
            assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
            proxy.heal()
            await asyncio.sleep(2 * 10 + 1)
            sessions, _ = await admin.session.list()
            assert sessions == []
            entry, _ = await admin.kv.get(KEY)
            assert entry is None or not entry.get("Session")

    run_warped(main())


def test_the_fault_proxy_snippet_in_docs_locks_md_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "locks.md").read_text()
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    body = "".join(f"    {line}\n" for line in snippet.splitlines())
    namespace: dict[str, Any] = {}
    exec(f"async def main():\n{body}", namespace)
    run_warped(namespace["main"]())
    assert capsys.readouterr().out == "the session lease ran out (9s without a renewal)\n"
