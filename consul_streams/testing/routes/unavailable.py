"""Routes of subsystems the dev agent leaves out, answered as Consul answers them.

Every route of Consul's ``agent/http_register.go`` is registered, so no client ever meets the
generic ``not a recognized HTTP API endpoint`` 404. Subsystems that Consul can switch off
answer what Consul answers when they are off (the texts come from the Go handlers):

* ACLs (``acl_default_policy="allow"``, no management token): ``401 ACL support disabled``
  (``checkACLDisabled`` in ``agent/acl_endpoint.go``; also ``/v1/agent/token/`` and
  ``/v1/internal/acl/authorize``).
* Connect: the CA configuration and leaf certificates answer ``500 Connect must be enabled in
  order to use this endpoint`` (``ErrConnectNotEnabled``); the CA roots read answers the empty
  root list that ``ConnectCA.Roots`` returns without a CA.
* Peering: ``500 rpc error: code = FailedPrecondition desc = peering must be enabled to use
  this endpoint`` (``peeringNotEnabledErr``) after the handlers' own argument checks.

Empty reads of subsystems that cannot be switched off (config entries, intentions, prepared
queries, mesh catalog views) answer what a fresh agent answers: no entries. Everything else
(writes to those subsystems, snapshots, gossip keyrings, the UI's internal API, ...) answers
:func:`unavailable`: a 500 naming the subsystem, the way Consul reports a failed server call.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .._blocking import QueryResult, blocking_query, go_quote, parse_query
from ..server.decode import STRING, ListOf, MapOf, Struct, decode_body
from ..server.dispatch import Handler, Router
from ..server.wire import ApiError, Call, empty_response, json_response, meta_headers
from ..state.store import WatchSet

__all__ = [
    "ACL_DISABLED",
    "CONFIG_KINDS",
    "CONNECT_DISABLED",
    "PEERING_DISABLED",
    "acls_enabled",
    "register",
    "unavailable",
]

if TYPE_CHECKING:
    from ..server.decode import Spec

ACL_DISABLED = "ACL support disabled"
CONNECT_DISABLED = "Connect must be enabled in order to use this endpoint"
PEERING_DISABLED = (
    "rpc error: code = FailedPrecondition desc = peering must be enabled to use this endpoint"
)
#: Config entry kinds ``structs.MakeConfigEntry`` knows (Consul CE).
CONFIG_KINDS = frozenset(
    {
        "service-defaults", "proxy-defaults", "service-router", "service-splitter",
        "service-resolver", "ingress-gateway", "terminating-gateway", "service-intentions",
        "mesh", "exported-services", "sameness-group", "api-gateway", "bound-api-gateway",
        "inline-certificate", "file-system-certificate", "http-route", "tcp-route",
        "jwt-provider",
    }
)  # fmt: skip
_SPIFFE_SERVICE = re.compile(r"^spiffe://[^/]+/ns/[^/]+/dc/[^/]+/svc/[^/]+$")
_SPIFFE_ANY = re.compile(r"^spiffe://[^/]+(/.*)?$")


def unavailable(what: str) -> Handler:
    """A handler answering 500 ``<what> is not available in the consul-streams dev agent``."""
    text = f"{what} is not available in the consul-streams dev agent"

    async def handler(call: Call) -> web.StreamResponse:
        raise ApiError(500, text)

    handler.__doc__ = f"Out of scope: {what}."
    return handler


def acls_enabled(call: Call) -> bool:
    """Whether the agent enforces ACLs (``acl { enabled = true }``)."""
    cfg = call.config
    enabled = getattr(cfg, "acl_enabled", None)
    if isinstance(enabled, bool):
        return enabled
    return cfg.acl_default_policy == "deny" or cfg.management_token is not None


_acl_management = unavailable("ACL management")
#: The built-in policy of the management token (``structs.ACLPolicyGlobalManagementID``).
GLOBAL_MANAGEMENT = {"ID": "00000000-0000-0000-0000-000000000001", "Name": "global-management"}


async def acl(call: Call) -> web.StreamResponse:
    """Every ACL route: 401 ``ACL support disabled`` while ACLs are off."""
    if not acls_enabled(call):
        raise ApiError(401, ACL_DISABLED)
    if call.request.path == "/v1/acl/token/self":
        return await _token_self(call)
    if call.request.path.startswith("/v1/agent/token/"):
        return await _agent_token(call)
    return await _acl_management(call)


#: api.AgentToken, the body of ``PUT /v1/agent/token/:type``.
AGENT_TOKEN = Struct("AgentToken", "api.AgentToken", {"Token": STRING})
#: The targets ``AgentToken`` accepts (current names and their legacy spellings).
AGENT_TOKEN_TARGETS = frozenset(
    {
        "acl_token", "default", "acl_agent_token", "agent", "acl_agent_master_token",
        "agent_master", "agent_recovery", "acl_replication_token", "replication",
        "config_file_service_registration", "dns_token", "dns",
    }
)  # fmt: skip


async def _agent_token(call: Call) -> web.StreamResponse:
    """``PUT /v1/agent/token/:type`` (``AgentToken``) with ACLs on: agent:write (the
    dispatcher's token check), then the body is decoded, then an unknown target answers
    ``404 Token "x" is unknown``; a known one answers 200 with no body. The dev agent makes no
    ACL'd calls of its own, so the token is accepted and not kept (never logged)."""
    await decode_body(call, AGENT_TOKEN)
    target = call.request.path.removeprefix("/v1/agent/token/")
    if target not in AGENT_TOKEN_TARGETS:
        raise ApiError(404, f"Token {go_quote(target)} is unknown")
    return empty_response()


async def _token_self(call: Call) -> web.StreamResponse:
    """``GET /v1/acl/token/self`` (ACLTokenSelf): the request's own token."""
    parse_query(call)
    token = call.token
    cfg = call.config
    if token is None or (token != cfg.management_token and token not in cfg.tokens):
        raise ApiError(403, "ACL not found")
    management = token == cfg.management_token
    body = {
        "AccessorID": str(uuid.uuid5(uuid.NAMESPACE_OID, f"consul-streams-token:{token}")),
        "SecretID": token,
        "Description": "Initial Management Token" if management else "",
        "Policies": [GLOBAL_MANAGEMENT] if management else [],
        "Local": False,
        "CreateTime": "1970-01-01T00:00:00Z",
        "Hash": "",
        "CreateIndex": 1,
        "ModifyIndex": 1,
    }
    return json_response(call, body, headers=meta_headers(1))


async def serve_empty(call: Call, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """An empty table's read: index 1 (Consul never answers 0), and a blocking read
    (``?index=1``) waits out its ``wait`` as Consul's blockingQuery would, never spinning."""
    opts = parse_query(call)

    def run(ws: WatchSet) -> QueryResult:
        return QueryResult(1, body)

    result = await blocking_query(call, opts, run)
    return json_response(call, result.body, headers={**result.headers, **(headers or {})})


async def connect_disabled(call: Call) -> web.StreamResponse:
    """Connect CA configuration and leaf certificates (``ErrConnectNotEnabled``)."""
    raise ApiError(500, CONNECT_DISABLED)


async def ca_roots(call: Call) -> web.StreamResponse:
    """``GET /v1/connect/ca/roots`` and the agent's copy: no CA, so no roots."""
    headers = {}
    if call.request.path.startswith("/v1/agent/"):
        # The agent endpoint reads through the agent cache (setCacheMeta).
        headers["X-Cache"] = "MISS"
    body = {"ActiveRootID": "", "TrustDomain": "", "Roots": []}
    return await serve_empty(call, body, headers)


#: structs.ConnectAuthorizeRequest.
CONNECT_AUTHORIZE = Struct(
    "ConnectAuthorizeRequest",
    "structs.ConnectAuthorizeRequest",
    {
        "Target": STRING,
        "ClientCertURI": STRING,
        "ClientCertSerial": STRING,
        "Namespace": STRING,
        "Partition": STRING,
    },
)
_PEERING_FIELDS: dict[str, Spec] = {
    "PeerName": STRING,
    "Partition": STRING,
    "Meta": MapOf(STRING, "map[string]string"),
}
#: pbpeering.GenerateTokenRequest / EstablishRequest as lib.DecodeJSON reads them.
PEERING_TOKEN = Struct(
    "GenerateTokenRequest",
    "pbpeering.GenerateTokenRequest",
    {**_PEERING_FIELDS, "ServerExternalAddresses": ListOf(STRING, "[]string")},
)
PEERING_ESTABLISH = Struct(
    "EstablishRequest", "pbpeering.EstablishRequest", {**_PEERING_FIELDS, "PeeringToken": STRING}
)


async def connect_authorize(call: Call) -> web.StreamResponse:
    """``POST /v1/agent/connect/authorize``: no intentions, so the ACL default decides."""
    body = await decode_body(call, CONNECT_AUTHORIZE)
    if not body.get("Target"):
        raise ApiError(400, "Target service must be specified")
    uri = str(body.get("ClientCertURI") or "")
    if not _SPIFFE_ANY.match(uri):
        raise ApiError(400, "ClientCertURI not a valid Connect identifier")
    if not _SPIFFE_SERVICE.match(uri):
        raise ApiError(400, "ClientCertURI not a valid Service identifier")
    allowed = call.config.acl_default_policy != "deny"
    reply = {"Authorized": allowed, "Reason": "Default behavior configured by ACLs"}
    return json_response(call, reply)


def _empty_read(empty: Any, missing: str | None = None) -> Handler:
    async def handler(call: Call) -> web.StreamResponse:
        if missing is not None:
            call.required_suffix(missing)
        return await serve_empty(call, empty)

    handler.__doc__ = "A read of a subsystem the dev agent keeps empty."
    return handler


async def config_entries(call: Call) -> web.StreamResponse:
    """``GET``/``DELETE /v1/config/:kind[/:name]`` against an empty config-entry table."""
    parts = call.suffix.split("/", 1)
    if call.request.method == "DELETE":
        if len(parts) != 2:
            raise ApiError(404, "Must provide both a kind and name to delete")
        if parts[0] not in CONFIG_KINDS:
            raise ApiError(400, f"invalid config entry kind: {parts[0]}")
        # Deleting what is not there succeeds; with ?cas the answer is "deleted": false.
        return json_response(call, False if call.request.query.get("cas") else {})
    if len(parts) == 2:
        parse_query(call)
        kind, name = parts
        text = f'Config entry not found for "{kind}" / "{name}"'
        raise ApiError(404, text, meta_headers(1))
    if parts[0] not in CONFIG_KINDS:
        parse_query(call)
        raise ApiError(500, f"invalid config entry kind: {parts[0]}")
    return await serve_empty(call, [])


async def prepared_query(call: Call) -> web.StreamResponse:
    """``/v1/query/:id[/execute|/explain]``: no prepared queries exist."""
    method = call.request.method
    if method == "GET":
        parse_query(call)
        raise ApiError(404, "Query not found")
    if method in ("PUT", "DELETE") and "/" not in call.suffix:
        raise ApiError(500, "Prepared queries are not available in the consul-streams dev agent")
    allow = "OPTIONS,GET" if "/" in call.suffix else "OPTIONS,GET,PUT,DELETE"
    raise ApiError(405, f"method {method} not allowed", {"Allow": allow})


def _list_or(what: str) -> Handler:
    write = unavailable(what)

    async def handler(call: Call) -> web.StreamResponse:
        if call.request.method != "GET":
            return await write(call)
        return await serve_empty(call, [])

    handler.__doc__ = f"List (always empty) or create (out of scope): {what}."
    return handler


async def peering_token(call: Call) -> web.StreamResponse:
    """``POST /v1/peering/token`` and ``/establish``: argument checks, then peering is off."""
    establish = call.request.path.endswith("/establish")
    spec = PEERING_ESTABLISH if establish else PEERING_TOKEN
    body = await decode_body(call, spec, prefix="Body decoding failed: ")
    if not body.get("PeerName"):
        action = "establishing a peering" if establish else "generating a new peering token"
        raise ApiError(400, f"PeerName is required in the payload when {action}.")
    if establish and not body.get("PeeringToken"):
        raise ApiError(400, "PeeringToken is required in the payload when establishing a peering.")
    raise ApiError(500, PEERING_DISABLED)


async def peering(call: Call) -> web.StreamResponse:
    """``GET``/``DELETE /v1/peering/:name``: a name is required, then peering is off."""
    call.required_suffix("Must specify a name to fetch.")
    raise ApiError(500, PEERING_DISABLED)


async def peerings(call: Call) -> web.StreamResponse:
    """``GET /v1/peerings``: peering is off."""
    raise ApiError(500, PEERING_DISABLED)


async def agent_join(call: Call) -> web.StreamResponse:
    """``PUT /v1/agent/join/:address``: the only gossip member is this agent."""
    addr = call.suffix
    host = addr.rsplit(":", 1)[0] if addr.count(":") == 1 else addr
    if host in ("", call.store.node_address, "127.0.0.1", "localhost"):
        return empty_response()
    target = addr if ":" in addr else f"{addr}:8301"
    raise ApiError(
        500,
        f"1 error occurred:\n\t* Failed to join {target}: joining other agents is not "
        "available in the consul-streams dev agent\n\n",
    )


ACL_ROUTES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/v1/acl/bootstrap", ("PUT",)),
    ("/v1/acl/login", ("POST",)),
    ("/v1/acl/logout", ("POST",)),
    ("/v1/acl/replication", ("GET",)),
    ("/v1/acl/policies", ("GET",)),
    ("/v1/acl/policy", ("PUT",)),
    ("/v1/acl/policy/", ("GET", "PUT", "DELETE")),
    ("/v1/acl/policy/name/", ("GET",)),
    ("/v1/acl/roles", ("GET",)),
    ("/v1/acl/role", ("PUT",)),
    ("/v1/acl/role/name/", ("GET",)),
    ("/v1/acl/role/", ("GET", "PUT", "DELETE")),
    ("/v1/acl/binding-rules", ("GET",)),
    ("/v1/acl/binding-rule", ("PUT",)),
    ("/v1/acl/binding-rule/", ("GET", "PUT", "DELETE")),
    ("/v1/acl/auth-methods", ("GET",)),
    ("/v1/acl/auth-method", ("PUT",)),
    ("/v1/acl/auth-method/", ("GET", "PUT", "DELETE")),
    ("/v1/acl/tokens", ("GET",)),
    ("/v1/acl/token", ("PUT",)),
    ("/v1/acl/token/self", ("GET",)),
    ("/v1/acl/token/", ("GET", "PUT", "DELETE")),
    ("/v1/acl/templated-policies", ("GET",)),
    ("/v1/acl/templated-policy/name/", ("GET",)),
    ("/v1/acl/templated-policy/preview/", ("POST",)),
    ("/v1/agent/token/", ("PUT",)),
    ("/v1/internal/acl/authorize", ("POST",)),
)

_UI = unavailable("The web UI's internal API")
_MESH = unavailable("Service mesh configuration")
_INTENTIONS = unavailable("Service mesh intentions")
_FEDERATION = unavailable("WAN federation through mesh gateways")

#: (path, methods, handler) of every other route this module answers.
ROUTES: tuple[tuple[str, tuple[str, ...], Handler], ...] = (
    ("/v1/agent/join/", ("PUT",), agent_join),
    ("/v1/agent/connect/authorize", ("POST",), connect_authorize),
    ("/v1/agent/connect/ca/roots", ("GET",), ca_roots),
    ("/v1/agent/connect/ca/leaf/", ("GET",), connect_disabled),
    ("/v1/catalog/connect/", ("GET",), _empty_read([], "Missing service name")),
    # Catalog.GatewayServices runs filterACL even with ACLs off (authorizer ManageAll), and
    # aclFilter.filterGatewayServices rebuilds the list with make(..., 0): `[]`, never null.
    ("/v1/catalog/gateway-services/", ("GET",), _empty_read([], "Missing gateway name")),
    ("/v1/config/", ("GET", "DELETE"), config_entries),
    ("/v1/config", ("PUT",), _MESH),
    ("/v1/connect/ca/configuration", ("GET", "PUT"), connect_disabled),
    ("/v1/connect/ca/roots", ("GET",), ca_roots),
    ("/v1/connect/intentions", ("GET", "POST"), _list_or("Service mesh intentions")),
    ("/v1/connect/intentions/match", ("GET",), _INTENTIONS),
    ("/v1/connect/intentions/check", ("GET",), _INTENTIONS),
    ("/v1/connect/intentions/exact", ("GET", "PUT", "DELETE"), _INTENTIONS),
    ("/v1/connect/intentions/", ("GET", "PUT", "DELETE"), _INTENTIONS),
    ("/v1/internal/federation-states", ("GET",), _FEDERATION),
    ("/v1/internal/federation-states/mesh-gateways", ("GET",), _FEDERATION),
    ("/v1/internal/federation-state/", ("GET",), _FEDERATION),
    ("/v1/discovery-chain/", ("GET", "POST"), _MESH),
    ("/v1/exported-services", ("GET",), _empty_read([])),
    ("/v1/health/connect/", ("GET",), _empty_read([], "Missing service name")),
    ("/v1/health/ingress/", ("GET",), _empty_read([], "Missing service name")),
    ("/v1/internal/ui/metrics-proxy/", ("GET",), _UI),
    ("/v1/internal/ui/nodes", ("GET",), _UI),
    ("/v1/internal/ui/node/", ("GET",), _UI),
    ("/v1/internal/ui/services", ("GET",), _UI),
    ("/v1/internal/ui/exported-services", ("GET",), _UI),
    ("/v1/internal/ui/catalog-overview", ("GET",), _UI),
    ("/v1/internal/ui/gateway-services-nodes/", ("GET",), _UI),
    ("/v1/internal/ui/gateway-intentions/", ("GET",), _UI),
    ("/v1/internal/ui/service-topology/", ("GET",), _UI),
    ("/v1/internal/service-virtual-ip", ("PUT",), _MESH),
    ("/v1/peering/token", ("POST",), peering_token),
    ("/v1/peering/establish", ("POST",), peering_token),
    ("/v1/peering/", ("GET", "DELETE"), peering),
    ("/v1/peerings", ("GET",), peerings),
    ("/v1/query", ("GET", "POST"), _list_or("Prepared queries")),
    ("/v1/query/", ("GET", "PUT", "POST", "DELETE"), prepared_query),
    ("/v1/snapshot", ("GET", "PUT"), unavailable("Snapshot save and restore")),
)


def register(router: Router) -> None:
    """Add every out-of-scope route."""
    for path, methods in ACL_ROUTES:
        router.add(path, methods, acl)
    for path, methods, handler in ROUTES:
        router.add(path, methods, handler)
