"""What every agent-facing sub-command shares: consul's HTTP flags, connecting, printing."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from consul_streams.cli._goflags import FlagSet

if TYPE_CHECKING:
    from consul_streams._client import Consul

__all__ = [
    "DEFAULT_ADDR",
    "add_http_flags",
    "connect",
    "jsonable",
    "out_bytes",
    "out_line",
    "render",
    "resolve_address",
]

DEFAULT_ADDR = "127.0.0.1:8500"


def add_http_flags(flags: FlagSet, *, server: bool = True) -> None:
    """consul's ``flags.HTTPFlags``: the client flags, and ``-datacenter``/``-stale``."""
    flags.add("http-addr", help="agent address (env CONSUL_HTTP_ADDR; default 127.0.0.1:8500)")
    flags.add("token", help="ACL token (env CONSUL_HTTP_TOKEN)")
    flags.add("token-file", help="file holding the ACL token; wins over a token, as in consul")
    flags.add("ca-file", help="CA bundle to verify the agent (env CONSUL_CACERT)")
    flags.add("ca-path", help="directory of CA certificates (env CONSUL_CAPATH)")
    flags.add("client-cert", help="client certificate (env CONSUL_CLIENT_CERT)")
    flags.add("client-key", help="client certificate's key (env CONSUL_CLIENT_KEY)")
    flags.add("tls-server-name", help="server name to verify (env CONSUL_TLS_SERVER_NAME)")
    if server:
        flags.add("datacenter", help="datacenter to query (default: the agent's)")
        flags.add("stale", "bool", help="allow any server to answer (stale reads)")


def resolve_address(values: Mapping[str, Any]) -> str:
    """The agent address: the flag, else ``CONSUL_HTTP_ADDR``, else ``127.0.0.1:8500``."""
    return str(values.get("http_addr") or os.environ.get("CONSUL_HTTP_ADDR") or DEFAULT_ADDR)


def connect(values: Mapping[str, Any]) -> Consul:
    """A client from the HTTP flags and the ``CONSUL_*`` variables, as ``api.NewClient`` builds
    one: a flag wins over its variable, and a token file (flag or ``CONSUL_HTTP_TOKEN_FILE``)
    wins over a token (flag or ``CONSUL_HTTP_TOKEN``) unless it is empty."""
    from consul_streams._client import Consul

    token_file = values.get("token_file") or os.environ.get("CONSUL_HTTP_TOKEN_FILE") or None
    return Consul.from_env(
        address=values.get("http_addr") or None,
        token=values.get("token") or None,
        token_file=token_file,
        datacenter=values.get("datacenter") or None,
        consistency="stale" if values.get("stale") else None,
        ca_file=values.get("ca_file") or None,
        ca_path=values.get("ca_path") or None,
        cert=values.get("client_cert") or None,
        key=values.get("client_key") or None,
        tls_server_name=values.get("tls_server_name") or None,
    )


def out_bytes(data: bytes) -> None:
    """Raw bytes on stdout, as Go's ``UI.Info`` writes a value (no re-encoding)."""
    sys.stdout.flush()
    try:
        sys.stdout.buffer.write(data)
    except AttributeError:  # a text-only stream (pytest's capsys)
        sys.stdout.write(data.decode("utf-8", "surrogateescape"))
    sys.stdout.flush()


def out_line(text: str | bytes) -> None:
    """One line on stdout; text that came from a non-UTF-8 argument keeps its bytes."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    out_bytes(data + b"\n")


def _text_or_base64(raw: bytes) -> Any:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Binary values cannot go in JSON as text; say so instead of mangling them.
        return {"base64": base64.b64encode(raw).decode("ascii")}


def jsonable(value: Any) -> Any:
    """Consul's values made JSON-ready: bytes (KV values, event payloads) decoded as text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _text_or_base64(bytes(value))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def render(value: Any, fmt: str) -> str:
    """Decoded values: one JSON line (``json``) or an indented document (``pretty``)."""
    if fmt == "pretty":
        return json.dumps(jsonable(value), indent=2, sort_keys=True)
    return json.dumps(jsonable(value), separators=(",", ":"), sort_keys=True)
