"""Resource hygiene: a thousand open/close cycles leave nothing behind.

Watches and piped operator chains are opened, read once and left every way a caller can leave
them (``async with`` exit, ``break``, cancelling the consuming task) while the poll is parked in
a blocking query. Afterwards (after ``gc.collect()``) there is no extra task, file descriptor,
unreleased response or aiohttp session, and the agent holds no more connections than the
client's keep-alive pool may keep. asyncio debug mode is on; ResourceWarning is an error.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from consul_streams import Consul, ops
from consul_streams.testing import DevAgent
from consul_streams.watch import watch

CYCLES = 1000
WARM_UP = 30
#: connections the client's keep-alive pool may legitimately hold (or that are mid-close)
POOL_SLACK = 8
#: file descriptors that may appear for reasons unrelated to the cycles (pool, loop internals)
FD_SLACK = 12


@dataclass(frozen=True)
class Census:
    """What is alive in the process and at the agent."""

    tasks: int
    fds: int
    blocked: int
    connections: int
    open_responses: int
    sessions: int

    @classmethod
    def take(cls, agent: DevAgent) -> Census:
        gc.collect()
        objects = gc.get_objects()
        return cls(
            tasks=len(asyncio.all_tasks()),
            fds=len(os.listdir("/proc/self/fd")),
            blocked=agent.blocked_queries,
            connections=agent.active_connections,
            open_responses=sum(
                1 for o in objects if isinstance(o, aiohttp.ClientResponse) and not o.closed
            ),
            sessions=sum(
                1 for o in objects if isinstance(o, aiohttp.ClientSession) and not o.closed
            ),
        )


@pytest.fixture
async def debug_loop() -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    was = loop.get_debug()
    loop.set_debug(True)
    # Debug mode logs callbacks slower than this; the dev agent runs in the same loop.
    loop.slow_callback_duration = 1.0
    try:
        yield
    finally:
        loop.set_debug(was)


def _value(item: Any) -> Any:
    return item[0]


def _chain(client: Consul) -> Any:
    return (
        watch(client.kv.items("h/"), wait="30s", share=False)
        | ops.match(r"^h/")
        | ops.debounce(0.001)
        | ops.values()
    )


def _watch(client: Consul) -> Any:
    return watch(client.kv.items("h/"), wait="30s", share=False)


async def _leave_by_exit(stream: Any) -> None:
    async with stream.stream() as items:
        await items.__anext__()


async def _leave_by_break(stream: Any) -> None:
    async with stream.stream() as items:
        async for _ in items:
            break


async def _leave_by_cancel(stream: Any, agent: DevAgent) -> None:
    first = asyncio.get_running_loop().create_future()

    async def consume() -> None:
        async with stream.stream() as items:
            async for _ in items:
                if not first.done():
                    first.set_result(None)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first, 5)
    # Cancel while the poll is parked in a blocking query at the agent.
    await asyncio.wait_for(agent.wait_blocked(1), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _cycles(agent: DevAgent, client: Consul, cycles: int) -> None:
    """Alternate watches and chains, and the three ways of leaving them."""
    for i in range(cycles):
        stream = (_watch, _chain)[i % 2](client)
        way = i % 3
        if way == 0:
            await _leave_by_exit(stream)
        elif way == 1:
            await _leave_by_break(stream)
        else:
            await _leave_by_cancel(stream, agent)


@pytest.mark.usefixtures("debug_loop")
async def test_open_close_cycles_leave_nothing_behind() -> None:
    """1,000 cycles: no growth in tasks, fds, responses, sessions or agent connections."""
    async with DevAgent(jitter=False) as agent:
        client = Consul(agent.url, environ={})
        try:
            await client.kv.put("h/a", "1")
            await _cycles(agent, client, WARM_UP)  # fill the pool, import lazily
            # The agent learns of a cut request when its connection closes; wait for that
            # before counting (a leaked poll would stay parked and time this out).
            await asyncio.wait_for(agent.wait_unblocked(), 5)
            before = Census.take(agent)
            await _cycles(agent, client, CYCLES)
            await asyncio.wait_for(agent.wait_unblocked(), 5)
            after = Census.take(agent)
        finally:
            await client.aclose()
        assert after.tasks == before.tasks, (before, after)
        assert after.open_responses == 0, (before, after)
        assert after.sessions == before.sessions == 1, (before, after)
        assert after.fds <= before.fds + FD_SLACK, (before, after)
        assert after.connections <= before.connections + POOL_SLACK, (before, after)
        assert after.blocked == before.blocked == 0, (before, after)
        assert Census.take(agent).sessions == 0
