"""A go-bexpr compatible filter language for the dev agent's ``?filter=`` parameter.

Grammar (the subset of go-bexpr users write)::

    or    := and ("or" and)*                      keywords need whitespace around them
    and   := not ("and" not)*
    not   := "not" WS not | "(" or ")" | match
    match := selector ("==" | "!=" | "contains" | "not contains" | "matches" | "not matches") value
           | selector "is" ["not"] "empty"
           | value ["not"] "in" selector
    selector := ident ("." ident | "." digits | "[" string "]")*     ident = [A-Za-z][A-Za-z0-9_/]*
    value := "double quoted" | `raw` | number | ident ("." ident)*   (an unquoted word)

Selectors are checked against a :class:`Kind` describing the object type being filtered, as
Consul does, so an unknown field is an error. Every error is a :class:`FilterError` whose text
is Consul's ``Failed to create boolean expression evaluator: <detail>``.
Evaluation works on the JSON shapes the agent returns (dicts, lists, strings, numbers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ._parser import Bool, FilterError, Node, Op, parse

__all__ = ["Filter", "FilterError", "Kind", "compile_filter", "parse"]


KindName = Literal["str", "int", "float", "bool", "list", "map", "struct"]
T = TypeVar("T")


@dataclass(frozen=True)
class Kind:
    """The type of a filterable field: a scalar, a list of ``elem``, a string map or a struct."""

    name: KindName
    fields: Mapping[str, Kind] = field(default_factory=dict)
    elem: Kind | None = None

    @staticmethod
    def struct(**fields: Kind) -> Kind:
        """A struct with the given fields (names are Consul's JSON field names)."""
        return Kind("struct", fields=fields)

    @staticmethod
    def list_of(elem: Kind) -> Kind:
        """A list whose elements have kind ``elem``."""
        return Kind("list", elem=elem)


STR, INT, FLOAT, BOOL = Kind("str"), Kind("int"), Kind("float"), Kind("bool")
STR_LIST, STR_MAP = Kind.list_of(STR), Kind("map", elem=STR)


# --- checking and evaluation ---------------------------------------------------------------

_MISSING: Any = object()
_NEGATIVE = frozenset({"!=", "not in", "not contains", "not matches", "is empty"})
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_OPS_BY_KIND: dict[str, frozenset[str]] = {
    "str": frozenset(Op.__args__),  # type: ignore[attr-defined]
    "int": frozenset({"==", "!="}),
    "float": frozenset({"==", "!="}),
    "bool": frozenset({"==", "!="}),
    "list": frozenset({"in", "not in", "contains", "not contains", "is empty", "is not empty"}),
    "map": frozenset({"in", "not in", "contains", "not contains", "is empty", "is not empty"}),
    "struct": frozenset(),
}


def _coerce(raw: str, kind: Kind) -> Any:
    """Convert a match value to the selector's type at compile time, as go-bexpr does."""
    try:
        if kind.name == "int":
            return int(raw)
        if kind.name == "float":
            return float(raw)
    except ValueError:
        raise FilterError(f'Failed to convert match value "{raw}" to {kind.name}') from None
    if kind.name == "bool":
        if raw in _TRUE or raw in _FALSE:
            return raw in _TRUE
        raise FilterError(f'Failed to convert match value "{raw}" to bool')
    return raw


def _resolve(root: Kind, parts: tuple[str, ...]) -> Kind:
    """The kind a selector yields; a selector through a list of structs yields a list."""
    kind, fanned = root, False
    for part in parts:
        if kind.name == "struct" and part in kind.fields:
            kind = kind.fields[part]
        elif kind.name == "map":
            assert kind.elem is not None
            kind = kind.elem
        elif kind.name == "list" and kind.elem is not None and part.isdigit():
            kind = kind.elem
        elif kind.name == "list" and kind.elem is not None and part in kind.elem.fields:
            kind, fanned = kind.elem.fields[part], True
        else:
            raise FilterError(f'Selector "{".".join(parts)}" is not valid')
    return Kind.list_of(kind) if fanned and kind.name != "list" else kind


def _fetch(obj: Any, parts: Sequence[str], kind: Kind) -> Any:
    if not parts:
        if obj is None:
            return {} if kind.name == "map" else [] if kind.name == "list" else _MISSING
        return obj
    part, rest = parts[0], parts[1:]
    if kind.name == "list" and kind.elem is not None and not part.isdigit():
        if not isinstance(obj, list):
            return []
        out: list[Any] = []
        for item in obj:
            got = _fetch(item, parts, kind.elem)
            if got is _MISSING:
                continue
            out.extend(got if isinstance(got, list) and rest else [got])
        return out
    if kind.name == "list" and kind.elem is not None:
        if not isinstance(obj, list) or int(part) >= len(obj):
            return _MISSING
        return _fetch(obj[int(part)], rest, kind.elem)
    if not isinstance(obj, Mapping) or part not in obj:
        return _MISSING
    sub = kind.fields[part] if kind.name == "struct" else kind.elem
    assert sub is not None
    return _fetch(obj[part], rest, sub)


@dataclass(frozen=True)
class _Check:
    """A type-checked match: the selector's parts and kind, the operator, the coerced value."""

    parts: tuple[str, ...]
    root: Kind
    kind: Kind
    op: str
    value: Any
    pattern: re.Pattern[str] | None

    def __call__(self, obj: Any) -> bool:
        got = _fetch(obj, self.parts, self.root)
        if got is _MISSING:
            return self.op in _NEGATIVE
        positive = self.op.replace("not ", "").replace("!=", "==")
        result = self._positive(positive, got)
        return result if positive == self.op else not result

    def _positive(self, op: str, got: Any) -> bool:
        if op == "is empty":
            return len(got) == 0
        if op == "==":
            if self.kind.name in ("int", "float"):
                return isinstance(got, (int, float)) and got == self.value
            return bool(got == self.value)
        if op == "matches":
            assert self.pattern is not None
            return isinstance(got, str) and self.pattern.search(got) is not None
        if isinstance(got, str):
            return isinstance(self.value, str) and self.value in got
        return self.value in got  # list membership or map key


def _compile(node: Node, root: Kind) -> Any:
    if isinstance(node, Bool):
        subs = [_compile(arg, root) for arg in node.args]
        if node.op == "not":
            return lambda obj: not subs[0](obj)
        if node.op == "and":
            return lambda obj: all(sub(obj) for sub in subs)
        return lambda obj: any(sub(obj) for sub in subs)
    kind = _resolve(root, node.selector)
    if node.op not in _OPS_BY_KIND[kind.name]:
        selector = ".".join(node.selector)
        raise FilterError(f'Invalid match operator "{node.op}" for selector "{selector}"')
    value: Any = None
    pattern = None
    if node.value is not None:
        target = kind.elem if kind.name == "list" and kind.elem is not None else kind
        value = _coerce(node.value, STR if kind.name == "map" else target)
    if node.op in ("matches", "not matches"):
        try:
            pattern = re.compile(str(value))
        except re.error as exc:
            raise FilterError(f"Failed to compile regular expression {value!r}: {exc}") from None
    return _Check(node.selector, root, kind, node.op, value, pattern)


class Filter:
    """A compiled filter: call it on one object, or ``select`` from a sequence."""

    def __init__(self, expression: str, kind: Kind) -> None:
        self.expression = expression
        self._test: Any = (
            (lambda obj: True) if not expression.strip() else _compile(parse(expression), kind)
        )

    def __call__(self, obj: Any) -> bool:
        return bool(self._test(obj))

    def select(self, items: Iterable[T]) -> list[T]:
        """The items the expression accepts, in their original order."""
        return [item for item in items if self._test(item)]


def compile_filter(expression: str, kind: Kind) -> Filter:
    """Parse and type-check ``expression`` against ``kind``; an empty expression accepts all.

    Raises :class:`FilterError` (Consul answers it with HTTP 500 and ``str(error)``).
    """
    return Filter(expression, kind)


# --- the Consul shapes the dev agent filters ----------------------------------------------

_WEIGHTS = Kind.struct(Passing=INT, Warning=INT)
NODE = Kind.struct(
    ID=STR, Node=STR, Address=STR, Datacenter=STR, TaggedAddresses=STR_MAP, Meta=STR_MAP,
    CreateIndex=INT, ModifyIndex=INT,
)  # fmt: skip
CATALOG_SERVICE = Kind.struct(
    ID=STR, Node=STR, Address=STR, Datacenter=STR, TaggedAddresses=STR_MAP, NodeMeta=STR_MAP,
    ServiceKind=STR, ServiceID=STR, ServiceName=STR, ServiceTags=STR_LIST, ServiceAddress=STR,
    ServiceMeta=STR_MAP, ServicePort=INT, ServiceWeights=_WEIGHTS, ServiceEnableTagOverride=BOOL,
    CreateIndex=INT, ModifyIndex=INT,
)  # fmt: skip
AGENT_SERVICE = Kind.struct(
    Kind=STR, ID=STR, Service=STR, Tags=STR_LIST, Meta=STR_MAP, Port=INT, Address=STR,
    Weights=_WEIGHTS, EnableTagOverride=BOOL, Datacenter=STR, CreateIndex=INT, ModifyIndex=INT,
)  # fmt: skip
HEALTH_CHECK = Kind.struct(
    Node=STR, CheckID=STR, Name=STR, Status=STR, Notes=STR, Output=STR, ServiceID=STR,
    ServiceName=STR, ServiceTags=STR_LIST, Type=STR, CreateIndex=INT, ModifyIndex=INT,
)  # fmt: skip
SERVICE_ENTRY = Kind.struct(Node=NODE, Service=AGENT_SERVICE, Checks=Kind.list_of(HEALTH_CHECK))
MEMBER = Kind.struct(
    Name=STR, Addr=STR, Port=INT, Tags=STR_MAP, Status=INT, ProtocolMin=INT, ProtocolMax=INT,
    ProtocolCur=INT, DelegateMin=INT, DelegateMax=INT, DelegateCur=INT,
)  # fmt: skip
