"""The agent's result cache as ``?cached`` reads see it (``agent/cache``, ``setCacheMeta``).

A dev agent serves cached reads from its own state, so only the metadata is modelled: the
first ``?cached`` read of a request is a ``MISS``; later ones are ``HIT`` with ``Age`` (seconds
since the entry was last fetched, refreshed whenever the result's index changes, as Consul's
background blocking refresh does). ``Cache-Control: max-age=N`` older than N, or
``must-revalidate`` / ``max-age=0``, fetches again: a ``MISS``.
"""

from __future__ import annotations

from collections.abc import Hashable

from .store import StateStore

__all__ = ["CACHED_PATHS", "AgentCache"]

#: Endpoints whose ``?cached`` reads go through the agent cache (agent/catalog_endpoint.go,
#: agent/health_endpoint.go: CatalogListServices, CatalogServiceNodes, HealthServices).
CACHED_PATHS = ("/v1/catalog/services", "/v1/catalog/service/", "/v1/health/service/")


class AgentCache:
    """When each cached request was fetched, and at which index (a SubStore)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.entries: dict[Hashable, tuple[int, float]] = {}

    def reset(self) -> None:
        self.entries = {}

    def shift_indexes(self, delta: int) -> None:
        """A restore invalidates every entry (the next read fetches again)."""
        self.entries = {}

    def meta(
        self, key: Hashable, index: int, *, max_age: int | None, revalidate: bool
    ) -> dict[str, str]:
        """``X-Cache`` (and ``Age`` on a hit) for a read of ``key`` that found ``index``."""
        now = self.store.now()
        entry = self.entries.get(key)
        stale = entry is not None and max_age is not None and now - entry[1] > max_age
        if entry is None or revalidate or stale:
            self.entries[key] = (index, now)
            return {"X-Cache": "MISS"}
        if entry[0] != index:
            entry = self.entries[key] = (index, now)
        return {"X-Cache": "HIT", "Age": f"{now - entry[1]:.0f}"}
