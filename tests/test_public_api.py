"""The curated public API: ``consul_streams.__all__`` matches what the package exports."""

from __future__ import annotations

import importlib
import inspect
import random
import types
import typing
from collections import abc
from collections.abc import Callable, Iterator

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


def isort_order(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then CamelCase, then the rest."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


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
    for module in [importlib.import_module(name) for name in PUBLIC_MODULES]:
        assert module.__all__ == sorted(module.__all__, key=isort_order), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


# --- every type in a public signature is exported -----------------------------------------

PUBLIC_MODULES = (
    "consul_streams",
    "consul_streams.endpoints",
    "consul_streams.exceptions",
    "consul_streams.ops",
    "consul_streams.recipes",
    "consul_streams.testing",
    "consul_streams.typing",
)
# Signatures users do not call: ``watch()`` builds a WatchStream, iterating it an iterator.
NOT_CALLED_BY_USERS = {
    "consul_streams.WatchStream.__init__",
    "consul_streams.WatchIterator.__init__",
    # The engine's seams for watch() (users reach the engine only to close or inspect it).
    "consul_streams.WatchEngine.subscribe",
    "consul_streams.WatchEngine.budget_for",
    "consul_streams.WatchEngine.budget",
    "consul_streams.WatchEngine.cover",
}


def _exported() -> dict[str, object]:
    names: dict[str, object] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            names.setdefault(name, getattr(module, name))
    return names


def _types_in(hint: object, out: set[type]) -> None:
    if isinstance(hint, type):
        out.add(hint)
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        out.add(origin)
    for arg in typing.get_args(hint):
        _types_in(arg, out)


def _signatures() -> Iterator[tuple[str, Callable[..., object]]]:
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield f"{module_name}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__.startswith("consul_streams"):
                for attr, value in vars(obj).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    if isinstance(value, property):
                        value = value.fget
                    if isinstance(value, (staticmethod, classmethod)):
                        value = value.__func__
                    if inspect.isfunction(value):
                        yield f"{module_name}.{name}.{attr}", value


def test_every_type_in_a_public_signature_is_exported() -> None:
    """A parameter or return type users must name (``Clock``, ``Transport``, ...) is public."""
    exported = _exported()
    public_ids = {id(value) for value in exported.values()}
    missing: dict[str, str] = {}
    for where, function in _signatures():
        if where in NOT_CALLED_BY_USERS:
            continue
        # TYPE_CHECKING-only names resolve from the public namespace.
        namespace = {**exported, **vars(abc), "random": random, **function.__globals__}
        hints = typing.get_type_hints(function, namespace)
        found: set[type] = set()
        for hint in hints.values():
            _types_in(hint, found)
        for cls in found:
            if cls.__module__.startswith("consul_streams") and id(cls) not in public_ids:
                missing[f"{cls.__module__}.{cls.__qualname__}"] = where
    assert not missing, missing
