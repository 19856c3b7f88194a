"""Fixtures for the sync layer: a dev agent on a thread of its own, and a sync client."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from consul_streams.sync import Consul
from consul_streams.sync.testing import DevAgentThread


@pytest.fixture
def agent() -> Iterator[DevAgentThread]:
    with DevAgentThread(jitter=False) as dev:
        yield dev


@pytest.fixture
def client(agent: DevAgentThread) -> Iterator[Consul]:
    with Consul(agent.address, environ={}) as c:
        yield c


@pytest.fixture
def no_thread_left() -> Iterator[set[threading.Thread]]:
    """Fails the test if a thread started during it is still alive at its end."""
    before = set(threading.enumerate())
    yield before
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, f"threads left running: {left}"
