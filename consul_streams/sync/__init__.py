"""consul_streams for synchronous code: the same client, watches and recipes, blocking.

::

    from consul_streams.sync import Consul, LiveConfig, watch

    with Consul() as client:
        client.kv.put("app/db/host", b"db-1")
        entry, meta = client.kv.get("app/db/host")
        with LiveConfig(client, "app/") as config:
            print(config.value)

Each :class:`Consul` runs the asyncio engine (the very same watch rules, backoff, sharing and
recipes) on one background event-loop thread of its own; every method blocks the calling
thread until the loop has the answer. Any thread may call a client. Callbacks run on a callback
thread per watch or recipe, never on the loop thread. See docs/sync.md.
"""

from __future__ import annotations

from consul_streams.exceptions import ClientClosed
from consul_streams.recipes import (
    ConfigRejected,
    ConfigSnapshot,
    Instance,
    LockLost,
    NoHealthyInstances,
    ServiceUpdate,
)
from consul_streams.sync._client import Consul
from consul_streams.sync._forward import Reply
from consul_streams.sync._recipes import LiveConfig, Lock, ServiceInstances
from consul_streams.sync._watch import WatchHandle, watch

__all__ = [
    "ClientClosed",
    "ConfigRejected",
    "ConfigSnapshot",
    "Consul",
    "Instance",
    "LiveConfig",
    "Lock",
    "LockLost",
    "NoHealthyInstances",
    "Reply",
    "ServiceInstances",
    "ServiceUpdate",
    "WatchHandle",
    "watch",
]
