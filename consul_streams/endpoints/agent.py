"""The local agent: ``/v1/agent/`` (its services, checks, members and maintenance modes).

Agent state is local to the agent answering: only :meth:`Agent.service` blocks, and it blocks
on a content hash (``X-Consul-ContentHash``, exposed as ``meta.content_hash``), not an index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from consul_streams import _identity
from consul_streams._query import BlockingMode, Query, Request, Response
from consul_streams._rules import format_go_duration
from consul_streams.endpoints._base import (
    Endpoint,
    check_bool,
    check_name,
    check_text,
    common_params,
    decode_dict,
    decode_list,
    decode_none,
    filter_params,
    json_body,
    path_segment,
)
from consul_streams.exceptions import InvalidArgument
from consul_streams.typing import (
    AgentService,
    Collection,
    Duration,
    HealthCheck,
    Meta,
    Object,
    parse_duration,
    parse_hash_blocking,
)

__all__ = ["Agent"]

_STATUSES = ("passing", "warning", "critical")


def _decode_service(response: Response) -> AgentService:
    return cast(AgentService, decode_dict(response))


def _decode_services(response: Response) -> dict[str, AgentService]:
    return cast(dict[str, AgentService], decode_dict(response))


def _decode_checks(response: Response) -> dict[str, HealthCheck]:
    return cast(dict[str, HealthCheck], decode_dict(response))


def _decode_members(response: Response) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], decode_list(response))


def _definition(
    first: object, parameter: str, name_key: str, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """A Consul-shaped definition from a name or a mapping, with keyword fields merged in."""
    if isinstance(first, Mapping):
        body = dict(first)
        check_name(body.get(name_key), f"{parameter}[{name_key!r}]")
    else:
        body = {name_key: check_name(first, parameter)}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def _duration(value: object, parameter: str) -> str | None:
    return None if value is None else format_go_duration(parse_duration(value, parameter))


class Agent(Endpoint):
    """``/v1/agent/``: the agent's own view; writes return ``None``."""

    def self(self, *, dc: str | None = None) -> Query[Object]:
        """The agent's configuration, member record and stats (not blocking)."""
        request = Request("GET", "/v1/agent/self", tuple(common_params(dc)))
        return self._query(request, decode_dict, mode=BlockingMode.NONE)

    def members(
        self, *, wan: bool = False, segment: str | None = None, filter: str | None = None
    ) -> Query[Collection]:
        """The serf members this agent sees (LAN pool, or WAN with ``wan=True``)."""
        check_bool(wan, "wan")
        params = [("wan", "1")] if wan else []
        if segment is not None:
            if wan:
                raise InvalidArgument("segment", "cannot be combined with wan=True")
            params.append(("segment", check_name(segment, "segment")))
        params += filter_params(filter)
        request = Request("GET", "/v1/agent/members", tuple(params))
        return self._query(
            request, _decode_members, mode=BlockingMode.NONE, identity=_identity.MEMBERS
        )

    def services(self, *, filter: str | None = None) -> Query[dict[str, AgentService]]:
        """Service ID -> service, for the services registered with this agent."""
        request = Request("GET", "/v1/agent/services", tuple(filter_params(filter)))
        return self._query(
            request, _decode_services, mode=BlockingMode.NONE, identity=_identity.MAPPING
        )

    def service(
        self,
        service_id: str,
        *,
        watch: str | Meta | tuple[str | Meta, Duration | None] | None = None,
    ) -> Query[AgentService]:
        """One local service, blocking on its content hash (``meta.content_hash``).

        ``watch`` seeds a blocking read: the last hash, the Meta that carried it, or a
        ``(hash_or_meta, wait)`` tuple. An unknown ID raises NotFound.
        """
        path = "/v1/agent/service/" + path_segment(service_id, "service_id")
        query = self._query(
            Request("GET", path),
            _decode_service,
            mode=BlockingMode.HASH,
            identity=_identity.AGENT_SERVICE,
        )
        if watch is None:
            return query
        hash_, wait = parse_hash_blocking(watch, "watch")
        return query.replace(hash=hash_, wait=wait)

    def checks(self, *, filter: str | None = None) -> Query[dict[str, HealthCheck]]:
        """Check ID -> check, for the checks registered with this agent."""
        request = Request("GET", "/v1/agent/checks", tuple(filter_params(filter)))
        return self._query(
            request, _decode_checks, mode=BlockingMode.NONE, identity=_identity.MAPPING
        )

    async def service_register(
        self,
        service: str | Mapping[str, Any],
        *,
        service_id: str | None = None,
        tags: Sequence[str] | None = None,
        address: str | None = None,
        port: int | None = None,
        meta: Mapping[str, str] | None = None,
        check: Mapping[str, Any] | None = None,
        checks: Sequence[Mapping[str, Any]] | None = None,
        replace_existing_checks: bool = False,
    ) -> None:
        """Register a service with this agent (``ID`` defaults to the name).

        ``service`` is the name, or a whole definition in Consul's JSON shape; keywords
        override its fields.
        """
        if tags is not None and (isinstance(tags, str) or not isinstance(tags, Sequence)):
            raise InvalidArgument("tags", f"expected a list of strings, got {tags!r}")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
            raise InvalidArgument("port", f"expected an int, got {port!r}")
        extra = {
            "ID": None if service_id is None else check_name(service_id, "service_id"),
            "Tags": None if tags is None else [check_name(t, "tags") for t in tags],
            "Address": address,
            "Port": port,
            "Meta": None if meta is None else dict(meta),
            "Check": None if check is None else dict(check),
            "Checks": None if checks is None else [dict(c) for c in checks],
        }
        body = _definition(service, "service", "Name", extra)
        replace = check_bool(replace_existing_checks, "replace_existing_checks")
        params = (("replace-existing-checks", "true"),) if replace else ()
        request = Request("PUT", "/v1/agent/service/register", params, body=json_body(body))
        await self._write(request, decode_none)

    async def service_deregister(self, service_id: str) -> None:
        """Remove a local service and its checks (an unknown ID raises NotFound)."""
        path = "/v1/agent/service/deregister/" + path_segment(service_id, "service_id")
        await self._write(Request("PUT", path), decode_none)

    async def check_register(
        self,
        check: str | Mapping[str, Any],
        *,
        check_id: str | None = None,
        service_id: str | None = None,
        ttl: Duration | None = None,
        interval: Duration | None = None,
        timeout: Duration | None = None,
        http: str | None = None,
        tcp: str | None = None,
        args: Sequence[str] | None = None,
        notes: str | None = None,
        status: str | None = None,
        deregister_critical_service_after: Duration | None = None,
    ) -> None:
        """Register a check with this agent (by name, or a definition in Consul's shape).

        Durations accept the usual forms (``"10s"``, timedelta, seconds). A new check is
        ``critical`` unless ``status`` says otherwise.
        """
        if status is not None and status not in _STATUSES:
            raise InvalidArgument(
                "status", f"expected one of {', '.join(_STATUSES)}; got {status!r}"
            )
        extra = {
            "ID": None if check_id is None else check_name(check_id, "check_id"),
            "ServiceID": None if service_id is None else check_name(service_id, "service_id"),
            "TTL": _duration(ttl, "ttl"),
            "Interval": _duration(interval, "interval"),
            "Timeout": _duration(timeout, "timeout"),
            "HTTP": http,
            "TCP": tcp,
            "Args": None if args is None else list(args),
            "Notes": notes,
            "Status": status,
            "DeregisterCriticalServiceAfter": _duration(
                deregister_critical_service_after, "deregister_critical_service_after"
            ),
        }
        body = _definition(check, "check", "Name", extra)
        request = Request("PUT", "/v1/agent/check/register", body=json_body(body))
        await self._write(request, decode_none)

    async def check_deregister(self, check_id: str) -> None:
        """Remove a local check."""
        path = "/v1/agent/check/deregister/" + path_segment(check_id, "check_id")
        await self._write(Request("PUT", path), decode_none)

    async def _ttl(self, verb: str, check_id: str, note: str | None) -> None:
        path = f"/v1/agent/check/{verb}/" + path_segment(check_id, "check_id")
        if note is not None and not isinstance(note, str):
            raise InvalidArgument("note", f"expected a str, got {type(note).__name__}")
        params = (("note", check_text(note, "note")),) if note else ()
        await self._write(Request("PUT", path, params), decode_none)

    async def check_pass(self, check_id: str, note: str | None = None) -> None:
        """Mark a TTL check passing (``note`` becomes its output)."""
        await self._ttl("pass", check_id, note)

    async def check_warn(self, check_id: str, note: str | None = None) -> None:
        """Mark a TTL check warning (``note`` becomes its output)."""
        await self._ttl("warn", check_id, note)

    async def check_fail(self, check_id: str, note: str | None = None) -> None:
        """Mark a TTL check critical (``note`` becomes its output)."""
        await self._ttl("fail", check_id, note)

    async def check_update(self, check_id: str, status: str, output: str | None = None) -> None:
        """Set a TTL check's status (``passing``/``warning``/``critical``) and output."""
        path = "/v1/agent/check/update/" + path_segment(check_id, "check_id")
        if status not in _STATUSES:
            raise InvalidArgument(
                "status", f"expected one of {', '.join(_STATUSES)}; got {status!r}"
            )
        body: dict[str, Any] = {"Status": status}
        if output is not None:
            if not isinstance(output, str):
                raise InvalidArgument("output", f"expected a str, got {type(output).__name__}")
            body["Output"] = output
        await self._write(Request("PUT", path, body=json_body(body)), decode_none)

    async def service_maintenance(
        self, service_id: str, enable: bool, reason: str | None = None
    ) -> None:
        """Put a local service into (or out of) maintenance mode."""
        path = "/v1/agent/service/maintenance/" + path_segment(service_id, "service_id")
        await self._write(Request("PUT", path, _maintenance(enable, reason)), decode_none)

    async def node_maintenance(self, enable: bool, reason: str | None = None) -> None:
        """Put this agent's node into (or out of) maintenance mode."""
        request = Request("PUT", "/v1/agent/maintenance", _maintenance(enable, reason))
        await self._write(request, decode_none)


def _maintenance(enable: object, reason: object) -> tuple[tuple[str, str], ...]:
    check_bool(enable, "enable")
    params = [("enable", "true" if enable else "false")]
    if reason is not None:
        if not isinstance(reason, str):
            raise InvalidArgument("reason", f"expected a str, got {type(reason).__name__}")
        params.append(("reason", check_text(reason, "reason")))
    return tuple(params)
