"""Fault injection for the dev agent: make it misbehave the ways real networks and Consul do.

Every method adds a :class:`Fault` rule and returns it; ``rule.cancel()`` removes it early.
Rules with a count expire after that many matching requests. ``path`` is a regular expression
matched at the start of the request path (so a plain prefix such as ``"/v1/kv/"`` works) and
``method`` an HTTP method; both default to "any".

Rules cannot leak out of a test: ``with agent.faults.scope(): ...`` removes the rules added
inside it on exit, and the agent clears all rules when its ``async with`` block ends.

Example::

    async with DevAgent() as agent:
        agent.faults.fail_next(2, status=503, body="No cluster leader", path="/v1/kv/")
        agent.faults.delay(0.2, path="/v1/status/")
        with agent.faults.scope():
            agent.faults.drop_connection(1, method="GET")
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web

from ..exceptions import InvalidArgument

__all__ = ["Fault", "Faults"]

_MALFORMED = b'[{"Key": "truncated", "Value": '


class _Closing(web.StreamResponse):
    """A 'response' that writes ``raw`` bytes straight to the socket and closes it."""

    def __init__(self, raw: bytes) -> None:
        super().__init__()
        self._raw = raw

    async def prepare(self, request: web.BaseRequest) -> None:
        transport = request.transport
        if transport is not None:
            if self._raw:
                transport.write(self._raw)
            transport.close()
        # aiohttp treats a ConnectionError here as "client went away" and stays quiet.
        raise ConnectionResetError("connection dropped by fault injection")


@dataclass(eq=False)
class Fault:
    """One injected misbehaviour; matching requests consume it until ``remaining`` hits 0."""

    kind: str
    remaining: int | None = 1
    path: re.Pattern[str] | None = None
    method: str | None = None
    status: int = 500
    body: str = ""
    seconds: float = 0.0
    token: str | None = field(default=None, repr=False)
    hits: int = 0
    _owner: Faults | None = field(default=None, repr=False)

    def matches(self, request: web.BaseRequest) -> bool:
        """Whether this rule applies to ``request`` (path regex and method)."""
        if self.method is not None and request.method != self.method:
            return False
        return self.path is None or self.path.match(request.path) is not None

    def consume(self) -> None:
        """Count one use; the rule removes itself when exhausted."""
        self.hits += 1
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.cancel()

    def cancel(self) -> None:
        """Remove this rule from its agent."""
        if self._owner is not None:
            self._owner._remove(self)


class Faults:
    """The fault rules of one dev agent (``agent.faults``)."""

    def __init__(self, shift_indexes: Callable[[int], None] | None = None) -> None:
        self._rules: list[Fault] = []
        self._scopes: list[list[Fault]] = []
        self._shift = shift_indexes

    @property
    def active(self) -> list[Fault]:
        """The rules still in force."""
        return list(self._rules)

    @property
    def armed(self) -> bool:
        """Whether any rule is in force (the dispatcher skips both hooks when none is)."""
        return bool(self._rules)

    def _add(self, rule: Fault) -> Fault:
        count = rule.remaining
        if count is not None and (
            not isinstance(count, int) or isinstance(count, bool) or count < 1
        ):
            raise InvalidArgument(
                "n", f"must be a positive int (or None where allowed), got {count!r}"
            )
        if not isinstance(rule.status, int) or not 100 <= rule.status <= 599:
            raise InvalidArgument("status", f"must be an HTTP status 100..599, got {rule.status!r}")
        if not isinstance(rule.seconds, (int, float)) or rule.seconds < 0:
            raise InvalidArgument("seconds", f"must be a number >= 0, got {rule.seconds!r}")
        if rule.method is not None and (
            not isinstance(rule.method, str) or rule.method.upper() != rule.method
        ):
            raise InvalidArgument(
                "method", f"must be an upper-case HTTP method, got {rule.method!r}"
            )
        rule._owner = self
        self._rules.append(rule)
        for scope in self._scopes:
            scope.append(rule)
        return rule

    def _remove(self, rule: Fault) -> None:
        if rule in self._rules:
            self._rules.remove(rule)

    def clear(self) -> None:
        """Remove every rule."""
        self._rules.clear()

    @contextmanager
    def scope(self) -> Iterator[Faults]:
        """Remove, on exit, every rule added inside the ``with`` block."""
        added: list[Fault] = []
        self._scopes.append(added)
        try:
            yield self
        finally:
            self._scopes.remove(added)
            for rule in added:
                self._remove(rule)

    @staticmethod
    def _pattern(path: str | None) -> re.Pattern[str] | None:
        if path is None:
            return None
        if not isinstance(path, str):
            raise InvalidArgument("path", f"must be a regex or path prefix string, got {path!r}")
        try:
            return re.compile(path)
        except re.error as exc:
            raise InvalidArgument("path", f"is not a valid regular expression: {exc}") from None

    # -- rules applied before the endpoint runs -------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        body: str = "",
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """Answer the next ``n`` matching requests with ``status`` and plain-text ``body``."""
        return self._add(Fault("fail", n, self._pattern(path), method, status=status, body=body))

    def delay(
        self,
        seconds: float,
        *,
        count: int | None = None,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """Hold matching requests ``seconds`` before handling them (``count=None``: all)."""
        return self._add(Fault("delay", count, self._pattern(path), method, seconds=seconds))

    def drop_connection(
        self, n: int = 1, *, path: str | None = None, method: str | None = None
    ) -> Fault:
        """Close the connection of the next ``n`` matching requests without any response."""
        return self._add(Fault("drop", n, self._pattern(path), method))

    def reject_token(self, token: str, *, path: str | None = None) -> Fault:
        """Answer 403 ``ACL not found`` to requests carrying ``token`` until ``rule.cancel()``.

        Models a token that is not yet replicated: cancel the rule to make it valid.
        """
        return self._add(Fault("token", None, self._pattern(path), None, token=token))

    # -- rules applied to the endpoint's answer ----------------------------------------------

    def malformed_json(
        self, n: int = 1, *, path: str | None = None, method: str | None = None
    ) -> Fault:
        """Replace the body of the next ``n`` matching answers with broken JSON."""
        return self._add(Fault("malformed", n, self._pattern(path), method))

    def truncate_body(
        self, n: int = 1, *, path: str | None = None, method: str | None = None
    ) -> Fault:
        """Send a Content-Length larger than the body actually sent, then close."""
        return self._add(Fault("truncate", n, self._pattern(path), method))

    def strip_index(
        self, n: int | None = None, *, path: str | None = None, method: str | None = None
    ) -> Fault:
        """Remove ``X-Consul-Index`` from matching answers (``n=None``: all)."""
        return self._add(Fault("strip_index", n, self._pattern(path), method))

    def zero_index(
        self, n: int | None = None, *, path: str | None = None, method: str | None = None
    ) -> Fault:
        """Send ``X-Consul-Index: 0`` on matching answers (``n=None``: all)."""
        return self._add(Fault("zero_index", n, self._pattern(path), method))

    def index_backwards(self, by: int) -> None:
        """Restore a snapshot with every index ``by`` lower (data kept; blocked queries wake)."""
        if not isinstance(by, int) or isinstance(by, bool) or by < 1:
            raise InvalidArgument("by", f"must be a positive int, got {by!r}")
        if self._shift is not None:
            self._shift(-by)

    # -- hooks called by the dispatcher ----------------------------------------------------------

    def _take(self, request: web.BaseRequest, kinds: tuple[str, ...]) -> list[Fault]:
        return [r for r in list(self._rules) if r.kind in kinds and r.matches(request)]

    async def before(
        self, request: web.BaseRequest, token: str | None
    ) -> web.StreamResponse | None:
        """Apply request-side rules; a returned response replaces the endpoint's answer."""
        if not self._rules:
            return None
        for rule in self._take(request, ("delay", "fail", "drop", "token")):
            if rule.kind == "delay":
                rule.consume()
                await asyncio.sleep(rule.seconds)
            elif rule.kind == "token":
                if token == rule.token:
                    rule.hits += 1
                    return _text(403, "ACL not found")
            elif rule.kind == "fail":
                rule.consume()
                return _text(rule.status, rule.body)
            else:
                rule.consume()
                return _Closing(b"")
        return None

    async def after(
        self, request: web.BaseRequest, response: web.StreamResponse
    ) -> web.StreamResponse:
        """Apply answer-side rules to ``response``."""
        if not self._rules:
            return response
        for rule in self._take(request, ("strip_index", "zero_index", "malformed", "truncate")):
            rule.consume()
            if rule.kind == "strip_index":
                response.headers.pop("X-Consul-Index", None)
            elif rule.kind == "zero_index":
                response.headers["X-Consul-Index"] = "0"
            elif rule.kind == "malformed" and isinstance(response, web.Response):
                response.body = _MALFORMED
            elif rule.kind == "truncate" and isinstance(response, web.Response):
                return _Closing(_truncated(response))
        return response


def _text(status: int, body: str) -> web.Response:
    return web.Response(
        status=status, body=body.encode(), headers={"Content-Type": "text/plain; charset=utf-8"}
    )


def _truncated(response: web.Response) -> bytes:
    """The head of ``response`` promising more bytes than the half body that follows."""
    body = bytes(response.body) if isinstance(response.body, (bytes, bytearray)) else b""
    head = [f"HTTP/1.1 {response.status} {response.reason}"]
    for name, value in response.headers.items():
        if name.lower() not in ("content-length", "transfer-encoding"):
            head.append(f"{name}: {value}")
    head.append(f"Content-Length: {len(body) + 64}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body[: len(body) // 2]
