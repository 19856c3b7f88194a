"""The request bodies of the dev agent's endpoints, as Consul's Go structs declare them.

Each spec names the Go struct the handler decodes into (``agent/structs``, ``api``), its fields
with their Go types, and the snake_case / legacy aliases its ``UnmarshalJSON`` translates.
Enterprise-only fields (``Namespace``, ``Partition``) are absent, as in Consul CE, where
``acl.EnterpriseMeta`` is an empty struct.
"""

from __future__ import annotations

from .decode import (
    ANY,
    BOOL,
    BYTES,
    DURATION,
    INT,
    STRING,
    UINT64,
    ListOf,
    MapOf,
    Spec,
    Struct,
)

__all__ = [
    "CATALOG_DEREGISTER",
    "CATALOG_REGISTER",
    "CHECK_DEFINITION",
    "CHECK_UPDATE",
    "SERVICE_DEFINITION",
    "SESSION",
    "TXN_OPS",
]

_STRINGS = ListOf(STRING, "[]string")
_STRING_MAP = MapOf(STRING, "map[string]string")
_WEIGHTS = Struct("Weights", "*structs.Weights", {"Passing": INT, "Warning": INT})
_SERVICE_ADDRESS = Struct(
    "ServiceAddress", "structs.ServiceAddress", {"Address": STRING, "Port": INT}
)
_TAGGED = MapOf(_SERVICE_ADDRESS, "map[string]structs.ServiceAddress")
_RAFT_INDEX = {"CreateIndex": UINT64, "ModifyIndex": UINT64}

#: Fields a check type shares between CheckType and CheckDefinition (agent/structs/check_*.go).
_CHECK_COMMON: dict[str, Spec] = {
    "Name": STRING,
    "Status": STRING,
    "Notes": STRING,
    "ScriptArgs": _STRINGS,
    "HTTP": STRING,
    "H2PING": STRING,
    "H2PingUseTLS": BOOL,
    "Header": MapOf(_STRINGS, "map[string][]string"),
    "Method": STRING,
    "Body": STRING,
    "DisableRedirects": BOOL,
    "TCP": STRING,
    "TCPUseTLS": BOOL,
    "UDP": STRING,
    "Interval": DURATION,
    "AliasNode": STRING,
    "AliasService": STRING,
    "DockerContainerID": STRING,
    "Shell": STRING,
    "GRPC": STRING,
    "GRPCUseTLS": BOOL,
    "OSService": STRING,
    "TLSServerName": STRING,
    "TLSSkipVerify": BOOL,
    "Timeout": DURATION,
    "TTL": DURATION,
    "SuccessBeforePassing": INT,
    "FailuresBeforeWarning": INT,
    "FailuresBeforeCritical": INT,
    "DeregisterCriticalServiceAfter": DURATION,
    "OutputMaxSize": INT,
}
#: The aliases CheckType.UnmarshalJSON / CheckDefinition.UnmarshalJSON translate.
_CHECK_ALIASES = {
    "args": "ScriptArgs",
    "script_args": "ScriptArgs",
    "deregister_critical_service_after": "DeregisterCriticalServiceAfter",
    "docker_container_id": "DockerContainerID",
    "tls_server_name": "TLSServerName",
    "tls_skip_verify": "TLSSkipVerify",
    "grpc_use_tls": "GRPCUseTLS",
    "h2ping_use_tls": "H2PingUseTLS",
    "disable_redirects": "DisableRedirects",
}

#: structs.CheckType (a service definition's Check / Checks).
CHECK_TYPE = Struct(
    "",
    "structs.CheckType",
    {"CheckID": STRING, **_CHECK_COMMON, "ProxyHTTP": STRING, "ProxyGRPC": STRING},
    _CHECK_ALIASES,
    custom=True,
)

#: structs.CheckDefinition (PUT /v1/agent/check/register).
CHECK_DEFINITION = Struct(
    "",
    "structs.CheckDefinition",
    {"ID": STRING, "ServiceID": STRING, "Token": STRING, **_CHECK_COMMON},
    {**_CHECK_ALIASES, "service_id": "ServiceID"},
    custom=True,
)

#: structs.ServiceDefinition (PUT /v1/agent/service/register).
SERVICE_DEFINITION = Struct(
    "",
    "structs.ServiceDefinition",
    {
        "Kind": STRING,
        "ID": STRING,
        "Name": STRING,
        "Tags": _STRINGS,
        "Address": STRING,
        "TaggedAddresses": _TAGGED,
        "Meta": _STRING_MAP,
        "Port": INT,
        "Ports": ANY,
        "SocketPath": STRING,
        "Check": CHECK_TYPE,
        "Checks": ListOf(CHECK_TYPE, "structs.CheckTypes"),
        "Weights": _WEIGHTS,
        "Token": STRING,
        "EnableTagOverride": BOOL,
        "Locality": ANY,
        "Proxy": ANY,
        "Connect": ANY,
    },
    {"enable_tag_override": "EnableTagOverride", "tagged_addresses": "TaggedAddresses"},
    custom=True,
)

