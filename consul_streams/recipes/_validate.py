"""The validation hook of the config recipe: a callable, a dataclass, or a pydantic model."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from consul_streams.exceptions import InvalidArgument
from consul_streams.recipes._document import ConfigError, thaw

__all__ = ["Validator", "make_validator"]

#: Takes the decoded document (plain dicts/lists) and returns the value consumers see.
Validator = Callable[[Mapping[str, Any]], Any]


def _from_dataclass(cls: type[Any]) -> Validator:
    names = {f.name for f in dataclasses.fields(cls) if f.init}

    def validate(document: Mapping[str, Any]) -> Any:
        unknown = sorted(set(document) - names)
        if unknown:
            raise ConfigError(f"unknown field(s) for {cls.__name__}: {', '.join(unknown)}")
        try:
            return cls(**dict(thaw(document)))
        except TypeError as exc:  # missing required fields
            raise ConfigError(f"{cls.__name__}: {exc}") from exc

    return validate


def _from_callable(fn: Callable[[Any], Any]) -> Validator:
    def validate(document: Mapping[str, Any]) -> Any:
        result = fn(thaw(document))
        # A check function may answer with a bool or None instead of a value.
        if result is False:
            raise ConfigError(f"rejected by {getattr(fn, '__name__', 'validator')}")
        if result is None or result is True:
            return document
        return result

    return validate


def make_validator(hook: object) -> Validator | None:
    """Normalise ``validate=``: ``None``; a dataclass (built with the document as keywords);
    a class with ``model_validate`` (pydantic v2); or any callable taking the document as a
    plain dict, which returns the value to publish, ``None``/``True`` to publish the document
    as it is, or ``False``/raises to reject it."""
    if hook is None:
        return None
    if isinstance(hook, type) and dataclasses.is_dataclass(hook):
        return _from_dataclass(hook)
    model_validate = getattr(hook, "model_validate", None)
    if isinstance(hook, type) and callable(model_validate):
        return _from_callable(model_validate)
    if callable(hook):
        return _from_callable(hook)
    raise InvalidArgument(
        "validate",
        "expected None, a dataclass, a pydantic model class or a callable taking the document, "
        f"got {hook!r}",
    )
