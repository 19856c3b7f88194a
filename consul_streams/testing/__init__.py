"""consul_streams.testing: an embedded Consul-compatible dev agent, faults and a pytest plugin.

``DevAgent`` behaves like ``consul agent -dev`` over HTTP (KV, sessions, txn, status, catalog,
health, agent, events), ``Faults`` (``agent.faults``) injects failures, ``FaultProxy``
breaks the network between a client and the agent (black hole, delay, trickle, reset),
``run_dev`` serves a dev agent from the command line, ``MockTransport`` answers a client with
a function (no server), and the pytest plugin provides ``consul_agent`` and
``consul_client`` fixtures.
"""

from __future__ import annotations

from consul_streams._clock import VirtualClock
from consul_streams.testing._dev_agent import DevAgent
from consul_streams.testing._run import run_dev
from consul_streams.testing.faults import Fault, Faults
from consul_streams.testing.mock import MockTransport
from consul_streams.testing.proxy import FaultProxy, ProxiedConnection
from consul_streams.testing.server.dispatch import LoggedRequest

__all__ = [
    "DevAgent",
    "Fault",
    "FaultProxy",
    "Faults",
    "LoggedRequest",
    "MockTransport",
    "ProxiedConnection",
    "VirtualClock",
    "run_dev",
]
