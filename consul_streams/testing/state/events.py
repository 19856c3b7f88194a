"""The dev agent's ring buffer of received user events (consul-api.md section 2.4)."""

from __future__ import annotations

from collections import deque
from typing import Any

from .store import StateStore

__all__ = ["BUFFER_SIZE", "TOPIC", "EventLog"]

#: Events an agent remembers (Consul's ``userEventSize``).
BUFFER_SIZE = 256
TOPIC = ("table", "events")


class EventLog:
    """The agent's ring buffer of received user events (a SubStore)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.reset()

    def reset(self) -> None:
        """Forget every event (the Lamport clock restarts too)."""
        self.events: deque[dict[str, Any]] = deque(maxlen=BUFFER_SIZE)
        self.ltime = 0

    def shift_indexes(self, delta: int) -> None:
        """Event indexes derive from UUIDs; nothing to shift."""

    def ingest(self, event: dict[str, Any]) -> None:
        """Store a copy of ``event`` with the next Lamport time and wake list watchers."""
        self.ltime += 1
        self.events.append({**event, "LTime": self.ltime})
        self.store.notify(TOPIC)
