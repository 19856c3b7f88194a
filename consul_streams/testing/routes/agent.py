"""``/v1/agent/*`` of the dev agent (section 2.6 of consul-api.md): the agent's own view.

Services and checks registered here are the agent's (see :class:`~._agent_state.LocalAgent`)
and appear in the catalog at once (no anti-entropy delay). ``GET /v1/agent/service/:id`` is
the one hash-blocking endpoint (section 1.7).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from aiohttp import web

from .. import bexpr
from .._blocking import parse_query, query_timeout
from ..server.bodies import CHECK_DEFINITION, CHECK_UPDATE, SERVICE_DEFINITION
from ..server.decode import Spec, decode_body, health_check_durations
from ..server.dispatch import Router
from ..server.wire import TEXT_TYPE, ApiError, Call, dump_json, empty_response, json_response
from ..state.agent import (
    NODE_MAINT,
    SERVICE_MAINT_PREFIX,
    STATUSES,
    LocalAgent,
    check_ttl,
    check_type,
    service_checks,
    validate_service,
)
from ..state.catalog import Rec, new_check
from ..state.store import WatchSet
from .catalog import catalog_of, compile_filter
from .health import parse_bool

__all__ = ["MAX_BODY", "content_hash", "register"]

#: Agent register/update bodies are capped (Consul PR #23796: 512 KiB).
MAX_BODY = 512 * 1024
_STATUS_CODES = {"passing": 200, "warning": 429, "critical": 503, "maintenance": 503}


def local_of(call: Call) -> LocalAgent:
    """The agent-local registrations."""
    return call.store.get(LocalAgent)


async def _body(call: Call, spec: Spec) -> Rec:
    """Decode a register/update body the Go way (``server/decode.py``), capped at MAX_BODY."""
    length = call.request.content_length
    if length is not None and length > MAX_BODY:
        raise ApiError(413, "http: request body too large")
    body: Rec = await decode_body(call, spec)
    return body


def agent_service(call: Call, rec: Rec) -> Rec:
    """The ``AgentService`` JSON of a catalog record (no raft indexes)."""
    out = {k: v for k, v in rec.items() if k not in ("CreateIndex", "ModifyIndex")}
    out["Datacenter"] = call.config.datacenter
    return out


# -- reads -----------------------------------------------------------------------------------


def _local_services(call: Call) -> list[Rec]:
    local = local_of(call)
    return [r for sid in sorted(local.services) if (r := local.service(sid)) is not None]


async def services(call: Call) -> web.Response:
    """``GET /v1/agent/services``: service ID -> AgentService."""
    opts = parse_query(call, consistency=False)
    keep = compile_filter(opts, bexpr.AGENT_SERVICE)
    found = [agent_service(call, rec) for rec in _local_services(call)]
    return json_response(call, {s["ID"]: s for s in found if keep(s)})


def content_hash(service: Rec) -> str:
    """An opaque 16-hex-digit digest of the service (Consul uses hashstructure)."""
    return hashlib.blake2b(dump_json(service), digest_size=8).hexdigest()


async def service(call: Call) -> web.Response:
    """``GET /v1/agent/service/:id``, hash-blocking on ``?hash=`` (``index`` is ignored)."""
    opts = parse_query(call, consistency=False)
    sid = call.suffix
    local = local_of(call)

    def current() -> tuple[Rec, str]:
        rec = local.service(sid)
        if rec is None:
            raise ApiError(404, f"unknown service ID: {sid}")
        body = agent_service(call, rec)
        return body, content_hash(body)

    body, digest = current()
    wanted = call.request.query.get("hash", "")
    if wanted and digest == wanted:
        cfg = call.config
        timeout = query_timeout(
            opts.wait, default=cfg.default_query_time, maximum=cfg.max_query_time,
            jitter=cfg.jitter,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while digest == wanted:
            ws = WatchSet(call.store)
            # Every change to a local service touches the agent's node.
            ws.add(("node", call.store.node_name))
            if not await ws.wait(deadline - loop.time()):
                break
            body, digest = current()
    body["ContentHash"] = digest
    return json_response(call, body, headers={"X-Consul-Contenthash": digest})


async def checks(call: Call) -> web.Response:
    """``GET /v1/agent/checks``: check ID -> HealthCheck."""
    opts = parse_query(call, consistency=False)
    keep = compile_filter(opts, bexpr.HEALTH_CHECK)
    local = local_of(call)
    found = [c for cid in sorted(local.checks) if (c := local.check(cid)) is not None]
    return json_response(call, {c["CheckID"]: c for c in found if keep(c)})


def _aggregate(checks: list[Rec]) -> str:
    """The Go client's AggregatedStatus: maintenance > critical > warning > passing."""
    ids = [c["CheckID"] for c in checks]
    if any(i == NODE_MAINT or i.startswith(SERVICE_MAINT_PREFIX) for i in ids):
        return "maintenance"
    statuses = {c["Status"] for c in checks}
    for status in ("critical", "warning"):
        if status in statuses:
            return status
    return "passing"


