"""Sessions and locks of the dev agent (consul-api.md 2.5, 2.1; vectors 37-38, 55-59)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from consul_streams.testing import DevAgent

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


@pytest_asyncio.fixture
async def fast_http() -> AsyncIterator[Http]:
    """An agent whose timers run 100x faster (10 s TTL -> 0.1-0.2 s, 15 s lock delay -> 0.15 s)."""
    async with (
        DevAgent(jitter=False, time_scale=0.01, node_name="dev") as dev,
        aiohttp.ClientSession() as session,
    ):
        yield Http(dev, session)


async def _session(http: Http, body: object | None = None) -> str:
    data = None if body is None else json.dumps(body)
    r = await http.put("/v1/session/create", data)
    assert r.status == 200, r.text
    sid = r.json()["ID"]
    assert isinstance(sid, str)
    return sid


async def test_v55_defaults(http: Http) -> None:
    sid = await _session(http)
    assert str(uuid.UUID(sid)) == sid
    r = await http.get(f"/v1/session/info/{sid}")
    [info] = r.json()
    assert info["Behavior"] == "release"
    assert info["LockDelay"] == 15_000_000_000
    assert info["NodeChecks"] == ["serfHealth"]
    assert info["TTL"] == ""
    assert info["Node"] == "dev"
    assert r.index >= 1


async def test_v56_ttl_out_of_range(http: Http) -> None:
    r = await http.put("/v1/session/create", json.dumps({"TTL": "5s"}))
    assert (r.status, r.text) == (
        500,
        "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]",
    )
    r = await http.put("/v1/session/create", json.dumps({"TTL": "25h"}))
    assert r.status == 500


async def test_unparsable_ttl(http: Http) -> None:
    r = await http.put("/v1/session/create", json.dumps({"TTL": "soon"}))
    assert r.status == 500
    assert r.text.startswith("Session TTL 'soon' invalid: ")


async def test_v57_bad_behavior(http: Http) -> None:
    r = await http.put("/v1/session/create", json.dumps({"Behavior": "explode"}))
    assert (r.status, r.text) == (500, "Invalid Behavior setting 'explode'")


async def test_bad_body_is_400(http: Http) -> None:
    r = await http.put("/v1/session/create", "{nope")
    assert r.status == 400
    assert r.text.startswith("Request decode failed: ")


async def test_v58_unknown_session(http: Http) -> None:
    ghost = str(uuid.uuid4())
    r = await http.get(f"/v1/session/info/{ghost}")
    assert (r.status, r.json()) == (200, [])
    assert r.index >= 1
    r = await http.put(f"/v1/session/renew/{ghost}")
    assert (r.status, r.text) == (404, f"Session id '{ghost}' not found")
    r = await http.put(f"/v1/session/destroy/{ghost}")
    assert (r.status, r.json()) == (200, True)


async def test_missing_ids(http: Http) -> None:
    assert (await http.put("/v1/session/destroy/")).text == "Missing session"
    assert (await http.get("/v1/session/node/")).text == "Missing node name"


async def test_list_node_and_renew(http: Http) -> None:
    assert (await http.get("/v1/session/list")).json() == []
    sid = await _session(http, {"Name": "n", "TTL": "30s"})
    assert [s["ID"] for s in (await http.get("/v1/session/list")).json()] == [sid]
    assert [s["ID"] for s in (await http.get("/v1/session/node/dev")).json()] == [sid]
    assert (await http.get("/v1/session/node/other")).json() == []
    r = await http.put(f"/v1/session/renew/{sid}")
    assert r.json()[0]["TTL"] == "30s"


async def test_info_blocks_until_session_exists(http: Http) -> None:
    ghost = str(uuid.uuid4())
    idx = (await http.get(f"/v1/session/info/{ghost}")).index
    blocked = asyncio.ensure_future(http.get(f"/v1/session/info/{ghost}?index={idx}&wait=1s"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    await _session(http)  # another session: must not end the wait with []
    r = await asyncio.wait_for(blocked, 5)
    assert r.json() == []
    assert r.index > idx  # ErrNotFound: returned at timeout with the newer table index


async def test_v37_lock_cycle(http: Http) -> None:
    s = await _session(http)
    t = await _session(http)
    assert (await http.put(f"/v1/kv/l?acquire={s}", b"1")).json() is True
    entry = (await http.get("/v1/kv/l")).json()[0]
    assert (entry["LockIndex"], entry["Session"]) == (1, s)
    assert (await http.put(f"/v1/kv/l?acquire={t}", b"1")).json() is False
    assert (await http.put(f"/v1/kv/l?release={t}", b"1")).json() is False
    assert (await http.put(f"/v1/kv/l?release={s}", b"1")).json() is True
    entry = (await http.get("/v1/kv/l")).json()[0]
    assert "Session" not in entry
    assert entry["LockIndex"] == 1
    assert (await http.put(f"/v1/kv/l?acquire={s}", b"1")).json() is True
    assert (await http.get("/v1/kv/l")).json()[0]["LockIndex"] == 2


async def test_reacquire_by_holder_keeps_lock_index(http: Http) -> None:
    s = await _session(http)
    await http.put(f"/v1/kv/l?acquire={s}", b"1")
    assert (await http.put(f"/v1/kv/l?acquire={s}", b"2")).json() is True
    entry = (await http.get("/v1/kv/l")).json()[0]
    assert (entry["LockIndex"], entry["Value"]) == (1, "Mg==")


async def test_v38_acquire_with_unknown_session(http: Http) -> None:
    ghost = str(uuid.uuid4())
    r = await http.put(f"/v1/kv/l?acquire={ghost}", b"1")
    assert (r.status, r.text) == (500, f'invalid session "{ghost}"')
    r = await http.put("/v1/kv/l?acquire=", b"1")
    assert (r.status, r.text) == (500, "missing session")


async def test_destroy_releases_and_starts_lock_delay(fast_http: Http) -> None:
    http = fast_http
    s = await _session(http)
    t = await _session(http, {"LockDelay": "15s"})
    await http.put(f"/v1/kv/l?acquire={s}", b"1")
    await http.put(f"/v1/session/destroy/{s}")
    entry = (await http.get("/v1/kv/l")).json()[0]
    assert "Session" not in entry
    # Inside the lock-delay window (15 s agent time = 0.15 s here) acquire fails ...
    assert (await http.put(f"/v1/kv/l?acquire={t}", b"1")).json() is False
    # ... and succeeds once the window is over (a blocking read on an idle key as a timer).
    idx = (await http.get("/v1/kv/l")).index
    await http.get(f"/v1/kv/l?index={idx}&wait=300ms")
    assert (await http.put(f"/v1/kv/l?acquire={t}", b"1")).json() is True


async def test_zero_lock_delay_allows_immediate_reacquire(http: Http) -> None:
    s = await _session(http, {"LockDelay": 0})
    t = await _session(http)
    await http.put(f"/v1/kv/l?acquire={s}", b"1")
    await http.put(f"/v1/session/destroy/{s}")
    assert (await http.put(f"/v1/kv/l?acquire={t}", b"1")).json() is True


async def test_v59_ttl_expiry_deletes_held_key_and_wakes_watchers(fast_http: Http) -> None:
    http = fast_http
    s = await _session(http, {"TTL": "10s", "Behavior": "delete"})
    await http.put(f"/v1/kv/k?acquire={s}", b"1")
    idx = (await http.get("/v1/kv/k")).index
    loop = asyncio.get_running_loop()
    start = loop.time()
    r = await http.get(f"/v1/kv/k?index={idx}&wait=5s")
    # 2 x TTL = 20 s of agent time = 0.2 s at time_scale 0.01.
    assert loop.time() - start < 0.2 + 0.25
    assert r.status == 404
    assert (await http.get(f"/v1/session/info/{s}")).json() == []


async def test_renew_postpones_expiry(fast_http: Http) -> None:
    http = fast_http
    s = await _session(http, {"TTL": "10s"})
    await http.put(f"/v1/kv/k?acquire={s}", b"1")
    for _ in range(3):  # renew every ~0.1 s (< 2 x TTL): the session survives 0.3 s
        idx = (await http.get("/v1/kv/k")).index
        await http.get(f"/v1/kv/k?index={idx}&wait=100ms")
        assert (await http.put(f"/v1/session/renew/{s}")).status == 200
    assert (await http.get("/v1/kv/k")).json()[0]["Session"] == s


async def _register_check(http: Http, status: str) -> None:
    body = {
        "Node": "dev",
        "Address": "127.0.0.1",
        "Check": {"CheckID": "c1", "Name": "c1", "Status": status},
    }
    r = await http.put("/v1/catalog/register", json.dumps(body))
    assert r.status == 200, r.text


async def test_session_checks_must_exist_and_pass(http: Http) -> None:
    r = await http.put("/v1/session/create", json.dumps({"NodeChecks": ["nope"]}))
    assert (r.status, r.text) == (500, "Missing check 'nope' registration")
    r = await http.put("/v1/session/create", json.dumps({"Node": "ghost"}))
    assert (r.status, r.text) == (500, "Missing node registration")
    await _register_check(http, "critical")
    r = await http.put("/v1/session/create", json.dumps({"NodeChecks": ["c1"]}))
    assert (r.status, r.text) == (500, "Check 'c1' is in critical state")


async def test_failing_check_invalidates_session_and_releases_lock(http: Http) -> None:
    await _register_check(http, "passing")
    sid = await _session(http, {"NodeChecks": ["serfHealth", "c1"]})
    await http.put(f"/v1/kv/l?acquire={sid}", b"1")
    idx = (await http.get("/v1/kv/l")).index
    blocked = asyncio.ensure_future(http.get(f"/v1/kv/l?index={idx}&wait=10s"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    await _register_check(http, "critical")
    r = await asyncio.wait_for(blocked, 5)
    assert "Session" not in r.json()[0]
    assert (await http.get(f"/v1/session/info/{sid}")).json() == []
