"""The parser of the dev agent's bexpr filter language (see :mod:`.bexpr` for the grammar).

A PEG-style recursive-descent parser with ordered choice and backtracking, like go-bexpr's
generated parser: a syntax error reports the farthest offset reached, as pigeon does
(``1:10 (9): no match found, ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["PREFIX", "Bool", "FilterError", "Match", "Node", "Op", "parse"]

PREFIX = "Failed to create boolean expression evaluator: "


class FilterError(Exception):
    """A filter expression that does not parse or does not fit the filtered type."""

    def __init__(self, detail: str) -> None:
        super().__init__(PREFIX + detail)
        self.detail = detail


_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_/]*")
_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?=[ \t\r\n)]|$)")
_NUMBER_PREFIX = re.compile(r"-?[0-9]")
_WS = re.compile(r"[ \t\r\n]+")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPES["\\"] = "\\"

Op = Literal["==", "!=", "contains", "not contains", "matches", "not matches", "in", "not in",
             "is empty", "is not empty"]  # fmt: skip


@dataclass(frozen=True)
class Match:
    """``selector op value`` (``value`` is None for the emptiness operators)."""

    selector: tuple[str, ...]
    op: Op
    value: str | None


@dataclass(frozen=True)
class Bool:
    """``and``/``or`` over two or more operands, or ``not`` over one."""

    op: Literal["and", "or", "not"]
    args: tuple[Node, ...]


Node = Match | Bool


class _Fail(Exception):
    """Internal backtracking signal; carries nothing, the parser tracks the farthest offset."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.farthest = 0
        self.fatal: str | None = None

    def fail(self) -> _Fail:
        self.farthest = max(self.farthest, self.pos)
        return _Fail()

    def ws(self, required: bool = False) -> None:
        m = _WS.match(self.text, self.pos)
        if m:
            self.pos = m.end()
        elif required:
            raise self.fail()

    def lit(self, word: str, *, keyword: bool = False) -> None:
        if not self.text.startswith(word, self.pos):
            raise self.fail()
        end = self.pos + len(word)
        if (
            keyword
            and end < len(self.text)
            and (self.text[end].isalnum() or self.text[end] in "_/")
        ):
            raise self.fail()
        self.pos = end

    def attempt(self, *alternatives: Any) -> Any:
        """Ordered choice: the first alternative that parses wins (PEG semantics)."""
        start = self.pos
        for alt in alternatives:
            try:
                return alt()
            except _Fail:
                self.pos = start
        raise self.fail()

    def parse(self) -> Node:
        try:
            self.ws()
            node = self.or_expr()
            self.ws()
            if self.pos != len(self.text):
                raise self.fail()
            return node
        except _Fail:
            if self.fatal is not None:
                raise FilterError(self.fatal) from None
            off = self.farthest
            col = len(self.text[:off].rsplit("\n", 1)[-1]) + 1
            line = self.text.count("\n", 0, off) + 1
            found = repr(self.text[off]) if off < len(self.text) else "EOF"
            raise FilterError(f"{line}:{col} ({off}): no match found, unexpected {found}") from None

    def chain(self, sub: Any, word: Literal["and", "or"]) -> Node:
        args = [sub()]
        while True:
            start = self.pos
            try:
                self.ws(required=True)
                self.lit(word, keyword=True)
                self.ws(required=True)
                args.append(sub())
            except _Fail:
                self.pos = start
                break
        return args[0] if len(args) == 1 else Bool(word, tuple(args))

    def or_expr(self) -> Node:
        return self.chain(self.and_expr, "or")

    def and_expr(self) -> Node:
        return self.chain(self.not_expr, "and")

    def not_expr(self) -> Node:
        def negation() -> Node:
            self.lit("not", keyword=True)
            self.ws(required=True)
            return Bool("not", (self.not_expr(),))

        def paren() -> Node:
            self.lit("(")
            self.ws()
            inner = self.or_expr()
            self.ws()
            self.lit(")")
            return inner

        node: Node = self.attempt(negation, paren, self.match_expr)
        return node

    def match_expr(self) -> Match:
        def selector_op_value() -> Match:
            sel = self.selector()
            op: Op = self.attempt(
                lambda: self.op_symbol("=="),
                lambda: self.op_symbol("!="),
                lambda: self.op_words("contains"),
                lambda: self.op_words("not", "contains"),
                lambda: self.op_words("matches"),
                lambda: self.op_words("not", "matches"),
            )
            return Match(sel, op, self.value())

        def selector_is_empty() -> Match:
            sel = self.selector()
            op: Op = self.attempt(
                lambda: self.op_words("is", "empty", trailing=False),
                lambda: self.op_words("is", "not", "empty", trailing=False),
            )
            return Match(sel, op, None)

        def value_in_selector() -> Match:
            value = self.value()
            op: Op = self.attempt(lambda: self.op_words("in"), lambda: self.op_words("not", "in"))
            try:
                sel = self.selector()
            except _Fail:
                self.fatal = "Invalid selector"
                raise
            return Match(sel, op, value)

        result: Match = self.attempt(selector_op_value, selector_is_empty, value_in_selector)
        return result

    def op_symbol(self, symbol: Literal["==", "!="]) -> Op:
        self.ws()
        self.lit(symbol)
        self.ws()
        return symbol

    def op_words(self, *words: str, trailing: bool = True) -> Any:
        for word in words:
            self.ws(required=True)
            self.lit(word, keyword=True)
        if trailing:
            self.ws(required=True)
        return " ".join(words)

    def ident(self) -> str:
        m = _IDENT.match(self.text, self.pos)
        if not m:
            raise self.fail()
        self.pos = m.end()
        return m.group()

    def selector(self) -> tuple[str, ...]:
        parts = [self.ident()]
        while True:
            start = self.pos
            try:
                if self.text.startswith(".", self.pos):
                    self.pos += 1
                    m = _DIGITS.match(self.text, self.pos)
                    if m:
                        self.pos = m.end()
                        parts.append(m.group())
                    else:
                        parts.append(self.ident())
                elif self.text.startswith("[", self.pos):
                    self.pos += 1
                    self.ws()
                    parts.append(self.string())
                    self.ws()
                    self.lit("]")
                else:
                    break
            except _Fail:
                self.pos = start
                break
        return tuple(parts)

    def value(self) -> str:
        start = self.pos
        try:
            return ".".join(self.selector())
        except _Fail:
            self.pos = start
        m = _NUMBER.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            return m.group()
        if _NUMBER_PREFIX.match(self.text, self.pos):
            # A number glued to other characters ("80abc"): go-bexpr's own error.
            col = self.pos + 1
            self.fatal = f"1:{col} ({self.pos}): rule number: Invalid number literal"
            raise self.fail()
        return self.string()

    def string(self) -> str:
        text, pos = self.text, self.pos
        if pos < len(text) and text[pos] == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                self.fatal = "Unterminated string literal"
                raise self.fail()
            self.pos = end + 1
            return text[pos + 1 : end]
        if pos >= len(text) or text[pos] != '"':
            raise self.fail()
        # As in go-bexpr's grammar the literal ends at the first '"' (so \" cannot appear
        # inside); the content is then unquoted with Go's rules (strconv.Unquote).
        end = text.find('"', pos + 1)
        if end < 0:
            self.fatal = "Unterminated string literal"
            raise self.fail()
        value = _go_unquote(text[pos + 1 : end])
        if value is None:
            line, col = self.text.count("\n", 0, pos) + 1, pos + 1
            self.fatal = f"{line}:{col} ({pos}): rule string: invalid syntax"
            raise self.fail()
        self.pos = end + 1
        return value


_GO_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\])|x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|([0-7]{3}))"
)


def _go_unquote(body: str) -> str | None:
    """The content of a Go double-quoted literal, or None when an escape is invalid."""
    out: list[str] = []
    pos = 0
    while pos < len(body):
        slash = body.find("\\", pos)
        if slash < 0:
            out.append(body[pos:])
            break
        out.append(body[pos:slash])
        m = _GO_ESCAPE.match(body, slash)
        if m is None:
            return None
        simple, hex2, hex4, hex8, octal = m.groups()
        if simple is not None:
            out.append(_ESCAPES[simple])
        else:
            code = int(hex2 or hex4 or hex8, 16) if octal is None else int(octal, 8)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                return None
            out.append(chr(code))
        pos = m.end()
    return "".join(out)


def parse(expression: str) -> Node:
    """Parse ``expression`` into a tree; raises :class:`FilterError` on a syntax error."""
    return _Parser(expression).parse()
