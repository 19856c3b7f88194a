"""The curated public API: ``consul_streams.__all__`` matches what the package exports."""

from __future__ import annotations

import types

import consul_streams
from consul_streams import exceptions
from consul_streams import typing as cs_typing


def public_names() -> set[str]:
    """Names bound in the package that are neither private nor submodules."""
    return {
        name
        for name, value in vars(consul_streams).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def test_all_is_sorted_and_unique() -> None:
    assert consul_streams.__all__ == sorted(set(consul_streams.__all__))


def test_all_matches_the_public_names() -> None:
    """Adding an import without listing it (or listing a name that is gone) fails here."""
    assert set(consul_streams.__all__) == public_names()


def test_every_error_class_is_exported() -> None:
    errors = {name for name in exceptions.__all__ if name != "redact_url"}
    assert errors <= set(consul_streams.__all__)
    for name in errors:
        assert getattr(consul_streams, name) is getattr(exceptions, name)


def test_exported_typing_names_are_the_typing_modules_own() -> None:
    exported = set(consul_streams.__all__) & set(cs_typing.__all__)
    assert {"Meta", "Duration", "Blocking", "ObjectIndex", "KVEntry", "Event"} <= exported
    for name in exported:
        assert getattr(consul_streams, name) is getattr(cs_typing, name)


def test_core_entry_points_are_exported() -> None:
    from consul_streams._client import Consul
    from consul_streams._query import Query

    assert consul_streams.Consul is Consul
    assert consul_streams.Query is Query


def test_submodule_all_lists_resolve() -> None:
    for module in (exceptions, cs_typing):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
