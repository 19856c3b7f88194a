"""Conformance of the dev agent's KV endpoint (consul-api.md 2.1; section 7 vectors 1-39)."""

from __future__ import annotations

import asyncio
import base64

import pytest

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


async def test_v1_missing_key_is_404_with_meta(http: Http) -> None:
    r = await http.get("/v1/kv/missing")
    assert r.status == 404
    assert r.body == b""
    assert r.index >= 1
    assert r.headers["X-Consul-Knownleader"] == "true"
    assert r.headers["X-Consul-Lastcontact"] == "0"


async def test_v2_index_zero_never_blocks(http: Http) -> None:
    start = _loop_time()
    r = await http.get("/v1/kv/missing?index=0&wait=5s")
    assert r.status == 404
    assert _loop_time() - start < 1


async def test_v3_v4_put_then_get(http: Http) -> None:
    r = await http.put("/v1/kv/a", b"x")
    assert (r.status, r.json()) == (200, True)
    assert r.headers["Content-Type"] == "application/json"
    assert "X-Consul-Index" not in r.headers
    r = await http.get("/v1/kv/a")
    [entry] = r.json()
    assert entry["Value"] == "eA=="
    assert entry["Flags"] == 0
    assert entry["LockIndex"] == 0
    assert "Session" not in entry
    assert r.index == entry["ModifyIndex"] == entry["CreateIndex"]
    assert list(entry) == ["LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"]


