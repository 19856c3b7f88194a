"""Every route of Consul's ``agent/http_register.go`` is answered as Consul answers it.

``HTTP_REGISTER`` is the route table of ``agent/http_register.go`` ``init()`` (Consul 1.22),
copied by hand: it is the oracle the dev agent's router and ``docs/dev-agent.md`` are checked
against. No route may answer the generic ``not a recognized HTTP API endpoint`` 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path

import aiohttp

from consul_streams.testing import DevAgent

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]

GENERIC_404 = "Invalid URL path: not a recognized HTTP API endpoint\n"

#: ``registerEndpoint(path, methods, handler)`` calls of ``agent/http_register.go``, in order.
HTTP_REGISTER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/v1/acl/bootstrap", ("PUT",)),
    ("/v1/acl/login", ("POST",)),
    ("/v1/acl/logout", ("POST",)),
    ("/v1/acl/replication", ("GET",)),
    ("/v1/acl/policies", ("GET",)),
    ("/v1/acl/policy", ("PUT",)),
    ("/v1/acl/policy/", ("GET", "PUT", "DELETE")),
    ("/v1/acl/policy/name/", ("GET",)),
    ("/v1/acl/roles", ("GET",)),
    ("/v1/acl/role", ("PUT",)),
    ("/v1/acl/role/name/", ("GET",)),
    ("/v1/acl/role/", ("GET", "PUT", "DELETE")),
    ("/v1/acl/binding-rules", ("GET",)),
    ("/v1/acl/binding-rule", ("PUT",)),
    ("/v1/acl/binding-rule/", ("GET", "PUT", "DELETE")),
    ("/v1/acl/auth-methods", ("GET",)),
    ("/v1/acl/auth-method", ("PUT",)),
    ("/v1/acl/auth-method/", ("GET", "PUT", "DELETE")),
    ("/v1/acl/tokens", ("GET",)),
    ("/v1/acl/token", ("PUT",)),
    ("/v1/acl/token/self", ("GET",)),
    ("/v1/acl/token/", ("GET", "PUT", "DELETE")),
    ("/v1/acl/templated-policies", ("GET",)),
    ("/v1/acl/templated-policy/name/", ("GET",)),
    ("/v1/acl/templated-policy/preview/", ("POST",)),
    ("/v1/agent/token/", ("PUT",)),
    ("/v1/agent/self", ("GET",)),
    ("/v1/agent/host", ("GET",)),
    ("/v1/agent/version", ("GET",)),
    ("/v1/agent/maintenance", ("PUT",)),
    ("/v1/agent/reload", ("PUT",)),
    ("/v1/agent/monitor", ("GET",)),
    ("/v1/agent/metrics", ("GET",)),
    ("/v1/agent/metrics/stream", ("GET",)),
    ("/v1/agent/services", ("GET",)),
    ("/v1/agent/service/", ("GET",)),
    ("/v1/agent/checks", ("GET",)),
    ("/v1/agent/members", ("GET",)),
    ("/v1/agent/join/", ("PUT",)),
    ("/v1/agent/leave", ("PUT",)),
    ("/v1/agent/force-leave/", ("PUT",)),
    ("/v1/agent/health/service/id/", ("GET",)),
    ("/v1/agent/health/service/name/", ("GET",)),
    ("/v1/agent/check/register", ("PUT",)),
    ("/v1/agent/check/deregister/", ("PUT",)),
    ("/v1/agent/check/pass/", ("PUT",)),
    ("/v1/agent/check/warn/", ("PUT",)),
    ("/v1/agent/check/fail/", ("PUT",)),
    ("/v1/agent/check/update/", ("PUT",)),
    ("/v1/agent/connect/authorize", ("POST",)),
    ("/v1/agent/connect/ca/roots", ("GET",)),
    ("/v1/agent/connect/ca/leaf/", ("GET",)),
    ("/v1/agent/service/register", ("PUT",)),
    ("/v1/agent/service/deregister/", ("PUT",)),
    ("/v1/agent/service/maintenance/", ("PUT",)),
    ("/v1/catalog/register", ("PUT",)),
    ("/v1/catalog/connect/", ("GET",)),
    ("/v1/catalog/deregister", ("PUT",)),
    ("/v1/catalog/datacenters", ("GET",)),
    ("/v1/catalog/nodes", ("GET",)),
    ("/v1/catalog/services", ("GET",)),
    ("/v1/catalog/service/", ("GET",)),
    ("/v1/catalog/node/", ("GET",)),
    ("/v1/catalog/node-services/", ("GET",)),
    ("/v1/catalog/gateway-services/", ("GET",)),
    ("/v1/config/", ("GET", "DELETE")),
    ("/v1/config", ("PUT",)),
    ("/v1/connect/ca/configuration", ("GET", "PUT")),
    ("/v1/connect/ca/roots", ("GET",)),
    ("/v1/connect/intentions", ("GET", "POST")),
    ("/v1/connect/intentions/match", ("GET",)),
    ("/v1/connect/intentions/check", ("GET",)),
    ("/v1/connect/intentions/exact", ("GET", "PUT", "DELETE")),
    ("/v1/connect/intentions/", ("GET", "PUT", "DELETE")),
    ("/v1/coordinate/datacenters", ("GET",)),
    ("/v1/coordinate/nodes", ("GET",)),
    ("/v1/coordinate/node/", ("GET",)),
    ("/v1/coordinate/update", ("PUT",)),
    ("/v1/internal/federation-states", ("GET",)),
    ("/v1/internal/federation-states/mesh-gateways", ("GET",)),
    ("/v1/internal/federation-state/", ("GET",)),
    ("/v1/discovery-chain/", ("GET", "POST")),
    ("/v1/exported-services", ("GET",)),
    ("/v1/event/fire/", ("PUT",)),
    ("/v1/event/list", ("GET",)),
    ("/v1/health/node/", ("GET",)),
    ("/v1/health/checks/", ("GET",)),
    ("/v1/health/state/", ("GET",)),
    ("/v1/health/service/", ("GET",)),
    ("/v1/health/connect/", ("GET",)),
    ("/v1/health/ingress/", ("GET",)),
    ("/v1/internal/ui/metrics-proxy/", ("GET",)),
    ("/v1/internal/ui/nodes", ("GET",)),
    ("/v1/internal/ui/node/", ("GET",)),
    ("/v1/internal/ui/services", ("GET",)),
    ("/v1/internal/ui/exported-services", ("GET",)),
    ("/v1/internal/ui/catalog-overview", ("GET",)),
    ("/v1/internal/ui/gateway-services-nodes/", ("GET",)),
    ("/v1/internal/ui/gateway-intentions/", ("GET",)),
    ("/v1/internal/ui/service-topology/", ("GET",)),
    ("/v1/internal/acl/authorize", ("POST",)),
    ("/v1/internal/service-virtual-ip", ("PUT",)),
    ("/v1/kv/", ("GET", "PUT", "DELETE")),
    ("/v1/operator/raft/configuration", ("GET",)),
    ("/v1/operator/raft/transfer-leader", ("POST",)),
    ("/v1/operator/raft/peer", ("DELETE",)),
    ("/v1/operator/keyring", ("GET", "POST", "PUT", "DELETE")),
    ("/v1/operator/usage", ("GET",)),
    ("/v1/operator/utilization", ("GET",)),
    ("/v1/operator/autopilot/configuration", ("GET", "PUT")),
    ("/v1/operator/autopilot/health", ("GET",)),
    ("/v1/operator/autopilot/state", ("GET",)),
    ("/v1/peering/token", ("POST",)),
    ("/v1/peering/establish", ("POST",)),
    ("/v1/peering/", ("GET", "DELETE")),
    ("/v1/peerings", ("GET",)),
    ("/v1/query", ("GET", "POST")),
    ("/v1/query/", ()),
    ("/v1/session/create", ("PUT",)),
    ("/v1/session/destroy/", ("PUT",)),
    ("/v1/session/renew/", ("PUT",)),
    ("/v1/session/info/", ("GET",)),
    ("/v1/session/node/", ("GET",)),
    ("/v1/session/list", ("GET",)),
    ("/v1/status/leader", ("GET",)),
    ("/v1/status/peers", ("GET",)),
    ("/v1/snapshot", ("GET", "PUT")),
    ("/v1/txn", ("PUT",)),
)

#: Routes that stream until the client goes away.
STREAMING = ("/v1/agent/monitor", "/v1/agent/metrics/stream")

DOC = Path(__file__).resolve().parents[2] / "docs" / "dev-agent.md"


def sample_path(path: str) -> str:
    """A concrete request path for a route (prefix routes get a suffix)."""
    return path + "x" if path.endswith("/") else path


def test_router_registers_every_route_with_consuls_methods(agent: DevAgent) -> None:
    """agent/http_register.go init(): same paths, same methods (``/v1/query/`` takes any)."""
    for path, methods in HTTP_REGISTER:
        found = agent.router.match(sample_path(path))
        assert found is not None, path
        route, _ = found
        assert route.path == path
        if methods:
            assert sorted(route.methods) == sorted(methods), path


async def test_no_route_answers_the_generic_404(agent: DevAgent) -> None:
    """agent/http.go (*HTTPHandlers).handler: registered paths never reach Index's 404."""
    last = ("/v1/agent/leave", ("PUT",))
    seen = 0
    async with aiohttp.ClientSession() as session:
        for path, methods in [*(r for r in HTTP_REGISTER if r != last), last]:
            for method in methods or ("GET",):
                url = agent.url + sample_path(path)
                async with session.request(method, url, data=b"{}") as resp:
                    # Streams run until the client leaves: the headers are enough.
                    body = "" if path in STREAMING else await resp.text()
                    assert (resp.status, body) != (404, GENERIC_404), (method, path)
                    assert resp.status != 405, (method, path)
                    seen += 1
    assert seen == sum(len(m) or 1 for _, m in HTTP_REGISTER)


