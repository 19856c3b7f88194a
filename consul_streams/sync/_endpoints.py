"""The blocking twins of the endpoint classes, one ``forward`` line per async method.

A test (tests/sync/test_sync_endpoints.py) fails when an async endpoint gains a public method
without a twin here, or when a twin's signature differs.
"""

from __future__ import annotations

from consul_streams import endpoints as aio
from consul_streams.sync._forward import SyncEndpoint, forward

__all__ = ["KV", "Agent", "Catalog", "Events", "Health", "Sessions", "Status", "Txn"]


class KV(SyncEndpoint):
    """``/v1/kv/``, blocking: see :class:`consul_streams.endpoints.KV`."""

    name = "kv"
    get = forward(aio.KV.get)
    raw = forward(aio.KV.raw)
    items = forward(aio.KV.items)
    keys = forward(aio.KV.keys)
    put = forward(aio.KV.put)
    set = forward(aio.KV.set)
    cas = forward(aio.KV.cas)
    acquire = forward(aio.KV.acquire)
    release = forward(aio.KV.release)
    delete = forward(aio.KV.delete)


class Catalog(SyncEndpoint):
    """``/v1/catalog/``, blocking: see :class:`consul_streams.endpoints.Catalog`."""

    name = "catalog"
    datacenters = forward(aio.Catalog.datacenters)
    nodes = forward(aio.Catalog.nodes)
    node = forward(aio.Catalog.node)
    services = forward(aio.Catalog.services)
    service = forward(aio.Catalog.service)
    register = forward(aio.Catalog.register)
    deregister = forward(aio.Catalog.deregister)


class Health(SyncEndpoint):
    """``/v1/health/``, blocking: see :class:`consul_streams.endpoints.Health`."""

    name = "health"
    service = forward(aio.Health.service)
    checks = forward(aio.Health.checks)
    node = forward(aio.Health.node)
    state = forward(aio.Health.state)


class Agent(SyncEndpoint):
    """``/v1/agent/``, blocking: see :class:`consul_streams.endpoints.Agent`."""

    name = "agent"
    self = forward(aio.Agent.self)
    members = forward(aio.Agent.members)
    services = forward(aio.Agent.services)
    service = forward(aio.Agent.service)
    checks = forward(aio.Agent.checks)
    service_register = forward(aio.Agent.service_register)
    service_deregister = forward(aio.Agent.service_deregister)
    service_maintenance = forward(aio.Agent.service_maintenance)
    node_maintenance = forward(aio.Agent.node_maintenance)
    check_register = forward(aio.Agent.check_register)
    check_deregister = forward(aio.Agent.check_deregister)
    check_pass = forward(aio.Agent.check_pass)
    check_warn = forward(aio.Agent.check_warn)
    check_fail = forward(aio.Agent.check_fail)
    check_update = forward(aio.Agent.check_update)


class Events(SyncEndpoint):
    """``/v1/event/``, blocking: see :class:`consul_streams.endpoints.Events`."""

    name = "event"
    fire = forward(aio.Events.fire)
    items = forward(aio.Events.items)


class Sessions(SyncEndpoint):
    """``/v1/session/``, blocking: see :class:`consul_streams.endpoints.Sessions`."""

    name = "session"
    create = forward(aio.Sessions.create)
    destroy = forward(aio.Sessions.destroy)
    renew = forward(aio.Sessions.renew)
    info = forward(aio.Sessions.info)
    list = forward(aio.Sessions.list)
    node = forward(aio.Sessions.node)


class Status(SyncEndpoint):
    """``/v1/status/``, blocking: see :class:`consul_streams.endpoints.Status`."""

    name = "status"
    leader = forward(aio.Status.leader)
    peers = forward(aio.Status.peers)


class Txn(SyncEndpoint):
    """``/v1/txn``, blocking: see :class:`consul_streams.endpoints.Txn`."""

    name = "txn"
    execute = forward(aio.Txn.execute)
    # A pure builder (a staticmethod, no I/O): the very same function.
    kv_op = staticmethod(aio.Txn.kv_op)
