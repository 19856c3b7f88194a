"""Cross-cutting HTTP behaviour of the dev agent (consul-api.md 1.2, 1.3, 1.8; vectors 74-76)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from consul_streams.testing import DevAgent

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]

TOKEN = "5e1d3c6a-0000-4000-8000-000000000001"


@pytest_asyncio.fixture
async def acl_http() -> AsyncIterator[Http]:
    async with (
        DevAgent(jitter=False, acl_default_policy="deny", management_token=TOKEN) as dev,
        aiohttp.ClientSession() as session,
    ):
        yield Http(dev, session)


async def test_v74_unknown_paths(http: Http) -> None:
    r = await http.get("/v1/nope")
    assert (r.status, r.text) == (404, "Invalid URL path: not a recognized HTTP API endpoint\n")
    r = await http.get("/foo")
    assert r.status == 404
    assert r.text == (
        "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n"
    )
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"


async def test_v75_dev_mode_answers_as_pretty_indented_with_newline(http: Http) -> None:
    """agent/http.go marshalJSON: ``?pretty || DevMode`` -> MarshalIndent + "\\n" (issue 9, 4)."""
    await http.put("/v1/kv/a", b"x")
    plain = await http.get("/v1/kv/a")
    assert plain.text.startswith('[\n    {\n        "LockIndex": 0,')
    assert plain.text.endswith("}\n]\n")
    pretty = await http.get("/v1/kv/a?pretty")
    assert pretty.text == plain.text


async def test_json_escapes_html_like_go(http: Http) -> None:
    await http.put("/v1/kv/a%3Cb%3E", b"x")
    r = await http.get("/v1/kv/?keys")
    assert "\\u003cb\\u003e" in r.text
    assert r.json() == ["a<b>"]


async def test_405_on_put_only_route(http: Http) -> None:
    r = await http.get("/v1/session/create")
    assert (r.status, r.text) == (405, "method GET not allowed")
    assert r.headers["Allow"] == "OPTIONS,PUT"


async def test_default_acl_policy_header_everywhere(http: Http) -> None:
    for r in (await http.get("/v1/kv/x"), await http.get("/v1/status/leader")):
        assert r.headers["X-Consul-Default-Acl-Policy"] == "allow"


async def test_get_body_is_ignored(http: Http) -> None:
    r = await http("GET", "/v1/kv/a", b"ignored")
    assert r.status == 404


async def test_acl_deny_without_token(acl_http: Http) -> None:
    r = await acl_http.get("/v1/kv/a")
    assert (r.status, r.text) == (403, "Permission denied")
    assert r.headers["X-Consul-Default-Acl-Policy"] == "deny"
    assert (await acl_http.get("/v1/status/leader")).status == 200  # not ACL-guarded


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/kv/a?token=" + TOKEN, {}),
        ("/v1/kv/a", {"X-Consul-Token": TOKEN}),
        ("/v1/kv/a", {"Authorization": f"Bearer {TOKEN}"}),
    ],
)
async def test_acl_token_forms(acl_http: Http, path: str, headers: dict[str, str]) -> None:
    assert (await acl_http.put(path, b"v", headers=headers)).json() is True
    assert TOKEN not in repr(acl_http.agent.requests)


async def test_acl_unknown_token_and_added_token(acl_http: Http) -> None:
    r = await acl_http.get("/v1/kv/a", headers={"X-Consul-Token": "other"})
    assert (r.status, r.text) == (403, "ACL not found")
    acl_http.agent.add_token("other")
    assert (await acl_http.get("/v1/kv/a", headers={"X-Consul-Token": "other"})).status == 404


async def test_v76_per_client_connection_limit() -> None:
    async with DevAgent(jitter=False, http_max_conns_per_client=2) as dev:
        open_conns = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection(dev.host, dev.port)
            writer.write(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
            open_conns.append(writer)
        assert dev.active_connections == 2
        reader, writer = await asyncio.open_connection(dev.host, dev.port)
        data = await asyncio.wait_for(reader.read(), 5)  # until the server closes
        assert data.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
        assert data.endswith(
            b"\r\n\r\nYour IP is issuing too many concurrent connections, please rate limit"
            b" your calls\n"
        )
        writer.close()
        for w in open_conns:
            w.close()
            await w.wait_closed()
        assert dev.peak_connections == 2


async def test_connections_are_counted(http: Http) -> None:
    await http.get("/v1/status/leader")
    assert http.agent.active_connections >= 1
    assert http.agent.peak_connections >= http.agent.active_connections


async def test_large_bodies_are_gzipped_on_request(http: Http) -> None:
    await http.put("/v1/kv/big", b"x" * 4000)
    r = await http.get("/v1/kv/big", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Vary"] == "Accept-Encoding"
    assert len(r.json()) == 1  # aiohttp decompressed it
    small = await http.get("/v1/status/leader", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers


async def test_enterprise_parameters_are_rejected(http: Http) -> None:
    r = await http.get("/v1/kv/a?ns=team")
    assert r.status == 400
    assert "Namespaces are a Consul Enterprise feature" in r.text
    assert (await http.get("/v1/kv/a?ns=")).status == 404
    assert (
        "Partitions are a Consul Enterprise feature"
        in (await http.get("/v1/kv/a?partition=p")).text
    )