def test_docs_route_inventory_lists_every_route() -> None:
    """docs/dev-agent.md "Routes": one row per route of http_register.go, with a status."""
    text = DOC.read_text()
    section = text.split("## Routes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(
            r"\| `([^`]+)` \| ([^|]*) \| (works|answers as disabled|out of scope) \|", line
        )
        if match:
            rows[match.group(1)] = match.group(3)
    assert set(rows) == {path for path, _ in HTTP_REGISTER}


async def test_acl_routes_answer_acl_support_disabled(http: Http) -> None:
    """agent/acl_endpoint.go (*HTTPHandlers).checkACLDisabled: 401 while ACLs are off."""
    for method, path in [
        ("GET", "/v1/acl/tokens"),
        ("GET", "/v1/acl/token/self"),
        ("PUT", "/v1/acl/bootstrap"),
        ("DELETE", "/v1/acl/policy/abc"),
        ("POST", "/v1/acl/login"),
        ("PUT", "/v1/agent/token/default"),
        ("POST", "/v1/internal/acl/authorize"),
    ]:
        r = await http(method, path, "{}")
        assert (r.status, r.text) == (401, "ACL support disabled"), path


async def test_acl_routes_with_acls_on_are_out_of_scope_not_disabled() -> None:
    """With ACLs enforced the 401 would be a lie: token/self is served, the management
    routes say they are not emulated (agent/acl_endpoint.go ACLTokenSelf)."""
    async with (
        DevAgent(acl_default_policy="deny", management_token="root") as dev,
        aiohttp.ClientSession() as session,
    ):
        http = Http(dev, session)
        r = await http.get("/v1/acl/tokens", headers={"X-Consul-Token": "root"})
        assert r.status == 500
        assert "ACL management" in r.text
        r = await http.get("/v1/acl/tokens")
        assert (r.status, r.text) == (403, "Permission denied")
        # ACLTokenSelf is served: clients use it to check their token.
        r = await http.get("/v1/acl/token/self", headers={"X-Consul-Token": "root"})
        assert r.status == 200
        assert r.json()["SecretID"] == "root"
        assert r.json()["Policies"] == [
            {"ID": "00000000-0000-0000-0000-000000000001", "Name": "global-management"}
        ]
        dev.add_token("app")
        r = await http.get("/v1/acl/token/self", headers={"X-Consul-Token": "app"})
        assert (r.status, r.json()["Policies"]) == (200, [])


