"""ops.match / distinct / diff / values / decode: value operators over plain and (value, meta)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiostream import stream

from consul_streams import _identity, ops
from consul_streams._diff import diff_keyed, keyed
from consul_streams._identity import Identity
from consul_streams._ops_support import OpStream
from consul_streams.exceptions import DecodeError, InvalidArgument
from consul_streams.ops import Diff
from consul_streams.typing import Meta


async def run(items: list[Any], *pipes: Any, identity: Identity | None = None) -> list[Any]:
    """Pipe ``items`` through ``pipes``; ``identity`` is what a watched Query would declare."""
    xs: Any = (
        OpStream(lambda: stream.iterate(items), identity) if identity else stream.iterate(items)
    )
    for p in pipes:
        xs = xs | p
    return await asyncio.wait_for(stream.list(xs), 2.0)


def kv(key: str, value: bytes = b"", modify: int = 1) -> dict[str, Any]:
    return {"Key": key, "Value": value, "Flags": 0, "ModifyIndex": modify}


def health(node: str, sid: str, name: str = "web") -> dict[str, Any]:
    return {"Node": {"Node": node}, "Service": {"ID": sid, "Service": name}, "Checks": []}


# --- match -------------------------------------------------------------------------------


async def test_match_filters_kv_entries_by_key_and_keeps_meta() -> None:
    meta = Meta(index=4)
    items = [([kv("app/a"), kv("db/b"), kv("app/c")], meta)]
    [(value, got_meta)] = await run(items, ops.match(r"^app/"))
    assert [e["Key"] for e in value] == ["app/a", "app/c"]
    assert got_meta is meta


async def test_match_name_fields_services_nodes_and_mappings() -> None:
    catalog = [{"ServiceName": "web-1", "Node": "n1"}, {"ServiceName": "db", "Node": "n2"}]
    assert await run([catalog], ops.match("web")) == [[catalog[0]]]
    entries = [health("n1", "web1"), health("n2", "api1", name="api")]
    assert await run([entries], ops.match("^api$")) == [[entries[1]]]
    nodes = [{"Node": "alpha", "Address": "1"}, {"Node": "beta", "Address": "2"}]
    assert await run([nodes], ops.match("^b")) == [[nodes[1]]]
    services = {"consul": [], "web": ["v1"], "webapp": []}
    assert await run([services], ops.match(re.compile("^web"))) == [{"web": ["v1"], "webapp": []}]
    assert await run([["app/x", "db/y"]], ops.match("app")) == [["app/x"]]


async def test_match_given_field_and_single_objects() -> None:
    checks = [{"CheckID": "c1", "Status": "passing"}, {"CheckID": "c2", "Status": "critical"}]
    assert await run([checks], ops.match("crit", field="Status")) == [[checks[1]]]
    entries = [health("n1", "web1"), health("n2", "web2")]
    assert await run([entries], ops.match("n2", field="Node.Node")) == [[entries[1]]]
    assert await run([kv("app/a"), kv("db/b"), None], ops.match("app")) == [kv("app/a"), None]


async def test_match_unchanged_filtered_result_emits_nothing() -> None:
    first = [kv("app/a", b"1"), kv("db/b", b"1")]
    second = [kv("app/a", b"1"), kv("db/b", b"2")]  # only a filtered-out entry changed
    third = [kv("app/a", b"3"), kv("db/b", b"2")]
    out = await run([first, second, third], ops.match("^app/"))
    assert [[e["Value"] for e in v] for v in out] == [[b"1"], [b"3"]]


def test_match_bad_arguments_fail_at_call_time() -> None:
    with pytest.raises(InvalidArgument) as info:
        ops.match("(unclosed")
    assert info.value.parameter == "pattern"
    with pytest.raises(InvalidArgument):
        ops.match(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as info:
        ops.match("x", field="")
    assert info.value.parameter == "field"


# --- distinct, values --------------------------------------------------------------------


async def test_distinct_compares_values_not_meta() -> None:
    items = [("a", Meta(index=1)), ("a", Meta(index=2)), ("b", Meta(index=3)), ("a", Meta(index=4))]
    out = await run(items, ops.distinct())
    assert [(v, m.index) for v, m in out] == [("a", 1), ("b", 3), ("a", 4)]


async def test_distinct_with_key() -> None:
    assert await run(["a", "A", "b", "B", "a"], ops.distinct(str.lower)) == ["a", "b", "a"]


async def test_values_drops_meta_and_passes_plain_values() -> None:
    assert await run([("a", Meta(index=1)), "b", (1, 2)], ops.values()) == ["a", "b", (1, 2)]


def test_distinct_and_diff_reject_a_non_callable_key() -> None:
    with pytest.raises(InvalidArgument, match="key"):
        ops.distinct("Key")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="key"):
        ops.diff(3)  # type: ignore[arg-type]


# --- diff --------------------------------------------------------------------------------


async def test_diff_first_result_is_all_added_then_changes() -> None:
    one = [kv("a", b"1", 1), kv("b", b"1", 2)]
    two = [kv("a", b"2", 3), kv("c", b"1", 4)]
    rounds = [(one, Meta(index=2)), (one, Meta(index=2)), (two, Meta(index=4))]
    out = await run(rounds, ops.diff(), identity=_identity.KV_ENTRIES)
    assert len(out) == 2  # the unchanged second result emits nothing
    (d1, m1), (d2, m2) = out
    assert d1 == Diff(added=one)
    assert m1.index == 2
    assert d2.added == [kv("c", b"1", 4)]
    assert d2.removed == [kv("b", b"1", 2)]
    assert d2.changed == [(kv("a", b"1", 1), kv("a", b"2", 3))]
    assert m2.index == 4


async def test_diff_first_empty_result_is_emitted_and_none_is_empty() -> None:
    out = await run([None, [kv("a")]], ops.diff(), identity=_identity.KV_ENTRIES)
    assert out == [Diff(), Diff(added=[kv("a")])]
    assert not out[0]
    assert out[1]


async def test_diff_keys_health_entries_by_node_and_service_id_and_mappings_by_key() -> None:
    a = [health("n1", "web1"), health("n2", "web1")]
    b = [health("n2", "web1")]
    [_, d] = await run([a, b], ops.diff(), identity=_identity.HEALTH_ENTRIES)
    assert d.removed == [a[0]]  # same service ID on another node is another instance
    [_, d] = await run([{"web": ["v1"]}, {"web": ["v2"], "db": []}], ops.diff())
    assert d.added == [("db", [])]
    assert d.changed == [(("web", ["v1"]), ("web", ["v2"]))]


async def test_diff_of_a_mapping_whose_keys_look_like_fields() -> None:
    """A service named ``Key`` or ``ID`` is a key of the mapping, not one object's field."""
    rounds = [{"Key": [], "ID": ["x"]}, {"Key": ["y"], "ID": ["x"]}]
    [first, second] = await run(rounds, ops.diff(), identity=_identity.MAPPING)
    assert first.added == [("Key", []), ("ID", ["x"])]
    assert second.changed == [(("Key", []), ("Key", ["y"]))]


