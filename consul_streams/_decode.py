"""The one KV value decoder, used by ``ops.decode`` and the config recipes.

Formats: ``"text"`` (alias ``"utf-8"``), ``"json"``, ``"yaml"`` (PyYAML), ``"toml"``,
``"bytes"`` (as is), ``"auto"`` (by the key's extension: .json, .yaml/.yml, .toml, else text)
or a callable ``bytes -> value``. An empty value decodes as ``None`` in JSON and YAML (Consul
stores a key written without a value as null).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, Literal

from consul_streams.exceptions import DecodeError, InvalidArgument

__all__ = ["FORMATS", "Decoder", "Format", "ValueDecodeError", "check_format", "decode_value"]

Format = Literal["auto", "json", "yaml", "toml", "text", "utf-8", "bytes"]
Decoder = Callable[[bytes], Any]
FORMATS: tuple[str, ...] = ("auto", "json", "yaml", "toml", "text", "utf-8", "bytes")

_EXTENSIONS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}


class ValueDecodeError(DecodeError):
    """A KV value did not decode: ``key`` and ``detail`` say which and why."""

    def __init__(self, detail: str, key: str) -> None:
        where = f"KV key {key!r}" if key else "a value"
        super().__init__(f"cannot decode {where}: {detail}")
        self.key = key
        self.detail = detail


def check_format(value: object, parameter: str = "format") -> str | Decoder:
    """Check a format argument: one of :data:`FORMATS` or a callable taking bytes."""
    if callable(value):
        return value
    if isinstance(value, str) and value in FORMATS:
        if value == "yaml":
            _yaml()  # fails now, naming the parameter, when PyYAML is missing
        return value
    raise InvalidArgument(
        parameter, f"expected one of {', '.join(FORMATS)} or a callable taking bytes, got {value!r}"
    )


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is installed in the test env
        raise InvalidArgument(
            "format", '"yaml" needs PyYAML (pip install consul-streams[yaml])'
        ) from None
    return yaml


def _toml(text: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        try:
            import tomli as tomllib
        except ImportError:
            raise DecodeError("TOML values need tomli on Python 3.10") from None
    return tomllib.loads(text)


def _format_for_key(key: str) -> str:
    for ext, fmt in _EXTENSIONS.items():
        if key.endswith(ext):
            return fmt
    return "text"


def decode_value(raw: bytes, fmt: str | Decoder, key: str = "") -> Any:
    """Decode one KV value; raises :class:`DecodeError` naming ``key`` and the format."""
    if callable(fmt):
        try:
            return fmt(raw)
        except Exception as exc:
            raise ValueDecodeError(f"custom decoder failed: {exc}", key) from exc
    if fmt == "auto":
        fmt = _format_for_key(key)
    if fmt == "bytes":
        return raw
    try:
        text = raw.decode("utf-8")
        if fmt in ("text", "utf-8"):
            return text
        if fmt == "json":
            return json.loads(text) if raw else None
        if fmt == "yaml":
            return _yaml().safe_load(text)
        return _toml(text)
    except DecodeError as exc:
        raise ValueDecodeError(str(exc), key) from exc
    except Exception as exc:  # unicode, json, yaml and toml errors have no common base
        raise ValueDecodeError(f"invalid {fmt}: {exc}", key) from exc
