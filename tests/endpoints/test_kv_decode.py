"""The typed KV fast path (msgspec) decodes exactly as the reference decoder does."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consul_streams._query import Response
from consul_streams.endpoints.kv import _decode_entries, decode_kv_entries
from consul_streams.exceptions import DecodeError

_UINT64 = st.integers(min_value=0, max_value=2**64 - 1)


@st.composite
def _entry(draw: st.DrawFn) -> dict[str, Any]:
    """One entry as Consul may send it: Value base64, null or absent; Session maybe empty."""
    entry: dict[str, Any] = {"Key": draw(st.text(min_size=1, max_size=20))}
    value = draw(st.one_of(st.none(), st.binary(max_size=64)))
    if draw(st.booleans()):
        entry["Value"] = None if value is None else base64.b64encode(value).decode()
    for field in ("Flags", "LockIndex", "CreateIndex", "ModifyIndex"):
        if draw(st.booleans()):
            entry[field] = draw(_UINT64)
    if draw(st.booleans()):
        entry["Session"] = draw(st.sampled_from(["", "adf4238a-882b-9ddc-4a9d-5b6758e4159e"]))
    return entry


def _response(document: Any) -> Response:
    return Response(200, {}, json.dumps(document).encode(), "GET", "/v1/kv/x?recurse")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.none(), st.lists(_entry(), max_size=8)))
def test_fast_path_equals_reference_decode(document: list[dict[str, Any]] | None) -> None:
    reference = decode_kv_entries(json.loads(json.dumps(document)))
    assert _decode_entries(_response(document)) == reference


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([{"Key": "a", "Value": "!!"}], r"Value"),
        ([{"Key": 7}], r"Key"),
        ([{"Value": "YQ=="}], r"Key"),
        ({"Key": "a"}, r"array"),
    ],
)
def test_fast_path_rejects_what_the_reference_rejects(document: Any, message: str) -> None:
    with pytest.raises(DecodeError):
        decode_kv_entries(json.loads(json.dumps(document)))
    with pytest.raises(DecodeError, match=message) as caught:
        _decode_entries(_response(document))
    assert caught.value.url == "/v1/kv/x?recurse"


def test_fast_path_checks_number_fields_as_go_does() -> None:
    """A string where Consul sends a uint64 fails, as Go's encoding/json fails to unmarshal it."""
    with pytest.raises(DecodeError, match="Flags"):
        _decode_entries(_response([{"Key": "a", "Flags": "1"}]))


def test_not_json_is_a_decode_error() -> None:
    response = Response(200, {}, b"<html>proxy error</html>", "GET", "/v1/kv/x")
    with pytest.raises(DecodeError, match="invalid JSON"):
        _decode_entries(response)
