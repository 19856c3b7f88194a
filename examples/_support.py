"""Shared by the examples: a client for CONSUL_HTTP_ADDR, else for an embedded dev agent."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from consul_streams import Consul
from consul_streams.testing import DevAgent


@asynccontextmanager
async def consul() -> AsyncIterator[Consul]:
    """A real agent when ``CONSUL_HTTP_ADDR`` is set, otherwise an embedded dev agent."""
    if os.environ.get("CONSUL_HTTP_ADDR"):
        async with Consul.from_env() as client:
            print(f"using the Consul agent at {client.address}", flush=True)
            yield client
        return
    async with DevAgent() as agent, Consul(agent.address) as client:
        print(f"using an embedded dev agent at {agent.url}", flush=True)
        yield client
