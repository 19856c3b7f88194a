"""``/v1/agent/metrics`` and ``/v1/agent/metrics/stream`` (``agent/agent_endpoint.go``).

Consul's in-memory sink aggregates metrics over 10 s intervals; ``metrics`` answers the
current interval's summary (or Prometheus text), ``metrics/stream`` writes each interval's
summary as it completes. The dev agent reports gauges of its own state; the stream's
intervals run on agent time, so ``DevAgent(time_scale=...)`` speeds them up.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from aiohttp import web

from ..server.dispatch import Router
from ..server.wire import TEXT_TYPE, Call, dump_json, empty_response, json_response
from ..state.catalog import CatalogState
from ..state.kv import KVState
from ..state.session import SessionState

__all__ = ["INTERVAL", "register"]

#: The in-memory sink's interval (``metrics.NewInmemSink(10*time.Second, time.Minute)``).
INTERVAL = 10.0
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def register(router: Router) -> None:
    """Add the metrics routes."""
    router.add("/v1/agent/metrics", ("GET",), metrics)
    router.add("/v1/agent/metrics/stream", ("GET",), metrics_stream)


def _gauges(call: Call) -> list[tuple[str, float]]:
    store = call.store
    cat = store.get(CatalogState)
    return [
        ("consul.runtime.num_goroutines", float(len(asyncio.all_tasks()))),
        ("consul.state.nodes", float(len(cat.nodes))),
        ("consul.state.services", float(len({s["Service"] for s in cat.services.values()}))),
        ("consul.state.service_instances", float(len(cat.services))),
        ("consul.state.kv_entries", float(len(store.get(KVState).entries))),
        ("consul.session_ttl.active", float(len(store.get(SessionState).sessions))),
        ("consul.raft.applied_index", float(store.index)),
    ]


def _interval() -> str:
    """go-metrics' interval start: the current 10 s interval, as Go prints a UTC time."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    start = now - datetime.timedelta(seconds=now.second % int(INTERVAL))
    return start.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def summary(call: Call) -> dict[str, Any]:
    """go-metrics' MetricsSummary of the current interval."""
    return {
        "Timestamp": _interval(),
        "Gauges": [{"Name": n, "Value": v, "Labels": {}} for n, v in _gauges(call)],
        "Points": [],
        "Counters": [],
        "Samples": [],
    }


def _prometheus_text(gauges: list[tuple[str, float]]) -> str:
    lines = []
    for name, value in gauges:
        flat = name.replace(".", "_")
        lines += [f"# HELP {flat} {flat}", f"# TYPE {flat} gauge", f"{flat} {value:g}"]
    return "\n".join(lines) + "\n"


def _wants_prometheus(call: Call) -> bool:
    """``enablePrometheusOutput``: ``?format=prometheus`` or an OpenMetrics Accept header."""
    if call.request.query.get("format") == "prometheus":
        return True
    for mime in call.request.headers.get("Accept", "").split(","):
        parts = [p.strip() for p in mime.split(";")]
        kind = parts[0].lower()
        if kind == "application/openmetrics-text":
            return True
        if kind == "text/plain" and len(parts) > 1 and parts[1] == "version=0.4.0":
            return True
    return False


async def metrics(call: Call) -> web.Response:
    """``GET /v1/agent/metrics``: the in-memory sink's summary, or Prometheus text.

    Prometheus output needs ``prometheus_retention_time`` > 0 (it is 0 in ``consul agent
    -dev``, and Consul then answers an empty 200 with ``X-Consul-Reason``).
    """
    gauges = _gauges(call)
    if _wants_prometheus(call):
        retention = float(getattr(call.config, "prometheus_retention_time", 0.0) or 0.0)
        if retention <= 0:
            # The handler returns a 415 CodeWithPayloadError without a body; Consul's wrap
            # then returns before writing the status, so Go sends an empty 200 carrying
            # only the X-Consul-Reason header.
            text = "Prometheus is not enabled since its retention time is not positive"
            return empty_response(200, {"X-Consul-Reason": text})
        body = _prometheus_text(gauges).encode()
        return web.Response(body=body, headers={"Content-Type": PROMETHEUS_TYPE})
    return json_response(call, summary(call))


async def metrics_stream(call: Call) -> web.StreamResponse:
    """``GET /v1/agent/metrics/stream``: one summary per completed interval, until the client
    leaves (``InmemSink.Stream`` with an indenting ``json.Encoder``)."""
    store = call.store
    response = web.StreamResponse(status=200, headers={"Content-Type": TEXT_TYPE})
    response.headers["X-Consul-Default-Acl-Policy"] = call.config.acl_default_policy
    await response.prepare(call.request)
    while True:
        done = asyncio.Event()
        handle = store.call_later(INTERVAL - store.now() % INTERVAL, done.set)
        try:
            await done.wait()
        finally:
            store.cancel_timer(handle)
        await response.write(dump_json(summary(call)) + b"\n")
