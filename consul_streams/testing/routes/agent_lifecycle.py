"""The agent's lifecycle: ``/v1/agent/monitor``, reload, leave and force-leave
(``agent/agent_endpoint.go``).

Agent operations are logged to :class:`~..state.agent_log.AgentLog`, which the monitor
streams (with the dispatcher's per-request lines).
"""

from __future__ import annotations

from aiohttp import web

from ..server.dispatch import Router
from ..server.wire import TEXT_TYPE, ApiError, Call, empty_response
from ..state.agent_log import AgentLog, parse_level

__all__ = ["register"]


def register(router: Router) -> None:
    """Add the agent's lifecycle routes."""
    router.add("/v1/agent/monitor", ("GET",), monitor)
    router.add("/v1/agent/reload", ("PUT",), reload)
    router.add("/v1/agent/leave", ("PUT",), leave)
    router.add("/v1/agent/force-leave/", ("PUT",), force_leave)


def agent_log(call: Call) -> AgentLog:
    return call.store.get(AgentLog)


async def monitor(call: Call) -> web.StreamResponse:
    """``GET /v1/agent/monitor?loglevel=``: stream log lines until the client goes away."""
    raw = call.request.query.get("loglevel", "") or "INFO"
    level = parse_level(raw)
    if level is None:
        raise ApiError(400, f"Unknown log level: {raw}")
    log = agent_log(call)
    queue = log.subscribe(level)
    response = web.StreamResponse(status=200, headers={"Content-Type": TEXT_TYPE})
    response.headers["X-Consul-Default-Acl-Policy"] = call.config.acl_default_policy
    try:
        await response.prepare(call.request)
        while True:
            line = await queue.get()
            await response.write(line.encode())
    finally:
        log.unsubscribe(queue)


async def reload(call: Call) -> web.Response:
    """``PUT /v1/agent/reload``: nothing to re-read in a dev agent; logs as Consul does."""
    agent_log(call).log("INFO", "agent", "Reloading configuration...")
    return empty_response()


async def leave(call: Call) -> web.Response:
    """``PUT /v1/agent/leave``: answer, then shut the agent down (``ShutdownAgent``)."""
    agent_log(call).log("INFO", "agent", "Gracefully shutting down agent...")
    response = empty_response()
    response.headers["X-Consul-Default-Acl-Policy"] = call.config.acl_default_policy
    # Send the answer before the agent goes away, as Consul does.
    await response.prepare(call.request)
    await response.write_eof()
    call.store.emit("leave")
    return response


async def force_leave(call: Call) -> web.Response:
    """``PUT /v1/agent/force-leave/:node[?prune][&wan]``: only members can be forced out."""
    node = call.suffix
    agent_log(call).log("INFO", "agent", "Force leaving node", node=node)
    wan = "wan" in call.request.query
    me = call.store.node_name
    if node != (f"{me}.{call.config.datacenter}" if wan else me):
        raise ApiError(500, f"agent: No node found with name '{node}'")
    # Forcing an alive member out is a no-op in serf: it stays alive.
    return empty_response()
