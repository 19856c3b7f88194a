"""``Consul(compression=)``: identity bodies from a local agent, gzip from a remote one."""

from __future__ import annotations

import pytest

from consul_streams import Consul
from consul_streams._address import parse_address
from consul_streams._query import Request
from consul_streams._transport import accept_encoding, is_local
from consul_streams.exceptions import InvalidArgument
from consul_streams.testing import DevAgent

BIG = b"x" * 4096  # above the agent's gzip threshold (Consul gzips bodies from 1,400 bytes)


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1:8500", True),
        ("127.8.9.10:8500", True),
        ("[::1]:8500", True),
        ("localhost:8500", True),
        ("unix:///run/consul.sock", True),
        ("10.0.0.5:8500", False),
        ("consul.service.internal:8500", False),
        ("https://[2001:db8::1]:8501", False),
    ],
)
def test_is_local_knows_loopback_and_unix_sockets(address: str, local: bool) -> None:
    assert is_local(parse_address(address)) is local


@pytest.mark.parametrize(
    ("compression", "address", "header"),
    [
        ("auto", "127.0.0.1:8500", "identity"),
        ("auto", "10.0.0.5:8500", "gzip"),
        ("gzip", "127.0.0.1:8500", "gzip"),
        ("identity", "10.0.0.5:8500", "identity"),
    ],
)
def test_accept_encoding_follows_the_policy(compression: str, address: str, header: str) -> None:
    assert accept_encoding(compression, parse_address(address)) == header  # type: ignore[arg-type]


async def _fetch_big(agent: DevAgent, compression: str) -> tuple[str | None, bytes]:
    async with Consul(agent.url, environ={}, compression=compression) as client:  # type: ignore[arg-type]
        await client.kv.put("big", BIG)
        response = await client.transport.send(Request("GET", "/v1/kv/big"), timeout=None)
        entry, _ = await client.kv.get("big")
    assert entry is not None
    return response.headers.get("Content-Encoding"), entry["Value"]


async def test_local_agent_answers_uncompressed_by_default(consul_agent: DevAgent) -> None:
    encoding, value = await _fetch_big(consul_agent, "auto")
    assert encoding is None
    assert value == BIG


async def test_gzip_can_be_forced_and_decodes_the_same(consul_agent: DevAgent) -> None:
    encoding, value = await _fetch_big(consul_agent, "gzip")
    assert encoding == "gzip"
    assert value == BIG


def test_bad_compression_names_the_parameter_and_the_forms() -> None:
    with pytest.raises(InvalidArgument, match=r"compression.*'auto', 'gzip' or 'identity'"):
        Consul(environ={}, compression="br")  # type: ignore[arg-type]
