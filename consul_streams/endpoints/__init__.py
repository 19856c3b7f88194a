"""One class per Consul endpoint; the ``Consul`` client builds each as ``Cls(transport, client)``.

Reads return a :class:`~consul_streams._query.Query` (lazy, awaitable, re-issuable by
``watch()``); writes are coroutines returning decoded values.
"""

from __future__ import annotations

from consul_streams.endpoints.agent import Agent
from consul_streams.endpoints.catalog import Catalog, CatalogNode
from consul_streams.endpoints.event import Events
from consul_streams.endpoints.health import Health
from consul_streams.endpoints.kv import KV
from consul_streams.endpoints.session import Sessions
from consul_streams.endpoints.status import Status
from consul_streams.endpoints.txn import Txn

#: Aliases for the names ``Event``/``Session``, which belong to the TypedDicts.
EventEndpoint = Events
SessionEndpoint = Sessions

__all__ = [
    "KV",
    "Agent",
    "Catalog",
    "CatalogNode",
    "EventEndpoint",
    "Events",
    "Health",
    "SessionEndpoint",
    "Sessions",
    "Status",
    "Txn",
]
