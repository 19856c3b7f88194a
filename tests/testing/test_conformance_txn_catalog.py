"""``/v1/txn`` with Node, Service and Check operations (``agent/txn_endpoint.go``
convertOps, ``agent/consul/txn_endpoint.go`` preCheck, ``agent/consul/state/txn.go``)."""

from __future__ import annotations

import json
from typing import Any

from ._http_helpers import Http, Reply, agent, http

__all__ = ["agent", "http"]


async def txn(http: Http, *ops: dict[str, Any]) -> Reply:
    return await http.put("/v1/txn", json.dumps(list(ops)))


def node_op(verb: str, **node: Any) -> dict[str, Any]:
    return {"Node": {"Verb": verb, "Node": node}}


def service_op(verb: str, node: str, **svc: Any) -> dict[str, Any]:
    return {"Service": {"Verb": verb, "Node": node, "Service": svc}}


def check_op(verb: str, **check: Any) -> dict[str, Any]:
    return {"Check": {"Verb": verb, "Check": check}}


async def test_node_service_check_set_in_one_transaction(http: Http) -> None:
    """txnNode/txnService/txnCheck set: results carry the stored records, one index."""
    before = (await http.get("/v1/catalog/nodes")).index
    r = await txn(
        http,
        node_op("set", Node="n1", Address="10.0.0.1", Meta={"rack": "a"}),
        service_op("set", "n1", Service="web", Port=80),
        check_op("set", Node="n1", Name="alive", ServiceID="web", Status="passing"),
    )
    assert r.status == 200, r.text
    results = r.json()["Results"]
    assert r.json()["Errors"] is None
    node, svc, check = results[0]["Node"], results[1]["Service"], results[2]["Check"]
    assert (node["Node"], node["Meta"]) == ("n1", {"rack": "a"})
    assert (svc["ID"], svc["Service"], svc["Port"]) == ("web", "web", 80)  # ID from the name
    assert (check["CheckID"], check["ServiceName"]) == ("alive", "web")  # ID from the name
    assert node["ModifyIndex"] == svc["ModifyIndex"] == check["ModifyIndex"] > before
    assert "X-Consul-Index" not in r.headers
    entries = (await http.get("/v1/health/service/web")).json()
    assert [c["CheckID"] for c in entries[0]["Checks"]] == ["alive"]


async def test_gets_and_their_errors(http: Http) -> None:
    """state/txn.go: get errors name the object; a read-only transaction carries query meta."""
    await txn(http, node_op("set", Node="n1", Address="10.0.0.1"))
    r = await txn(
        http,
        node_op("get", Node="n1"),
        node_op("get", Node="nope"),
        service_op("get", "n1", ID="db"),
        check_op("get", Node="n1", CheckID="c"),
    )
    assert r.status == 409
    assert r.json()["Errors"] == [
        {"OpIndex": 1, "What": 'node "nope" doesn\'t exist'},
        {"OpIndex": 2, "What": 'service "db" on node "n1" doesn\'t exist'},
        {"OpIndex": 3, "What": 'check "c" on node "n1" doesn\'t exist'},
    ]
    assert r.json()["KnownLeader"] is True
    r = await txn(http, node_op("get", Node="n1"))
    assert r.json()["Results"][0]["Node"]["Address"] == "10.0.0.1"


async def test_cas_and_delete_cas(http: Http) -> None:
    """ensure*CASTxn / delete*CASTxn: 0 means "must not exist", stale indexes fail."""
    r = await txn(http, node_op("cas", Node="n1", Address="a", ModifyIndex=0))
    index = r.json()["Results"][0]["Node"]["ModifyIndex"]
    r = await txn(http, node_op("cas", Node="n1", Address="b", ModifyIndex=0))
    assert r.json()["Errors"] == [{"OpIndex": 0, "What": 'failed to set node "n1", index is stale'}]
    r = await txn(http, node_op("cas", Node="n1", Address="b", ModifyIndex=index))
    assert r.status == 200
    r = await txn(http, service_op("set", "n1", ID="w1", Service="web"))
    svc_index = r.json()["Results"][0]["Service"]["ModifyIndex"]
    r = await txn(http, service_op("delete-cas", "n1", ID="w1", Service="web", ModifyIndex=1))
    what = 'failed to delete service "w1" on node "n1", index is stale'
    assert r.json()["Errors"] == [{"OpIndex": 0, "What": what}]
    r = await txn(
        http, service_op("delete-cas", "n1", ID="w1", Service="web", ModifyIndex=svc_index)
    )
    assert (r.status, r.json()["Results"]) == (200, None)
    r = await txn(http, node_op("delete-cas", Node="ghost", ModifyIndex=1))
    what = 'failed to delete node "ghost", index is stale'
    assert r.json()["Errors"] == [{"OpIndex": 0, "What": what}]
    r = await txn(http, check_op("delete", Node="n1", CheckID="nothing"))
    assert r.status == 200


