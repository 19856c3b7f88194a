"""Shared endpoint helpers: path encoding, parameter builders, base64 and JSON decoding."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consul_streams._query import Response
from consul_streams.endpoints._base import (
    b64decode,
    b64encode,
    check_bool,
    common_params,
    decode_json,
    node_meta_params,
    path_segment,
    tag_params,
)
from consul_streams.endpoints.kv import check_key, kv_path
from consul_streams.exceptions import DecodeError, InvalidArgument

_printable = st.characters(min_codepoint=0x20, exclude_categories=["Cs"], exclude_characters="\x7f")


_segment = st.text(_printable, min_size=1).filter(lambda s: "/" not in s and s not in (".", ".."))


@given(st.lists(_segment, min_size=1, max_size=4))
def test_kv_path_round_trips_and_keeps_slashes(segments: list[str]) -> None:
    key = "/".join(segments)
    path = kv_path(check_key(key))
    assert unquote(path) == "/v1/kv/" + key
    assert path.count("/") == key.count("/") + 3
    assert not set(path) & set("?# ")


@given(st.text(_printable, min_size=1))
def test_path_segment_is_one_segment(name: str) -> None:
    encoded = path_segment(name, "name")
    assert "/" not in encoded
    assert not set(encoded) & set("?# ")
    assert unquote(encoded) == name


@given(st.binary())
def test_base64_round_trip(value: bytes) -> None:
    assert b64decode(b64encode(value), "Value") == value


def test_b64decode_null_and_empty_are_empty() -> None:
    assert b64decode(None, "Value") == b""
    assert b64decode("", "Value") == b""
    with pytest.raises(DecodeError, match="Value"):
        b64decode(12, "Value")


@pytest.mark.parametrize(
    "text",
    ["***", "aGVsbG8", "aGVs bG8=", "aGVsbG8=\n", "aGVsbG8=aGVs", "aGVsbG8===", "aGVs\u00e9bG8="],
)
def test_b64decode_is_strict(text: str) -> None:
    """Non-alphabet characters, bad padding and data after padding are errors, not dropped."""
    with pytest.raises(DecodeError, match="Value: invalid base64"):
        b64decode(text, "Value")


def test_b64decode_str_subclass_decodes_its_text() -> None:
    class Text(str):
        pass

    assert b64decode(Text("aGk="), "Value") == b"hi"


def test_check_bool_refuses_truthy_non_bools() -> None:
    assert check_bool(False, "recurse") is False
    for value in ("yes", 1, None, "false"):
        with pytest.raises(InvalidArgument, match=r"recurse.*True or False"):
            check_bool(value, "recurse")


def test_decode_json_error_names_the_request() -> None:
    response = Response(200, {}, b"{", "GET", "http://127.0.0.1:8500/v1/kv/a")
    with pytest.raises(DecodeError, match=re.escape("GET http://127.0.0.1:8500/v1/kv/a")) as info:
        decode_json(response)
    assert info.value.body == b"{"


def test_parameter_builders() -> None:
    assert tag_params("a") == [("tag", "a")]
    assert tag_params(("a", "b")) == [("tag", "a"), ("tag", "b")]
    assert node_meta_params({"k": ""}) == [("node-meta", "k:")]
    assert common_params("dc1", "default") == [("dc", "dc1"), ("leader", "")]
    assert common_params() == []


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda: tag_params(b"a"), "tag"),
        (lambda: tag_params({"a": 1}), "tag"),
        (lambda: node_meta_params([""]), "node_meta"),
        (lambda: common_params(dc=3), "dc"),
        (lambda: common_params(consistency="leader"), "consistency"),
        (lambda: path_segment("a\x00", "name"), "name"),
        (lambda: check_key(".."), "key"),
        (lambda: check_key("a\ud800"), "key"),
        (lambda: path_segment("\udfff", "name"), "name"),
    ],
)
def test_builders_reject_bad_forms(call: object, parameter: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        call()  # type: ignore[operator]
    assert info.value.parameter == parameter
