"""Fixtures for the endpoint tests: a canned-answer loopback agent and the client under test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ._mock import Endpoints, Wire, make_client


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    server = Wire()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def consul(wire: Wire) -> AsyncIterator[Endpoints]:
    client = make_client(wire.url)
    try:
        yield client
    finally:
        await client.owner.aclose()
