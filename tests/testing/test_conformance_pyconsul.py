"""Dev agent conformance: differences py-consul 1.8.0's own test suite found (issue 9).

Each test pins what Consul's Go source answers; the py-consul test that exposed it is named
in the docstring. The suite itself runs outside this repository (see docs/dev-agent.md).
"""

from __future__ import annotations

import json

import aiohttp

from consul_streams.testing import DevAgent

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


async def test_catalog_register_body_datacenter_is_forwarded(http: Http) -> None:
    """``CatalogRegister`` keeps ``args.Datacenter`` from the body (only an empty one defaults
    to the agent's), and ``Catalog.Register`` forwards before validating: another datacenter
    answers ``No path to datacenter``; the same datacenter, in any key case, registers.
    (py-consul ``test_catalog``: ``catalog.register(..., dc="dc2")`` must raise.)"""
    body = {"node": "foo", "address": "10.1.10.11", "datacenter": "dc2"}
    r = await http.put("/v1/catalog/register", json.dumps(body))
    assert (r.status, r.text) == (500, "No path to datacenter")
    r = await http.put("/v1/catalog/register", json.dumps({"Datacenter": "dc2"}))
    assert (r.status, r.text) == (500, "No path to datacenter")
    r = await http.put("/v1/catalog/deregister", json.dumps({"Node": "foo", "Datacenter": "dc2"}))
    assert (r.status, r.text) == (500, "No path to datacenter")
    assert (await http.get("/v1/catalog/node/foo")).json() is None
    body["datacenter"] = "dc1"
    r = await http.put("/v1/catalog/register", json.dumps(body))
    assert (r.status, r.json()) == (200, True)
    assert (await http.get("/v1/catalog/node/foo")).json()["Node"]["Address"] == "10.1.10.11"


async def test_operator_usage_body_carries_query_meta(http: Http) -> None:
    """``OperatorUsage`` returns ``structs.Usage``, which embeds ``structs.QueryMeta`` without
    json tags, so the body has ``Index``, ``KnownLeader``, ``ConsistencyLevel`` ... next to
    ``Usage``. (py-consul ``test_usage``: ``usage["KnownLeader"] is True``.)"""
    r = await http.get("/v1/operator/usage")
    body = r.json()
    assert list(body) == [
        "Usage",
        "Index",
        "LastContact",
        "KnownLeader",
        "ConsistencyLevel",
        "NotModified",
        "Backend",
        "ResultsFilteredByACLs",
    ]
    assert body["Index"] == r.index
    assert (body["KnownLeader"], body["ConsistencyLevel"], body["Backend"]) == (True, "leader", 0)
    stale = (await http.get("/v1/operator/usage?stale")).json()
    assert stale["ConsistencyLevel"] == "stale"
    consistent = (await http.get("/v1/operator/usage?consistent")).json()
    assert consistent["ConsistencyLevel"] == "consistent"


async def test_raft_configuration_index_is_zero(http: Http) -> None:
    """``Operator.RaftGetConfiguration`` copies ``future.Index()``, and hashicorp/raft's
    ``GetConfiguration`` fills only ``configurations.latest``: the index is always 0, however
    many writes happened. (py-consul ``test_operator``: ``config["Index"] == 0``.)"""
    await http.put("/v1/kv/a", "1")
    body = (await http.get("/v1/operator/raft/configuration")).json()
    assert body["Index"] == 0
    assert body["Servers"][0]["LastIndex"] >= 1


async def test_peer_query_matches_no_local_instance(http: Http) -> None:
    """``parsePeerName`` puts ``?peer=`` into ``args.PeerName`` and the state store's service
    lookups (``catalogServiceNodeList``, ``CheckServiceNodes``) only return that peer's imported
    instances; a dev agent has no peers, so every such query is empty, while without ``?peer``
    the local instance is found. (py-consul ``test_health_service_peer``.)"""
    body = {"Name": "foo", "ID": "foo:1", "Check": {"TTL": "10s"}}
    assert (await http.put("/v1/agent/service/register", json.dumps(body))).status == 200
    assert [e["Service"]["ID"] for e in (await http.get("/v1/health/service/foo")).json()] == [
        "foo:1"
    ]
    assert (await http.get("/v1/health/service/foo?peer=non-existent-peer")).json() == []
    assert len((await http.get("/v1/catalog/service/foo")).json()) == 1
    assert (await http.get("/v1/catalog/service/foo?peer=other")).json() == []


async def test_agent_token_set_with_acls_on() -> None:
    """``AgentToken``: with ACLs on, agent:write is checked first, then the body is decoded,
    then the target: every known name (and legacy spelling) answers 200 with no body, an
    unknown one ``404 Token "x" is unknown``; with ACLs off it stays ``401 ACL support
    disabled``. (py-consul ``test_agent_token_set``.)"""
    root = {"X-Consul-Token": "root"}
    async with (
        DevAgent(acl_default_policy="deny", management_token="root") as dev,
        aiohttp.ClientSession() as session,
    ):
        http = Http(dev, session)
        for target in ("default", "agent", "agent_recovery", "agent_master", "replication",
                       "config_file_service_registration", "dns", "acl_token"):  # fmt: skip
            r = await http.put(f"/v1/agent/token/{target}", '{"Token": "s"}', headers=root)
            assert (r.status, r.body) == (200, b""), target
        r = await http.put("/v1/agent/token/nope", '{"Token": "s"}', headers=root)
        assert (r.status, r.text) == (404, 'Token "nope" is unknown')
        r = await http.put("/v1/agent/token/default", '{"Token": 1}', headers=root)
        assert r.status == 400
        assert r.text.startswith("Request decode failed: ")
        r = await http.put("/v1/agent/token/default", '{"Token": "s"}')
        assert (r.status, r.text) == (403, "Permission denied")


async def test_gateway_services_of_unknown_gateway_is_empty_list(http: Http) -> None:
    """``Catalog.GatewayServices`` ends with ``filterACL``, which runs even with ACLs off (the
    authorizer is ManageAll), and ``aclFilter.filterGatewayServices`` rebuilds the list with
    ``make(structs.GatewayServices, 0, ...)``: ``[]``, never ``null``. (py-consul
    ``test_catalog_gateway_services``.)"""
    r = await http.get("/v1/catalog/gateway-services/ingress-gateway-1")
    assert (r.status, r.json()) == (200, [])
    assert r.index >= 1


async def test_datacenters_names_the_node_without_dc_suffix(http: Http) -> None:
    """``Coordinate.ListDatacenters`` strips ``.<dc>`` from the WAN member names ("Strip the
    datacenter suffixes from all the node names"), so the name it gives is the catalog's node
    and ``CoordinateUpdate`` of it is kept (``CoordinateBatchUpdate`` drops unknown nodes).
    (py-consul ``test_coordinate_update``.)"""
    (dc,) = (await http.get("/v1/coordinate/datacenters")).json()
    node = dc["Coordinates"][0]["Node"]
    assert node == "dev"
    coord = {"Adjustment": 0, "Error": 1.5, "Height": 0, "Vec": [0, 0, 0, 0, 0, 0, 0, 1.0]}
    r = await http.put("/v1/coordinate/update", json.dumps({"Node": node, "Coord": coord}))
    assert r.status == 200
    (entry,) = (await http.get(f"/v1/coordinate/node/{node}")).json()
    assert entry["Coord"]["Vec"] == coord["Vec"]
