"""Command-line flags parsed the way Go's ``flag`` package parses them (as ``consul`` does).

``-name=value``, ``-name value``, ``--name=value`` and ``--name value`` are one flag; a boolean
flag takes no separate value (``-recurse``, ``-recurse=false``); parsing stops at the first
argument that is not a flag (``-`` alone is not a flag) or after ``--``, and everything after it
is a positional argument (a watch handler's own flags stay the handler's). The errors are Go's
messages (``flag provided but not defined: -x``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FlagError", "FlagSet", "HelpRequested", "parse_go_bool", "parse_go_uint"]

# strconv.ParseBool
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_GO_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+|[1-9][0-9_]*|0)")


def _quote(text: str) -> str:
    """Go's ``%q``, near enough: double quotes, escapes for what is not printable ASCII."""
    return json.dumps(text)


class FlagError(Exception):
    """A flag could not be parsed; the message is Go's."""


class HelpRequested(Exception):
    """``-h``/``-help`` was given."""


def parse_go_bool(text: str) -> bool:
    """``strconv.ParseBool``: 1 t T TRUE true True, 0 f F FALSE false False."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("parse error")


def _parse_go_int(text: str) -> int:
    """``strconv.ParseInt(s, 0, 64)``: decimal, 0x hex, 0o/0 octal, 0b binary."""
    if not _GO_INT.fullmatch(text) or "__" in text or text.endswith("_"):
        raise ValueError("parse error")
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-").replace("_", "")
    if len(body) > 1 and body[0] == "0" and body[1] in "01234567":
        value = int(body[1:], 8)  # Go's leading-zero octal
    else:
        value = int(body, 0)
    value *= sign
    if not -(2**63) <= value < 2**63:
        raise ValueError("value out of range")
    return value


def parse_go_uint(text: str) -> int:
    """``strconv.ParseUint(s, 0, 64)``."""
    if text.startswith(("-", "+")):
        raise ValueError("parse error")
    value = _parse_go_int(text) if len(text) < 30 else -1
    if not 0 <= value < 2**64:
        raise ValueError("value out of range")
    return value


@dataclass
class _Flag:
    name: str
    kind: str  # "string", "bool", "int", "uint", "strings" (repeatable), "optbool"
    default: Any
    help: str
    dest: str
    extra: bool  # one of our additions, not a consul flag


@dataclass
class FlagSet:
    """A set of flags for one sub-command; :meth:`parse` returns ``(values, positional)``."""

    usage: str
    flags: dict[str, _Flag] = field(default_factory=dict)

    def add(
        self,
        name: str,
        kind: str = "string",
        default: Any = None,
        help: str = "",
        *,
        dest: str | None = None,
        aliases: Sequence[str] = (),
        extra: bool = False,
    ) -> None:
        if default is None:
            default = {"bool": False, "strings": (), "optbool": None}.get(kind, default)
        flag = _Flag(name, kind, default, help, dest or name.replace("-", "_"), extra)
        for spelling in (name, *aliases):
            self.flags[spelling] = flag

    def parse(self, args: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
        """Go's ``FlagSet.Parse``: flags first, then positional arguments."""
        values: dict[str, Any] = {f.dest: f.default for f in self.flags.values()}
        values["_set"] = set()
        rest = list(args)
        while rest:
            arg = rest[0]
            if len(arg) < 2 or not arg.startswith("-"):
                break
            rest.pop(0)
            if arg == "--":
                break
            name = arg[2:] if arg.startswith("--") else arg[1:]
            if not name or name[0] in "-=":
                raise FlagError(f"bad flag syntax: {arg}")
            name, has_value, value = name.partition("=")
            flag = self.flags.get(name)
            if flag is None:
                if name in ("h", "help"):
                    raise HelpRequested
                raise FlagError(f"flag provided but not defined: -{name}")
            if flag.kind == "bool":
                self._set(values, flag, value if has_value else "true")
                continue
            if flag.kind == "optbool":
                # consul's -passingonly is a string flag holding a bool: `-passingonly true`
                # works there; a bare `-passingonly` (true) is our addition.
                if not has_value and rest and rest[0] in _TRUE | _FALSE:
                    value, has_value = rest.pop(0), "="
                self._set(values, flag, value if has_value else "true")
                continue
            if not has_value:
                if not rest:
                    raise FlagError(f"flag needs an argument: -{name}")
                value = rest.pop(0)
            self._set(values, flag, value)
        return values, rest

    def _set(self, values: dict[str, Any], flag: _Flag, text: str) -> None:
        convert: Callable[[str], Any] = {
            "bool": parse_go_bool,
            "optbool": parse_go_bool,
            "int": _parse_go_int,
            "uint": parse_go_uint,
        }.get(flag.kind, str)
        try:
            value = convert(text)
        except ValueError as exc:
            if flag.kind in ("bool", "optbool"):
                msg = f"invalid boolean value {_quote(text)} for -{flag.name}: {exc}"
            else:
                msg = f"invalid value {_quote(text)} for flag -{flag.name}: {exc}"
            raise FlagError(msg) from None
        if flag.kind == "strings":
            values[flag.dest] = (*values[flag.dest], value)
        else:
            values[flag.dest] = value
        values["_set"].add(flag.dest)

    def help_text(self) -> str:
        """The usage line and one line per flag; our additions are marked ``[+]``."""
        lines = [self.usage, ""]
        seen: set[str] = set()
        for flag in self.flags.values():
            if flag.name in seen:
                continue
            seen.add(flag.name)
            arg = "" if flag.kind == "bool" else "=<value>"
            mark = " [+]" if flag.extra else ""
            lines.append(f"  -{flag.name}{arg}{mark}")
            if flag.help:
                lines.append(f"      {flag.help}")
        if any(f.extra for f in self.flags.values()):
            lines += ["", "[+] an addition of consul-streams; consul does not have this flag."]
        return "\n".join(lines)
