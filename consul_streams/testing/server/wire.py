"""HTTP building blocks of the dev agent: config, the per-request Call, errors and bodies.

Endpoint handlers receive a :class:`Call`, raise :class:`ApiError` for plain-text errors
(Consul writes them with ``fmt.Fprint``: no JSON, no trailing newline unless given) and build
success bodies with :func:`json_response`, which indents JSON the way ``consul agent -dev``
does (4 spaces and a trailing newline, which ``?pretty`` also asks for).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

if TYPE_CHECKING:
    from ..state.store import StateStore

__all__ = [
    "JSON_TYPE",
    "TEXT_TYPE",
    "AgentConfig",
    "ApiError",
    "Call",
    "dump_json",
    "empty_response",
    "error_response",
    "json_response",
    "meta_headers",
]

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass
class AgentConfig:
    """Knobs of one dev agent (the subset of Consul's agent config it honours)."""

    node_name: str = "dev"
    datacenter: str = "dc1"
    jitter: bool = True
    acl_default_policy: str = "allow"
    management_token: str | None = field(default=None, repr=False)
    default_query_time: float = 300.0
    max_query_time: float = 600.0
    kv_max_value_size: int = 524288
    http_max_conns_per_client: int = 200
    session_ttl_min: float = 10.0
    time_scale: float = 1.0
    enable_script_checks: bool = True
    translate_wan_addrs: bool = False
    #: Seconds a Raft-backed write waits before it applies (a dev agent's commit latency).
    commit_delay: float = 0.0
    tokens: set[str] = field(default_factory=set, repr=False)
    #: ``telemetry.prometheus_retention_time`` in seconds; 0 (dev default) = no Prometheus.
    prometheus_retention_time: float = 0.0


class ApiError(Exception):
    """An error answer: ``status`` with the plain-text ``text`` body (exactly as given)."""

    def __init__(self, status: int, text: str, headers: Mapping[str, str] | None = None):
        super().__init__(status, text)
        self.status = status
        self.text = text
        self.headers = dict(headers or {})


@dataclass(slots=True)
class Call:
    """One request as seen by an endpoint handler."""

    request: web.BaseRequest
    store: StateStore
    config: AgentConfig
    #: The path after the route's prefix (``"a/b"`` for ``/v1/kv/a/b``); ``""`` for exact routes.
    suffix: str = ""
    #: The ACL token of the request (query ``token``, ``X-Consul-Token``, or Bearer), or None.
    token: str | None = field(default=None, repr=False)

    @property
    def query(self) -> Mapping[str, str]:
        """The query string (first value of each key; presence flags map to ``""``)."""
        return self.request.query

    def flag(self, name: str) -> bool:
        """Whether presence flag ``name`` is set (whatever its value, as in Consul)."""
        return name in self.request.query

    @property
    def pretty(self) -> bool:
        return "pretty" in self.request.query

    def required_suffix(self, missing: str) -> str:
        """The path suffix (a key, name or ID); an empty one answers 400 ``missing``."""
        if not self.suffix:
            raise ApiError(400, missing)
        return self.suffix

    async def body(self) -> bytes:
        """The request body (empty for GET, whose bodies Consul ignores)."""
        if self.request.method == "GET":
            return b""
        return await self.request.read()


_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def dump_json(data: Any, *, pretty: bool = False) -> bytes:
    """Serialise like dev mode: ``json.MarshalIndent(v, "", "    ")`` + ``"\n"``, HTML-escaped.

    Dev mode formats every answer as ``?pretty`` does (agent/http.go marshalJSON), so
    ``pretty`` changes nothing. msgspec encodes and indents in C (about 40x
    ``json.dumps(indent=4)``, whose indenting encoder is pure Python: it was most of the time a
    woken blocking query took), and writes small floats as Go does (``0.00001``, not
    ``1e-05``).
    """
    text = msgspec.json.format(msgspec.json.encode(data), indent=4)
    # Go escapes these inside strings; they can only occur inside strings in JSON text.
    if b"<" in text or b">" in text or b"&" in text or b"\xe2\x80" in text:
        for raw, escaped in _GO_ESCAPES:
            text = text.replace(raw, escaped)
    return text + b"\n"


_SCALARS = {True: b"true\n", False: b"false\n"}


def meta_headers(index: int) -> dict[str, str]:
    """Consul's query-meta headers (wire casing); the index is never 0."""
    return {
        "X-Consul-Index": str(max(1, index)),
        "X-Consul-Knownleader": "true",
        "X-Consul-Lastcontact": "0",
        "X-Consul-Query-Backend": "blocking-query",
    }


def json_response(
    call: Call,
    data: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A JSON success (or 409 txn) response, indented as in dev mode."""
    hdrs = {"Content-Type": JSON_TYPE}
    if headers:
        hdrs.update(headers)
    # Dev mode indents every answer alike (``?pretty`` changes nothing); a write's bare
    # ``true``/``false`` answer needs no encoder.
    body = _SCALARS.get(data) if type(data) is bool else None
    if body is None:
        body = dump_json(data)
    return web.Response(status=status, body=body, headers=hdrs)


def empty_response(status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A body-less answer (agent writes, KV 404): no Content-Type, Content-Length 0."""
    resp = web.Response(status=status, body=b"", headers=dict(headers or {}))
    resp.content_type = "application/octet-stream"
    del resp.headers["Content-Type"]
    return resp


def error_response(error: ApiError) -> web.Response:
    """The plain-text error answer Consul writes for ``error``."""
    hdrs = {"Content-Type": TEXT_TYPE}
    hdrs.update(error.headers)
    return web.Response(status=error.status, body=error.text.encode(), headers=hdrs)
