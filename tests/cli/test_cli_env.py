"""The command's environment, as ``api.NewClient`` (HashiCorp's ``api/api.go``) reads it: one test
per variable."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from consul_streams.testing import DevAgent

from ._helpers import run_cli


@pytest_asyncio.fixture
async def acl_agent() -> AsyncIterator[DevAgent]:
    async with DevAgent(jitter=False, acl_default_policy="deny", management_token="root") as dev:
        yield dev


async def test_consul_http_addr(agent: DevAgent) -> None:
    status, out, _ = await run_cli("kv", "put", "env", "1", env={"CONSUL_HTTP_ADDR": agent.address})
    assert (status, out) == (0, b"Success! Data written to: env\n")


async def test_consul_http_token(acl_agent: DevAgent) -> None:
    status, _, err = await run_cli(
        "kv", "put", "k", "v", env={"CONSUL_HTTP_ADDR": acl_agent.address}
    )
    assert status == 1  # denied without a token, in put.go's words
    assert err.startswith(b"consul-streams: error: Error! Failed writing data: ")
    env = {"CONSUL_HTTP_ADDR": acl_agent.address, "CONSUL_HTTP_TOKEN": "root"}
    assert (await run_cli("kv", "put", "k", "v", env=env))[0] == 0


async def test_token_file_wins_over_a_token(acl_agent: DevAgent, tmp_path: Path) -> None:
    """api.NewClient: a non-empty TokenFile replaces Token, whichever way each was given."""
    good = tmp_path / "token"
    good.write_text("root\n")
    addr = acl_agent.address
    status, _, err = await run_cli(
        "kv", "put", "-token", "wrong", "-token-file", str(good), "-http-addr", addr, "k", "v"
    )
    assert status == 0, err
    env = {"CONSUL_HTTP_TOKEN": "wrong", "CONSUL_HTTP_TOKEN_FILE": str(good)}
    assert (await run_cli("kv", "put", "-http-addr", addr, "k", "v", env=env))[0] == 0
    status, _, err = await run_cli(
        "kv",
        "put",
        "-token",
        "wrong",
        "-http-addr",
        addr,
        "k",
        "v",
        env={"CONSUL_HTTP_TOKEN_FILE": str(good)},
    )
    assert status == 0, err
    empty = tmp_path / "empty"
    empty.write_text("")
    env = {"CONSUL_HTTP_TOKEN": "root", "CONSUL_HTTP_TOKEN_FILE": str(empty)}
    assert (await run_cli("kv", "put", "-http-addr", addr, "k", "v", env=env))[0] == 0


async def test_consul_http_auth_sends_basic_auth_and_never_prints_it(
    unused_tcp_port: int,
) -> None:
    """CONSUL_HTTP_AUTH=user:pass is HTTP basic auth on every request."""
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(status=500, text="no")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    try:
        status, _, err = await run_cli(
            "kv",
            "get",
            "k",
            env={
                "CONSUL_HTTP_ADDR": f"127.0.0.1:{unused_tcp_port}",
                "CONSUL_HTTP_AUTH": "alice:pa55:word",
            },
        )
    finally:
        await runner.cleanup()
    assert status == 1
    expected = "Basic " + base64.b64encode(b"alice:pa55:word").decode()
    assert seen == [expected]
    assert b"pa55" not in err


async def test_consul_http_ssl_switches_an_http_address_to_https(agent: DevAgent) -> None:
    """CONSUL_HTTP_SSL=true: "Never revert to http if TLS was explicitly requested." The dev
    agent speaks plain HTTP, so the TLS handshake fails: the request went out as https."""
    status, _, err = await run_cli(
        "kv",
        "get",
        "k",
        env={"CONSUL_HTTP_ADDR": f"http://{agent.address}", "CONSUL_HTTP_SSL": "true"},
    )
    assert status == 1
    assert f"https://{agent.address}" in err.decode()
    assert err.count(b"\n") == 1


@pytest.mark.parametrize("value", ["maybe"])
async def test_a_bad_boolean_variable_is_one_line(agent: DevAgent, value: str) -> None:
    status, _, err = await run_cli(
        "kv", "get", "k", env={"CONSUL_HTTP_ADDR": agent.address, "CONSUL_HTTP_SSL": value}
    )
    assert status == 1
    assert err.decode() == (
        "consul-streams: error: CONSUL_HTTP_SSL: expected true or false (Go ParseBool forms); "
        "got 'maybe'\n"
    )
