"""FaultProxy: a loopback TCP proxy that black-holes, delays, trickles and resets."""

from __future__ import annotations

import asyncio

import pytest

from consul_streams import Consul
from consul_streams.exceptions import ConnectError, InvalidArgument, TransportError
from consul_streams.testing import DevAgent, FaultProxy, VirtualClock


async def test_forwards_requests_to_the_upstream_agent() -> None:
    async with (
        DevAgent() as agent,
        FaultProxy(agent.address) as proxy,
        Consul(proxy.address) as client,
    ):
        await client.kv.put("k", b"v")
        entry, _ = await client.kv.get("k")
        assert entry is not None
        assert entry["Value"] == b"v"
        assert proxy.accepted >= 1
        assert any(r.path == "/v1/kv/k" for r in agent.requests)


async def test_blackhole_holds_bytes_until_heal() -> None:
    async with (
        DevAgent() as agent,
        FaultProxy(agent.address) as proxy,
        Consul(proxy.address) as client,
    ):
        await client.kv.put("k", b"1")  # a connection exists
        proxy.blackhole()
        put = asyncio.ensure_future(client.kv.put("k", b"2"))
        done, _ = await asyncio.wait([put], timeout=0.2)
        assert not done
        assert [r.method for r in agent.requests] == ["PUT"]
        proxy.heal()
        assert await asyncio.wait_for(put, 5) is True
        entry, _ = await client.kv.get("k")
        assert entry is not None
        assert entry["Value"] == b"2"


async def test_reset_cuts_open_connections() -> None:
    async with (
        DevAgent(jitter=False) as agent,
        FaultProxy(agent.address) as proxy,
        Consul(proxy.address) as client,
    ):
        await client.kv.put("k", b"1")
        read = asyncio.ensure_future(client.kv.get("k").fetch(index=10**6, wait=60))
        await asyncio.wait_for(agent.wait_blocked(1), 5)
        proxy.reset()
        # aiohttp re-sends an idempotent request once when a reused connection drops: the
        # read comes back on a new connection, and a second reset ends it.
        await asyncio.wait_for(agent.wait_unblocked(0), 5)
        await asyncio.wait_for(agent.wait_blocked(1), 5)
        assert proxy.accepted == 2
        proxy.reset()
        with pytest.raises(TransportError):
            await asyncio.wait_for(read, 5)
        # New connections are served again.
        assert await client.kv.put("k", b"2") is True


async def test_delay_runs_on_the_injected_clock() -> None:
    clock = VirtualClock()
    async with (
        DevAgent() as agent,
        FaultProxy(agent.address, clock=clock) as proxy,
        Consul(proxy.address) as client,
    ):
        proxy.delay(30)
        put = asyncio.ensure_future(client.kv.put("k", b"1"))
        await asyncio.wait_for(clock.wait_for_sleepers(1), 5)
        assert not put.done()
        await clock.advance(30)
        await asyncio.wait_for(clock.wait_for_sleepers(1), 5)  # the answer's delay
        await clock.advance(30)
        assert await asyncio.wait_for(put, 5) is True


async def test_trickle_forwards_one_byte_per_tick() -> None:
    clock = VirtualClock()
    async with (
        DevAgent() as agent,
        FaultProxy(agent.address, clock=clock) as proxy,
        Consul(proxy.address) as client,
    ):
        proxy.trickle(10)
        put = asyncio.ensure_future(client.kv.put("k", b"1"))
        await asyncio.wait_for(clock.wait_for_sleepers(1), 5)
        conn = proxy.connections[0]
        await clock.advance(0.1)
        assert conn.sent == 0  # counted per chunk, once the whole chunk went through
        assert not put.done()
        proxy.heal()
        await clock.advance(1000)
        assert await asyncio.wait_for(put, 5) is True


async def test_unreachable_upstream_resets_the_client() -> None:
    async with DevAgent() as agent:
        address = agent.address
    async with FaultProxy(address) as proxy, Consul(proxy.address) as client:
        with pytest.raises(ConnectError):
            await client.kv.put("k", b"1")


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(InvalidArgument, match="upstream"):
        FaultProxy("no-port")
    with pytest.raises(InvalidArgument, match="host"):
        FaultProxy("127.0.0.1:8500", host="0.0.0.0")
    proxy = FaultProxy("127.0.0.1:8500")
    with pytest.raises(InvalidArgument, match="seconds"):
        proxy.delay(-1)
    with pytest.raises(InvalidArgument, match="bytes_per_second"):
        proxy.trickle(0)
