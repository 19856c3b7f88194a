"""KV endpoint: requests on the wire, decoding, 404-as-value, rejected arguments."""

from __future__ import annotations

import base64

import pytest

from consul_streams._query import BlockingMode
from consul_streams.endpoints.kv import decode_kv_entries, decode_kv_entry
from consul_streams.exceptions import DecodeError, InvalidArgument, RequestTooLarge
from consul_streams.typing import Consistency, Meta

from ._mock import TOKEN, Endpoints, Wire

ENTRY = {
    "LockIndex": 0,
    "Key": "app/config",
    "Flags": 0,
    "Value": base64.b64encode(b"hello").decode(),
    "CreateIndex": 10,
    "ModifyIndex": 12,
}
META = {"X-Consul-Index": "12", "X-Consul-Knownleader": "true", "X-Consul-Lastcontact": "0"}


async def test_get_decodes_value_to_bytes_and_keeps_meta(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/app/config", json_body=[ENTRY], headers=META)
    entry, meta = await consul.kv.get("app/config")
    assert entry is not None
    assert entry["Value"] == b"hello"
    assert entry["ModifyIndex"] == 12
    assert "Session" not in entry
    assert meta.index == 12
    call = wire.only()
    assert (call.method, call.path, call.query) == ("GET", "/v1/kv/app/config", [])
    assert call.body == b""


async def test_get_missing_key_is_none_with_meta(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/missing", status=404, headers={"X-Consul-Index": "41"})
    entry, meta = await consul.kv.get("missing")
    assert entry is None
    assert meta.index == 41


@pytest.mark.parametrize("raw_value", [None, ""])
async def test_null_and_empty_values_both_decode_to_empty_bytes(
    consul: Endpoints, wire: Wire, raw_value: str | None
) -> None:
    wire.reply("GET", "/v1/kv/b", json_body=[{**ENTRY, "Key": "b", "Value": raw_value}])
    entry, _ = await consul.kv.get("b")
    assert entry is not None
    assert entry["Value"] == b""


async def test_session_is_kept_when_locked(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/l", json_body=[{**ENTRY, "Key": "l", "Session": "abc"}])
    entry, _ = await consul.kv.get("l")
    assert entry is not None
    assert entry["Session"] == "abc"


async def test_bad_json_raises_decode_error(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/a", body=b"[{not json")
    with pytest.raises(DecodeError) as info:
        await consul.kv.get("a")
    # The error policy (#11): a 2xx that does not decode (a proxy's page) is retried.
    assert info.value.retriable


async def test_bad_base64_raises_decode_error(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/a", json_body=[{**ENTRY, "Value": "***"}])
    with pytest.raises(DecodeError, match="Value"):
        await consul.kv.get("a")


async def test_key_is_percent_encoded_keeping_slashes(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/a%20b/c%3Fd%23e%25", json_body=[ENTRY])
    await consul.kv.get("a b/c?d#e%")
    assert wire.only().path == "/v1/kv/a%20b/c%3Fd%23e%25"


async def test_watch_seed_makes_a_blocking_read(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/a", json_body=[ENTRY], headers=META)
    query = consul.kv.get("a", watch=(Meta(index=12), "10s"))
    assert (query.index, query.wait, query.mode) == (12, 10.0, BlockingMode.INDEX)
    await query
    assert sorted(wire.only().query) == [("index", "12"), ("wait", "10000ms")]


@pytest.mark.parametrize(
    ("consistency", "flag"),
    [("stale", "stale"), ("consistent", "consistent"), ("default", "leader")],
)
async def test_consistency_is_a_presence_flag(
    consul: Endpoints, wire: Wire, consistency: Consistency, flag: str
) -> None:
    wire.reply("GET", "/v1/kv/a", json_body=[ENTRY])
    await consul.kv.get("a", consistency=consistency, dc="dc2")
    assert sorted(wire.only().query) == sorted([(flag, ""), ("dc", "dc2")])


async def test_raw_returns_exact_bytes(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/a", body=b"\x00\xffraw", headers={"Content-Type": "text/plain"})
    value, _ = await consul.kv.raw("a")
    assert value == b"\x00\xffraw"
    assert wire.only().query == [("raw", "")]


async def test_raw_missing_is_none(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/a", status=404)
    value, _ = await consul.kv.raw("a")
    assert value is None


async def test_items_recurse_and_404_is_empty(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/app/", json_body=[ENTRY, {**ENTRY, "Key": "app/x", "Value": None}])
    entries, _ = await consul.kv.items("app/")
    assert [(e["Key"], e["Value"]) for e in entries] == [("app/config", b"hello"), ("app/x", b"")]
    assert wire.only().query == [("recurse", "")]


async def test_items_missing_prefix_is_empty_list(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/none/", status=404, headers={"X-Consul-Index": "3"})
    entries, meta = await consul.kv.items("none/")
    assert entries == []
    assert meta.index == 3


async def test_keys_with_separator(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/web/", json_body=["web/a", "web/sub/"])
    keys, _ = await consul.kv.keys("web/", separator="/")
    assert keys == ["web/a", "web/sub/"]
    assert sorted(wire.only().query) == [("keys", ""), ("separator", "/")]


async def test_keys_root_and_missing(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/", json_body=[])
    wire.reply("GET", "/v1/kv/zzz", status=404)
    assert (await consul.kv.keys())[0] == []
    assert (await consul.kv.keys("zzz"))[0] == []


async def test_keys_rejects_non_string_elements(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/kv/", json_body=["a", 1])
    with pytest.raises(DecodeError):
        await consul.kv.keys()


async def test_put_sends_raw_body_and_flags(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/kv/a", json_body=True)
    assert await consul.kv.put("a", "héllo", flags=42) is True
    call = wire.only()
    assert call.method == "PUT"
    assert call.body == "héllo".encode()
    assert call.query == [("flags", "42")]
    # The endpoint never handles the token: the transport puts it in the header
    # (tests/test_transport.py), so it cannot reach a path or query.
    assert "X-Consul-Token" not in call.headers
    assert TOKEN not in call.path + str(call.query)


async def test_set_is_put(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/kv/a", json_body=True)
    assert await consul.kv.set("a", b"x") is True
    assert wire.only().body == b"x"


async def test_cas_with_entry_uses_modify_index_and_false_is_false(
    consul: Endpoints, wire: Wire
) -> None:
    wire.reply("PUT", "/v1/kv/a", json_body=False)
    entry = {"Key": "a", "ModifyIndex": 12}
    assert await consul.kv.cas("a", b"v", index=entry) is False
    assert wire.only().query == [("cas", "12")]


async def test_cas_zero_means_only_if_absent(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/kv/a", json_body=True)
    assert await consul.kv.put("a", b"v", cas=0) is True
    assert wire.only().query == [("cas", "0")]


async def test_acquire_and_release_take_object_ids(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/kv/l", json_body=True)
    wire.reply("PUT", "/v1/kv/l", json_body=True)
    assert await consul.kv.acquire("l", {"ID": "s-1"}, b"me") is True
    assert await consul.kv.release("l", "s-1") is True
    calls = wire.calls
    assert [c.query for c in calls] == [[("acquire", "s-1")], [("release", "s-1")]]
    assert [c.body for c in calls] == [b"me", b""]


async def test_delete_variants(consul: Endpoints, wire: Wire) -> None:
    wire.reply("DELETE", "/v1/kv/a", json_body=True)
    wire.reply("DELETE", "/v1/kv/p/", json_body=True)
    wire.reply("DELETE", "/v1/kv/", json_body=True)
    assert await consul.kv.delete("a", cas=7) is True
    assert await consul.kv.delete("p/", recurse=True) is True
    assert await consul.kv.delete("", recurse=True) is True
    assert [(c.method, c.path, c.query) for c in wire.calls] == [
        ("DELETE", "/v1/kv/a", [("cas", "7")]),
        ("DELETE", "/v1/kv/p/", [("recurse", "")]),
        ("DELETE", "/v1/kv/", [("recurse", "")]),
    ]


async def test_put_false_answer_and_non_bool_answer(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/kv/a", json_body={"ok": True})
    with pytest.raises(DecodeError):
        await consul.kv.put("a", b"v")


async def test_oversized_value_is_left_to_the_server(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/kv/big", status=413, body="Request body(524289 bytes) too large")
    with pytest.raises(RequestTooLarge):
        await consul.kv.put("big", b"x" * 524289)
    assert len(wire.only().body) == 524289


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("/abs", "key: must not begin with '/'"),
        ("", "key: must not be empty"),
        ("a/../b", "key: must not contain '.' or '..'"),
        ("a\nb", "key: must not contain control characters"),
        (b"bytes", "key: expected a str"),
    ],
)
async def test_bad_keys_are_refused_before_sending(
    consul: Endpoints, wire: Wire, key: object, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message.replace(".", r"\.")) as info:
        consul.kv.get(key)  # type: ignore[arg-type]
    assert info.value.parameter == "key"
    with pytest.raises(InvalidArgument):
        await consul.kv.put(key, b"v")  # type: ignore[arg-type]
    assert wire.calls == []


async def test_rejected_write_arguments(consul: Endpoints, wire: Wire) -> None:
    cases = [
        ("flags", consul.kv.put("a", b"v", flags=-1)),
        ("flags", consul.kv.put("a", b"v", flags=True)),
        ("cas", consul.kv.put("a", b"v", cas="7")),  # type: ignore[arg-type]
        ("acquire", consul.kv.put("a", b"v", cas=1, acquire="s")),
        ("value", consul.kv.put("a", 7)),  # type: ignore[arg-type]
        ("session", consul.kv.acquire("a", {"Name": "x"})),
        ("cas", consul.kv.delete("a", recurse=True, cas=3)),
        ("index", consul.kv.cas("a", b"v", index=-1)),
    ]
    for parameter, coro in cases:
        with pytest.raises(InvalidArgument) as info:
            await coro
        assert info.value.parameter == parameter
    assert wire.calls == []


@pytest.mark.parametrize("recurse", ["yes", 1, None, "false"])
async def test_delete_recurse_must_be_a_bool(
    consul: Endpoints, wire: Wire, recurse: object
) -> None:
    """A truthy ``"yes"`` must not turn into a recursive DELETE of the prefix."""
    with pytest.raises(InvalidArgument) as info:
        await consul.kv.delete("a", recurse=recurse)  # type: ignore[arg-type]
    assert info.value.parameter == "recurse"
    assert wire.calls == []


def test_decode_kv_entries_completes_the_parsed_list_in_place() -> None:
    raw = [{**ENTRY}, {"Key": "b", "Value": None, "Session": ""}, {"Key": "c", "Session": "s"}]
    entries = decode_kv_entries(raw)
    assert entries is raw
    assert entries[0] == {**ENTRY, "Value": b"hello"}
    assert entries[1] == {"Key": "b", "Value": b"", "Flags": 0, "LockIndex": 0}
    assert entries[2] == {"Key": "c", "Value": b"", "Flags": 0, "LockIndex": 0, "Session": "s"}
    assert decode_kv_entries(None) == []


@pytest.mark.parametrize(
    "raw", [{"Key": "a"}, [{"Key": 1}], [["Key", "a"]], [{**ENTRY, "Value": 5}]]
)
def test_decode_kv_entries_refuses_other_shapes(raw: object) -> None:
    with pytest.raises(DecodeError, match=r"JSON array|KV entry|Value"):
        decode_kv_entries(raw)


def test_decode_kv_entry_leaves_its_input_unchanged() -> None:
    raw = {**ENTRY, "Session": ""}
    entry = decode_kv_entry(raw)
    assert raw == {**ENTRY, "Session": ""}
    assert entry == {**ENTRY, "Value": b"hello"}


def test_read_arguments_are_checked_at_call_time(consul: Endpoints) -> None:
    with pytest.raises(InvalidArgument, match="separator"):
        consul.kv.keys("a", separator="")
    with pytest.raises(InvalidArgument, match="consistency"):
        consul.kv.get("a", consistency="eventual")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="watch"):
        consul.kv.get("a", watch=-1)
    with pytest.raises(InvalidArgument, match="prefix"):
        consul.kv.items("/a")
