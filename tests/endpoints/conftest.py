"""Fixtures for the endpoint tests: canned answers over a MockTransport, and the client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ._mock import Endpoints, Wire, make_client


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
async def consul(wire: Wire) -> AsyncIterator[Endpoints]:
    client = make_client(wire)
    try:
        yield client
    finally:
        await client.owner.aclose()
