"""Request bodies decoded the way Consul's Go code decodes them (``agent/http.go`` decodeBody).

Consul reads a body with ``lib.DecodeJSON``: one ``encoding/json`` value (trailing bytes are
never read), object keys matched to struct fields exactly first and then case-insensitively,
unknown keys refused (``DisallowUnknownFields``, Consul >= 1.7), ``null`` leaving a field
unset, and a value of the wrong JSON type refused with ``json: cannot unmarshal <kind> into Go
struct field <Struct>.<path> of type <type>``. Structs with a custom ``UnmarshalJSON`` decode
through an anonymous "aux" struct: their snake_case aliases (``enable_tag_override``,
``args``, ...) are extra fields, their durations take a Go duration string or nanoseconds, and
errors inside them name the anonymous struct (``Go struct field .Port``).

Each endpoint declares its body as a :class:`Struct` (``bodies.py``); :func:`decode` returns a
plain dict keyed by the Go field names (aliases folded in), holding only the keys present.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..._rules import parse_go_duration
from .._blocking import go_quote
from .wire import ApiError, Call

__all__ = [
    "ANY",
    "BOOL",
    "BYTES",
    "DURATION",
    "FLOAT",
    "INT",
    "STRING",
    "UINT64",
    "BodyError",
    "ListOf",
    "MapOf",
    "Scalar",
    "Spec",
    "Struct",
    "decode",
    "decode_body",
    "go_duration_string",
    "health_check_durations",
    "parse_go_json",
]


class BodyError(ValueError):
    """A body Go would refuse; ``str()`` is Go's error text (without Consul's prefix)."""


@dataclass(frozen=True)
class Scalar:
    """A Go scalar: ``kind`` is how JSON maps to it, ``go`` its Go type name in errors."""

    kind: str
    go: str


STRING = Scalar("string", "string")
INT = Scalar("int", "int")
UINT64 = Scalar("uint", "uint64")
BOOL = Scalar("bool", "bool")
FLOAT = Scalar("float", "float64")
BYTES = Scalar("bytes", "[]uint8")
ANY = Scalar("any", "interface {}")
#: A duration field of a custom ``UnmarshalJSON``: a Go duration string or nanoseconds.
DURATION = Scalar("duration", "interface {}")


@dataclass(frozen=True)
class ListOf:
    item: Spec
    go: str


@dataclass(frozen=True)
class MapOf:
    value: Spec
    go: str


@dataclass(frozen=True)
class Struct:
    """A Go struct: ``name`` as errors print it (``""`` for a custom UnmarshalJSON's aux).

    ``aliases`` maps an alias's JSON name (``"enable_tag_override"``) to the field it fills
    when that field is empty, as the UnmarshalJSON methods in ``agent/structs`` do.
    """

    name: str
    go: str
    fields: Mapping[str, Spec]
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: Whether the struct has its own UnmarshalJSON (its errors start a new field path).
    custom: bool = False


Spec = Scalar | ListOf | MapOf | Struct

_JSON_KIND = {str: "string", bool: "bool", int: "number", float: "number", list: "array"}
_JSON_KIND[dict] = "object"
_MISSING = object()


def _kind(value: Any) -> str:
    return _JSON_KIND.get(type(value), "number")


@dataclass
class _Context:
    struct: str = ""
    path: tuple[str, ...] = ()

    def type_error(self, what: str, go: str) -> BodyError:
        if not self.path:
            return BodyError(f"json: cannot unmarshal {what} into Go value of type {go}")
        where = f"{self.struct}.{'.'.join(self.path)}"
        return BodyError(f"json: cannot unmarshal {what} into Go struct field {where} of type {go}")


# -- durations as Go prints them --------------------------------------------------------------


def go_duration_string(ns: int) -> str:
    """Go's ``time.Duration.String`` (``"1m30s"``, ``"1.5s"``, ``"500ms"``, ``"0s"``)."""
    if ns == 0:
        return "0s"
    u = abs(ns)

    def frac(v: int, prec: int) -> tuple[str, int]:
        digits = ""
        printed = False
        for _ in range(prec):
            d = v % 10
            printed = printed or d != 0
            if printed:
                digits = str(d) + digits
            v //= 10
        return ("." + digits if printed else ""), v

    if u < 1_000_000_000:
        unit, prec = ("ns", 0) if u < 1000 else ("\u00b5s", 3) if u < 1_000_000 else ("ms", 6)
        fraction, whole = frac(u, prec)
        out = f"{whole}{fraction}{unit}"
    else:
        fraction, secs = frac(u, 9)
        out = f"{secs % 60}{fraction}s"
        minutes = secs // 60
        if minutes:
            out = f"{minutes % 60}m{out}"
            if minutes // 60:
                out = f"{minutes // 60}h{out}"
    return "-" + out if ns < 0 else out


_UNITS = ("ns", "us", "\u00b5s", "\u03bcs", "ms", "s", "m", "h")


def go_duration_error(text: str) -> str:
    """The error ``time.ParseDuration(text)`` returns for a string it refuses."""
    quoted = go_quote(text)
    rest = text[1:] if text[:1] in ("+", "-") else text
    if not rest:
        return f"time: invalid duration {quoted}"
    digits = "0123456789."
    while rest:
        number = len(rest) - len(rest.lstrip(digits))
        if number == 0 or rest[:number] == ".":
            return f"time: invalid duration {quoted}"
        rest = rest[number:]
        unit_len = next((i for i, ch in enumerate(rest) if ch in digits), len(rest))
        unit = rest[:unit_len]
        if not unit:
            return f"time: missing unit in duration {quoted}"
        if unit not in _UNITS:
            return f"time: unknown unit {go_quote(unit)} in duration {quoted}"
        rest = rest[unit_len:]
    return f"time: invalid duration {quoted}"


def health_check_durations(check: dict[str, Any]) -> dict[str, Any]:
    """CheckDefinition.HealthCheck: ``Interval``/``Timeout`` as ``time.Duration.String()``."""
    for key in ("Interval", "Timeout"):
        value = check.get(key)
        if isinstance(value, str) and value:
            check[key] = go_duration_string(round(parse_go_duration(value) * 1e9))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value:
            check[key] = go_duration_string(int(value))
    return check


# -- parsing: encoding/json's Decoder.Decode -------------------------------------------------


def _go_char(ch: str) -> str:
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    if ch.isprintable():
        return f"'{ch}'"
    return repr(ch)


def parse_go_json(raw: bytes) -> Any:
    """The first JSON value of ``raw``, as ``json.Decoder.Decode`` reads it, or BodyError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise BodyError("EOF")
    try:
        value, _ = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError as exc:
        raise BodyError(_syntax_message(exc)) from None
    return value


def _syntax_message(exc: json.JSONDecodeError) -> str:
    doc, pos = exc.doc, exc.pos
    if pos >= len(doc.rstrip(" \t\r\n")):
        return "unexpected EOF"
    ch = _go_char(doc[pos])
    msg = exc.msg
    if msg.startswith("Expecting property name"):
        return f"invalid character {ch} looking for beginning of object key string"
    if msg.startswith("Expecting ':'"):
        return f"invalid character {ch} after object key"
    if msg.startswith("Expecting ',' delimiter"):
        # Which container is open at pos decides Go's wording.
        depth: list[str] = []
        in_str = esc = False
        for c in doc[:pos]:
            if in_str:
                esc, in_str = (False, True) if esc else (c == "\\", c != '"')
            elif c == '"':
                in_str = True
            elif c in "[{":
                depth.append(c)
            elif c in "]}" and depth:
                depth.pop()
        if depth and depth[-1] == "{":
            return f"invalid character {ch} after object key:value pair"
        return f"invalid character {ch} after array element"
    if msg.startswith("Invalid control character"):
        return f"invalid character {ch} in string literal"
    if msg.startswith("Invalid \\escape") or msg.startswith("Invalid \\u"):
        return f"invalid character {ch} in string escape code"
    return f"invalid character {ch} looking for beginning of value"


# -- decoding into a spec --------------------------------------------------------------------


def decode(raw: bytes, spec: Spec) -> Any:
    """Decode ``raw`` into ``spec`` as Consul's decodeBody does; BodyError on failure."""
    value = parse_go_json(raw)
    if value is None:
        return {} if isinstance(spec, Struct) else None
    out = _decode(value, spec, _Context(struct=spec.name if isinstance(spec, Struct) else ""))
    return None if out is _MISSING else out


async def decode_body(call: Call, spec: Spec, *, prefix: str = "Request decode failed: ") -> Any:
    """Read and decode the request body; a Go decode error answers 400 ``prefix + error``."""
    try:
        return decode(await call.body(), spec)
    except BodyError as exc:
        raise ApiError(400, f"{prefix}{exc}") from None


def _decode(value: Any, spec: Spec, ctx: _Context) -> Any:
    if value is None:
        return _MISSING
    if isinstance(spec, Scalar):
        return _scalar(value, spec, ctx)
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            raise ctx.type_error(_kind(value), spec.go)
        items = (_decode(item, spec.item, ctx) for item in value)
        return [None if item is _MISSING else item for item in items]
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            raise ctx.type_error(_kind(value), spec.go)
        out: dict[str, Any] = {}
        for key, item in value.items():
            decoded = _decode(item, spec.value, ctx)
            out[key] = None if decoded is _MISSING else decoded
        return out
    return _struct(value, spec, ctx)


def _scalar(value: Any, spec: Scalar, ctx: _Context) -> Any:
    kind = spec.kind
    if kind == "any":
        return value
    if kind == "duration":
        if isinstance(value, str):
            try:
                parse_go_duration(value)
            except ValueError:
                raise BodyError(go_duration_error(value)) from None
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        return _MISSING  # Consul's UnmarshalJSON ignores any other JSON type here.
    if kind == "string":
        if not isinstance(value, str):
            raise ctx.type_error(_kind(value), spec.go)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ctx.type_error(_kind(value), spec.go)
        return value
    if kind == "bytes":
        if not isinstance(value, str):
            raise ctx.type_error(_kind(value), spec.go)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BodyError(f"illegal base64 data at input byte {_bad_b64(value)}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ctx.type_error(_kind(value), spec.go)
    if kind == "float":
        return value
    literal = json.dumps(value)
    if isinstance(value, float) and not value.is_integer():
        raise ctx.type_error(f"number {literal}", spec.go)
    number = int(value)
    if isinstance(value, float) and "e" in literal.lower():
        raise ctx.type_error(f"number {literal}", spec.go)
    limits = (0, 2**64 - 1) if kind == "uint" else (-(2**63), 2**63 - 1)
    if not limits[0] <= number <= limits[1]:
        raise ctx.type_error(f"number {literal}", spec.go)
    return number


def _bad_b64(text: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, ch in enumerate(text):
        if ch == "=":
            return i if len(text) % 4 else len(text)
        if ch not in alphabet:
            return i
    return len(text) - len(text) % 4


def _struct(value: Any, spec: Struct, ctx: _Context) -> Any:
    if spec.custom:
        # A custom UnmarshalJSON decodes its raw bytes with a fresh decoder into an
        # anonymous aux struct: its errors start from the top again.
        ctx = _Context(struct="", path=())
    if not isinstance(value, dict):
        raise ctx.type_error(_kind(value), spec.go)
    names = {**{name: name for name in spec.fields}, **{a: a for a in spec.aliases}}
    folded: dict[str, str] = {}
    for name in names:
        folded.setdefault(name.casefold(), name)
    out: dict[str, Any] = {}
    aliased: dict[str, Any] = {}
    for key, item in value.items():
        name = key if key in names else folded.get(str(key).casefold(), "")
        if not name:
            raise BodyError(f"json: unknown field {go_quote(key)}")
        target = spec.aliases.get(name)
        sub = spec.fields[target] if target is not None else spec.fields[name]
        inner = _Context(struct=spec.name, path=(*ctx.path, name))
        decoded = _decode(item, sub, inner)
        if decoded is _MISSING:
            continue
        if target is not None:
            aliased[target] = decoded
        else:
            out[name] = decoded
    for target, decoded in aliased.items():
        if not out.get(target):
            out[target] = decoded
    return out
