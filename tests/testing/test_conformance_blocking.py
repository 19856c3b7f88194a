"""Common parameter parsing and blocking behaviour (consul-api.md 1.1-1.5; vectors 11-19)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from consul_streams.testing import DevAgent
from consul_streams.testing._blocking import parse_uint, query_timeout

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


def _now() -> float:
    return asyncio.get_running_loop().time()


@pytest_asyncio.fixture
async def short_http() -> AsyncIterator[Http]:
    """An agent whose default wait is 0.4 s and maximum wait 0.6 s (timing made injectable)."""
    async with (
        DevAgent(jitter=False, default_query_time=0.4, max_query_time=0.6) as dev,
        aiohttp.ClientSession() as session,
    ):
        yield Http(dev, session)


async def test_v11_stale_with_consistent_conflicts(http: Http) -> None:
    r = await http.get("/v1/kv/a?stale&consistent")
    assert (r.status, r.text) == (
        400,
        "Cannot specify ?stale with ?consistent, conflicting semantics.",
    )


async def test_v12_consistency_is_parsed_before_wait(http: Http) -> None:
    r = await http.get("/v1/kv/a?stale&consistent&wait=bad")
    assert r.text.startswith("Cannot specify ?stale with ?consistent")


async def test_v13_bad_max_stale(http: Http) -> None:
    r = await http.get("/v1/kv/a?max_stale=xyz")
    assert (r.status, r.text) == (400, 'Invalid max_stale value "xyz"')


async def test_v14_max_stale_with_consistent_conflicts(http: Http) -> None:
    r = await http.get("/v1/kv/a?max_stale=5s&consistent")
    assert r.status == 400
    assert r.text == "Cannot specify ?stale with ?consistent, conflicting semantics."


async def test_leader_flag_cancels_stale(http: Http) -> None:
    assert (await http.get("/v1/kv/a?stale&consistent&leader")).status == 404


async def test_cached_with_consistent_conflicts(http: Http) -> None:
    r = await http.get("/v1/kv/a?cached&consistent")
    assert r.text == "Cannot specify ?cached with ?consistent, conflicting semantics."


async def test_bad_cache_control_header(http: Http) -> None:
    r = await http.get("/v1/kv/a", headers={"Cache-Control": "max-age=abc"})
    assert (r.status, r.text) == (400, "Invalid Cache-Control header.")
    ok = await http.get("/v1/kv/a", headers={"Cache-Control": "max-age=5, must-revalidate"})
    assert ok.status == 404


async def test_wait_is_parsed_before_index(http: Http) -> None:
    r = await http.get("/v1/kv/a?wait=bad&index=bad")
    assert r.text == "Invalid wait time"


async def test_empty_index_is_absent(http: Http) -> None:
    start = _now()
    r = await http.get("/v1/kv/a?index=&wait=5s")
    assert r.status == 404
    assert _now() - start < 1


async def test_unknown_datacenter(http: Http) -> None:
    r = await http.get("/v1/kv/a?dc=elsewhere")
    assert (r.status, r.text) == (500, "No path to datacenter")
    assert (await http.get("/v1/kv/a?dc=dc1")).status == 404


@pytest.mark.parametrize("wait", ["0", "-5s", "0s"])
async def test_v17_non_positive_wait_means_default(short_http: Http, wait: str) -> None:
    await short_http.put("/v1/kv/a", b"x")
    idx = (await short_http.get("/v1/kv/a")).index
    start = _now()
    r = await short_http.get(f"/v1/kv/a?index={idx}&wait={wait}")
    assert 0.4 <= _now() - start < 0.4 + 0.25  # the (injected) default, not immediate
    assert r.index == idx


async def test_v17_long_wait_is_clamped(short_http: Http) -> None:
    await short_http.put("/v1/kv/a", b"x")
    idx = (await short_http.get("/v1/kv/a")).index
    start = _now()
    await short_http.get(f"/v1/kv/a?index={idx}&wait=15m")
    assert 0.6 <= _now() - start < 0.6 + 0.25


def test_query_timeout_defaults_clamp_and_jitter() -> None:
    assert query_timeout(None, jitter=False) == 300.0
    assert query_timeout(0.0, jitter=False) == 300.0
    assert query_timeout(-5.0, jitter=False) == 300.0
    assert query_timeout(900.0, jitter=False) == 600.0
    assert query_timeout(10.0, jitter=False) == 10.0
    # Jitter adds up to wait/16: 10m -> [600, 637.5).
    assert query_timeout(900.0, rng=lambda: 0.0) == 600.0
    assert query_timeout(900.0, rng=lambda: 0.999999) == pytest.approx(637.5, abs=1e-3)
    assert query_timeout(1.0, rng=lambda: 0.5) == pytest.approx(1.03125)


def test_parse_uint_is_go_parseuint() -> None:
    assert parse_uint("007") == 7
    assert parse_uint(str(2**64 - 1)) == 2**64 - 1
    for bad in ("", "-1", "+1", "1_0", "0x1", str(2**64), " 1"):
        assert parse_uint(bad) is None


async def test_jitter_on_keeps_within_a_sixteenth() -> None:
    async with DevAgent(jitter=True) as dev, aiohttp.ClientSession() as session:
        http = Http(dev, session)
        await http.put("/v1/kv/a", b"x")
        idx = (await http.get("/v1/kv/a")).index
        start = _now()
        await http.get(f"/v1/kv/a?index={idx}&wait=1s")
        assert 1.0 <= _now() - start < 1.0625 + 0.25


async def test_v19_effective_consistency_on_catalog(http: Http) -> None:
    cases = {"?stale": "stale", "?stale=false": "stale", "": "leader", "?consistent": "consistent"}
    for query, expected in cases.items():
        r = await http.get(f"/v1/catalog/services{query}")
        assert r.status == 200
        assert r.headers["X-Consul-Effective-Consistency"] == expected


async def test_snapshot_restore_wakes_blocked_queries_with_lower_index(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    idx = (await http.get("/v1/kv/a")).index
    blocked = asyncio.ensure_future(http.get(f"/v1/kv/a?index={idx}&wait=30s"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    http.agent.restore_snapshot(-(idx - 1))
    r = await asyncio.wait_for(blocked, 5)
    assert r.index < idx
    assert r.json()[0]["Value"] == "eA=="


async def test_many_blocked_queries_wake_on_one_write(http: Http) -> None:
    await http.put("/v1/kv/hot", b"0")
    idx = (await http.get("/v1/kv/hot")).index
    calls = [http.get(f"/v1/kv/hot?index={idx}&wait=30s", timeout=20) for _ in range(50)]
    tasks = [asyncio.ensure_future(c) for c in calls]
    await asyncio.wait_for(http.agent.wait_blocked(50), 10)
    before = len(http.agent.requests)
    await http.put("/v1/kv/hot", b"1")
    replies = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert {r.index > idx for r in replies} == {True}
    # One PUT and no re-issued or polling requests.
    assert len(http.agent.requests) == before + 1
