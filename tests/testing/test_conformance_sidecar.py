"""Dev agent conformance: Connect proxies, ``Locality`` and ``Connect.SidecarService`` (#9).

Pinned against Consul's Go source: agent/agent_endpoint.go ``AgentRegisterService`` and
``buildAgentService``, agent/sidecar_service.go ``sidecarServiceFromNodeService`` /
``sidecarPortFromServiceIDLocked`` / ``sidecarDefaultChecks``, agent/agent.go
``addServiceLocked`` / ``removeServiceSidecars``, agent/structs/structs.go
``ConnectProxyConfig`` / ``ServiceConnect.UnmarshalJSON`` and api/agent.go
``AgentServiceConnectProxyConfig`` (omitempty fields).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from consul_streams.testing import DevAgent

from ._http_helpers import Http

EMPTY_STRUCTS: dict[str, Any] = {"MeshGateway": {}, "Expose": {}}


@pytest_asyncio.fixture
async def http() -> AsyncIterator[Http]:
    async with DevAgent(jitter=False, node_name="dev") as agent, aiohttp.ClientSession() as s:
        yield Http(agent, s)


async def register(http: Http, body: dict[str, Any]) -> None:
    reply = await http.put("/v1/agent/service/register", json.dumps(body))
    assert (reply.status, reply.text) == (200, "")


async def services(http: Http) -> dict[str, Any]:
    found: dict[str, Any] = (await http.get("/v1/agent/services")).json()
    return found


async def test_connect_proxy_keeps_proxy_and_locality(http: Http) -> None:
    """buildAgentService: Proxy (ToAPI, Mode omitted when empty) and Locality are reported."""
    await register(http, {"Name": "web"})
    await register(
        http,
        {
            "Name": "web-sidecar-proxy",
            "Port": 21000,
            "Kind": "connect-proxy",
            # ConnectProxyConfig's alias tags: snake_case is accepted.
            "Proxy": {"destination_service_name": "web", "LocalServicePort": 8080},
            "Locality": {"Region": "us-west-1", "Zone": "us-west-1a"},
        },
    )
    found = await services(http)
    proxy = found["web-sidecar-proxy"]
    assert proxy["Kind"] == "connect-proxy"
    assert proxy["Proxy"] == {
        "DestinationServiceName": "web",
        "LocalServicePort": 8080,
        **EMPTY_STRUCTS,
    }
    assert proxy["Locality"] == {"Region": "us-west-1", "Zone": "us-west-1a"}
    # A plain service has no Proxy, Connect or Locality (pointers/omitempty in api.AgentService).
    assert not {"Proxy", "Connect", "Locality", "Kind"} & set(found["web"])
    # The catalog marshals structs.ConnectProxyConfig: Mode is not omitempty there.
    catalog = (await http.get("/v1/catalog/service/web-sidecar-proxy")).json()
    assert catalog[0]["ServiceProxy"] == {
        "DestinationServiceName": "web",
        "LocalServicePort": 8080,
        "Mode": "",
        **EMPTY_STRUCTS,
    }
    assert catalog[0]["ServiceLocality"] == {"Region": "us-west-1", "Zone": "us-west-1a"}
    plain = (await http.get("/v1/catalog/service/web")).json()
    assert plain[0]["ServiceProxy"] == {"Mode": "", **EMPTY_STRUCTS}
    assert "ServiceLocality" not in plain[0]


async def test_native_connect_is_reported(http: Http) -> None:
    """buildAgentService attaches Connect only for Native; the catalog's ServiceConnect too."""
    await register(http, {"Name": "native", "Connect": {"Native": True}})
    assert (await services(http))["native"]["Connect"] == {"Native": True}
    catalog = (await http.get("/v1/catalog/service/native")).json()
    assert catalog[0]["ServiceConnect"] == {"Native": True}


async def test_sidecar_service_defaults_and_checks(http: Http) -> None:
    """sidecarServiceFromNodeService defaults, the first sidecar port, sidecarDefaultChecks."""
    await register(
        http,
        {
            "Name": "web",
            "Port": 8080,
            "Tags": ["v1"],
            "Meta": {"team": "a"},
            "Connect": {"sidecar_service": {}},
        },
    )
    found = await services(http)
    assert sorted(found) == ["web", "web-sidecar-proxy"]
    # The parent keeps no SidecarService: it is registration sugar only.
    assert "Connect" not in found["web"]
    sidecar = found["web-sidecar-proxy"]
    assert sidecar["Kind"] == "connect-proxy"
    assert (sidecar["ID"], sidecar["Service"]) == ("web-sidecar-proxy", "web-sidecar-proxy")
    assert (sidecar["Port"], sidecar["Tags"], sidecar["Meta"]) == (21000, ["v1"], {"team": "a"})
    assert sidecar["Proxy"] == {
        "DestinationServiceName": "web",
        "DestinationServiceID": "web",
        "LocalServiceAddress": "127.0.0.1",
        "LocalServicePort": 8080,
        **EMPTY_STRUCTS,
    }
    checks: dict[str, Any] = (await http.get("/v1/agent/checks")).json()
    listening = checks["service:web-sidecar-proxy:1"]
    assert (listening["Name"], listening["Type"]) == ("Connect Sidecar Listening", "tcp")
    assert (listening["Interval"], listening["ServiceID"]) == ("10s", "web-sidecar-proxy")
    alias = checks["service:web-sidecar-proxy:2"]
    assert (alias["Name"], alias["Type"]) == ("Connect Sidecar Aliasing web", "alias")


