"""What every agent-facing sub-command shares: connecting, and printing Consul's values."""

from __future__ import annotations

import argparse
import base64
import json
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from consul_streams._client import Consul

__all__ = ["DEFAULT_ADDR", "connect", "jsonable", "render", "resolve_address"]

DEFAULT_ADDR = "127.0.0.1:8500"


def resolve_address(args: argparse.Namespace) -> str:
    """The agent address: the flag, else ``CONSUL_HTTP_ADDR``, else ``127.0.0.1:8500``."""
    return str(args.http_addr or os.environ.get("CONSUL_HTTP_ADDR") or DEFAULT_ADDR)


def connect(args: argparse.Namespace) -> Consul:
    """A client from the common flags; a flag wins over its ``CONSUL_*`` environment variable
    (``CONSUL_HTTP_ADDR``, ``CONSUL_HTTP_TOKEN``, ``CONSUL_HTTP_TOKEN_FILE``, TLS settings)."""
    from consul_streams._client import Consul

    return Consul.from_env(
        address=args.http_addr or None,
        token=args.token or None,
        token_file=args.token_file or None,
        datacenter=args.datacenter or None,
    )


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
    """One JSON line (``json``) or an indented document (``pretty``)."""
    if fmt == "pretty":
        return json.dumps(jsonable(value), indent=2, sort_keys=True)
    return json.dumps(jsonable(value), separators=(",", ":"), sort_keys=True)