async def test_v5_blocking_times_out_after_wait(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    idx = (await http.get("/v1/kv/a")).index
    start = _loop_time()
    r = await http.get(f"/v1/kv/a?index={idx}&wait=1s")
    elapsed = _loop_time() - start
    assert 1.0 <= elapsed < 1.0625 + 0.25
    assert r.status == 200
    assert r.index == idx
    assert r.json()[0]["Value"] == "eA=="


async def test_v6_write_wakes_blocked_get(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    idx = (await http.get("/v1/kv/a")).index
    blocked = asyncio.ensure_future(http.get(f"/v1/kv/a?index={idx}&wait=30s"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    start = _loop_time()
    await http.put("/v1/kv/a", b"y")
    r = await asyncio.wait_for(blocked, 5)
    assert _loop_time() - start < 0.5
    assert r.index > idx
    assert r.json()[0]["Value"] == "eQ=="


async def test_v7_identical_rewrite_is_a_noop(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    idx = (await http.get("/v1/kv/a")).index
    blocked = asyncio.ensure_future(http.get(f"/v1/kv/a?index={idx}&wait=1s"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    start = _loop_time()
    assert (await http.put("/v1/kv/a", b"x")).json() is True
    r = await asyncio.wait_for(blocked, 5)
    assert _loop_time() - start >= 0.9
    assert r.json()[0]["ModifyIndex"] == idx


async def test_v8_v9_wait_syntax(http: Http) -> None:
    for bad in ("10", "abc"):
        r = await http.get(f"/v1/kv/a?wait={bad}")
        assert (r.status, r.text) == (400, "Invalid wait time")
    assert (await http.get("/v1/kv/a?wait=1.5s")).status == 404  # parsed fine; key missing


async def test_v10_index_syntax(http: Http) -> None:
    for bad in ("-1", "abc", "18446744073709551616", "0x10", "+5"):
        r = await http.get(f"/v1/kv/a?index={bad}")
        assert (r.status, r.text) == (400, "Invalid index")
    await http.put("/v1/kv/a", b"x")
    r = await http.get("/v1/kv/a?index=001")
    assert r.status == 200


async def test_v15_parse_runs_for_put_and_delete(http: Http) -> None:
    r = await http.put("/v1/kv/a?wait=bad", b"x")
    assert (r.status, r.text) == (400, "Invalid wait time")
    r = await http.delete("/v1/kv/a?index=bad")
    assert (r.status, r.text) == (400, "Invalid index")


async def test_v16_index_from_the_future_returns_lower_index(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    idx = (await http.get("/v1/kv/a")).index
    start = _loop_time()
    r = await http.get(f"/v1/kv/a?index={idx + 1000}&wait=1s")
    assert _loop_time() - start >= 1.0
    assert r.index < idx + 1000


async def test_v18_index_never_zero_even_when_faked_low(http: Http) -> None:
    http.agent.restore_snapshot(-1000)
    r = await http.get("/v1/kv/?recurse")
    assert r.index >= 1


async def test_v20_kv_has_no_effective_consistency(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    r = await http.get("/v1/kv/a?stale")
    assert "X-Consul-Effective-Consistency" not in r.headers


async def test_v21_wire_casing(http: Http) -> None:
    r = await http.get("/v1/kv/missing")
    assert "X-Consul-Knownleader" in r.raw_header_names
    assert "X-Consul-Lastcontact" in r.raw_header_names
    assert "X-Consul-Query-Backend" in r.raw_header_names
    assert "X-Consul-Default-Acl-Policy" in r.raw_header_names


async def test_v22_empty_body_stores_null(http: Http) -> None:
    assert (await http.put("/v1/kv/b", b"")).json() is True
    assert (await http.get("/v1/kv/b")).json()[0]["Value"] is None


async def test_v23_flags_reset_by_plain_set(http: Http) -> None:
    await http.put("/v1/kv/b?flags=42", b"v")
    assert (await http.get("/v1/kv/b")).json()[0]["Flags"] == 42
    await http.put("/v1/kv/b", b"v")
    assert (await http.get("/v1/kv/b")).json()[0]["Flags"] == 0


async def test_v24_bad_flags_is_500_go_text(http: Http) -> None:
    r = await http.put("/v1/kv/b?flags=abc", b"v")
    assert (r.status, r.text) == (500, 'strconv.ParseUint: parsing "abc": invalid syntax')


async def test_v25_v26_cas(http: Http) -> None:
    assert (await http.put("/v1/kv/c?cas=0", b"1")).json() is True
    assert (await http.put("/v1/kv/c?cas=0", b"1")).json() is False
    idx = (await http.get("/v1/kv/c")).json()[0]["ModifyIndex"]
    assert (await http.put(f"/v1/kv/c?cas={idx - 1}", b"2")).json() is False
    assert (await http.put(f"/v1/kv/c?cas={idx}", b"2")).json() is True
    assert (await http.get("/v1/kv/c")).json()[0]["ModifyIndex"] > idx


async def test_v27_conflicting_flags_on_put(http: Http) -> None:
    r = await http.put("/v1/kv/c?cas=1&acquire=s", b"x")
    assert r.status == 400
    assert r.text == "Conflicting flags: acquire=s&cas=1\n"


async def test_v28_cas_delete(http: Http) -> None:
    await http.put("/v1/kv/c", b"1")
    assert (await http.delete("/v1/kv/c?cas=0")).json() is False
    assert (await http.get("/v1/kv/c")).status == 200
    assert (await http.delete("/v1/kv/nope?cas=7")).json() is True


async def test_v29_recurse_with_cas_conflicts(http: Http) -> None:
    r = await http.delete("/v1/kv/c?recurse&cas=3")
    assert r.status == 400
    assert r.text.startswith("Conflicting flags: ")


async def test_v30_delete_leaves_tombstone_index(http: Http) -> None:
    await http.put("/v1/kv/c", b"1")
    last = (await http.get("/v1/kv/c")).index
    assert (await http.delete("/v1/kv/c")).json() is True
    r = await http.get("/v1/kv/c")
    assert r.status == 404
    assert r.index > last


async def test_v31_missing_key_name(http: Http) -> None:
    for r in (await http.get("/v1/kv/"), await http.put("/v1/kv/", b"x")):
        assert (r.status, r.text) == (400, "Missing key name")
    r = await http.delete("/v1/kv/")
    assert (r.status, r.text) == (400, "Missing key name")


async def test_v32_keys_and_separator(http: Http) -> None:
    for key in ("web/a", "web/b", "web/sub/c", "webx"):
        await http.put(f"/v1/kv/{key}", b"1")
    assert (await http.get("/v1/kv/web?keys")).json() == ["web/a", "web/b", "web/sub/c", "webx"]
    want = ["web/a", "web/b", "web/sub/"]
    assert (await http.get("/v1/kv/web/?keys&separator=/")).json() == want
    assert (await http.get("/v1/kv/web/?keys&seperator=/")).json() == want


async def test_v33_empty_listings(http: Http) -> None:
    r = await http.get("/v1/kv/?keys")
    assert (r.status, r.json()) == (200, [])
    assert (await http.get("/v1/kv/zzz?keys")).status == 404
    assert (await http.get("/v1/kv/?recurse")).status == 404


async def test_v34_list_index_counts_tombstones(http: Http) -> None:
    for key in ("web/a", "web/b"):
        await http.put(f"/v1/kv/{key}", b"1")
    r = await http.get("/v1/kv/web?recurse")
    assert r.index == max(e["ModifyIndex"] for e in r.json())
    await http.delete("/v1/kv/web/b")
    after = await http.get("/v1/kv/web?recurse")
    assert [e["Key"] for e in after.json()] == ["web/a"]
    assert after.index > r.index


async def test_v35_raw(http: Http) -> None:
    await http.put("/v1/kv/a", b"\x00bin\xff")
    r = await http.get("/v1/kv/a?raw")
    assert r.status == 200
    assert r.body == b"\x00bin\xff"
    assert r.headers["Content-Type"] == "text/plain"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Security-Policy"] == "sandbox"
    assert (await http.get("/v1/kv/missing?raw")).status == 404


async def test_v36_value_size_limit(http: Http) -> None:
    r = await http.put("/v1/kv/big", b"x" * 524289)
    assert r.status == 413
    assert r.text.startswith("Request body(524289 bytes) too large, max size: 524288 bytes.")
    assert (await http.put("/v1/kv/big", b"x" * 524288)).json() is True


async def test_v39_method_not_allowed_and_options(http: Http) -> None:
    r = await http("POST", "/v1/kv/a")
    assert (r.status, r.text) == (405, "method POST not allowed")
    assert r.headers["Allow"] == "OPTIONS,GET,PUT,DELETE"
    r = await http("OPTIONS", "/v1/kv/a")
    assert (r.status, r.body) == (200, b"")
    assert r.headers["Allow"] == "OPTIONS,GET,PUT,DELETE"


async def test_recurse_is_plain_prefix_in_byte_order(http: Http) -> None:
    for key in ("foo", "foobar", "fo", "foo/b", "foo/a"):
        await http.put(f"/v1/kv/{key}", key)
    keys = [e["Key"] for e in (await http.get("/v1/kv/foo?recurse")).json()]
    assert keys == ["foo", "foo/a", "foo/b", "foobar"]


async def test_missing_key_blocks_until_it_appears(http: Http) -> None:
    r = await http.get("/v1/kv/later")
    blocked = asyncio.ensure_future(http.get(f"/v1/kv/later?index={r.index}&wait=10s"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    await http.put("/v1/kv/other", b"1")  # unrelated write must not wake it
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(blocked), 0.2)
    await http.put("/v1/kv/later", b"now")
    got = await asyncio.wait_for(blocked, 5)
    assert got.status == 200
    assert base64.b64decode(got.json()[0]["Value"]) == b"now"


async def test_prefix_watch_wakes_on_write_below_it(http: Http) -> None:
    await http.put("/v1/kv/app/a", b"1")
    idx = (await http.get("/v1/kv/app/?recurse")).index
    blocked = asyncio.ensure_future(http.get(f"/v1/kv/app/?recurse&index={idx}&wait=10s"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    await http.put("/v1/kv/app/deep/b", b"2")
    got = await asyncio.wait_for(blocked, 5)
    assert len(got.json()) == 2
    assert got.index > idx


async def test_plain_set_on_locked_key_keeps_holder(http: Http) -> None:
    sid = (await http.put("/v1/session/create")).json()["ID"]
    assert (await http.put(f"/v1/kv/l?acquire={sid}", b"1")).json() is True
    assert (await http.put("/v1/kv/l", b"2")).json() is True
    entry = (await http.get("/v1/kv/l")).json()[0]
    assert entry["Session"] == sid
    assert entry["Value"] == base64.b64encode(b"2").decode()


async def test_delete_recurse_and_release_missing_key(http: Http) -> None:
    for key in ("t/a", "t/b", "u"):
        await http.put(f"/v1/kv/{key}", b"1")
    assert (await http.delete("/v1/kv/t?recurse")).json() is True
    assert (await http.get("/v1/kv/?keys")).json() == ["u"]
    sid = (await http.put("/v1/session/create")).json()["ID"]
    assert (await http.put(f"/v1/kv/none?release={sid}", b"")).json() is False


async def test_cas_out_of_range_is_500(http: Http) -> None:
    r = await http.put("/v1/kv/a?cas=18446744073709551616", b"1")
    assert r.status == 500
    assert r.text.endswith("value out of range")


async def test_raw_is_ignored_with_recurse(http: Http) -> None:
    await http.put("/v1/kv/r/a", b"1")
    r = await http.get("/v1/kv/r/?recurse&raw")
    assert r.headers["Content-Type"] == "application/json"
    assert [e["Key"] for e in r.json()] == ["r/a"]


async def test_keys_index_counts_keys_hidden_by_separator(http: Http) -> None:
    await http.put("/v1/kv/s/dir/a", b"1")
    first = (await http.get("/v1/kv/s/?keys&separator=/")).index
    await http.put("/v1/kv/s/dir/b", b"1")
    r = await http.get("/v1/kv/s/?keys&separator=/")
    assert r.json() == ["s/dir/"]
    assert r.index > first