async def test_diff_kv_changes_follow_modify_index() -> None:
    """KV declares ModifyIndex as its version: the index changes whenever the entry does."""
    rounds = [[kv("a", b"1", 5)], [kv("a", b"1", 5)], [kv("a", b"1", 9)]]
    out = await run(rounds, ops.diff(), identity=_identity.KV_ENTRIES)
    assert len(out) == 2
    assert out[1].changed == [(kv("a", b"1", 5), kv("a", b"1", 9))]


async def test_diff_without_a_declared_identity_does_not_guess_fields() -> None:
    with pytest.raises(TypeError, match="key="):
        await run([[kv("a")]], ops.diff())
    [d] = await run([[kv("a")]], ops.diff(key=lambda e: e["Key"]))
    assert d.added == [kv("a")]


def test_declared_identities_key_items_as_consul_names_them() -> None:
    assert _identity.KV_ENTRIES.key_of(kv("k")) == "k"
    catalog = {"Node": "n1", "ServiceID": "s1", "ServiceName": "s"}
    assert _identity.CATALOG_SERVICES.key_of(catalog) == ("n1", "s1")
    assert _identity.CATALOG_SERVICES.name_of(catalog) == "s"
    assert _identity.CHECKS.key_of({"Node": "n1", "CheckID": "c1"}) == ("n1", "c1")
    assert _identity.EVENTS.key_of({"ID": "e1", "Name": "deploy"}) == "e1"
    assert _identity.NODES.key_of({"Node": "n1", "Address": "x"}) == "n1"
    assert _identity.STRINGS.key_of("app/") == "app/"
    assert _identity.HEALTH_ENTRIES.key_of(health("n1", "w1")) == ("n1", "w1")
    assert _identity.MAPPING.items({"ID": [], "Key": []}) == [("ID", []), ("Key", [])]
    assert _identity.KV_ENTRY.items(None) == []


