"""Decoding KV values and nesting a prefix into one document (pure, no agent)."""

from __future__ import annotations

from typing import Any

import pytest

from consul_streams.exceptions import InvalidArgument
from consul_streams.recipes import ConfigError, build_document, decode_value, freeze
from consul_streams.recipes._document import resolve_format, thaw


def entry(key: str, value: bytes | None) -> dict[str, Any]:
    return {"Key": key, "Value": value or b"", "Flags": 0, "LockIndex": 0}


def test_keys_nest_by_path_segment() -> None:
    doc = build_document(
        [entry("app/db/host", b"db1"), entry("app/db/port", b"5432"), entry("app/name", b"x")],
        "app/",
        "text",
    )
    assert doc == {"db": {"host": "db1", "port": "5432"}, "name": "x"}


def test_folder_keys_make_empty_tables_and_prefix_folder_is_skipped() -> None:
    doc = build_document([entry("app/", None), entry("app/cache/", None)], "app/", "text")
    assert doc == {"cache": {}}


def test_key_that_is_both_value_and_folder_is_an_error() -> None:
    with pytest.raises(ConfigError, match="both a value and a folder") as info:
        build_document([entry("app/a", b"1"), entry("app/a/b", b"2")], "app/", "text")
    assert info.value.key == "app/a/b"


def test_auto_format_decodes_by_extension() -> None:
    doc = build_document(
        [
            entry("c/a.json", b'{"x": [1, 2]}'),
            entry("c/b.yaml", b"y: true\n"),
            entry("c/c.toml", b"z = 3\n"),
            entry("c/d", b"plain"),
        ],
        "c/",
        "auto",
    )
    assert doc == {"a.json": {"x": [1, 2]}, "b.yaml": {"y": True}, "c.toml": {"z": 3}, "d": "plain"}


@pytest.mark.parametrize(
    ("fmt", "raw", "expected"),
    [
        ("json", b'{"a": 1}', {"a": 1}),
        ("json", b"", None),
        ("yaml", b"a: [1, 2]\n", {"a": [1, 2]}),
        ("toml", b'a = "b"\n', {"a": "b"}),
        ("text", "é".encode(), "é"),
        ("bytes", b"\xff", b"\xff"),
    ],
)
def test_decode_value_formats(fmt: str, raw: bytes, expected: object) -> None:
    assert decode_value(raw, fmt, "k") == expected


@pytest.mark.parametrize(
    ("fmt", "raw"), [("json", b"{bad"), ("yaml", b"a: [1"), ("toml", b"= x"), ("text", b"\xff")]
)
def test_undecodable_value_names_the_key(fmt: str, raw: bytes) -> None:
    with pytest.raises(ConfigError, match=rf"^app/k: invalid {fmt}") as info:
        decode_value(raw, fmt, "app/k")
    assert info.value.key == "app/k"


def test_custom_decoder_and_its_failure() -> None:
    assert decode_value(b"3", lambda raw: int(raw) * 2) == 6
    with pytest.raises(ConfigError, match="custom decoder failed"):
        decode_value(b"x", lambda raw: int(raw))


def test_bad_format_is_rejected_at_call_time() -> None:
    with pytest.raises(InvalidArgument, match="format: expected one of auto, json"):
        resolve_format("xml")


def test_freeze_is_deep_and_read_only() -> None:
    frozen = freeze({"a": {"b": [1, {"c": 2}]}, "s": {3}})
    with pytest.raises(TypeError):
        frozen["a"] = 1
    with pytest.raises(TypeError):
        frozen["a"]["b"] = 1
    assert frozen["a"]["b"] == (1, {"c": 2})
    assert frozen["s"] == frozenset({3})
    assert thaw(frozen) == {"a": {"b": [1, {"c": 2}]}, "s": frozenset({3})}
