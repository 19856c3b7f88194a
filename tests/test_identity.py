"""Identity is declared by the Query, not guessed from an item's field names.

Consul lets a service be named ``ID`` or ``Key`` (``structs.ServiceDefinition`` only checks
the name is non-empty), and ``/v1/catalog/services`` answers a map from service name to tags
(``catalog_endpoint.go: CatalogServices``), so those names become keys of the watched value.
"""

from __future__ import annotations

import asyncio
from typing import Any

from consul_streams import Consul, Query, ops, watch


async def test_diff_over_catalog_services_named_id_and_key(consul_client: Consul) -> None:
    await consul_client.agent.service_register("ID", tags=["a"])
    await consul_client.agent.service_register("Key", tags=["b"])
    changes = watch(consul_client.catalog.services()) | ops.diff()
    async with changes.stream() as stream:
        first, _ = await asyncio.wait_for(anext(stream), 10)
        assert sorted(first.added) == [("ID", ["a"]), ("Key", ["b"]), ("consul", [])]
        await consul_client.agent.service_register("Name", tags=["c"])
        second, _ = await asyncio.wait_for(anext(stream), 10)
        assert second.added == [("Name", ["c"])]
        assert not second.removed
        assert not second.changed


async def test_match_over_catalog_services_named_key(consul_client: Consul) -> None:
    await consul_client.agent.service_register("Key")
    await consul_client.agent.service_register("web")
    matched = watch(consul_client.catalog.services()) | ops.match("^(Key|web)$")
    async with matched.stream() as stream:
        value, _ = await asyncio.wait_for(anext(stream), 10)
        assert value == {"Key": [], "web": []}


def test_every_collection_read_declares_its_identity() -> None:
    """A new endpoint read that forgets its identity would make diff/match guess again."""
    from consul_streams import _identity

    client = Consul(environ={})
    declared: dict[str, Query[Any]] = {
        "kv.get": client.kv.get("k"),
        "kv.items": client.kv.items("p/"),
        "kv.keys": client.kv.keys("p/"),
        "catalog.services": client.catalog.services(),
        "catalog.nodes": client.catalog.nodes(),
        "catalog.service": client.catalog.service("web"),
        "catalog.node": client.catalog.node("n1"),
        "catalog.datacenters": client.catalog.datacenters(),
        "health.service": client.health.service("web"),
        "health.checks": client.health.checks("web"),
        "health.state": client.health.state(),
        "health.node": client.health.node("n1"),
        "agent.services": client.agent.services(),
        "agent.checks": client.agent.checks(),
        "agent.service": client.agent.service("web"),
        "agent.members": client.agent.members(),
        "event.items": client.event.items(),
        "session.info": client.session.info("s1"),
        "session.list": client.session.list(),
        "session.node": client.session.node("n1"),
        "status.peers": client.status.peers(),
    }
    missing = [name for name, query in declared.items() if query.identity is None]
    assert missing == []
    # Consul keys these by name (map[string][]string in CatalogServices, map[string]*Service
    # and map[types.CheckID]*HealthCheck in AgentServices / AgentChecks).
    for name in ("catalog.services", "agent.services", "agent.checks"):
        assert declared[name].identity is _identity.MAPPING
    # A service instance is unique per node (structs.ServiceNode: Node + ServiceID).
    instance = {"Node": "n1", "ServiceID": "web-1", "ServiceName": "web"}
    identity = declared["catalog.service"].identity
    assert identity is not None
    assert identity.key_of(instance) == ("n1", "web-1")