def test_keyed_diff_a_repeated_key_keeps_the_later_item() -> None:
    old = [kv("a", b"1", 1), kv("b"), kv("a", b"2", 2)]
    new = [kv("c"), kv("a", b"3", 3), kv("b")]
    ident = _identity.KV_ENTRIES
    d = diff_keyed(keyed(old, ident), keyed(new, ident), ident)
    assert d == Diff(added=[kv("c")], changed=[(kv("a", b"2", 2), kv("a", b"3", 3))])


async def test_diff_keys_each_collection_once() -> None:
    """The previous collection is held keyed: three updates of two items key six items."""
    seen: list[Any] = []

    def key(item: Any) -> Any:
        seen.append(item)
        return item

    out = await run([[1, 2], [2, 3], [3, 4]], ops.diff(key=key))
    assert [(d.added, d.removed) for d in out] == [([1, 2], []), ([3], [1]), ([4], [2])]
    assert len(seen) == 6


async def test_diff_key_names_the_pairs_of_a_mapping() -> None:
    """``key=`` changes how items are named, not how a mapping splits into (key, value) items."""
    rounds = [{"web": ["v1"]}, {"WEB": ["v1"], "db": []}]
    [_, d] = await run(rounds, ops.diff(key=lambda pair: pair[0].lower()))
    assert d.added == [("db", [])]
    assert d.changed == [(("web", ["v1"]), ("WEB", ["v1"]))]


async def test_diff_with_custom_key() -> None:
    [_, d] = await run([[1, 2], [2, 3]], ops.diff(key=lambda x: x))
    assert (d.added, d.removed) == ([3], [1])


# --- decode ------------------------------------------------------------------------------


async def test_decode_json_of_one_entry_and_a_list_and_none() -> None:
    one = kv("cfg", b'{"a": 1}')
    many = [kv("app/x", b"[1]"), kv("app/y", b'"s"')]
    out = await run([(one, Meta(index=1)), many, None], ops.decode("json"))
    assert out == [({"a": 1}, Meta(index=1)), {"app/x": [1], "app/y": "s"}, None]


async def test_decode_text_and_yaml() -> None:
    assert await run([kv("t", "héllo".encode()), b"raw"], ops.decode("text")) == ["héllo", "raw"]
    assert await run([kv("y", b"a: [1, 2]\n")], ops.decode("yaml")) == [{"a": [1, 2]}]
    assert await run([kv("e")], ops.decode()) == [""]


async def test_decode_error_names_the_key() -> None:
    xs = stream.iterate([kv("app/broken", b"{nope")]) | ops.decode("json")
    with pytest.raises(DecodeError, match=r"app/broken.*json"):
        await asyncio.wait_for(stream.list(xs), 2.0)


def test_decode_unknown_format_fails_at_call_time() -> None:
    with pytest.raises(InvalidArgument) as info:
        ops.decode("xml")  # type: ignore[arg-type]
    assert info.value.parameter == "fmt"
    assert "json" in str(info.value)


async def test_each_operator_is_a_pipe_over_any_async_iterable() -> None:
    xs = stream.iterate([("a", Meta(index=1))]) | ops.values()
    async with xs.stream() as values:
        assert [x async for x in values] == ["a"]
    ys = stream.iterate([["a", "b"]]) | ops.match("b")
    async with ys.stream() as matched:
        assert [y async for y in matched] == [["b"]]
