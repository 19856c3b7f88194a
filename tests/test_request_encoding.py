"""A watch round's URL, built from its origin's cached encoding, equals a fresh build."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from consul_streams._address import parse_address
from consul_streams._query import BlockingMode, Query, Request, Response, new_response
from consul_streams._transport import AiohttpTransport

_names = st.sampled_from(["recurse", "filter", "tag", "near", "node-meta", "stale", "dc", "ns"])
_values = st.text(max_size=12)
_params = st.lists(st.tuples(_names, _values), max_size=5).map(tuple)


def _reference(transport: AiohttpTransport, request: Request, dc: str | None, mode: str) -> URL:
    """What the transport built before it cached encodings: yarl's ``with_query`` of all."""
    params = list(request.params)
    names = {name for name, _ in params}
    if dc is not None and "dc" not in names:
        params.append(("dc", dc))
    if mode != "default" and not names & {"stale", "consistent", "leader"}:
        params.append((mode, ""))
    url = URL("http://127.0.0.1:8500" + request.path, encoded=True)
    return url.with_query(params) if params else url


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    params=_params,
    index=st.integers(min_value=0, max_value=2**64 - 1),
    wait=st.one_of(st.none(), st.floats(min_value=0.001, max_value=600)),
    dc=st.one_of(st.none(), st.sampled_from(["dc1", "dc 2"])),
    mode=st.sampled_from(["default", "stale", "consistent"]),
)
def test_round_url_equals_a_fresh_build(
    params: tuple[tuple[str, str], ...], index: int, wait: float | None, dc: str | None, mode: str
) -> None:
    transport = AiohttpTransport(
        parse_address("127.0.0.1:8500"),
        datacenter=dc,
        consistency=mode,  # type: ignore[arg-type]
    )
    query = Query(transport, Request("GET", "/v1/kv/a%20b", params), lambda r: r.body)
    for _ in range(2):  # the second build reads the cache
        round_ = query.build(index=index, wait=wait)
        fresh = Request(round_.method, round_.path, round_.params)
        assert round_.origin is (None if index == 0 else query.request)
        assert transport.build_url(round_) == transport.build_url(fresh)
        assert transport.build_url(round_) == _reference(transport, fresh, dc, mode)


def test_hash_rounds_reuse_the_origin_too() -> None:
    transport = AiohttpTransport(parse_address("127.0.0.1:8500"))
    query = Query(
        transport, Request("GET", "/v1/agent/services"), lambda r: r.body, BlockingMode.HASH
    )
    url = transport.build_url(query.build(hash="9a3f0c1d", wait=60))
    assert str(url) == "http://127.0.0.1:8500/v1/agent/services?hash=9a3f0c1d&wait=60000ms"


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(
    address=st.sampled_from(
        ["127.0.0.1:8500", "[::1]:8500", "https://consul.example:8501", "unix:///tmp/c.sock"]
    ),
    params=_params,
    index=st.integers(min_value=1, max_value=2**64 - 1),
)
def test_a_round_built_from_its_cached_head_is_the_parsed_url(
    address: str, params: tuple[tuple[str, str], ...], index: int
) -> None:
    """A round's URL is built from its origin's parsed head (#13), not parsed from its text:
    the same URL for every kind of address, down to what aiohttp writes on the wire."""
    transport = AiohttpTransport(parse_address(address), datacenter="dc1")
    query = Query(transport, Request("GET", "/v1/kv/a%2Fb/%E2%9C%93", params), lambda r: r.body)
    round_ = query.build(index=index, wait=30)
    built = transport.build_url(round_)
    parsed = URL(str(built), encoded=True)
    fresh = transport.build_url(Request(round_.method, round_.path, round_.params))
    assert built == parsed == fresh
    assert (built.scheme, built.host, built.port) == (parsed.scheme, parsed.host, parsed.port)
    assert built.raw_path_qs == parsed.raw_path_qs


@given(params=_params, extra=_params, body=st.one_of(st.none(), st.binary(max_size=4)))
def test_with_params_equals_the_init_built_request(
    params: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...], body: bytes | None
) -> None:
    """``with_params`` fills the instance's fields itself (#13): the same fields, the same
    values, as the dataclass's own __init__, and the result stays frozen and hashable."""
    origin = Request("PUT", "/v1/kv/k", params, body, (("X-A", "1"),))
    for base in (origin, origin.with_params(("index", "3"))):
        built = base.with_params(*extra)
        expected = Request(base.method, base.path, base.params + extra, body, base.headers, origin)
        assert built == expected
        assert vars(built) == vars(expected)
        assert built.origin is origin
        assert hash(built) == hash(expected)
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.path = "/v1/kv/other"  # type: ignore[misc]


def test_new_response_equals_the_init_built_response() -> None:
    """The transport's Response (built field by field, #13) is the dataclass's own."""
    headers = {"X-Consul-Index": "7"}
    built = new_response(200, headers, b"[]", "GET", "http://a/v1/kv/k")
    expected = Response(200, headers, b"[]", "GET", "http://a/v1/kv/k")
    assert built == expected
    assert vars(built) == vars(expected)
    assert built.meta.index == 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.status = 404  # type: ignore[misc]
