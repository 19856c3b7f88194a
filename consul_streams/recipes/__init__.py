"""Recipes on top of watch(): config hot-reload, service discovery, locks and leader election.

- :class:`LiveConfig` / :func:`config_events`: a KV prefix or document as immutable snapshots.
- :class:`ServiceInstances` / :func:`watch_instances` / :func:`watch_services`: healthy
  instances with a weighted :class:`Picker`, and the catalog's service list.
- :class:`Lock` / :func:`elect` / :class:`Semaphore`: session locks that report loss,
  leadership events, and N-holder semaphores.
"""

from __future__ import annotations

from consul_streams.recipes._document import ConfigError, build_document, decode_value, freeze
from consul_streams.recipes._instances import (
    Instance,
    InstanceDiff,
    NoHealthyInstances,
    Picker,
    diff_instances,
)
from consul_streams.recipes.config import (
    ConfigEvent,
    ConfigRejected,
    ConfigSnapshot,
    LiveConfig,
    config_events,
)
from consul_streams.recipes.discovery import (
    ServiceInstances,
    ServicesUpdate,
    ServiceUpdate,
    watch_instances,
    watch_services,
)
from consul_streams.recipes.leader import Leadership, elect
from consul_streams.recipes.lock import Lock, LockLost
from consul_streams.recipes.semaphore import Semaphore, SemaphoreConflict

__all__ = [
    "ConfigError",
    "ConfigEvent",
    "ConfigRejected",
    "ConfigSnapshot",
    "Instance",
    "InstanceDiff",
    "Leadership",
    "LiveConfig",
    "Lock",
    "LockLost",
    "NoHealthyInstances",
    "Picker",
    "Semaphore",
    "SemaphoreConflict",
    "ServiceInstances",
    "ServiceUpdate",
    "ServicesUpdate",
    "build_document",
    "config_events",
    "decode_value",
    "diff_instances",
    "elect",
    "freeze",
    "watch_instances",
    "watch_services",
]