def _health_entry(call: Call, rec: Rec) -> tuple[str, Rec]:
    checks = catalog_of(call).service_checks(call.store.node_name, rec["ID"])
    status = _aggregate(checks)
    entry = {"AggregatedStatus": status, "Service": agent_service(call, rec), "Checks": checks}
    return status, entry


def _health_answer(call: Call, code: int, reason: str, body: Any) -> web.Response:
    headers = {"X-Consul-Reason": reason}
    accept = call.request.headers.get("Accept", "")
    fmt = call.request.query.get("format", "")
    if accept.startswith("text/plain") or fmt == "text":
        headers["Content-Type"] = TEXT_TYPE
        return web.Response(status=code, body=reason.encode(), headers=headers)
    return json_response(call, body, status=code, headers=headers)


async def health_by_id(call: Call) -> web.Response:
    """``GET /v1/agent/health/service/id/:id``: 200/429/503 by aggregated status, 404 unknown."""
    call.required_suffix("Missing serviceID")
    rec = local_of(call).service(call.suffix)
    if rec is None:
        missing = {"AggregatedStatus": "critical", "Service": None, "Checks": None}
        return _health_answer(call, 404, f"ServiceId {call.suffix} not found", missing)
    status, entry = _health_entry(call, rec)
    return _health_answer(call, _STATUS_CODES[status], status, entry)


async def health_by_name(call: Call) -> web.Response:
    """``GET /v1/agent/health/service/name/:name``: the worst status of every local instance."""
    call.required_suffix("Missing service Name")
    entries = [_health_entry(call, r) for r in _local_services(call) if r["Service"] == call.suffix]
    code, reason = 404, f"ServiceName {call.suffix} Not Found"
    for status, _ in entries:
        # The first instance with the highest code wins (critical and maintenance are both 503).
        if code == 404 or _STATUS_CODES[status] > code:
            code, reason = _STATUS_CODES[status], status
    return _health_answer(call, code, reason, [entry for _, entry in entries])


# -- writes ----------------------------------------------------------------------------------


def _unknown_service(sid: str) -> ApiError:
    msg = f'Unknown service ID "{sid}". Ensure that the service ID is passed, not the service name.'
    return ApiError(404, msg)


def _unknown_check(cid: str) -> ApiError:
    msg = f'Unknown check ID "{cid}". Ensure that the check ID is passed, not the check name.'
    return ApiError(404, msg)


def _scripts_allowed(call: Call, checks: list[Rec]) -> None:
    """agent/agent.go addCheck: script checks over HTTP need ``enable_script_checks``."""
    if call.config.enable_script_checks:
        return
    if any(check.get("Args") or check.get("ScriptArgs") for check in checks):
        raise ApiError(
            500,
            "Scripts are disabled on this agent from remote calls; to enable, configure "
            "'enable_script_checks' to true",
        )


async def service_register(call: Call) -> web.Response:
    """``PUT /v1/agent/service/register``: add or update a local service and its checks."""
    body = await _body(call, SERVICE_DEFINITION)
    svc = validate_service(body)
    checks = service_checks(svc, body)
    _scripts_allowed(call, [check for check, _ in checks])
    replace = call.request.query.get("replace-existing-checks")
    local_of(call).add_service(svc, checks, replace_checks=replace in ("", "true"))
    return empty_response()


async def service_deregister(call: Call) -> web.Response:
    """``PUT /v1/agent/service/deregister/:id``."""
    local = local_of(call)
    if local.service(call.suffix) is None:
        raise _unknown_service(call.suffix)
    local.remove_service(call.suffix)
    return empty_response()


