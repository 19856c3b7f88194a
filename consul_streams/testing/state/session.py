"""Sessions of the dev agent: their TTL timers and their invalidation (consul-api.md 2.5)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..._rules import parse_go_duration
from ..server.wire import ApiError
from .catalog import CatalogState
from .kv import KVState
from .store import StateStore

__all__ = ["DEFAULT_LOCK_DELAY", "NS", "TTL_MAX", "Session", "SessionState"]

NS = 1_000_000_000
TTL_MAX = 86400.0
DEFAULT_LOCK_DELAY = 15.0


@dataclass
class Session:
    """One session (Consul's structs.Session)."""

    id: str
    name: str = ""
    node: str = ""
    lock_delay: float = DEFAULT_LOCK_DELAY
    behavior: str = "release"
    ttl: str = ""
    node_checks: list[str] = field(default_factory=list)
    service_checks: list[dict[str, str]] | None = None
    create_index: int = 0
    modify_index: int = 0
    timer: asyncio.TimerHandle | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Name": self.name,
            "Node": self.node,
            "LockDelay": round(self.lock_delay * NS),
            "Behavior": self.behavior,
            "TTL": self.ttl,
            "NodeChecks": list(self.node_checks),
            "ServiceChecks": self.service_checks,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


class SessionState:
    """Sessions, their TTL timers and their invalidation (release or delete held keys)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.sessions: dict[str, Session] = {}
        self.table_index = 0
        store.listen("check", self._on_check)
        store.listen("node", self._on_node)

    def reset(self) -> None:
        for session in self.sessions.values():
            self.store.cancel_timer(session.timer)
        self.sessions = {}
        self.table_index = 0

    def shift_indexes(self, delta: int) -> None:
        for s in self.sessions.values():
            s.create_index = max(1, s.create_index + delta)
            s.modify_index = max(1, s.modify_index + delta)
        self.table_index = max(0, self.table_index + delta)

    def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    def _validate_checks(self, session: Session) -> None:
        catalog = self.store.get(CatalogState)
        if not catalog.node_exists(session.node):
            raise ApiError(500, "Missing node registration")
        checks = list(session.node_checks)
        checks += [c.get("ID", "") for c in session.service_checks or ()]
        for check_id in checks:
            status = catalog.check_status(session.node, check_id)
            if status is None:
                raise ApiError(500, f"Missing check '{check_id}' registration")
            if status == "critical":
                raise ApiError(500, f"Check '{check_id}' is in critical state")

    def create(self, session: Session) -> Session:
        """Validate and store ``session``; starts its TTL timer."""
        self._validate_checks(session)
        idx = self.store.next_index()
        session.create_index = session.modify_index = idx
        self.sessions[session.id] = session
        self.table_index = idx
        self._arm(session)
        self.store.notify(("session", session.id), ("table", "sessions"))
        return session

    def _arm(self, session: Session) -> None:
        self.store.cancel_timer(session.timer)
        session.timer = None
        if session.ttl:
            # Consul reaps an unrenewed TTL session after up to twice its TTL.
            ttl = parse_go_duration(session.ttl)
            session.timer = self.store.call_later(2 * ttl, lambda: self.destroy(session.id))

    def renew(self, session_id: str) -> Session | None:
        session = self.sessions.get(session_id)
        if session is not None:
            self._arm(session)
        return session

    def destroy(self, session_id: str) -> None:
        """Invalidate ``session_id``: drop it and release or delete its keys."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        self.store.cancel_timer(session.timer)
        kv = self.store.get(KVState)
        idx = kv.pending_index()
        kv.release_session(
            session_id,
            delete=session.behavior == "delete",
            lock_delay=session.lock_delay,
            idx=idx,
        )
        if not kv.commit():
            self.store.next_index()
        self.table_index = self.store.index
        self.store.notify(("session", session_id), ("table", "sessions"))

    def _on_check(self, node: str, check_id: str, status: str | None) -> None:
        if status not in (None, "critical"):
            return
        for session in list(self.sessions.values()):
            service_ids = [c.get("ID") for c in session.service_checks or ()]
            if session.node == node and (
                check_id in session.node_checks or check_id in service_ids
            ):
                self.destroy(session.id)

    def _on_node(self, node: str) -> None:
        for session in list(self.sessions.values()):
            if session.node == node:
                self.destroy(session.id)
