"""The agent's view of itself: self, members, version, host, metrics, monitor, reload, leave,
force-leave (``agent/agent_endpoint.go``)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from consul_streams.testing import DevAgent
from consul_streams.testing.state import StateStore
from consul_streams.testing.state.agent_log import AgentLog, parse_level

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


async def test_self_has_every_section(http: Http) -> None:
    """agent/agent_endpoint.go (*HTTPHandlers).AgentSelf and the Self struct (json tags)."""
    body = (await http.get("/v1/agent/self")).json()
    assert set(body) == {"Config", "DebugConfig", "Coord", "Member", "Stats", "Meta", "xDS"}
    assert set(body["Config"]) == {
        "Datacenter", "PrimaryDatacenter", "NodeName", "NodeID", "Revision", "Server",
        "Version", "BuildDate",
    }  # fmt: skip
    assert body["Config"]["Server"] is True
    assert {"agent", "runtime", "raft", "serf_lan", "consul"} <= set(body["Stats"])
    for section in body["Stats"].values():
        assert all(isinstance(v, str) for v in section.values())
    assert body["Stats"]["raft"]["state"] == "Leader"
    assert body["Stats"]["consul"]["leader"] == "true"
    assert body["Stats"]["serf_lan"]["members"] == "1"
    assert body["DebugConfig"]["DevMode"] is True
    # Stats and DebugConfig are Go maps: encoding/json sorts their keys.
    assert list(body["DebugConfig"]) == sorted(body["DebugConfig"])
    assert list(body["Stats"]) == sorted(body["Stats"])
    assert all(list(section) == sorted(section) for section in body["Stats"].values())
    assert list(body["Member"]["Tags"]) == sorted(body["Member"]["Tags"])
    assert body["DebugConfig"]["NodeName"] == body["Config"]["NodeName"]
    assert set(body["Coord"]) == {"Vec", "Error", "Adjustment", "Height"}
    assert len(body["Coord"]["Vec"]) == 8
    assert body["Member"]["Name"] == body["Config"]["NodeName"]
    assert body["Meta"]["consul-network-segment"] == ""
    assert set(body["xDS"]) == {"SupportedProxies", "Port", "Ports"}
    assert set(body["xDS"]["Ports"]) == {"Plaintext", "TLS"}


async def test_self_stats_count_the_agents_services_and_checks(http: Http) -> None:
    """agent/agent.go (*Agent).Stats: the agent section counts local registrations."""
    svc = {"Name": "web", "Check": {"TTL": "30s"}}
    assert (await http.put("/v1/agent/service/register", json.dumps(svc))).status == 200
    stats = (await http.get("/v1/agent/self")).json()["Stats"]["agent"]
    assert stats["services"] == "1"
    assert stats["checks"] == "1"
    assert stats["check_ttls"] == "1"


async def test_members_lan_wan_and_segments(http: Http) -> None:
    """agent/agent_endpoint.go (*HTTPHandlers).AgentMembers: wan accepts segment _all only."""
    (lan,) = (await http.get("/v1/agent/members")).json()
    (wan,) = (await http.get("/v1/agent/members?wan=1&segment=_all")).json()
    assert wan["Name"] == f"{lan['Name']}.dc1"
    assert (lan["Port"], wan["Port"]) == (8301, 8302)
    r = await http.get("/v1/agent/members?wan=1&segment=alpha")
    assert (r.status, r.text) == (400, "Cannot provide a segment with wan=true")
    # Server.LANMembers (CE): only the default segment, or _all.
    assert len((await http.get("/v1/agent/members?segment=_all")).json()) == 1
    r = await http.get("/v1/agent/members?segment=alpha")
    assert (r.status, r.text) == (
        500,
        "Network segments are not supported in this version of Consul",
    )
    assert (await http.get("/v1/agent/members?filter=Status%20%3D%3D%204")).json() == []


async def test_version(http: Http) -> None:
    """version/version.go GetBuildInfo: SHA, BuildDate, HumanVersion, FIPS."""
    body = (await http.get("/v1/agent/version")).json()
    assert set(body) == {"SHA", "BuildDate", "HumanVersion", "FIPS"}
    assert body["HumanVersion"] == (await http.get("/v1/agent/self")).json()["Config"]["Version"]


async def test_host(http: Http) -> None:
    """agent/debug/host.go CollectHostInfo: gopsutil's JSON shapes."""
    body = (await http.get("/v1/agent/host")).json()
    assert set(body) == {"Memory", "CPU", "Host", "Disk", "CollectionTime", "Errors"}
    assert body["Disk"]["path"] == "/"
    assert body["Disk"]["total"] > 0
    assert body["Host"]["hostname"]
    assert len(body["CPU"]) >= 1
    assert isinstance(body["CollectionTime"], int)


async def test_metrics_json(http: Http) -> None:
    """go-metrics' MetricsSummary as (*HTTPHandlers).AgentMetrics displays it."""
    body = (await http.get("/v1/agent/metrics")).json()
    assert set(body) == {"Timestamp", "Gauges", "Points", "Counters", "Samples"}
    assert body["Timestamp"].endswith(" +0000 UTC")
    names = {g["Name"] for g in body["Gauges"]}
    assert "consul.runtime.num_goroutines" in names


