"""consul_streams.typing: the polymorphic input parsers and Meta."""

from __future__ import annotations

import copy
import datetime
import pickle
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from consul_streams._rules import format_go_duration
from consul_streams.exceptions import DecodeError, InvalidArgument
from consul_streams.typing import (
    Meta,
    parse_blocking,
    parse_consistency,
    parse_duration,
    parse_filter,
    parse_hash_blocking,
    parse_id,
    parse_index,
    parse_payload,
)

UINT64_MAX = 2**64 - 1


# --- parse_index -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (7, 7),
        (UINT64_MAX, UINT64_MAX),
        ("7", 7),
        ("007", 7),
        ({"Index": 7}, 7),
        ({"Index": "12"}, 12),
        (Meta(index=9), 9),
    ],
)
def test_parse_index_accepts(value: object, expected: int) -> None:
    assert parse_index(value) == expected


@pytest.mark.parametrize(
    "value",
    [-1, True, 1.5, "abc", "-1", "+1", "0x10", "", " 7", "٣", 2**64, {"Index": -1}, {}, None, [7]],
)
def test_parse_index_rejects_naming_parameter_and_forms(value: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_index(value, "seed")
    assert info.value.parameter == "seed"
    assert str(info.value).startswith("seed: ")
    assert "decimal string" in str(info.value)
    assert "'Index'" in str(info.value)


def test_parse_index_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="index"):
        parse_index("x")


# --- parse_id ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("abc", "abc"), ({"ID": "s-1", "Name": "x"}, "s-1")]
)
def test_parse_id_accepts(value: object, expected: str) -> None:
    assert parse_id(value, "session") == expected


@pytest.mark.parametrize("value", ["", None, 5, {"ID": 5}, {"ID": ""}, {"Name": "x"}, b"abc"])
def test_parse_id_rejects(value: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^session: expected a non-empty str or a mapping"):
        parse_id(value, "session")


# --- parse_duration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("10s", 10.0),
        ("5m", 300.0),
        ("2m30s", 150.0),
        ("1.5h", 5400.0),
        ("300ms", 0.3),
        ("1h2m", 3720.0),
        ("0", 0.0),
        ("1500us", 0.0015),
        (timedelta(minutes=1, seconds=5), 65.0),
        (3, 3.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_duration_accepts(value: object, seconds: float) -> None:
    assert parse_duration(value, "wait") == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    [True, False, "10", "abc", "", "5 s", "s", None, [1], float("nan"), float("inf"), b"10s"],
)
def test_parse_duration_rejects_with_forms(value: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_duration(value, "wait")
    assert info.value.parameter == "wait"
    if not isinstance(value, float):
        assert "Go duration string" in str(info.value)
        assert "timedelta" in str(info.value)


@pytest.mark.parametrize("value", [-1, -0.5, "-5s", timedelta(seconds=-1)])
def test_parse_duration_rejects_negative_unless_allowed(value: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^ttl: must not be negative"):
        parse_duration(value, "ttl")
    assert parse_duration(value, "ttl", allow_negative=True) < 0


@given(st.integers(min_value=0, max_value=10**12))
def test_duration_millisecond_round_trip(ms: int) -> None:
    """What format_go_duration sends parses back to the same duration."""
    seconds = ms / 1000
    assert parse_duration(f"{ms}ms", "wait") == pytest.approx(seconds)
    assert parse_duration(format_go_duration(seconds), "wait") == pytest.approx(seconds)


@given(
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=0, max_value=59),
    st.integers(min_value=0, max_value=59),
)
def test_duration_components_match_timedelta(h: int, m: int, s: int) -> None:
    text = f"{h}h{m}m{s}s"
    expected = timedelta(hours=h, minutes=m, seconds=s)
    assert parse_duration(text, "wait") == parse_duration(expected, "wait")


# --- parse_blocking / parse_hash_blocking ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, (7, None)),
        ("7", (7, None)),
        ({"Index": 3}, (3, None)),
        (Meta(index=4), (4, None)),
        ((7, "10s"), (7, 10.0)),
        ((Meta(index=3), timedelta(seconds=2)), (3, 2.0)),
        (("5", None), (5, None)),
        (({"Index": 1}, 1.5), (1, 1.5)),
    ],
)
def test_parse_blocking_accepts(value: object, expected: tuple[int, float | None]) -> None:
    assert parse_blocking(value) == expected