async def test_connect_is_disabled(http: Http) -> None:
    """agent/consul/connect_ca_endpoint.go ErrConnectNotEnabled; ConnectCA.Roots has no CA."""
    text = "Connect must be enabled in order to use this endpoint"
    for method, path in [
        ("GET", "/v1/connect/ca/configuration"),
        ("PUT", "/v1/connect/ca/configuration"),
        ("GET", "/v1/agent/connect/ca/leaf/web"),
    ]:
        r = await http(method, path, "{}")
        assert (r.status, r.text) == (500, text), path
    for path in ("/v1/connect/ca/roots", "/v1/agent/connect/ca/roots"):
        r = await http.get(path)
        assert r.status == 200
        assert r.json() == {"ActiveRootID": "", "TrustDomain": "", "Roots": []}
        assert r.index >= 1
    assert (await http.get("/v1/agent/connect/ca/roots")).headers["X-Cache"] == "MISS"


async def test_connect_authorize_validates_then_falls_back_to_the_acl_default(http: Http) -> None:
    """agent/agent_endpoint.go (*HTTPHandlers).AgentConnectAuthorize."""
    post = "/v1/agent/connect/authorize"
    r = await http("POST", post, "")
    assert (r.status, r.text) == (400, "Request decode failed: EOF")
    r = await http("POST", post, json.dumps({"ClientCertURI": "x"}))
    assert (r.status, r.text) == (400, "Target service must be specified")
    r = await http("POST", post, json.dumps({"Target": "db", "ClientCertURI": "x"}))
    assert (r.status, r.text) == (400, "ClientCertURI not a valid Connect identifier")
    uri = "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web"
    r = await http("POST", post, json.dumps({"Target": "db", "ClientCertURI": uri}))
    assert r.status == 200
    assert r.json() == {"Authorized": True, "Reason": "Default behavior configured by ACLs"}


