"""Sessions: ``/v1/session/`` (the leases behind KV locks).

Every method that takes a session accepts its ID as a str or as ``{"ID": ...}`` (what
:meth:`Sessions.info` returns).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, cast

from consul_streams import _identity
from consul_streams._query import Query, Request, Response
from consul_streams._rules import format_go_duration
from consul_streams.endpoints._base import (
    Endpoint,
    check_name,
    common_params,
    decode_bool,
    decode_dict,
    decode_list,
    json_body,
    path_segment,
)
from consul_streams.exceptions import DecodeError, InvalidArgument
from consul_streams.typing import (
    Blocking,
    Consistency,
    Duration,
    ObjectID,
    Session,
    parse_duration,
    parse_id,
)

__all__ = ["BEHAVIORS", "MAX_TTL", "Sessions"]

#: What happens to held locks when the session is invalidated.
BEHAVIORS = ("release", "delete")
#: Consul's hard upper bound on a session TTL (24 h); the lower bound is a server setting.
MAX_TTL = 86400.0


def _decode_sessions(response: Response) -> builtins.list[Session]:
    return cast(builtins.list[Session], decode_list(response))


def _decode_first(response: Response) -> Session | None:
    # info answers [] for an unknown session; renew answers 404.
    if response.status == 404:
        return None
    sessions = _decode_sessions(response)
    return sessions[0] if sessions else None


def _decode_created(response: Response) -> str:
    value = decode_dict(response).get("ID")
    if not isinstance(value, str) or not value:
        raise DecodeError(
            'expected {"ID": ...} in the answer',
            method=response.method,
            url=response.url,
            body=response.body,
        )
    return value


def _id_path(verb: str, session: ObjectID) -> str:
    return f"/v1/session/{verb}/" + path_segment(parse_id(session, "session"), "session")


def _names(value: object, parameter: str) -> builtins.list[str]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise InvalidArgument(parameter, f"expected a list of check IDs, got {value!r}")
    return [check_name(v, parameter) for v in value]


class Sessions(Endpoint):
    """``/v1/session/``: create, renew and destroy sessions; read them as Queries."""

    async def create(
        self,
        *,
        name: str | None = None,
        ttl: Duration | None = None,
        behavior: str | None = None,
        lock_delay: Duration | None = None,
        node: str | None = None,
        checks: Sequence[str] | None = None,
        node_checks: Sequence[str] | None = None,
        service_checks: Sequence[ObjectID] | None = None,
        dc: str | None = None,
    ) -> str:
        """Create a session and return its ID.

        ``ttl`` (10 s to 24 h; the minimum is a server setting) and ``lock_delay`` accept a Go
        duration string, a timedelta or seconds. ``behavior`` is ``"release"`` (default) or
        ``"delete"``. Without any checks Consul attaches the node's ``serfHealth`` check;
        ``node_checks=[]`` means none. ``service_checks`` take check IDs or ``{"ID": ...}``.
        """
        body: dict[str, Any] = {}
        if name is not None:
            if not isinstance(name, str):
                raise InvalidArgument("name", f"expected a str, got {type(name).__name__}")
            body["Name"] = name
        if ttl is not None:
            seconds = parse_duration(ttl, "ttl")
            if not 0 < seconds <= MAX_TTL:
                raise InvalidArgument("ttl", f"must be more than 0 and at most 24h, got {ttl!r}")
            body["TTL"] = format_go_duration(seconds)
        if behavior is not None:
            if behavior not in BEHAVIORS:
                raise InvalidArgument(
                    "behavior", f"expected 'release' or 'delete', got {behavior!r}"
                )
            body["Behavior"] = behavior
        if lock_delay is not None:
            seconds = parse_duration(lock_delay, "lock_delay")
            if seconds < 0:
                raise InvalidArgument("lock_delay", f"must not be negative, got {lock_delay!r}")
            body["LockDelay"] = format_go_duration(seconds)
        if node is not None:
            body["Node"] = check_name(node, "node")
        if checks is not None:
            body["Checks"] = _names(checks, "checks")
        if node_checks is not None:
            body["NodeChecks"] = _names(node_checks, "node_checks")
        if service_checks is not None:
            if isinstance(service_checks, (str, bytes, Mapping)) or not isinstance(
                service_checks, Sequence
            ):
                raise InvalidArgument(
                    "service_checks", f"expected a list of check IDs, got {service_checks!r}"
                )
            body["ServiceChecks"] = [{"ID": parse_id(c, "service_checks")} for c in service_checks]
        request = Request(
            "PUT", "/v1/session/create", tuple(common_params(dc)), body=json_body(body)
        )
        return await self._write(request, _decode_created)

    async def destroy(self, session: ObjectID, *, dc: str | None = None) -> bool:
        """Destroy a session (``True`` also for an unknown one), releasing its locks."""
        request = Request("PUT", _id_path("destroy", session), tuple(common_params(dc)))
        return await self._write(request, decode_bool)

    async def renew(self, session: ObjectID, *, dc: str | None = None) -> Session | None:
        """Reset a TTL session's timer; the session, or ``None`` when it no longer exists."""
        request = Request("PUT", _id_path("renew", session), tuple(common_params(dc)))
        return await self._write(request, _decode_first, ok_statuses=frozenset({200, 404}))

    def info(
        self,
        session: ObjectID,
        *,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[Session | None]:
        """One session, or ``None`` when it does not exist (a blocking read waits for it)."""
        request = Request("GET", _id_path("info", session), tuple(common_params(dc, consistency)))
        return self._query(request, _decode_first, watch=watch, identity=_identity.SESSION)

    def node(
        self,
        node: str,
        *,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[builtins.list[Session]]:
        """The sessions that belong to ``node``."""
        path = "/v1/session/node/" + path_segment(node, "node")
        request = Request("GET", path, tuple(common_params(dc, consistency)))
        return self._query(request, _decode_sessions, watch=watch, identity=_identity.SESSIONS)

    def list(
        self,
        *,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[builtins.list[Session]]:
        """Every session in the datacenter."""
        request = Request("GET", "/v1/session/list", tuple(common_params(dc, consistency)))
        return self._query(request, _decode_sessions, watch=watch, identity=_identity.SESSIONS)
