"""The agent's view of itself: ``/v1/agent/self``, members, version and host
(``agent/agent_endpoint.go``).

The dev agent is a single server that leads its own Raft and is the only member of its LAN
and WAN gossip pools. Its lifecycle routes (monitor, reload, leave, force-leave) are in
:mod:`.agent_lifecycle`, its metrics in :mod:`.agent_metrics`.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import sys
import time
from typing import Any

from aiohttp import web

from .. import bexpr
from .._blocking import parse_query
from ..server.dispatch import Router
from ..server.wire import ApiError, Call, json_response
from ..state.agent import LocalAgent
from ..state.catalog import CatalogState, Rec
from ..state.coordinate import CoordinateState, origin
from .catalog import compile_filter
from .operator import VERSION
from .status import RAFT_ADDRESS
from .unavailable import acls_enabled

__all__ = ["BUILD_DATE", "register"]

BUILD_DATE = "2025-01-01T00:00:00Z"
#: The Envoy versions this Consul release supports (``xdscommon.EnvoyVersions``).
ENVOY_VERSIONS = ["1.34.1", "1.33.2", "1.32.5", "1.31.8"]


def register(router: Router) -> None:
    """Add the agent's self-description routes."""
    router.add("/v1/agent/self", ("GET",), self_info)
    router.add("/v1/agent/members", ("GET",), members)
    router.add("/v1/agent/version", ("GET",), version)
    router.add("/v1/agent/host", ("GET",), host)


# -- members and self ------------------------------------------------------------------------


def member(call: Call, *, wan: bool) -> Rec:
    """This agent as a serf member of the LAN (or WAN) pool."""
    dc, node = call.config.datacenter, call.store.node_name
    # The tags a dev server gossips (agent/consul/server_serf.go setupSerf).
    tags = {
        "acls": "1" if acls_enabled(call) else "0",
        "bootstrap": "1",
        "build": f"{VERSION}:consul-streams",
        "dc": dc,
        "ft_fs": "1",
        "ft_si": "1",
        "grpc_port": "8502",
        "grpc_tls_port": "8503",
        "id": call.store.node_id,
        "port": "8300",
        "raft_vsn": "3",
        "role": "consul",
        "segment": "",
        "vsn": "2",
        "vsn_max": "3",
        "vsn_min": "2",
        "wan_join_port": "8302",
    }
    if wan:
        del tags["segment"]
    return {
        "Name": f"{node}.{dc}" if wan else node,
        "Addr": call.store.node_address,
        "Port": 8302 if wan else 8301,
        "Tags": tags,
        "Status": 1,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    }


async def members(call: Call) -> web.Response:
    """``GET /v1/agent/members`` (``?wan`` for the WAN pool, ``?segment``, ``filter``)."""
    opts = parse_query(call, consistency=False)
    wan = bool(call.request.query.get("wan"))
    segment = call.request.query.get("segment", "")
    if wan and segment not in ("", "_all"):
        raise ApiError(400, "Cannot provide a segment with wan=true")
    if not wan and segment not in ("", "_all"):
        # Consul CE's Server.LANMembers: segments are an Enterprise feature.
        raise ApiError(500, "Network segments are not supported in this version of Consul")
    keep = compile_filter(opts, bexpr.MEMBER)
    return json_response(call, keep.select([member(call, wan=wan)]))


def _serf_stats(members: int) -> dict[str, str]:
    return {
        "coordinate_resets": "0",
        "encrypted": "false",
        "event_queue": "0",
        "event_time": "1",
        "failed": "0",
        "health_score": "0",
        "intent_queue": "0",
        "left": "0",
        "member_time": "1",
        "members": str(members),
        "query_queue": "0",
        "query_time": "1",
    }


def stats(call: Call) -> dict[str, dict[str, str]]:
    """``Agent.Stats()``: the agent, build, consul, raft, runtime and serf sections."""
    store = call.store
    local = store.get(LocalAgent)
    ttls = sum(1 for c in local.checks.values() if c.ttl is not None)
    acl = "enabled" if acls_enabled(call) else "disabled"
    index = str(store.index)
    raft_config = f"[{{Suffrage:Voter ID:{store.node_id} Address:{RAFT_ADDRESS}}}]"
    return {
        "agent": {
            "check_monitors": "0",
            "check_ttls": str(ttls),
            "checks": str(len(local.checks)),
            "services": str(len(local.services)),
        },
        "build": {
            "prerelease": "",
            "revision": "consul-streams",
            "version": VERSION,
            "version_metadata": "",
        },
        "consul": {
            "acl": acl,
            "bootstrap": "true",
            "known_datacenters": "1",
            "leader": "true",
            "leader_addr": RAFT_ADDRESS,
            "server": "true",
        },
        "raft": {
            "applied_index": index,
            "commit_index": index,
            "fsm_pending": "0",
            "last_contact": "0",
            "last_log_index": index,
            "last_log_term": "2",
            "last_snapshot_index": "0",
            "last_snapshot_term": "0",
            "latest_configuration": raft_config,
            "latest_configuration_index": "0",
            "num_peers": "0",
            "protocol_version": "3",
            "protocol_version_max": "3",
            "protocol_version_min": "0",
            "snapshot_version_max": "1",
            "snapshot_version_min": "0",
            "state": "Leader",
            "term": "2",
        },
        "runtime": {
            "arch": platform.machine().lower() or "unknown",
            "cpu_count": str(os.cpu_count() or 1),
            "goroutines": str(len(asyncio.all_tasks())),
            "max_procs": str(os.cpu_count() or 1),
            "os": sys.platform,
            "version": f"python{platform.python_version()}",
        },
        "serf_lan": _serf_stats(1),
        "serf_wan": _serf_stats(1),
    }