async def test_prometheus_needs_a_retention_time(agent: DevAgent, http: Http) -> None:
    """AgentMetrics + wrap: the 415 CodeWithPayloadError has no body, so Go sends an empty
    200 carrying X-Consul-Reason; with a retention time the text format is served."""
    r = await http.get("/v1/agent/metrics?format=prometheus")
    assert (r.status, r.body) == (200, b"")
    reason = "Prometheus is not enabled since its retention time is not positive"
    assert r.headers["X-Consul-Reason"] == reason
    agent.config.prometheus_retention_time = 60.0
    r = await http.get("/v1/agent/metrics", headers={"Accept": "application/openmetrics-text"})
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE consul_runtime_num_goroutines gauge" in r.text
    r = await http.get("/v1/agent/metrics?format=prometheus")
    assert "\nconsul_state_nodes 1\n" in r.text


async def test_monitor_validates_the_log_level(http: Http) -> None:
    """agent/agent_endpoint.go (*HTTPHandlers).AgentMonitor: logging.ValidateLogLevel."""
    r = await http.get("/v1/agent/monitor?loglevel=loud")
    assert (r.status, r.text) == (400, "Unknown log level: loud")


async def test_monitor_streams_agent_log_lines(agent: DevAgent) -> None:
    """AgentMonitor streams until the client leaves: agent operations at INFO, and each
    request as the HTTP wrapper logs it (agent/http.go wrap: Request error/finished)."""
    url = agent.url + "/v1/agent/monitor?loglevel=debug"
    async with aiohttp.ClientSession() as session, session.get(url) as monitor:
        assert monitor.status == 200
        async with session.put(agent.url + "/v1/agent/reload") as r:
            assert (r.status, await r.read()) == (200, b"")
        line = await asyncio.wait_for(monitor.content.readline(), 5)
        assert b"[INFO]  agent: Reloading configuration..." in line
        line = await asyncio.wait_for(monitor.content.readline(), 5)
        assert b"[DEBUG] agent.http: Request finished: method=PUT url=/v1/agent/reload" in line
        async with session.put(agent.url + "/v1/agent/force-leave/ghost?token=secret") as r:
            assert r.status == 500
        lines = [await asyncio.wait_for(monitor.content.readline(), 5) for _ in range(3)]
        assert b"[INFO]  agent: Force leaving node: node=ghost" in lines[0]
        assert (
            b"[ERROR] agent.http: Request error: method=PUT url=/v1/agent/force-leave/ghost"
            in lines[1]
        )
        assert b"url=/v1/agent/force-leave/ghost?token=<hidden> from=127.0.0.1:" in lines[1]
        assert lines[1].endswith(b"error=agent: No node found with name 'ghost'\n")
        assert b"Request finished" in lines[2]
        # The token never reaches a log line.
        assert not any(b"secret" in line for line in lines)


def test_monitor_levels_filter_lines() -> None:
    """logging.LevelFromString + hclog: a monitor gets lines at its level and above."""
    log = AgentLog(StateStore())
    quiet, loud = log.subscribe("ERROR"), log.subscribe("DEBUG")
    log.log("INFO", "agent", "Reloading configuration...")
    log.log("ERROR", "agent", "boom", error="x")
    assert (quiet.qsize(), loud.qsize()) == (1, 2)
    assert quiet.get_nowait().endswith(" [ERROR] agent: boom: error=x\n")
    assert [parse_level(x) for x in ("err", "Warn", "trace", "loud")] == [
        "ERROR",
        "WARN",
        "TRACE",
        None,
    ]
    log.unsubscribe(quiet)
    log.unsubscribe(loud)
    assert log.monitors == 0


async def test_force_leave(http: Http) -> None:
    """agent/agent.go (*Agent).ForceLeave: only members; the alive agent itself is a no-op."""
    r = await http.put("/v1/agent/force-leave/ghost")
    assert (r.status, r.text) == (500, "agent: No node found with name 'ghost'")
    r = await http.put("/v1/agent/force-leave/dev?prune")
    assert (r.status, r.text) == (200, "")
    r = await http.put("/v1/agent/force-leave/dev.dc1?wan")
    assert r.status == 200
    (member,) = (await http.get("/v1/agent/members")).json()
    assert member["Status"] == 1


async def test_leave_answers_then_stops_the_agent() -> None:
    """agent/agent_endpoint.go (*HTTPHandlers).AgentLeave: Leave, then ShutdownAgent."""
    agent = DevAgent()
    await agent.start()
    async with aiohttp.ClientSession() as session:
        async with session.put(agent.url + "/v1/agent/leave") as r:
            assert (r.status, await r.read()) == (200, b"")
        await asyncio.wait_for(agent.wait_left(), 5)
        assert not agent.running
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(agent.url + "/v1/agent/self")
    await agent.__aexit__(None, None, None)


async def test_metrics_stream_writes_a_summary_per_interval() -> None:
    """go-metrics InmemSink.Stream via AgentMetricsStream: one indented summary per 10 s
    interval (agent time: 0.1 s at time_scale=0.01), until the client leaves."""
    async with (
        DevAgent(time_scale=0.01) as agent,
        aiohttp.ClientSession() as session,
        session.get(agent.url + "/v1/agent/metrics/stream") as stream,
    ):
        assert stream.status == 200
        for _ in range(2):
            lines = [await asyncio.wait_for(stream.content.readline(), 5)]
            while lines[-1] != b"}\n":
                lines.append(await asyncio.wait_for(stream.content.readline(), 5))
            summary = json.loads(b"".join(lines))
            assert set(summary) == {"Timestamp", "Gauges", "Points", "Counters", "Samples"}