async def test_peering_is_disabled_after_argument_checks(http: Http) -> None:
    """agent/peering_endpoint.go and services/peering peeringNotEnabledErr."""
    disabled = (
        "rpc error: code = FailedPrecondition desc = peering must be enabled to use this endpoint"
    )
    r = await http("POST", "/v1/peering/token", "")
    assert (r.status, r.text) == (400, "Body decoding failed: EOF")
    r = await http("POST", "/v1/peering/token", "{}")
    assert r.status == 400
    assert r.text == "PeerName is required in the payload when generating a new peering token."
    r = await http("POST", "/v1/peering/token", json.dumps({"PeerName": "p"}))
    assert (r.status, r.text) == (500, disabled)
    r = await http("POST", "/v1/peering/token", json.dumps({"PeerName": "p", "Foo": 1}))
    assert (r.status, r.text) == (400, 'Body decoding failed: json: unknown field "Foo"')
    r = await http("POST", "/v1/peering/establish", json.dumps({"PeerName": "p"}))
    assert r.status == 400
    assert r.text == "PeeringToken is required in the payload when establishing a peering."
    r = await http.get("/v1/peering/")
    assert (r.status, r.text) == (400, "Must specify a name to fetch.")
    for method, path in [
        ("GET", "/v1/peering/p"),
        ("DELETE", "/v1/peering/p"),
        ("GET", "/v1/peerings"),
    ]:
        r = await http(method, path)
        assert (r.status, r.text) == (500, disabled), path


async def test_config_entries_read_as_an_empty_table(http: Http) -> None:
    """agent/config_endpoint.go (*HTTPHandlers).configGet / configDelete."""
    r = await http.get("/v1/config/service-defaults")
    assert (r.status, r.json()) == (200, [])
    r = await http.get("/v1/config/service-defaults/web")
    assert (r.status, r.text) == (404, 'Config entry not found for "service-defaults" / "web"')
    assert r.index >= 1
    r = await http.delete("/v1/config/service-defaults")
    assert (r.status, r.text) == (404, "Must provide both a kind and name to delete")
    r = await http.delete("/v1/config/nonsense/web")
    assert (r.status, r.text) == (400, "invalid config entry kind: nonsense")
    r = await http.delete("/v1/config/service-defaults/web")
    assert (r.status, r.json()) == (200, {})


async def test_prepared_queries_and_intentions_list_empty(http: Http) -> None:
    """agent/prepared_query_endpoint.go: ``Query not found`` 404; lists are empty."""
    assert (await http.get("/v1/query")).json() == []
    assert (await http.get("/v1/connect/intentions")).json() == []
    r = await http.get("/v1/query/0b2f9d61-0000-0000-0000-000000000000")
    assert (r.status, r.text) == (404, "Query not found")
    r = await http.get("/v1/query/abc/execute")
    assert (r.status, r.text) == (404, "Query not found")


async def test_mesh_reads_are_empty_and_need_a_name(http: Http) -> None:
    """agent/catalog_endpoint.go CatalogGatewayServices, health_endpoint.go connect/ingress."""
    assert (await http.get("/v1/catalog/connect/web")).json() == []
    assert (await http.get("/v1/health/connect/web")).json() == []
    assert (await http.get("/v1/health/ingress/web")).json() == []
    # aclFilter.filterGatewayServices rebuilds the list with make(..., 0): [] (not null).
    assert (await http.get("/v1/catalog/gateway-services/gw")).json() == []
    r = await http.get("/v1/catalog/gateway-services/")
    assert (r.status, r.text) == (400, "Missing gateway name")


async def test_out_of_scope_routes_say_what_is_missing(http: Http) -> None:
    """Snapshots, keyrings and the UI's internal API answer a 500 naming the subsystem."""
    for method, path, what in [
        ("GET", "/v1/snapshot", "Snapshot"),
        ("GET", "/v1/operator/keyring", "Gossip encryption"),
        ("GET", "/v1/internal/ui/services", "web UI"),
        ("PUT", "/v1/config", "Service mesh"),
    ]:
        r = await http(method, path, "{}")
        assert r.status == 500, path
        assert what in r.text
        assert "not available in the consul-streams dev agent" in r.text


async def test_empty_subsystems_block_like_consul(http: Http) -> None:
    """agent/consul/rpc.go blockingQuery: an empty table answers index 1, and a read at that
    index parks until its wait ends instead of returning at once (no watch hot-loops)."""
    for path in ("/v1/config/service-defaults", "/v1/query", "/v1/connect/ca/roots"):
        r = await http.get(path)
        assert r.index == 1, path
    parked = asyncio.ensure_future(http.get("/v1/config/proxy-defaults?index=1&wait=10s"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    parked.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await parked
    r = await http.get("/v1/health/connect/web?index=1&wait=20ms")
    assert (r.status, r.index, r.json()) == (200, 1, [])
