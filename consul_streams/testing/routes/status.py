"""``/v1/status/*`` of the dev agent (consul-api.md section 2.7): a single-server cluster."""

from __future__ import annotations

from aiohttp import web

from .._blocking import parse_query
from ..server.dispatch import Router
from ..server.wire import Call, json_response

__all__ = ["register"]

#: The dev agent's pretend Raft address (server RPC port 8300, as in ``consul agent -dev``).
RAFT_ADDRESS = "127.0.0.1:8300"


def register(router: Router) -> None:
    """Add the status routes (Consul does not guard them with ACLs)."""
    router.add("/v1/status/leader", ("GET",), _leader, acl=False)
    router.add("/v1/status/peers", ("GET",), _peers, acl=False)


async def _leader(call: Call) -> web.StreamResponse:
    parse_query(call)
    return json_response(call, RAFT_ADDRESS)


async def _peers(call: Call) -> web.StreamResponse:
    parse_query(call)
    return json_response(call, [RAFT_ADDRESS])
