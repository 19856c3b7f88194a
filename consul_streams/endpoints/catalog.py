"""The catalog: ``/v1/catalog/`` (nodes, services and their instances, cluster-wide)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, cast

from consul_streams import _identity
from consul_streams._query import BlockingMode, Query, Request, Response
from consul_streams.endpoints._base import (
    Endpoint,
    NodeMeta,
    check_bool,
    check_name,
    common_params,
    decode_bool,
    decode_dict,
    decode_json,
    decode_list,
    expect_dict,
    filter_params,
    json_body,
    near_params,
    node_meta_params,
    path_segment,
    tag_params,
)
from consul_streams.exceptions import InvalidArgument
from consul_streams.typing import AgentService, Blocking, CatalogService, Consistency, Node

__all__ = ["Catalog", "CatalogNode"]


class CatalogNode(TypedDict):
    """``/v1/catalog/node/:node``: the node and its services keyed by service ID."""

    Node: Node
    Services: dict[str, AgentService]


def _decode_node(response: Response) -> CatalogNode | None:
    # An unknown node is a 200 with the body ``null``.
    value = decode_json(response)
    if value is None:
        return None
    node = expect_dict(value, response)
    node["Services"] = expect_dict(node.get("Services"), response)
    return cast(CatalogNode, node)


def _decode_strings(response: Response) -> list[str]:
    return cast(list[str], decode_list(response))


def _decode_nodes(response: Response) -> list[Node]:
    return cast(list[Node], decode_list(response))


def _decode_services(response: Response) -> dict[str, list[str]]:
    return cast(dict[str, list[str]], decode_dict(response))


def _decode_instances(response: Response) -> list[CatalogService]:
    return cast(list[CatalogService], decode_list(response))


def _mapping(value: object, parameter: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            parameter, f"expected a mapping in Consul's JSON shape, got {value!r}"
        )
    return dict(value)


class Catalog(Endpoint):
    """``/v1/catalog/``: every read is an index-blocking Query."""

    def datacenters(self) -> Query[list[str]]:
        """Names of the known datacenters (not blocking)."""
        request = Request("GET", "/v1/catalog/datacenters")
        return self._query(
            request, _decode_strings, mode=BlockingMode.NONE, identity=_identity.STRINGS
        )

    def nodes(
        self,
        *,
        near: str | None = None,
        node_meta: NodeMeta | None = None,
        filter: str | None = None,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[list[Node]]:
        """Every node in the datacenter."""
        params = near_params(near) + node_meta_params(node_meta) + filter_params(filter)
        params += common_params(dc, consistency)
        request = Request("GET", "/v1/catalog/nodes", tuple(params))
        return self._query(request, _decode_nodes, watch=watch, identity=_identity.NODES)

    def services(
        self,
        *,
        node_meta: NodeMeta | None = None,
        filter: str | None = None,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[dict[str, list[str]]]:
        """Service name -> tags (de-duplicated across instances, in no particular order)."""
        params = (
            node_meta_params(node_meta) + filter_params(filter) + common_params(dc, consistency)
        )
        request = Request("GET", "/v1/catalog/services", tuple(params))
        return self._query(request, _decode_services, watch=watch, identity=_identity.MAPPING)

    def service(
        self,
        name: str,
        *,
        tag: str | Sequence[str] | None = None,
        near: str | None = None,
        node_meta: NodeMeta | None = None,
        filter: str | None = None,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[list[CatalogService]]:
        """The instances of service ``name`` (``[]`` when unknown); tags are ANDed."""
        path = "/v1/catalog/service/" + path_segment(name, "name")
        params = tag_params(tag) + near_params(near) + node_meta_params(node_meta)
        params += filter_params(filter) + common_params(dc, consistency)
        return self._query(
            Request("GET", path, tuple(params)),
            _decode_instances,
            watch=watch,
            identity=_identity.CATALOG_SERVICES,
        )

    def node(
        self,
        name: str,
        *,
        filter: str | None = None,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[CatalogNode | None]:
        """Node ``name`` and its services, or ``None`` when the node is unknown."""
        path = "/v1/catalog/node/" + path_segment(name, "name")
        params = filter_params(filter) + common_params(dc, consistency)
        return self._query(
            Request("GET", path, tuple(params)),
            _decode_node,
            watch=watch,
            identity=_identity.CATALOG_NODE,
        )

    async def register(
        self,
        node: str,
        address: str,
        *,
        service: Mapping[str, Any] | None = None,
        check: Mapping[str, Any] | None = None,
        checks: Sequence[Mapping[str, Any]] | None = None,
        node_meta: Mapping[str, str] | None = None,
        tagged_addresses: Mapping[str, str] | None = None,
        id: str | None = None,
        skip_node_update: bool = False,
        dc: str | None = None,
    ) -> bool:
        """Register (or update) a node, optionally with a service and checks.

        ``service``, ``check`` and ``checks`` are given in Consul's JSON shape
        (``{"Service": "web", "Port": 80, ...}``).
        """
        body: dict[str, Any] = {
            "Node": check_name(node, "node"),
            "Address": check_name(address, "address"),
        }
        if id is not None:
            body["ID"] = check_name(id, "id")
        if dc is not None:
            body["Datacenter"] = check_name(dc, "dc")
        for key, value, parameter in (
            ("Service", service, "service"),
            ("Check", check, "check"),
            ("NodeMeta", node_meta, "node_meta"),
            ("TaggedAddresses", tagged_addresses, "tagged_addresses"),
        ):
            mapped = _mapping(value, parameter)
            if mapped is not None:
                body[key] = mapped
        if checks is not None:
            if isinstance(checks, (str, bytes, Mapping)) or not isinstance(checks, Sequence):
                raise InvalidArgument("checks", f"expected a list of mappings, got {checks!r}")
            body["Checks"] = [_mapping(c, "checks") for c in checks]
        if check_bool(skip_node_update, "skip_node_update"):
            body["SkipNodeUpdate"] = True
        request = Request(
            "PUT", "/v1/catalog/register", tuple(common_params(dc)), body=json_body(body)
        )
        return await self._write(request, decode_bool)

    async def deregister(
        self,
        node: str,
        *,
        service_id: str | None = None,
        check_id: str | None = None,
        dc: str | None = None,
    ) -> bool:
        """Remove a node (and everything on it), or only one of its services or checks."""
        body: dict[str, Any] = {"Node": check_name(node, "node")}
        if service_id is not None:
            body["ServiceID"] = check_name(service_id, "service_id")
        if check_id is not None:
            body["CheckID"] = check_name(check_id, "check_id")
        if dc is not None:
            body["Datacenter"] = check_name(dc, "dc")
        request = Request(
            "PUT", "/v1/catalog/deregister", tuple(common_params(dc)), body=json_body(body)
        )
        return await self._write(request, decode_bool)