def debug_config(call: Call) -> dict[str, Any]:
    """A sanitized runtime configuration in ``RuntimeConfig.Sanitized()``'s field names."""
    store, cfg = call.store, call.config
    return {
        "ACLsEnabled": acls_enabled(call),
        "ACLResolverSettings": {
            "ACLDefaultPolicy": cfg.acl_default_policy,
            "Datacenter": cfg.datacenter,
            "NodeName": store.node_name,
        },
        "BindAddr": store.node_address,
        "Bootstrap": False,
        "BootstrapExpect": 0,
        "ClientAddrs": [store.node_address],
        "ConnectEnabled": False,
        "Datacenter": cfg.datacenter,
        "DevMode": True,
        "DisableCoordinates": False,
        "EnableDebug": True,
        "HTTPMaxConnsPerClient": cfg.http_max_conns_per_client,
        "KVMaxValueSize": cfg.kv_max_value_size,
        "MaxQueryTime": f"{cfg.max_query_time:g}s",
        "DefaultQueryTime": f"{cfg.default_query_time:g}s",
        "NodeID": store.node_id,
        "NodeMeta": {},
        "NodeName": store.node_name,
        "PeeringEnabled": False,
        "PrimaryDatacenter": cfg.datacenter,
        "Revision": "consul-streams",
        "ServerMode": True,
        "SessionTTLMin": f"{cfg.session_ttl_min:g}s",
        "Telemetry": {"PrometheusOpts": {"Expiration": "0s"}},
        "Version": VERSION,
    }


def _sorted_map(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_map(value[k]) for k in sorted(value)}
    return value


async def self_info(call: Call) -> web.Response:
    """``GET /v1/agent/self``: Config, DebugConfig, Coord, Member, Stats, Meta, xDS."""
    store, cfg = call.store, call.config
    config = {
        "Datacenter": cfg.datacenter,
        "PrimaryDatacenter": cfg.datacenter,
        "NodeName": store.node_name,
        "NodeID": store.node_id,
        "Revision": "consul-streams",
        "Server": True,
        "Version": VERSION,
        "BuildDate": BUILD_DATE,
    }
    coord = store.get(CoordinateState).get(store.node_name) or origin()
    node = store.get(CatalogState).nodes.get(store.node_name) or {}
    xds = {
        "SupportedProxies": {"envoy": list(ENVOY_VERSIONS)},
        "Port": 8503,
        "Ports": {"Plaintext": 8502, "TLS": 8503},
    }
    body = {
        "Config": config,
        # RuntimeConfig.Sanitized() is a map: encoding/json writes its keys sorted.
        "DebugConfig": _sorted_map(debug_config(call)),
        "Coord": coord,
        "Member": member(call, wan=False),
        "Stats": stats(call),
        "Meta": dict(node.get("Meta") or {"consul-network-segment": ""}),
        "xDS": xds,
    }
    return json_response(call, body)


async def version(call: Call) -> web.Response:
    """``GET /v1/agent/version``: ``version.GetBuildInfo()``."""
    body = {"SHA": "", "BuildDate": BUILD_DATE, "HumanVersion": VERSION, "FIPS": ""}
    return json_response(call, body)


# -- host ------------------------------------------------------------------------------------


def _meminfo() -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    found[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return found


async def host(call: Call) -> web.Response:
    """``GET /v1/agent/host``: ``debug.CollectHostInfo()`` in gopsutil's JSON shapes."""
    uname = platform.uname()
    mem = _meminfo()
    total, available = mem.get("MemTotal", 0), mem.get("MemAvailable", 0)
    used = total - available
    disk = shutil.disk_usage("/")
    boot = int(time.time() - time.monotonic())
    body = {
        "Memory": {
            "total": total,
            "available": available,
            "used": used,
            "usedPercent": 100.0 * used / total if total else 0.0,
            "free": mem.get("MemFree", 0),
        },
        "CPU": [
            {"cpu": i, "vendorId": "", "modelName": uname.processor or uname.machine, "cores": 1}
            for i in range(os.cpu_count() or 1)
        ],
        "Host": {
            "hostname": uname.node,
            "uptime": int(time.monotonic()),
            "bootTime": boot,
            "procs": 0,
            "os": sys.platform,
            "platform": uname.system.lower(),
            "platformFamily": "",
            "platformVersion": uname.release,
            "kernelVersion": uname.release,
            "kernelArch": uname.machine,
            "virtualizationSystem": "",
            "virtualizationRole": "",
            "hostId": "",
        },
        "Disk": {
            "path": "/",
            "fstype": "",
            "total": disk.total,
            "free": disk.free,
            "used": disk.used,
            "usedPercent": 100.0 * disk.used / disk.total if disk.total else 0.0,
        },
        "CollectionTime": time.time_ns(),
        "Errors": None,
    }
    return json_response(call, body)