@pytest.mark.parametrize(
    ("value", "parameter"),
    [
        ((1, 2, 3), "watch"),
        ((1,), "watch"),
        ("10s", "watch"),
        ((1, "bad"), "watch wait"),
        ((1, -1), "watch wait"),
        (("x", "1s"), "watch"),
        (None, "watch"),
    ],
)
def test_parse_blocking_rejects(value: object, parameter: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_blocking(value)
    assert info.value.parameter == parameter


def test_parse_hash_blocking_forms() -> None:
    meta = Meta(content_hash="abc")
    assert parse_hash_blocking("h1") == ("h1", None)
    assert parse_hash_blocking(meta) == ("abc", None)
    assert parse_hash_blocking((meta, "1s")) == ("abc", 1.0)
    for bad in ("", Meta(index=3), 5, ("h", "1s", "x")):
        with pytest.raises(InvalidArgument, match=r"^watch: expected a content hash"):
            parse_hash_blocking(bad)


# --- parse_consistency / parse_filter / parse_payload -----------------------------------


@pytest.mark.parametrize("value", ["default", "consistent", "stale"])
def test_parse_consistency_accepts(value: str) -> None:
    assert parse_consistency(value) == value


@pytest.mark.parametrize("value", ["STALE", "leader", "", None, 1])
def test_parse_consistency_rejects_listing_modes(value: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^consistency: expected one of 'default'"):
        parse_consistency(value)


def test_parse_filter_compiles_strings_and_keeps_patterns() -> None:
    pattern = re.compile(r"^web/")
    assert parse_filter(pattern, "keys") is pattern
    compiled = parse_filter(r"\.json$", "keys")
    assert compiled.search("a/b.json")
    assert not compiled.search("a/b.yaml")


@pytest.mark.parametrize("value", ["(", re.compile(rb"x"), 5, None, b"x"])
def test_parse_filter_rejects(value: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^keys: "):
        parse_filter(value, "keys")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"ab", b"ab"),
        (bytearray(b"ab"), b"ab"),
        (memoryview(b"ab"), b"ab"),
        ("é", "é".encode()),
        ("", b""),
    ],
)
def test_parse_payload_accepts(value: object, expected: bytes) -> None:
    result = parse_payload(value, "payload")
    assert result == expected
    assert type(result) is bytes


