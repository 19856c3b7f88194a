"""``/v1/operator/*`` of the dev agent: one Raft voter that leads (``agent/operator_endpoint.go``).

Raft configuration, autopilot configuration/health/state and usage work as a single-server
``consul agent -dev`` answers them. Gossip keyrings, leadership transfer and license-bound
utilization reports are out of scope and answer :func:`~.unavailable.unavailable`.
"""

from __future__ import annotations

import datetime
from typing import Any

from aiohttp import web

from ..._rules import format_go_duration, parse_go_duration
from .._blocking import QueryResult, blocking_query, go_quote, parse_query, parse_uint
from ..server.decode import BOOL, DURATION, STRING, UINT64, Struct, decode_body
from ..server.dispatch import Router
from ..server.wire import ApiError, Call, json_response
from ..state.catalog import CatalogState
from ..state.store import StateStore, WatchSet
from .status import RAFT_ADDRESS
from .unavailable import unavailable

__all__ = ["VERSION", "Autopilot", "register"]

#: The Consul version the dev agent reports everywhere.
VERSION = "1.22.0"

_AUTOPILOT_DEFAULTS: dict[str, Any] = {
    "CleanupDeadServers": True,
    "LastContactThreshold": "200ms",
    "MaxTrailingLogs": 250,
    "MinQuorum": 0,
    "ServerStabilizationTime": "10s",
    "RedundancyZoneTag": "",
    "DisableUpgradeMigration": False,
    "UpgradeVersionTag": "",
}


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Autopilot:
    """The autopilot configuration (a Raft entry with its indexes) and the leader's start."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.reset()

    def reset(self) -> None:
        self.config = dict(_AUTOPILOT_DEFAULTS, CreateIndex=1, ModifyIndex=1)
        self.since = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

    def shift_indexes(self, delta: int) -> None:
        for key in ("CreateIndex", "ModifyIndex"):
            self.config[key] = max(1, self.config[key] + delta)


def register(router: Router) -> None:
    """Add the operator routes."""
    router.add("/v1/operator/raft/configuration", ("GET",), raft_configuration)
    router.add("/v1/operator/raft/transfer-leader", ("POST",), unavailable("Leadership transfer"))
    router.add("/v1/operator/raft/peer", ("DELETE",), raft_peer)
    router.add(
        "/v1/operator/keyring", ("GET", "POST", "PUT", "DELETE"), unavailable("Gossip encryption")
    )
    router.add("/v1/operator/usage", ("GET",), usage)
    router.add("/v1/operator/utilization", ("GET",), unavailable("Utilization reporting"))
    router.add("/v1/operator/autopilot/configuration", ("GET", "PUT"), autopilot_configuration)
    router.add("/v1/operator/autopilot/health", ("GET",), autopilot_health)
    router.add("/v1/operator/autopilot/state", ("GET",), autopilot_state)


async def raft_configuration(call: Call) -> web.StreamResponse:
    """``GET /v1/operator/raft/configuration``: this agent as the only voter, leading."""
    parse_query(call)
    store = call.store
    server = {
        "ID": store.node_id,
        "Node": store.node_name,
        "Address": RAFT_ADDRESS,
        "Leader": True,
        "ProtocolVersion": "3",
        "Voter": True,
        "LastIndex": store.index,
    }
    # Operator.RaftGetConfiguration copies future.Index(); hashicorp/raft's GetConfiguration
    # fills only configurations.latest, so that index is always 0.
    return json_response(call, {"Servers": [server], "Index": 0})


async def raft_peer(call: Call) -> web.StreamResponse:
    """``DELETE /v1/operator/raft/peer?id=|address=`` (``OperatorRaftPeer``)."""
    query = call.request.query
    has_id, has_address = "id" in query, "address" in query
    if not has_id and not has_address:
        raise ApiError(
            400,
            "Must specify either ?id with the server's ID or ?address with IP:port of peer "
            "to remove",
        )
    if has_id and has_address:
        raise ApiError(400, "Must specify only one of ?id or ?address")
    if has_id:
        wanted, mine, what = query.get("id", ""), call.store.node_id, "id"
    else:
        wanted, mine, what = query.get("address", ""), RAFT_ADDRESS, "address"
    if wanted != mine:
        raise ApiError(500, f"{what} {go_quote(wanted)} was not found in the Raft configuration")
    raise ApiError(500, "Removing the only Raft peer of the dev agent is not supported")


def _server_health(call: Call, pilot: Autopilot) -> dict[str, Any]:
    store = call.store
    return {
        "ID": store.node_id,
        "Name": store.node_name,
        "Address": RAFT_ADDRESS,
        "SerfStatus": "alive",
        "Version": VERSION,
        "Leader": True,
        "LastContact": "0s",
        "LastTerm": 2,
        "LastIndex": store.index,
        "Healthy": True,
        "Voter": True,
        "StableSince": _rfc3339(pilot.since),
    }


async def autopilot_health(call: Call) -> web.StreamResponse:
    """``GET /v1/operator/autopilot/health`` (429 would mean unhealthy; one server is healthy)."""
    parse_query(call)
    pilot = call.store.get(Autopilot)
    body = {"Healthy": True, "FailureTolerance": 0, "Servers": [_server_health(call, pilot)]}
    return json_response(call, body)


async def autopilot_state(call: Call) -> web.StreamResponse:
    """``GET /v1/operator/autopilot/state``."""
    parse_query(call)
    store = call.store
    pilot = store.get(Autopilot)
    server = {
        "ID": store.node_id,
        "NodeName": store.node_name,
        "Address": RAFT_ADDRESS,
        "NodeStatus": "alive",
        "Version": VERSION,
        "LastContact": "0s",
        "LastTerm": 2,
        "LastIndex": store.index,
        "Healthy": True,
        "StableSince": _rfc3339(pilot.since),
        "ReadReplica": False,
        "Status": "leader",
        "Meta": {"consul-network-segment": "", "consul-version": VERSION},
        "NodeType": "voter",
    }
    body = {
        "Healthy": True,
        "FailureTolerance": 0,
        "OptimisticFailureTolerance": 0,
        "Servers": {store.node_id: server},
        "Leader": store.node_id,
        "Voters": [store.node_id],
    }
    return json_response(call, body)


#: api.AutopilotConfiguration (ReadableDurations take a Go duration string or nanoseconds).
AUTOPILOT_CONFIGURATION = Struct(
    "AutopilotConfiguration",
    "api.AutopilotConfiguration",
    {
        "CleanupDeadServers": BOOL,
        "LastContactThreshold": DURATION,
        "MaxTrailingLogs": UINT64,
        "MinQuorum": UINT64,
        "ServerStabilizationTime": DURATION,
        "RedundancyZoneTag": STRING,
        "DisableUpgradeMigration": BOOL,
        "UpgradeVersionTag": STRING,
        "CreateIndex": UINT64,
        "ModifyIndex": UINT64,
    },
)


def _readable(value: Any) -> str:
    """api.ReadableDuration's JSON form: Go's ``Duration.String()``."""
    seconds = parse_go_duration(value) if isinstance(value, str) else float(value) / 1e9
    return format_go_duration(seconds)


async def autopilot_configuration(call: Call) -> web.StreamResponse:
    """``GET``/``PUT /v1/operator/autopilot/configuration`` (``?cas=`` on PUT)."""
    pilot = call.store.get(Autopilot)
    if call.request.method == "GET":
        parse_query(call)
        return json_response(call, pilot.config)
    body = await decode_body(
        call, AUTOPILOT_CONFIGURATION, prefix="Error parsing autopilot config: "
    )
    conf = {k: body[k] for k in _AUTOPILOT_DEFAULTS if k in body}
    for key in ("LastContactThreshold", "ServerStabilizationTime"):
        if key in conf:
            conf[key] = _readable(conf[key])
    cas: int | None = None
    if "cas" in call.request.query:
        raw = call.request.query.get("cas", "")
        cas = parse_uint(raw)
        if cas is None:
            raise ApiError(
                400, f"Error parsing cas value: strconv.ParseUint: parsing {go_quote(raw)}: "
                "invalid syntax",
            )  # fmt: skip
    if cas is not None and cas != pilot.config["ModifyIndex"]:
        return json_response(call, False)
    created = pilot.config["CreateIndex"]
    pilot.config = dict(_AUTOPILOT_DEFAULTS, **conf)
    pilot.config.update(CreateIndex=created, ModifyIndex=call.store.next_index())
    return json_response(call, True)


async def usage(call: Call) -> web.StreamResponse:
    """``GET /v1/operator/usage``: service and node counts (blocking on those tables).

    ``OperatorUsage`` returns ``structs.Usage``, whose embedded ``QueryMeta`` is serialized
    into the body too (``Index``, ``KnownLeader``, ``ConsistencyLevel``, ...).
    """
    opts = parse_query(call)
    cat = call.store.get(CatalogState)
    kinds = ("api-gateway", "connect-native", "connect-proxy", "ingress-gateway",
             "mesh-gateway", "terminating-gateway")  # fmt: skip

    def run(ws: WatchSet) -> QueryResult:
        ws.add(("table", "services"), ("table", "nodes"))
        names = {svc["Service"] for svc in cat.services.values()}
        instances = len(cat.services)
        consul = sum(1 for svc in cat.services.values() if svc["Service"] == "consul")
        dc_usage = {
            "Services": len(names),
            "ServiceInstances": instances,
            "ConnectServiceInstances": dict.fromkeys(kinds, 0),
            "BillableServiceInstances": instances - consul,
            "Nodes": len(cat.nodes),
        }
        index = max(cat.table_index["services"], cat.table_index["nodes"])
        # structs.Usage embeds structs.QueryMeta (no json tags), so the body repeats it.
        meta = {
            "Index": index,
            "LastContact": 0,
            "KnownLeader": True,
            "ConsistencyLevel": opts.consistency,
            "NotModified": False,
            "Backend": 0,
            "ResultsFilteredByACLs": False,
        }
        return QueryResult(index, {"Usage": {call.config.datacenter: dc_usage}, **meta})

    result = await blocking_query(call, opts, run)
    return json_response(call, result.body, headers=result.headers)
