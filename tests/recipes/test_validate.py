"""The validation hook: dataclasses, pydantic-style classes and callables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from consul_streams.exceptions import InvalidArgument
from consul_streams.recipes import ConfigError, freeze
from consul_streams.recipes._validate import make_validator


@dataclass(frozen=True)
class DB:
    host: str
    port: int = 5432


def test_dataclass_is_built_from_the_document() -> None:
    validate = make_validator(DB)
    assert validate is not None
    assert validate(freeze({"host": "h"})) == DB("h")


def test_dataclass_missing_or_unknown_field_is_a_config_error() -> None:
    validate = make_validator(DB)
    assert validate is not None
    with pytest.raises(ConfigError, match="DB"):
        validate(freeze({}))
    with pytest.raises(ConfigError, match=r"unknown field.*extra"):
        validate(freeze({"host": "h", "extra": 1}))


def test_callable_returning_none_or_true_keeps_the_document() -> None:
    doc = freeze({"a": 1})
    for result in (None, True):
        validate = make_validator(lambda d, r=result: r)
        assert validate is not None
        assert validate(doc) is doc


def test_callable_returning_false_rejects() -> None:
    def positive(d: dict[str, Any]) -> bool:
        return bool(d["a"] > 0)

    validate = make_validator(positive)
    assert validate is not None
    with pytest.raises(ConfigError, match="rejected by positive"):
        validate(freeze({"a": -1}))


def test_callable_gets_a_plain_dict_and_may_transform() -> None:
    seen: list[object] = []

    def hook(d: dict[str, Any]) -> int:
        seen.append(d)
        d["mutated"] = True  # a plain copy: the frozen document is not affected
        return 7

    validate = make_validator(hook)
    assert validate is not None
    assert validate(freeze({"a": {"b": 1}})) == 7
    assert type(seen[0]) is dict


def test_model_validate_class_is_used() -> None:
    class Model:
        def __init__(self, data: dict[str, Any]) -> None:
            self.data = data

        @classmethod
        def model_validate(cls, data: dict[str, Any]) -> Model:
            return cls(data)

    validate = make_validator(Model)
    assert validate is not None
    result = validate(freeze({"x": 1}))
    assert isinstance(result, Model)
    assert result.data == {"x": 1}


def test_non_callable_hook_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="validate: expected None, a dataclass"):
        make_validator(42)