#: agent/agent_endpoint.go checkUpdate (PUT /v1/agent/check/update/:id).
CHECK_UPDATE = Struct("checkUpdate", "agent.checkUpdate", {"Status": STRING, "Output": STRING})

_NODE_SERVICE = Struct(
    "NodeService",
    "*structs.NodeService",
    {
        "Kind": STRING,
        "ID": STRING,
        "Service": STRING,
        "Tags": _STRINGS,
        "Address": STRING,
        "TaggedAddresses": _TAGGED,
        "Meta": _STRING_MAP,
        "Port": INT,
        "Ports": ANY,
        "SocketPath": STRING,
        "Weights": _WEIGHTS,
        "EnableTagOverride": BOOL,
        "Proxy": ANY,
        "Connect": ANY,
        "PeerName": STRING,
        "LocallyRegisteredAsSidecar": BOOL,
        "Locality": ANY,
        **_RAFT_INDEX,
    },
)
_HEALTH_CHECK_DEFINITION = Struct(
    "",
    "structs.HealthCheckDefinition",
    {
        "HTTP": STRING,
        "TLSServerName": STRING,
        "TLSSkipVerify": BOOL,
        "Header": MapOf(_STRINGS, "map[string][]string"),
        "Method": STRING,
        "Body": STRING,
        "DisableRedirects": BOOL,
        "TCP": STRING,
        "TCPUseTLS": BOOL,
        "UDP": STRING,
        "H2PING": STRING,
        "H2PingUseTLS": BOOL,
        "OSService": STRING,
        "Interval": DURATION,
        "OutputMaxSize": ANY,
        "Timeout": DURATION,
        "DeregisterCriticalServiceAfter": DURATION,
        "ScriptArgs": _STRINGS,
        "DockerContainerID": STRING,
        "Shell": STRING,
        "GRPC": STRING,
        "GRPCUseTLS": BOOL,
        "AliasNode": STRING,
        "AliasService": STRING,
        "TTL": DURATION,
    },
    custom=True,
)
_HEALTH_CHECK = Struct(
    "HealthCheck",
    "*structs.HealthCheck",
    {
        "Node": STRING,
        "CheckID": STRING,
        "Name": STRING,
        "Status": STRING,
        "Notes": STRING,
        "Output": STRING,
        "ServiceID": STRING,
        "ServiceName": STRING,
        "ServiceTags": _STRINGS,
        "Type": STRING,
        "Interval": STRING,
        "Timeout": STRING,
        "ExposedPort": INT,
        "PeerName": STRING,
        "Definition": _HEALTH_CHECK_DEFINITION,
        **_RAFT_INDEX,
    },
)

#: structs.RegisterRequest (PUT /v1/catalog/register).
CATALOG_REGISTER = Struct(
    "RegisterRequest",
    "structs.RegisterRequest",
    {
        "Datacenter": STRING,
        "ID": STRING,
        "Node": STRING,
        "Address": STRING,
        "TaggedAddresses": _STRING_MAP,
        "NodeMeta": _STRING_MAP,
        "Service": _NODE_SERVICE,
        "Check": _HEALTH_CHECK,
        "Checks": ListOf(_HEALTH_CHECK, "structs.HealthChecks"),
        "SkipNodeUpdate": BOOL,
        "PeerName": STRING,
        "Locality": ANY,
        "Token": STRING,
        **_RAFT_INDEX,
    },
)

#: structs.DeregisterRequest (PUT /v1/catalog/deregister).
CATALOG_DEREGISTER = Struct(
    "DeregisterRequest",
    "structs.DeregisterRequest",
    {
        "Datacenter": STRING,
        "Node": STRING,
        "ServiceID": STRING,
        "CheckID": STRING,
        "PeerName": STRING,
        "Token": STRING,
    },
)

#: structs.Session (PUT /v1/session/create); LockDelay is a duration or a number.
SESSION = Struct(
    "",
    "structs.Session",
    {
        "ID": STRING,
        "Name": STRING,
        "Node": STRING,
        "LockDelay": ANY,
        "Behavior": STRING,
        "TTL": STRING,
        "NodeChecks": _STRINGS,
        "ServiceChecks": ListOf(
            Struct("ServiceCheck", "structs.ServiceCheck", {"ID": STRING, "Namespace": STRING}),
            "[]structs.ServiceCheck",
        ),
        "Checks": _STRINGS,
        **_RAFT_INDEX,
    },
    custom=True,
)

_KV_TXN_OP = Struct(
    "KVTxnOp",
    "*api.KVTxnOp",
    {
        "Verb": STRING,
        "Key": STRING,
        "Value": BYTES,
        "Flags": UINT64,
        "Index": UINT64,
        "Session": STRING,
        "Namespace": STRING,
        "Partition": STRING,
    },
)
#: api.TxnOps (PUT /v1/txn): KV operations typed, the others passed to their handlers.
TXN_OPS = ListOf(
    Struct(
        "TxnOp",
        "*api.TxnOp",
        {"KV": _KV_TXN_OP, "Node": ANY, "Service": ANY, "Check": ANY},
    ),
    "api.TxnOps",
)
