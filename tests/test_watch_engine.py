"""The per-client watch engine: closing a client ends its watches with ``ClientClosed``.

End to end against the dev agent: the real client, its transport and its engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from consul_streams._client import Consul
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


@pytest.mark.xfail(strict=True, reason="#15: no engine owns the watch yet (bare ConsulError)")
async def test_an_open_watch_ends_with_client_closed_when_its_client_closes(
    agent: DevAgent,
) -> None:
    """The parked long-poll is aborted and the consumer sees the typed error, not a retry."""
    client = Consul(agent.url, environ={})
    await client.kv.put("k", b"v")
    it = watch(client.kv.get("k"), rate_limit=None, backoff=BACKOFF).__aiter__()
    entry, _ = await within(it.__anext__())
    assert entry is not None and entry["Value"] == b"v"
    await within(agent.wait_blocked(1))
    await within(client.aclose())
    with pytest.raises(ClientClosed):
        await within(it.__anext__())
    assert isinstance(ClientClosed(), ConsulError)
    await within(agent.wait_unblocked())
