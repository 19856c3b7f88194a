"""The dev agent's state: the store with its one Raft-like index and watch sets, and one
sub-store per table (KV, sessions, catalog, the local agent, the user-event buffer)."""

from __future__ import annotations

from .store import StateStore, WatchSet

__all__ = ["StateStore", "WatchSet"]
