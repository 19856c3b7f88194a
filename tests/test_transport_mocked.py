"""Transport behaviour that a loopback server cannot provoke, shown with aioresponses.

A real connect timeout cannot be produced on loopback, and aiohttp's own failure classes are
easiest to raise from a mock; the wire format itself is tested against real servers elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aioresponses import aioresponses

from consul_streams import (
    ConnectError,
    Consul,
    InvalidArgument,
    ReadTimeout,
    ServerError,
    TransportError,
)

BASE = "http://127.0.0.1:8500"
TOKEN = "8f246b77-f3e1-ff88-5b48-8ec93abf3e05"
ANY_KV = re.compile(r"^http://127\.0\.0\.1:8500/v1/kv/.*$")


@pytest.fixture
async def client() -> AsyncIterator[Consul]:
    async with Consul(BASE, token=TOKEN, environ={}) as c:
        yield c


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (aiohttp.ConnectionTimeoutError(), ConnectError),
        (aiohttp.ServerTimeoutError(), ReadTimeout),
        (aiohttp.SocketTimeoutError(), ReadTimeout),
        (aiohttp.ServerDisconnectedError(), ConnectError),
        (aiohttp.ClientConnectionResetError(), ConnectError),
        (ConnectionRefusedError(111, "refused"), ConnectError),
        (aiohttp.ClientError("odd"), TransportError),
    ],
)
async def test_aiohttp_failures_become_retriable_transport_errors(
    client: Consul, failure: Exception, expected: type[TransportError]
) -> None:
    with aioresponses() as mock:
        mock.get(ANY_KV, exception=failure)
        with pytest.raises(expected) as info:
            await client.kv.get("app/a")
    assert type(info.value) is expected
    assert info.value.retriable
    assert TOKEN not in str(info.value)
    assert info.value.url.startswith(f"{BASE}/v1/kv/app/a")


async def test_a_read_timeout_is_also_a_builtin_timeout_error(client: Consul) -> None:
    with aioresponses() as mock:
        mock.get(ANY_KV, exception=aiohttp.ServerTimeoutError())
        with pytest.raises(TimeoutError):
            await client.kv.get("app/a")


async def test_token_travels_in_the_header_only(client: Consul) -> None:
    with aioresponses() as mock:
        mock.put(ANY_KV, payload=True)
        assert await client.kv.put("app/a", b"v") is True
        assert mock.requests is not None
        [(key, calls)] = mock.requests.items()
    method, url = key
    assert method == "PUT"
    assert TOKEN not in str(url)
    assert calls[0].kwargs["headers"]["X-Consul-Token"] == TOKEN


async def test_a_5xx_body_is_kept_and_the_token_scrubbed(client: Consul) -> None:
    with aioresponses() as mock:
        mock.get(ANY_KV, status=500, body=f"rpc error: token {TOKEN} is bad")
        with pytest.raises(ServerError) as info:
            await client.kv.get("app/a")
    assert info.value.status == 500
    assert "rpc error" in info.value.body
    assert TOKEN not in str(info.value)
    assert TOKEN not in info.value.body


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda c: c.kv.get("/leading-slash"), "key"),
        (lambda c: c.kv.get("a", watch=(-1, "10s")), "watch"),
        (lambda c: c.kv.items("a", consistency="eventual"), "consistency"),
        (lambda c: c.health.service("web", near=3), "near"),
    ],
)
async def test_bad_arguments_send_nothing(
    client: Consul, call: Callable[[Consul], object], parameter: str
) -> None:
    with aioresponses() as mock:
        with pytest.raises(InvalidArgument) as info:
            call(client)
        assert mock.requests == {}
    assert info.value.parameter == parameter
