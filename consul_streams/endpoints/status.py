"""Raft status: ``/v1/status/leader`` and ``/v1/status/peers`` (not blocking)."""

from __future__ import annotations

from typing import cast

from consul_streams import _identity
from consul_streams._query import BlockingMode, Query, Request, Response
from consul_streams.endpoints._base import Endpoint, common_params, decode_json, decode_list
from consul_streams.exceptions import DecodeError

__all__ = ["Status"]


def _decode_leader(response: Response) -> str:
    value = decode_json(response)
    if not isinstance(value, str):
        raise DecodeError(
            f"expected a JSON string, got {type(value).__name__}",
            method=response.method,
            url=response.url,
            body=response.body,
        )
    return value


def _decode_peers(response: Response) -> list[str]:
    return cast(list[str], decode_list(response))


class Status(Endpoint):
    """``/v1/status/``: both reads are Queries that never block."""

    def leader(self, *, dc: str | None = None) -> Query[str]:
        """The Raft leader's ``ip:port`` (``""`` when there is no leader)."""
        request = Request("GET", "/v1/status/leader", tuple(common_params(dc)))
        return self._query(request, _decode_leader, mode=BlockingMode.NONE)

    def peers(self, *, dc: str | None = None) -> Query[list[str]]:
        """The ``ip:port`` of every Raft peer."""
        request = Request("GET", "/v1/status/peers", tuple(common_params(dc)))
        return self._query(
            request, _decode_peers, mode=BlockingMode.NONE, identity=_identity.STRINGS
        )
