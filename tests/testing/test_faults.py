"""Fault injection of the dev agent (consul_streams.testing.faults)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aiohttp
import pytest

from consul_streams.exceptions import InvalidArgument
from consul_streams.testing import DevAgent, Faults

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


async def test_fail_next_counts_and_matches_path_and_method(http: Http) -> None:
    http.agent.faults.fail_next(
        2, status=503, body="No cluster leader", path="/v1/kv/", method="GET"
    )
    assert (await http.get("/v1/status/leader")).status == 200  # other path
    assert (await http.put("/v1/kv/a", b"x")).status == 200  # other method
    for _ in range(2):
        r = await http.get("/v1/kv/a")
        assert (r.status, r.text) == (503, "No cluster leader")
    assert (await http.get("/v1/kv/a")).status == 200
    assert http.agent.faults.active == []


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_fail_statuses(http: Http, status: int) -> None:
    http.agent.faults.fail_next(status=status)
    assert (await http.get("/v1/kv/a")).status == status


async def test_delay(http: Http) -> None:
    http.agent.faults.delay(0.3, count=1, path="/v1/status/")
    loop = asyncio.get_running_loop()
    start = loop.time()
    await http.get("/v1/status/leader")
    assert loop.time() - start >= 0.3
    start = loop.time()
    await http.get("/v1/status/leader")
    assert loop.time() - start < 0.3


async def test_drop_connection_closes_without_response(agent: DevAgent) -> None:
    agent.faults.drop_connection(1)
    reader, writer = await asyncio.open_connection(agent.host, agent.port)
    writer.write(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_drop_connection_surfaces_in_clients(http: Http) -> None:
    # aiohttp retries an idempotent request once on a dropped connection: drop both.
    http.agent.faults.drop_connection(2)
    with pytest.raises(aiohttp.ClientConnectionError):
        await http.get("/v1/status/leader")
    assert (await http.get("/v1/status/leader")).status == 200


async def test_malformed_json(http: Http) -> None:
    http.agent.faults.malformed_json(1, path="/v1/status/peers")
    r = await http.get("/v1/status/peers")
    assert r.status == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    assert (await http.get("/v1/status/peers")).json() == ["127.0.0.1:8300"]


async def test_truncated_body(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    http.agent.faults.truncate_body(1)
    with pytest.raises(aiohttp.ClientPayloadError):
        await http.get("/v1/kv/a")
    assert (await http.get("/v1/kv/a")).status == 200


async def test_strip_and_zero_index(http: Http) -> None:
    rule = http.agent.faults.strip_index(path="/v1/kv/")
    assert "X-Consul-Index" not in (await http.get("/v1/kv/a")).headers
    rule.cancel()
    http.agent.faults.zero_index(1)
    assert (await http.get("/v1/kv/a", check_index=False)).headers["X-Consul-Index"] == "0"
    assert (await http.get("/v1/kv/a")).index >= 1


async def test_reject_token_until_valid(http: Http) -> None:
    rule = http.agent.faults.reject_token("t1")
    r = await http.get("/v1/kv/a", headers={"X-Consul-Token": "t1"})
    assert (r.status, r.text) == (403, "ACL not found")
    assert (await http.get("/v1/kv/a")).status == 404  # other requests unaffected
    rule.cancel()
    assert (await http.get("/v1/kv/a", headers={"X-Consul-Token": "t1"})).status == 404


async def test_scope_removes_its_rules(http: Http) -> None:
    outer = http.agent.faults.strip_index()
    with http.agent.faults.scope():
        http.agent.faults.fail_next(5)
        assert (await http.get("/v1/kv/a")).status == 500
    assert http.agent.faults.active == [outer]
    assert (await http.get("/v1/kv/a")).status == 404


async def test_faults_cleared_when_agent_context_exits() -> None:
    dev = DevAgent(jitter=False)
    async with dev:
        dev.faults.fail_next(3)
    assert dev.faults.active == []


async def test_index_backwards(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    before = (await http.get("/v1/kv/a")).index
    http.agent.faults.index_backwards(1)
    assert (await http.get("/v1/kv/a")).index == before - 1
    with pytest.raises(ValueError, match="positive"):
        http.agent.faults.index_backwards(0)


async def test_requests_log_has_method_path_query(http: Http) -> None:
    await http.get("/v1/kv/a?stale&wait=1s")
    method, path, query = http.agent.requests[-1]
    assert (method, path) == ("GET", "/v1/kv/a")
    assert ("wait", "1s") in query
    assert ("stale", "") in query


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda f: f.fail_next(0), "n"),
        (lambda f: f.fail_next(status=42), "status"),
        (lambda f: f.delay(-1.0), "seconds"),
        (lambda f: f.drop_connection(path="(("), "path"),
        (lambda f: f.malformed_json(method="get"), "method"),
        (lambda f: f.index_backwards(-2), "by"),
    ],
)
def test_bad_fault_arguments(call: Callable[[Faults], object], parameter: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        call(Faults())
    assert info.value.parameter == parameter


def test_token_not_in_fault_repr() -> None:
    rule = Faults().reject_token("s3cr3t-token")
    assert "s3cr3t" not in repr(rule)


async def test_armed_says_whether_any_rule_is_in_force(http: Http) -> None:
    """The dispatcher skips the fault hooks unless ``armed``: it must follow every rule's life."""
    faults = http.agent.faults
    assert not faults.armed
    rule = faults.fail_next(1, status=503, path="/v1/kv/")
    assert faults.armed
    assert (await http.get("/v1/kv/a")).status == 503  # consumed
    assert not faults.armed
    rule = faults.strip_index(path="/v1/kv/")
    assert faults.armed
    rule.cancel()
    assert not faults.armed
    with faults.scope():
        faults.delay(0.01, path="/v1/status/")
        assert faults.armed
    assert not faults.armed