@pytest.mark.parametrize("value", [None, 5, ["a"], {"a": 1}])
def test_parse_payload_rejects(value: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^payload: expected bytes"):
        parse_payload(value, "payload")


# --- Meta --------------------------------------------------------------------------------

GO_CANONICAL = {
    "X-Consul-Index": "19",
    "X-Consul-Knownleader": "true",
    "X-Consul-Lastcontact": "250",
    "X-Consul-Effective-Consistency": "leader",
    "X-Consul-Query-Backend": "blocking-query",
    "X-Consul-Default-Acl-Policy": "deny",
    "X-Consul-Results-Filtered-By-Acls": "true",
    "X-Consul-Contenthash": "4f2a",
    "X-Cache": "HIT",
    "Age": "12",
}


@pytest.mark.parametrize("case", [str, str.lower, str.upper])
def test_meta_from_headers_matches_names_case_insensitively(case: object) -> None:
    assert callable(case)
    meta = Meta.from_headers({case(k): v for k, v in GO_CANONICAL.items()})
    assert meta.index == 19
    assert meta["Index"] == 19
    assert meta.known_leader is True
    assert meta.last_contact == timedelta(milliseconds=250)
    assert meta.effective_consistency == "leader"
    assert meta.query_backend == "blocking-query"
    assert meta.default_acl_policy == "deny"
    assert meta.results_filtered_by_acls is True
    assert meta.content_hash == "4f2a"
    assert meta.cache == "HIT"
    assert meta.age == timedelta(seconds=12)


def test_meta_documented_spellings_work_too() -> None:
    meta = Meta.from_headers({"X-Consul-KnownLeader": "true", "X-Consul-LastContact": "3"})
    assert meta.known_leader
    assert meta.last_contact == timedelta(milliseconds=3)


def test_meta_without_headers_has_only_the_always_present_keys() -> None:
    meta = Meta.from_headers({})
    assert dict(meta) == {"Index": 0, "KnownLeader": False, "LastContact": timedelta(0)}
    assert meta.content_hash is None
    assert meta.cache is None
    assert meta.age is None
    assert meta.results_filtered_by_acls is False


def test_meta_booleans_need_the_exact_text_true() -> None:
    meta = Meta.from_headers({"X-Consul-Knownleader": "True"})
    assert meta.known_leader is False


def test_meta_tolerates_a_garbled_lastcontact_like_the_go_client() -> None:
    assert Meta.from_headers({"X-Consul-Lastcontact": "soon"}).last_contact == timedelta(0)


@pytest.mark.parametrize("raw", ["abc", "-1", "18446744073709551616", ""])
def test_meta_rejects_a_garbled_index(raw: str) -> None:
    with pytest.raises(DecodeError, match="X-Consul-Index"):
        Meta.from_headers({"X-Consul-Index": raw})


def test_meta_from_aiohttp_headers_reads_every_key_whichever_is_asked_first() -> None:
    """The headers past X-Consul-Index are read on first use (#13), by any accessor."""
    first_use: list[Callable[[Meta], object]] = [
        lambda m: m.last_contact,
        lambda m: m["KnownLeader"],
        lambda m: len(m),
        lambda m: list(m),
        lambda m: repr(m),
        lambda m: hash(m),
    ]
    eager = {
        "Index": 19,
        "KnownLeader": True,
        "LastContact": timedelta(milliseconds=250),
        "EffectiveConsistency": "leader",
        "QueryBackend": "blocking-query",
        "DefaultACLPolicy": "deny",
        "ResultsFilteredByACLs": True,
        "ContentHash": "4f2a",
        "Cache": "HIT",
        "Age": timedelta(seconds=12),
    }
    for use in first_use:
        meta = Meta.from_headers(CIMultiDictProxy(CIMultiDict(GO_CANONICAL)))
        assert meta.index == 19
        use(meta)
        assert dict(meta) == eager


def test_meta_read_from_aiohttp_headers_pickles_and_copies() -> None:
    """Pickle and copy carry every key, not the headers object (which does not pickle)."""
    meta = Meta.from_headers(CIMultiDictProxy(CIMultiDict(GO_CANONICAL)))
    for clone in (pickle.loads(pickle.dumps(meta)), copy.copy(meta), copy.deepcopy(meta)):
        assert clone == meta
        assert clone.index_present
        assert clone.age == timedelta(seconds=12)


def test_meta_is_a_read_only_mapping() -> None:
    meta = Meta(index=3)
    assert set(meta) == {"Index", "KnownLeader", "LastContact"}
    assert len(meta) == 3
    with pytest.raises(TypeError):
        meta["Index"] = 4  # type: ignore[index]
    with pytest.raises(AttributeError):
        meta.index = 4  # type: ignore[misc]


def test_meta_equality_and_hash() -> None:
    a = Meta(index=5, known_leader=True, last_contact=0.25)
    b = Meta.from_headers({"X-Consul-Index": "5", "X-Consul-Knownleader": "true",
                           "X-Consul-Lastcontact": "250"})  # fmt: skip
    assert a == b
    assert hash(a) == hash(b)
    assert a != Meta(index=6, known_leader=True, last_contact=0.25)
    assert a == {"Index": 5, "KnownLeader": True, "LastContact": timedelta(milliseconds=250)}


def test_meta_repr_uses_the_keyword_constructor() -> None:
    meta = Meta(index=5, content_hash="ab", age=timedelta(seconds=3))
    text = repr(meta)
    assert text.startswith("Meta(index=5, known_leader=False, last_contact=")
    assert eval(text, {"Meta": Meta, "datetime": datetime}) == meta


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"index": -1}, "index"),
        ({"index": True}, "index"),
        ({"known_leader": "yes"}, "known_leader"),
        ({"last_contact": "soon"}, "last_contact"),
        ({"content_hash": 5}, "content_hash"),
        ({"results_filtered_by_acls": 1}, "results_filtered_by_acls"),
    ],
)
def test_meta_constructor_validates(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        Meta(**kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


@given(st.integers(min_value=0, max_value=UINT64_MAX))
def test_index_round_trips_through_every_form(n: int) -> None:
    meta = Meta.from_headers({"x-consul-index": str(n)})
    assert meta.index == n
    assert parse_index(n) == parse_index(str(n)) == parse_index({"Index": n}) == n
    assert parse_index(meta) == n == parse_index(Meta(index=n))
    index, wait = parse_blocking((meta, f"{n % 1000}ms"))
    assert index == n
    assert wait == pytest.approx((n % 1000) / 1000)
