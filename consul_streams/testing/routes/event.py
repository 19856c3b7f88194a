"""``/v1/event/fire/:name`` and ``/v1/event/list`` of the dev agent (section 2.4).

Fired events are delivered to this agent at once (there is no gossip), if their node, service
and tag filters select it, as a real agent's ``shouldProcessUserEvent`` decides. The agent
keeps the newest 256 in a ring buffer with an increasing Lamport time (``LTime``).
``/v1/event/list`` blocks while the UUID-derived index equals ``?index``, with no jitter and a
600 s default, and answers with ``X-Consul-Index`` as its only query-meta header.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from typing import Any

from aiohttp import web

from ..._rules import event_id_to_index, parse_go_duration
from .._blocking import parse_uint
from ..server.dispatch import Router
from ..server.wire import ApiError, Call, json_response
from ..state.catalog import CatalogState
from ..state.events import TOPIC, EventLog
from ..state.store import WatchSet

__all__ = ["MAX_PAYLOAD", "register"]

#: Largest accepted ``Content-Length`` of a fire request (Consul >= 1.22 caps it at 100 B).
MAX_PAYLOAD = 100


def _go_regexp(kind: str, pattern: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ApiError(
            500, f"Invalid {kind} filter: error parsing regexp: {exc.msg}: `{pattern}`"
        ) from None


def _selects_this_agent(call: Call, event: dict[str, Any]) -> bool:
    """Whether this agent would process ``event`` (Consul's ``shouldProcessUserEvent``)."""
    if event["TagFilter"] and not event["ServiceFilter"]:
        raise ApiError(500, "Cannot provide tag filter without service filter")
    # Validate every filter first, as validateUserEventParams does, then match.
    node_re = _go_regexp("node", event["NodeFilter"])
    service_re = _go_regexp("service", event["ServiceFilter"])
    tag_re = _go_regexp("tag", event["TagFilter"])
    if node_re is not None and not node_re.search(call.store.node_name):
        return False
    if service_re is None:
        return True
    cat = call.store.get(CatalogState)
    for (node, _), svc in cat.services.items():
        if node != call.store.node_name or not service_re.search(svc["Service"]):
            continue
        if tag_re is None or any(tag_re.search(tag) for tag in svc["Tags"]):
            return True
    return False


async def fire(call: Call) -> web.Response:
    """``PUT /v1/event/fire/:name``: validate, deliver locally, answer with the event."""
    query = call.request.query
    dc = query.get("dc") or call.config.datacenter
    name = call.required_suffix("Missing name")
    length = call.request.content_length or 0
    if length > MAX_PAYLOAD:
        raise ApiError(413, f"Request body too large, max size: {MAX_PAYLOAD} bytes")
    # Consul reads the body only when Content-Length > 0: a chunked body is ignored.
    payload = await call.request.read() if length > 0 else b""
    event: dict[str, Any] = {
        "ID": str(uuid.uuid4()),
        "Name": name,
        "Payload": base64.b64encode(payload).decode() if payload else None,
        "NodeFilter": query.get("node", ""),
        "ServiceFilter": query.get("service", ""),
        "TagFilter": query.get("tag", ""),
        "Version": 1,
        "LTime": 0,
    }
    selected = _selects_this_agent(call, event)
    if dc != call.config.datacenter:
        raise ApiError(500, "No path to datacenter")
    if selected:
        call.store.get(EventLog).ingest(event)
    return json_response(call, event)


async def list_events(call: Call) -> web.Response:
    """``GET /v1/event/list``: the buffer (oldest first), optionally blocking on ``index``."""
    wait, min_index = _parse_wait(call)
    name = call.request.query.get("name", "")
    log = call.store.get(EventLog)

    def current() -> tuple[list[dict[str, Any]], int]:
        found = [e for e in log.events if not name or e["Name"] == name]
        return found, event_id_to_index(found[-1]["ID"]) if found else 1

    events, index = current()
    if min_index > 0:
        # Not RPCQueryTimeout: clamp to max, default to max (not 300 s), and no jitter.
        maximum = call.config.max_query_time
        timeout = maximum if wait is None or wait == 0 else min(wait, maximum)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while index == min_index:
            ws = WatchSet(call.store)
            ws.add(TOPIC)
            if not await ws.wait(deadline - loop.time()):
                break
            events, index = current()
    response = json_response(call, events, headers={"X-Consul-Index": str(index)})
    return response


def _parse_wait(call: Call) -> tuple[float | None, int]:
    """Only ``wait`` and ``index`` (Consul's parseWait): no dc, filter or consistency."""
    query = call.request.query
    wait: float | None = None
    if query.get("wait"):
        try:
            wait = parse_go_duration(query["wait"])
        except ValueError:
            raise ApiError(400, "Invalid wait time") from None
    index = 0
    if query.get("index"):
        parsed = parse_uint(query["index"])
        if parsed is None:
            raise ApiError(400, "Invalid index")
        index = parsed
    return wait, index


def register(router: Router) -> None:
    """Add the event endpoints to the dev agent's route registry."""
    router.add("/v1/event/fire/", ("PUT",), fire)
    router.add("/v1/event/list", ("GET",), list_events)
