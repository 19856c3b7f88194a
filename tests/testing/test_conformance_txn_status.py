"""Transactions and status of the dev agent (consul-api.md 2.7, 2.8; vectors 69-73)."""

from __future__ import annotations

import base64
import json

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


def _kv(verb: str, key: str, **fields: object) -> dict[str, object]:
    return {"KV": {"Verb": verb, "Key": key, **fields}}


async def test_v69_operation_limit(http: Http) -> None:
    ops = [_kv("set", f"k{i}", Value="dg==") for i in range(129)]
    r = await http.put("/v1/txn", json.dumps(ops))
    assert (r.status, r.text) == (413, "Transaction contains too many operations (129 > 128)")
    r = await http.put("/v1/txn", json.dumps(ops[:128]))
    assert r.status == 200
    assert len((await http.get("/v1/kv/?keys")).json()) == 128


async def test_v70_get_of_missing_key_fails_with_409(http: Http) -> None:
    r = await http.put("/v1/txn", json.dumps([_kv("get", "missing")]))
    assert r.status == 409
    body = r.json()
    assert body["Results"] is None
    assert body["Errors"] == [{"OpIndex": 0, "What": 'key "missing" doesn\'t exist'}]


async def test_v71_set_then_read_only_get(http: Http) -> None:
    r = await http.put("/v1/txn", json.dumps([_kv("set", "t", Value="dg==")]))
    assert r.status == 200
    body = r.json()
    assert body["Errors"] is None
    assert body["Results"][0]["KV"]["Value"] is None
    assert body["Results"][0]["KV"]["Key"] == "t"
    r = await http.put("/v1/txn", json.dumps([_kv("get", "t")]))
    assert r.json()["Results"][0]["KV"]["Value"] == "dg=="
    assert r.headers["X-Consul-Knownleader"] == "true"
    assert r.headers["X-Consul-Lastcontact"] == "0"
    assert "X-Consul-Index" not in r.headers
    assert r.json()["KnownLeader"] is True


async def test_v72_bad_body(http: Http) -> None:
    r = await http.put("/v1/txn", "not json")
    assert r.status == 400
    assert r.text.startswith("Failed to parse body:")


async def test_failed_txn_rolls_back_every_write(http: Http) -> None:
    await http.put("/v1/kv/x", b"old")
    ops = [_kv("set", "x", Value="bmV3"), _kv("set", "y", Value="eQ=="), _kv("cas", "x", Index=1)]
    r = await http.put("/v1/txn", json.dumps(ops))
    assert r.status == 409
    assert r.json()["Errors"] == [{"OpIndex": 2, "What": 'failed to set key "x", index is stale'}]
    assert (await http.get("/v1/kv/x?raw")).body == b"old"
    assert (await http.get("/v1/kv/y")).status == 404


async def test_all_ops_share_one_index(http: Http) -> None:
    ops = [_kv("set", "a", Value="YQ=="), _kv("set", "b", Value="Yg==")]
    assert (await http.put("/v1/txn", json.dumps(ops))).status == 200
    a = (await http.get("/v1/kv/a")).json()[0]["ModifyIndex"]
    b = (await http.get("/v1/kv/b")).json()[0]["ModifyIndex"]
    assert a == b


async def test_verbs_and_their_errors(http: Http) -> None:
    await http.put("/v1/kv/e", b"1")
    idx = (await http.get("/v1/kv/e")).json()[0]["ModifyIndex"]
    sid = (await http.put("/v1/session/create")).json()["ID"]
    ok = [
        _kv("check-index", "e", Index=idx),
        _kv("check-not-exists", "nope"),
        _kv("get-or-empty", "nope"),
        _kv("get-tree", "e"),
        _kv("lock", "lk", Session=sid),
        _kv("check-session", "lk", Session=sid),
        _kv("unlock", "lk", Session=sid),
        _kv("delete-cas", "e", Index=idx),
    ]
    r = await http.put("/v1/txn", json.dumps(ok))
    assert r.status == 200, r.text
    assert (await http.get("/v1/kv/e")).status == 404
    bad = {
        "check-index": 'failed to check index, key "e" doesn\'t exist',
        "check-not-exists": 'key "lk" exists',
        "unlock": 'failed to unlock key "lk", lock isn\'t held, or is held by another session',
        "bogus": 'unknown KV verb "bogus"',
    }
    ops = [
        _kv("check-index", "e", Index=1),
        _kv("check-not-exists", "lk"),
        _kv("unlock", "lk", Session=sid),
        _kv("bogus", "z"),
    ]
    r = await http.put("/v1/txn", json.dumps(ops))
    assert r.status == 409
    assert [e["What"] for e in r.json()["Errors"]] == list(bad.values())


async def test_value_too_large_in_txn(http: Http) -> None:
    big = base64.b64encode(b"x" * 300_000).decode()
    ops = [_kv("set", "a", Value=big), _kv("set", "b", Value=big)]
    r = await http.put("/v1/txn", json.dumps(ops))
    assert r.status == 413
    assert r.text.startswith("Request body(")


async def test_v73_status(http: Http) -> None:
    r = await http.get("/v1/status/leader")
    assert r.status == 200
    assert isinstance(r.json(), str)
    assert r.json()
    r = await http.get("/v1/status/peers")
    assert len(r.json()) == 1
    assert "X-Consul-Index" not in r.headers


async def test_status_runs_common_parse(http: Http) -> None:
    r = await http.get("/v1/status/leader?wait=bad")
    assert (r.status, r.text) == (400, "Invalid wait time")