async def test_sidecar_overrides_and_own_checks(http: Http) -> None:
    """Given Name/Port/Proxy fields win over the defaults; given checks replace the defaults."""
    await register(
        http,
        {
            "Name": "api",
            "Port": 9000,
            "Connect": {
                "SidecarService": {
                    "Name": "api-proxy",
                    "Port": 30000,
                    "Proxy": {"LocalServiceAddress": "10.0.0.1", "LocalServicePort": 9001},
                    "Check": {"TTL": "30s"},
                }
            },
        },
    )
    sidecar = (await services(http))["api-sidecar-proxy"]
    assert (sidecar["Service"], sidecar["Port"]) == ("api-proxy", 30000)
    assert sidecar["Proxy"]["LocalServiceAddress"] == "10.0.0.1"
    assert sidecar["Proxy"]["LocalServicePort"] == 9001
    checks: dict[str, Any] = (await http.get("/v1/agent/checks")).json()
    assert [c for c in checks if "api-sidecar-proxy" in c] == ["service:api-sidecar-proxy"]
    assert checks["service:api-sidecar-proxy"]["Type"] == "ttl"


async def test_sidecar_ports_allocated_lowest_free_and_kept(http: Http) -> None:
    """sidecarPortFromServiceIDLocked: lowest free port in 21000-21255, same on update."""
    await register(http, {"Name": "taken", "Port": 21000})
    await register(http, {"Name": "a", "Connect": {"SidecarService": {}}})
    await register(http, {"Name": "b", "Connect": {"SidecarService": {}}})
    found = await services(http)
    assert found["a-sidecar-proxy"]["Port"] == 21001
    assert found["b-sidecar-proxy"]["Port"] == 21002
    await register(http, {"Name": "a", "Tags": ["again"], "Connect": {"SidecarService": {}}})
    again = (await services(http))["a-sidecar-proxy"]
    assert (again["Port"], again["Tags"]) == (21001, ["again"])


async def test_deregister_removes_the_sidecar(http: Http) -> None:
    """removeServiceSidecars: only a sidecar registered as one goes with its parent."""
    await register(http, {"Name": "web", "Connect": {"SidecarService": {}}})
    await register(http, {"Name": "db"})
    await register(http, {"Name": "db-sidecar-proxy", "Port": 5000})
    for sid in ("web", "db"):
        reply = await http.put(f"/v1/agent/service/deregister/{sid}")
        assert reply.status == 200
    assert list(await services(http)) == ["db-sidecar-proxy"]
    checks: dict[str, Any] = (await http.get("/v1/agent/checks")).json()
    assert not [c for c in checks if "web" in c]
    assert (await http.get("/v1/catalog/service/web-sidecar-proxy")).json() == []


async def test_connect_proxy_validation(http: Http) -> None:
    """AgentRegisterService runs NodeService.Validate: go-multierror's list of problems."""
    reply = await http.put(
        "/v1/agent/service/register", json.dumps({"Name": "p", "Kind": "connect-proxy"})
    )
    assert reply.status == 400
    assert reply.text == (
        "Validation failed: 2 errors occurred:\n"
        "\t* Port or SocketPath must be set for a connect-proxy\n"
        "\t* Proxy.DestinationServiceName must be non-empty for Connect proxy services\n\n"
    )
    reply = await http.put(
        "/v1/agent/service/register",
        json.dumps(
            {
                "Name": "p",
                "Kind": "connect-proxy",
                "Port": 1,
                "Proxy": {"DestinationServiceName": "*"},
            }
        ),
    )
    assert (reply.status, reply.text) == (
        400,
        "Validation failed: 1 error occurred:\n"
        "\t* Proxy.DestinationServiceName must not be a wildcard for Connect proxy services\n\n",
    )
    assert await services(http) == {}


async def test_sidecar_checks_replaced_with_replace_existing_checks(http: Http) -> None:
    """AgentRegisterService passes replaceExistingChecks to the sidecar's AddServiceRequest."""
    two = {"SidecarService": {"Checks": [{"Name": "a", "TTL": "10s"}, {"TTL": "5s"}]}}
    await register(http, {"Name": "web", "Port": 80, "Connect": two})
    one = {"SidecarService": {"Check": {"TTL": "10s"}}}
    body = json.dumps({"Name": "web", "Port": 80, "Connect": one})
    kept = await http.put("/v1/agent/service/register", body)
    assert kept.status == 200
    checks: dict[str, Any] = (await http.get("/v1/agent/checks")).json()
    ids = sorted(c for c in checks if "sidecar" in c)
    assert ids == [
        "service:web-sidecar-proxy",
        "service:web-sidecar-proxy:1",
        "service:web-sidecar-proxy:2",
    ]
    replaced = await http.put("/v1/agent/service/register?replace-existing-checks", body)
    assert replaced.status == 200
    checks = (await http.get("/v1/agent/checks")).json()
    assert sorted(c for c in checks if "sidecar" in c) == ["service:web-sidecar-proxy"]
