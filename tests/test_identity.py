"""Identity is declared by the Query, not guessed from an item's field names.

Consul lets a service be named ``ID`` or ``Key`` (``structs.ServiceDefinition`` only checks
the name is non-empty), and ``/v1/catalog/services`` answers a map from service name to tags
(``catalog_endpoint.go: CatalogServices``), so those names become keys of the watched value.
"""

from __future__ import annotations

import asyncio

from consul_streams import Consul, ops, watch


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
