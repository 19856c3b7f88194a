"""Health: ``/v1/health/`` (checks and healthy instances, cluster-wide)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from consul_streams import _identity
from consul_streams._query import Query, Request, Response
from consul_streams.endpoints._base import (
    Endpoint,
    NodeMeta,
    check_bool,
    common_params,
    decode_list,
    filter_params,
    near_params,
    node_meta_params,
    path_segment,
    tag_params,
)
from consul_streams.exceptions import InvalidArgument
from consul_streams.typing import Blocking, Consistency, HealthCheck, ServiceEntry

__all__ = ["CHECK_STATES", "Health"]

#: The states ``/v1/health/state/:state`` knows (``any`` = all checks).
CHECK_STATES = ("any", "passing", "warning", "critical")


def _decode_checks(response: Response) -> list[HealthCheck]:
    return cast(list[HealthCheck], decode_list(response))


def _decode_entries(response: Response) -> list[ServiceEntry]:
    return cast(list[ServiceEntry], decode_list(response))


class Health(Endpoint):
    """``/v1/health/``: every read is an index-blocking Query."""

    def node(
        self,
        node: str,
        *,
        filter: str | None = None,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[list[HealthCheck]]:
        """The checks of ``node`` (node and service checks); ``[]`` for an unknown node."""
        path = "/v1/health/node/" + path_segment(node, "node")
        params = filter_params(filter) + common_params(dc, consistency)
        return self._query(
            Request("GET", path, tuple(params)),
            _decode_checks,
            watch=watch,
            identity=_identity.CHECKS,
        )

    def checks(
        self,
        service: str,
        *,
        near: str | None = None,
        node_meta: NodeMeta | None = None,
        filter: str | None = None,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[list[HealthCheck]]:
        """The checks of every instance of ``service``."""
        path = "/v1/health/checks/" + path_segment(service, "service")
        params = near_params(near) + node_meta_params(node_meta) + filter_params(filter)
        params += common_params(dc, consistency)
        return self._query(
            Request("GET", path, tuple(params)),
            _decode_checks,
            watch=watch,
            identity=_identity.CHECKS,
        )

    def service(
        self,
        name: str,
        *,
        passing: bool = False,
        tag: str | Sequence[str] | None = None,
        near: str | None = None,
        node_meta: NodeMeta | None = None,
        filter: str | None = None,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[list[ServiceEntry]]:
        """Instances of ``name`` with their node and checks.

        With ``passing=True`` only instances whose every check (node checks included) passes.
        """
        check_bool(passing, "passing")
        path = "/v1/health/service/" + path_segment(name, "name")
        params = [("passing", "1")] if passing else []
        params += tag_params(tag) + near_params(near) + node_meta_params(node_meta)
        params += filter_params(filter) + common_params(dc, consistency)
        return self._query(
            Request("GET", path, tuple(params)),
            _decode_entries,
            watch=watch,
            identity=_identity.HEALTH_ENTRIES,
        )

    def state(
        self,
        state: str = "any",
        *,
        near: str | None = None,
        node_meta: NodeMeta | None = None,
        filter: str | None = None,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[list[HealthCheck]]:
        """Every check in ``state`` (one of ``any``, ``passing``, ``warning``, ``critical``)."""
        if state not in CHECK_STATES:
            raise InvalidArgument(
                "state", f"expected one of {', '.join(CHECK_STATES)}; got {state!r}"
            )
        path = "/v1/health/state/" + state
        params = near_params(near) + node_meta_params(node_meta) + filter_params(filter)
        params += common_params(dc, consistency)
        return self._query(
            Request("GET", path, tuple(params)),
            _decode_checks,
            watch=watch,
            identity=_identity.CHECKS,
        )
