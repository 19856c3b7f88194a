"""The dev agent's HTTP routes, one module per endpoint group of Consul's ``http_register.go``.

Each module's ``register(router)`` adds its routes; :func:`register_routes` adds them all, in a
fixed order, with plain imports so that a missing or broken module fails at import time.
"""

from __future__ import annotations

from ..server.dispatch import Router
from . import (
    agent,
    agent_info,
    agent_lifecycle,
    agent_metrics,
    catalog,
    coordinate,
    event,
    health,
    kv,
    operator,
    session,
    status,
    txn,
    unavailable,
)

__all__ = ["ROUTE_MODULES", "register_routes"]

#: The route modules plugged into every agent, in registration order.
ROUTE_MODULES = (
    kv,
    session,
    status,
    txn,
    catalog,
    health,
    agent,
    agent_info,
    agent_lifecycle,
    agent_metrics,
    event,
    coordinate,
    operator,
    unavailable,
)


def register_routes(router: Router) -> None:
    """Add every route of every module in :data:`ROUTE_MODULES` to ``router``."""
    for module in ROUTE_MODULES:
        module.register(router)
