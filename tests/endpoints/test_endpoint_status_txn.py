"""Status and txn endpoints: non-blocking reads, KV ops base64 both ways, 409 as Conflict."""

from __future__ import annotations

import base64

import pytest

from consul_streams._query import BlockingMode
from consul_streams.endpoints import Txn
from consul_streams.exceptions import Conflict, DecodeError, InvalidArgument

from ._mock import Endpoints, Wire


async def test_status_leader_and_peers(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/status/leader", json_body="127.0.0.1:8300")
    wire.reply("GET", "/v1/status/peers", json_body=["127.0.0.1:8300"])
    leader = consul.status.leader(dc="dc1")
    assert leader.mode is BlockingMode.NONE
    assert (await leader)[0] == "127.0.0.1:8300"
    assert (await consul.status.peers())[0] == ["127.0.0.1:8300"]
    assert [c.query for c in wire.calls] == [[("dc", "dc1")], []]


async def test_status_leader_must_be_a_string(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/status/leader", json_body=["x"])
    with pytest.raises(DecodeError):
        await consul.status.leader()


async def test_txn_encodes_values_and_decodes_results(consul: Endpoints, wire: Wire) -> None:
    entry = {"Key": "t", "Value": base64.b64encode(b"v").decode(), "Flags": 0, "LockIndex": 0}
    wire.reply(
        "PUT",
        "/v1/txn",
        json_body={"Results": [{"KV": {**entry, "Value": None}}, {"KV": entry}], "Errors": None},
    )
    results = await consul.txn.execute(
        [
            Txn.kv_op("set", "t", b"v", flags=3),
            {"KV": {"Verb": "get", "Key": "t"}},
            {"Node": {"Verb": "get", "Node": {"Node": "n"}}},
        ]
    )
    assert [r["KV"]["Value"] for r in results] == [b"", b"v"]
    call = wire.only()
    assert call.method == "PUT"
    assert call.json() == [
        {"KV": {"Verb": "set", "Key": "t", "Value": "dg==", "Flags": 3}},
        {"KV": {"Verb": "get", "Key": "t"}},
        {"Node": {"Verb": "get", "Node": {"Node": "n"}}},
    ]


async def test_txn_409_raises_conflict_with_errors(consul: Endpoints, wire: Wire) -> None:
    errors = [{"OpIndex": 0, "What": 'key "missing" doesn\'t exist'}]
    wire.reply("PUT", "/v1/txn", status=409, json_body={"Results": None, "Errors": errors})
    with pytest.raises(Conflict) as info:
        await consul.txn.execute([Txn.kv_op("get", "missing")])
    assert info.value.errors == errors
    assert info.value.status == 409


async def test_read_only_txn_takes_consistency(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/txn", json_body={"Results": [], "Errors": None})
    assert await consul.txn.execute([Txn.kv_op("get-tree", "")], consistency="stale") == []
    assert wire.only().query == [("stale", "")]


async def test_rejected_txn_arguments(consul: Endpoints, wire: Wire) -> None:
    with pytest.raises(InvalidArgument, match=r"operation\.Verb"):
        Txn.kv_op("explode", "k")
    with pytest.raises(InvalidArgument, match=r"operation\.Key: must not begin"):
        Txn.kv_op("get", "/k")
    with pytest.raises(InvalidArgument, match=r"operation\.Index"):
        Txn.kv_op("cas", "k", b"v", index=-1)
    cases = [
        ("operations", consul.txn.execute([])),
        ("operations", consul.txn.execute({"KV": {}})),  # type: ignore[arg-type]
        ("operations[0]", consul.txn.execute([{"KV": {}, "Node": {}}])),
        ("operations[0]", consul.txn.execute([{"Bogus": {}}])),
        (
            "operations[1].KV.Value",
            consul.txn.execute(
                [Txn.kv_op("get", "a"), {"KV": {"Verb": "set", "Key": "b", "Value": 3}}]
            ),
        ),
        (
            "operations[0].KV.Session",
            consul.txn.execute([{"KV": {"Verb": "lock", "Key": "b", "Session": ""}}]),
        ),
    ]
    for parameter, coro in cases:
        with pytest.raises(InvalidArgument) as info:
            await coro
        assert info.value.parameter == parameter
    assert wire.calls == []