async def test_writes_need_the_node_and_service(http: Http) -> None:
    """ensureServiceTxn / ensureCheckTxn: Missing node / service registration."""
    r = await txn(
        http,
        service_op("set", "ghost", Service="web"),
        check_op("set", Node="dev", CheckID="c", ServiceID="nope"),
        check_op("set", Node="ghost", CheckID="c"),
    )
    assert r.json()["Errors"] == [
        {"OpIndex": 0, "What": "Missing node registration"},
        {"OpIndex": 1, "What": "Missing service registration"},
        {"OpIndex": 2, "What": "Missing node registration"},
    ]


async def test_pre_check_errors_stop_the_transaction(http: Http) -> None:
    """Txn.preCheck: nodePreApply and servicePreApply errors are the only ones reported."""
    r = await txn(
        http,
        node_op("set", Address="x"),
        node_op("set", Node="n", ID="not-a-uuid"),
        service_op("set", "dev", ID="only-id"),
        service_op("set", "dev", Service="web", Address="0.0.0.0"),
        node_op("get", Node="missing"),
    )
    assert r.status == 409
    assert r.json()["Errors"] == [
        {"OpIndex": 0, "What": "Must provide node"},
        {"OpIndex": 1, "What": "Bad node ID: uuid string is wrong length"},
        {"OpIndex": 2, "What": "Must provide service name with ID"},
        {"OpIndex": 3, "What": "Invalid service address"},
    ]


async def test_a_failure_rolls_back_kv_and_catalog(http: Http) -> None:
    """TxnRW aborts the whole memdb transaction when any operation fails."""
    before = (await http.get("/v1/catalog/nodes")).json()
    r = await txn(
        http,
        {"KV": {"Verb": "set", "Key": "k", "Value": "dg=="}},
        node_op("set", Node="n1", Address="10.0.0.1"),
        service_op("set", "n1", Service="web"),
        node_op("get", Node="nope"),
    )
    assert r.status == 409
    assert r.json()["Errors"] == [{"OpIndex": 3, "What": 'node "nope" doesn\'t exist'}]
    assert (await http.get("/v1/kv/k")).status == 404
    assert (await http.get("/v1/catalog/nodes")).json() == before
    assert (await http.get("/v1/catalog/service/web")).json() == []


async def test_ops_without_a_kind_are_dropped_and_verbs_checked(http: Http) -> None:
    """convertOps skips ops with no KV/Node/Service/Check (keys matched case-insensitively,
    as encoding/json does); unknown verbs are errors."""
    r = await txn(http, {}, node_op("get", Node="nope"))
    assert r.json()["Errors"] == [{"OpIndex": 0, "What": 'node "nope" doesn\'t exist'}]
    # api.TxnOp has no Session field, and lib.DecodeJSON refuses unknown fields.
    r = await txn(http, {"Session": {"Verb": "delete"}})
    assert (r.status, r.text) == (400, 'Failed to parse body: json: unknown field "Session"')
    r = await txn(http, {"node": {"verb": "get", "node": {"node": "dev"}}})
    assert r.json()["Results"][0]["Node"]["Node"] == "dev"
    r = await txn(http, node_op("rename", Node="dev"))
    assert r.json()["Errors"] == [{"OpIndex": 0, "What": 'unknown Node verb "rename"'}]
    r = await txn(http, check_op("toggle", Node="dev", CheckID="serfHealth"))
    assert r.json()["Errors"] == [{"OpIndex": 0, "What": 'unknown Check verb "toggle"'}]


async def test_a_catalog_op_must_be_an_object(http: Http) -> None:
    """encoding/json UnmarshalTypeError for a non-object TxnOp.Node."""
    r = await txn(http, {"Node": "n1"})
    text = "Failed to parse body: json: cannot unmarshal string into Go struct field TxnOp.Node"
    assert (r.status, r.text) == (400, text + " of type api.NodeTxnOp")
