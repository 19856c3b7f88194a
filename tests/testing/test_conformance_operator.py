"""``/v1/operator/*``: one Raft voter that leads (``agent/operator_endpoint.go``)."""

from __future__ import annotations

import json

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


async def test_raft_configuration(http: Http) -> None:
    """OperatorRaftConfiguration: structs.RaftConfigurationResponse."""
    body = (await http.get("/v1/operator/raft/configuration")).json()
    (server,) = body["Servers"]
    self_cfg = (await http.get("/v1/agent/self")).json()["Config"]
    assert server["ID"] == self_cfg["NodeID"]
    assert server["Node"] == self_cfg["NodeName"]
    assert (server["Leader"], server["Voter"]) == (True, True)
    assert server["Address"] == (await http.get("/v1/status/leader")).json()
    # Raft's GetConfiguration leaves the future's index at 0 (test_conformance_pyconsul.py).
    assert body["Index"] == 0
    r = await http.get("/v1/operator/raft/configuration?index=x")
    assert r.status == 400


async def test_raft_peer_removal_arguments(http: Http) -> None:
    """OperatorRaftPeer and Operator.RaftRemovePeerBy{ID,Address}."""
    r = await http.delete("/v1/operator/raft/peer")
    assert r.status == 400
    assert r.text.startswith("Must specify either ?id with the server's ID or ?address")
    r = await http.delete("/v1/operator/raft/peer?id=a&address=b")
    assert (r.status, r.text) == (400, "Must specify only one of ?id or ?address")
    r = await http.delete("/v1/operator/raft/peer?address=10.0.0.9:8300")
    assert (r.status, r.text) == (
        500,
        'address "10.0.0.9:8300" was not found in the Raft configuration',
    )
    r = await http.delete("/v1/operator/raft/peer?id=nope")
    assert (r.status, r.text) == (500, 'id "nope" was not found in the Raft configuration')


async def test_autopilot_health_and_state(http: Http) -> None:
    """OperatorServerHealth (api.OperatorHealthReply) and OperatorAutopilotState."""
    health = (await http.get("/v1/operator/autopilot/health")).json()
    assert (health["Healthy"], health["FailureTolerance"]) == (True, 0)
    (server,) = health["Servers"]
    assert (server["Leader"], server["Voter"], server["Healthy"]) == (True, True, True)
    assert server["SerfStatus"] == "alive"
    assert server["LastContact"] == "0s"
    assert server["StableSince"].endswith("Z")
    state = (await http.get("/v1/operator/autopilot/state")).json()
    assert state["Leader"] == server["ID"]
    assert state["Voters"] == [server["ID"]]
    assert state["Servers"][server["ID"]]["Status"] == "leader"


async def test_autopilot_configuration_get_put_and_cas(http: Http) -> None:
    """OperatorAutopilotConfiguration: PUT answers true; with ?cas the CAS result."""
    path = "/v1/operator/autopilot/configuration"
    conf = (await http.get(path)).json()
    assert conf["CleanupDeadServers"] is True
    assert conf["LastContactThreshold"] == "200ms"
    assert conf["ServerStabilizationTime"] == "10s"
    r = await http.put(path, json.dumps({"CleanupDeadServers": False, "MaxTrailingLogs": 9}))
    assert (r.status, r.json()) == (200, True)
    after = (await http.get(path)).json()
    assert (after["CleanupDeadServers"], after["MaxTrailingLogs"]) == (False, 9)
    assert after["ModifyIndex"] > conf["ModifyIndex"]
    stale = await http.put(f"{path}?cas={conf['ModifyIndex']}", json.dumps({"MinQuorum": 3}))
    assert (stale.status, stale.json()) == (200, False)
    ok = await http.put(f"{path}?cas={after['ModifyIndex']}", json.dumps({"MinQuorum": 3}))
    assert ok.json() is True
    assert (await http.get(path)).json()["MinQuorum"] == 3
    r = await http.put(f"{path}?cas=x", "{}")
    assert r.status == 400
    assert r.text.startswith("Error parsing cas value: ")
    r = await http.put(path, json.dumps({"LastContactThreshold": "soon"}))
    assert r.status == 400
    assert r.text.startswith("Error parsing autopilot config: ")


async def test_usage_counts_services_and_nodes(http: Http) -> None:
    """OperatorUsage: api.Usage per datacenter, with the index header."""
    svc = {"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": "web"}}
    assert (await http.put("/v1/catalog/register", json.dumps(svc))).status == 200
    r = await http.get("/v1/operator/usage")
    usage = r.json()["Usage"]["dc1"]
    assert (usage["Nodes"], usage["Services"], usage["ServiceInstances"]) == (2, 2, 2)
    assert usage["BillableServiceInstances"] == 1
    assert r.index >= 1
