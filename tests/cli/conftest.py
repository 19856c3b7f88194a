"""Fixtures for the command-line tests: a fresh dev agent and a client per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from consul_streams import Consul
from consul_streams.testing import DevAgent


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[DevAgent]:
    async with DevAgent(jitter=False) as dev:
        yield dev


@pytest_asyncio.fixture
async def client(agent: DevAgent) -> AsyncIterator[Consul]:
    async with Consul(agent.address, environ={}) as c:
        yield c
