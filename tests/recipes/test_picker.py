"""Instances from health entries, their diff, and the weighted pickers (pure)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from consul_streams.exceptions import ConsulError, InvalidArgument
from consul_streams.recipes import Instance, NoHealthyInstances, Picker, diff_instances
from consul_streams.recipes._instances import instance_from_entry


def inst(id: str, *, status: str = "passing", wp: int = 1, ww: int = 1, port: int = 80) -> Instance:
    return Instance(
        id, "web", "n1", "10.0.0.1", port, status=status, weight_passing=wp, weight_warning=ww
    )


def test_instance_from_health_entry_aggregates_checks_and_falls_back_to_node_address() -> None:
    entry: dict[str, Any] = {
        "Node": {"Node": "n1", "Address": "10.0.0.9"},
        "Service": {
            "ID": "web-1",
            "Service": "web",
            "Address": "",
            "Port": 8080,
            "Tags": ["v1"],
            "Meta": {"a": "b"},
            "Weights": {"Passing": 5, "Warning": 2},
        },
        "Checks": [{"Status": "passing"}, {"Status": "warning"}],
    }
    i = instance_from_entry(entry)
    assert (i.id, i.node, i.address, i.port, i.tags) == ("web-1", "n1", "10.0.0.9", 8080, ("v1",))
    assert i.status == "warning"
    assert i.weight == 2
    assert i.url_host == "10.0.0.9:8080"


def test_ipv6_address_is_bracketed() -> None:
    assert Instance("a", "s", "n", "::1", 80).url_host == "[::1]:80"


def test_diff_reports_added_removed_changed() -> None:
    a, b, c = inst("a"), inst("b"), inst("c")
    d = diff_instances([a, b], [inst("b", port=81), c])
    assert d.added == (c,)
    assert d.removed == (a,)
    assert [i.id for i in d.changed] == ["b"]
    assert not diff_instances([a], [a])


def test_round_robin_is_smooth_and_weighted() -> None:
    p = Picker("web")
    p.update([inst("a", wp=3), inst("b", wp=1)])
    assert [p.pick().id for _ in range(8)] == ["a", "a", "b", "a"] * 2


def test_random_is_weighted() -> None:
    p = Picker("web", "random", rng=random.Random(1))
    p.update([inst("a", wp=9), inst("b", wp=1)])
    counts = Counter(p.pick().id for _ in range(2000))
    assert 0.85 < counts["a"] / 2000 < 0.95


def test_critical_and_zero_weight_are_never_picked() -> None:
    p = Picker("web")
    p.update([inst("a", status="critical"), inst("b", status="warning", ww=0), inst("c")])
    assert {p.pick().id for _ in range(5)} == {"c"}


def test_warning_uses_warning_weight() -> None:
    p = Picker("web")
    p.update([inst("a", status="warning", wp=10, ww=1), inst("b", wp=1)])
    assert Counter(p.pick().id for _ in range(4)) == {"a": 2, "b": 2}


def test_no_healthy_instance_is_a_typed_error() -> None:
    p = Picker("web")
    p.update([inst("a", status="critical")])
    with pytest.raises(NoHealthyInstances, match="no healthy instance of service 'web'") as info:
        p.pick()
    assert isinstance(info.value, ConsulError)
    assert info.value.service == "web"


def test_bad_strategy_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="strategy"):
        Picker("web", "least_conn")  # type: ignore[arg-type]
