"""The dev agent writes JSON as Go's ``json.MarshalIndent(v, "", "    ")`` does.

Go's ``encoding/json`` (``encode.go``: ``HTMLEscape`` on by default, ``floatEncoder``) escapes
``<``, ``>``, ``&``, U+2028 and U+2029 inside strings, and writes floats between 1e-6 and 1e21
without an exponent. The layout of objects and arrays is the one ``json.dumps(indent=4)`` writes.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consul_streams.testing.server.wire import dump_json

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1), st.text()
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _go(data: Any) -> bytes:
    text = json.dumps(data, indent=4, ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(_json)
def test_layout_and_escaping_match_marshal_indent(data: Any) -> None:
    # agent/http.go marshalJSON: in dev mode, MarshalIndent + "\n" (issue 9, point 4).
    assert dump_json(data) == _go(data) + b"\n"


def test_dev_mode_always_has_the_trailing_newline_pretty_or_not() -> None:
    expected = b'{\n    "a": [\n        1,\n        {}\n    ]\n}\n'
    assert dump_json({"a": [1, {}]}, pretty=True) == expected
    assert dump_json({"a": [1, {}]}) == expected


def test_small_floats_have_no_exponent_as_in_go() -> None:
    assert dump_json([0.00001, 1.5]) == b"[\n    0.00001,\n    1.5\n]\n"
