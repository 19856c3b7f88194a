"""Shared by the sync examples: a sync client for CONSUL_HTTP_ADDR, else for an embedded agent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from consul_streams.sync import Consul
from consul_streams.sync.testing import DevAgentThread


@contextmanager
def consul() -> Iterator[Consul]:
    """A real agent when ``CONSUL_HTTP_ADDR`` is set, otherwise a dev agent on a thread."""
    if os.environ.get("CONSUL_HTTP_ADDR"):
        with Consul.from_env() as client:
            print(f"using the Consul agent at {client.address}", flush=True)
            yield client
        return
    with DevAgentThread() as agent, Consul(agent.address, environ={}) as client:
        print(f"using an embedded dev agent at {agent.url}", flush=True)
        yield client
