"""The dev agent's go-bexpr filter language: syntax, type checks, evaluation, error texts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consul_streams.testing import bexpr
from consul_streams.testing.bexpr import FilterError, compile_filter

NODE: dict[str, Any] = {
    "ID": "abc",
    "Node": "web-1",
    "Address": "10.0.0.1",
    "Datacenter": "dc1",
    "TaggedAddresses": {"lan": "10.0.0.1"},
    "Meta": {"env": "prod", "rack-id": "r1", "empty": ""},
    "CreateIndex": 5,
    "ModifyIndex": 7,
}
ENTRY: dict[str, Any] = {
    "Node": NODE,
    "Service": {
        "ID": "web",
        "Service": "web",
        "Tags": ["v1", "primary"],
        "Meta": {},
        "Port": 80,
        "Address": "",
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": False,
    },
    "Checks": [
        {"CheckID": "serfHealth", "Status": "passing", "ServiceTags": []},
        {"CheckID": "service:web", "Status": "warning", "ServiceTags": ["v1"]},
    ],
}


def node_matches(expression: str) -> bool:
    return compile_filter(expression, bexpr.NODE)(NODE)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('Node == "web-1"', True),
        ("Node == `web-1`", True),
        ('Node != "web-1"', False),
        ("Datacenter == dc1", True),
        ('Node contains "web"', True),
        ('Node not contains "web"', False),
        ('"eb-" in Node', True),
        ('"db" not in Node', True),
        ('Node matches "^web-[0-9]$"', True),
        ('Node matches "^db"', False),
        ('Node not matches "^db"', True),
        ("Node is not empty", True),
        ("Node is empty", False),
        ("Meta.env == prod", True),
        ('Meta["rack-id"] == "r1"', True),
        ("env in Meta", True),
        ("zone in Meta", False),
        ("zone not in Meta", True),
        ("Meta is not empty", True),
        ("Meta.empty is empty", True),
        ("CreateIndex == 5", True),
        ("ModifyIndex != 7", False),
    ],
)
def test_operators_on_a_node(expression: str, expected: bool) -> None:
    assert node_matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # A missing map key: only the negative forms hold, as in go-bexpr.
        ("Meta.zone == a", False),
        ("Meta.zone != a", True),
        ("Meta.zone is empty", True),
        ('Meta.zone matches "."', False),
        ('Meta.zone not matches "."', True),
        ('Meta.zone contains "a"', False),
        ('Meta.zone not contains "a"', True),
    ],
)
def test_missing_map_keys_satisfy_only_negative_operators(expression: str, expected: bool) -> None:
    assert node_matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Meta.env == prod and Node == `web-1`", True),
        ("Meta.env == dev or Node == `web-1`", True),
        ("Meta.env == dev or Node == db", False),
        ("not Meta.env == dev", True),
        ("not (Meta.env == prod)", False),
        ("Meta.env == dev and Node == `web-1` or Datacenter == dc1", True),
        ("Meta.env == dev and (Node == `web-1` or Datacenter == dc1)", False),
        ("not Meta.env == prod or Node == `web-1`", True),
        ("( Node == `web-1` )", True),
    ],
)
def test_boolean_logic_and_precedence(expression: str, expected: bool) -> None:
    assert node_matches(expression) is expected


def test_selectors_through_lists_of_structs_collect_values() -> None:
    expression = "warning in Checks.Status and Service.Tags contains v1"
    keep = compile_filter(expression, bexpr.SERVICE_ENTRY)
    assert keep(ENTRY)
    assert not compile_filter("critical in Checks.Status", bexpr.SERVICE_ENTRY)(ENTRY)
    assert compile_filter("Checks.Status is not empty", bexpr.SERVICE_ENTRY)(ENTRY)
    assert compile_filter("Node.Meta.env == prod", bexpr.SERVICE_ENTRY)(ENTRY)


def test_bool_and_int_values_are_converted() -> None:
    service = ENTRY["Service"]
    assert compile_filter("EnableTagOverride == false", bexpr.AGENT_SERVICE)(service)
    assert not compile_filter("EnableTagOverride == true", bexpr.AGENT_SERVICE)(service)
    assert compile_filter("Port == 80", bexpr.AGENT_SERVICE)(service)
    assert compile_filter("Weights.Passing == 1", bexpr.AGENT_SERVICE)(service)


def test_select_keeps_order_and_empty_expression_keeps_all() -> None:
    items = [dict(NODE, Node=name) for name in ("a", "b", "c", "ab")]
    assert [n["Node"] for n in compile_filter('Node contains "a"', bexpr.NODE).select(items)] == [
        "a",
        "ab",
    ]
    assert compile_filter("", bexpr.NODE).select(items) == items


@pytest.mark.parametrize(
    ("expression", "detail"),
    [
        ("Node==bad-name", "1:10 (9): no match found"),
        ("Node ==", "no match found"),
        ("Node == x and", "no match found"),
        ("(Node == x", "no match found"),
        ("Node = x", "no match found"),
        ("CreateIndex == 80abc", "Invalid number literal"),
        ('Node == "x', "Unterminated string literal"),
        ("x in 3", "Invalid selector"),
        ("Bogus == x", 'Selector "Bogus" is not valid'),
        ("Node.Sub == x", 'Selector "Node.Sub" is not valid'),
        ("Meta == x", 'Invalid match operator "==" for selector "Meta"'),
        ("CreateIndex contains 1", 'Invalid match operator "contains"'),
        ("CreateIndex == abc", 'Failed to convert match value "abc" to int'),
        ('Node matches "("', "Failed to compile regular expression"),
    ],
)
def test_errors_carry_consuls_prefix(expression: str, detail: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(expression, bexpr.NODE)
    assert str(info.value).startswith("Failed to create boolean expression evaluator: ")
    assert detail in info.value.detail


def test_vector_48_quoted_value_is_fine() -> None:
    assert not compile_filter('Node == "x"', bexpr.NODE)(NODE)


def test_keywords_need_word_boundaries() -> None:
    with pytest.raises(FilterError):
        compile_filter("Node == a andNode == b", bexpr.NODE)
    # "notes" is not "not" followed by a selector.
    keep = compile_filter("Notes is empty", bexpr.HEALTH_CHECK)
    assert keep({"Notes": ""})


def test_double_quoted_strings_use_go_escapes() -> None:
    keep = compile_filter(r'Node == "a\\b\n\x41\u00e9"', bexpr.NODE)
    assert keep(dict(NODE, Node="a\\b\nAé"))


@pytest.mark.parametrize("literal", [r'"a\"b"', r'"\q"', r'"\'"'])
def test_invalid_go_string_literals_are_errors(literal: str) -> None:
    # go-bexpr ends a literal at the first '"', then unquotes it with Go's rules.
    with pytest.raises(FilterError, match="invalid syntax"):
        compile_filter(f"Node == {literal}", bexpr.NODE)


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_ .", min_size=0, max_size=12)


@given(value=_WORD, other=_WORD)
def test_quoted_equality_matches_python_equality(value: str, other: str) -> None:
    keep = compile_filter(f'Node == "{value}"', bexpr.NODE)
    assert keep(dict(NODE, Node=other)) is (value == other)
    assert keep(dict(NODE, Node=value))


@given(needle=_WORD, hay=_WORD)
def test_in_is_substring_for_strings(needle: str, hay: str) -> None:
    keep = compile_filter(f'"{needle}" in Node', bexpr.NODE)
    assert keep(dict(NODE, Node=hay)) is (needle in hay)


_ATOMS = st.sampled_from(["Node == a", "Meta.env == prod", "Node is empty", "b in Node"])


@st.composite
def _expressions(draw: st.DrawFn, depth: int = 3) -> tuple[str, Any]:
    if depth == 0 or draw(st.booleans()):
        atom = draw(_ATOMS)
        return atom, atom
    kind = draw(st.sampled_from(["and", "or", "not"]))
    left = draw(_expressions(depth - 1))
    if kind == "not":
        return f"not ({left[0]})", ("not", left[1])
    right = draw(_expressions(depth - 1))
    return f"({left[0]}) {kind} ({right[0]})", (kind, left[1], right[1])


def _reference(tree: Any, node: dict[str, Any]) -> bool:
    if isinstance(tree, str):
        return compile_filter(tree, bexpr.NODE)(node)
    if tree[0] == "not":
        return not _reference(tree[1], node)
    left, right = _reference(tree[1], node), _reference(tree[2], node)
    return left and right if tree[0] == "and" else left or right


@given(expr=_expressions(), name=st.sampled_from(["a", "b", "ab", ""]), env=st.booleans())
def test_boolean_composition_matches_python(expr: tuple[str, Any], name: str, env: bool) -> None:
    node = dict(NODE, Node=name, Meta={"env": "prod"} if env else {})
    assert compile_filter(expr[0], bexpr.NODE)(node) is _reference(expr[1], node)