async def check_register(call: Call) -> web.Response:
    """``PUT /v1/agent/check/register``: a node check, or a check of a local service."""
    body = await _body(call, CHECK_DEFINITION)
    if not body.get("Name"):
        raise ApiError(400, "Missing check name")
    if body.get("Status") and body["Status"] not in STATUSES:
        raise ApiError(400, "Bad check status")
    ttl = check_ttl(body)
    local = local_of(call)
    sid = body.get("ServiceID") or ""
    owner = local.service(sid) if sid else None
    if sid and owner is None:
        raise ApiError(404, f'ServiceID "{sid}" does not exist')
    definition = dict(body, CheckID=body.get("CheckID") or body.get("ID") or body["Name"])
    health_check_durations(definition)
    definition["Type"] = check_type(body)
    _scripts_allowed(call, [definition])
    local.add_check(new_check(call.store.node_name, definition, service=owner), ttl)
    return empty_response()


async def check_deregister(call: Call) -> web.Response:
    """``PUT /v1/agent/check/deregister/:id``."""
    local = local_of(call)
    if local.check(call.suffix) is None:
        raise _unknown_check(call.suffix)
    local.remove_check(call.suffix)
    return empty_response()


def _ttl_update(call: Call, cid: str, status: str, output: str) -> web.Response:
    local = local_of(call)
    if local.check(cid) is None:
        raise _unknown_check(cid)
    if local.checks[cid].ttl is None:
        raise ApiError(500, f'CheckID "{cid}" does not have associated TTL')
    local.update_check(cid, status, output)
    return empty_response()


def _ttl_handler(status: str) -> Any:
    async def handler(call: Call) -> web.Response:
        return _ttl_update(call, call.suffix, status, call.request.query.get("note", ""))

    handler.__doc__ = f"``PUT /v1/agent/check/...`` setting a TTL check to {status}."
    return handler


async def check_update(call: Call) -> web.Response:
    """``PUT /v1/agent/check/update/:id`` with ``{"Status": ..., "Output": ...}``."""
    body = await _body(call, CHECK_UPDATE)
    status = body.get("Status") or ""
    if status not in STATUSES:
        raise ApiError(400, f"Invalid check status: '{status}'")
    return _ttl_update(call, call.suffix, status, str(body.get("Output") or ""))


def _enable_param(call: Call) -> bool:
    raw = call.request.query.get("enable")
    if raw is None:
        raise ApiError(400, "Missing value for enable")
    enable = parse_bool(raw)
    if enable is None:
        raise ApiError(400, f'Invalid value for enable: "{raw}"')
    return enable


async def service_maintenance(call: Call) -> web.Response:
    """``PUT /v1/agent/service/maintenance/:id?enable=&reason=``."""
    sid = call.required_suffix("Missing service ID")
    enable = _enable_param(call)
    local = local_of(call)
    if local.service(sid) is None:
        raise _unknown_service(sid)
    local.maintenance(sid, enable, call.request.query.get("reason", ""))
    return empty_response()


async def node_maintenance(call: Call) -> web.Response:
    """``PUT /v1/agent/maintenance?enable=&reason=``."""
    enable = _enable_param(call)
    local_of(call).maintenance(None, enable, call.request.query.get("reason", ""))
    return empty_response()


def register(router: Router) -> None:
    """Add the agent endpoints to the dev agent's route registry."""
    router.add("/v1/agent/services", ("GET",), services)
    router.add("/v1/agent/service/", ("GET",), service)
    router.add("/v1/agent/checks", ("GET",), checks)
    router.add("/v1/agent/service/register", ("PUT",), service_register)
    router.add("/v1/agent/service/deregister/", ("PUT",), service_deregister)
    router.add("/v1/agent/service/maintenance/", ("PUT",), service_maintenance)
    router.add("/v1/agent/maintenance", ("PUT",), node_maintenance)
    router.add("/v1/agent/check/register", ("PUT",), check_register)
    router.add("/v1/agent/check/deregister/", ("PUT",), check_deregister)
    router.add("/v1/agent/check/pass/", ("PUT",), _ttl_handler("passing"))
    router.add("/v1/agent/check/warn/", ("PUT",), _ttl_handler("warning"))
    router.add("/v1/agent/check/fail/", ("PUT",), _ttl_handler("critical"))
    router.add("/v1/agent/check/update/", ("PUT",), check_update)
    router.add("/v1/agent/health/service/id/", ("GET",), health_by_id)
    router.add("/v1/agent/health/service/name/", ("GET",), health_by_name)
