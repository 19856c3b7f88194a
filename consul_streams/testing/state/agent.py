"""The agent's own services and checks (``/v1/agent/*``), synced into the catalog at once.

Separate from the catalog because a real agent keeps this local state and pushes it to the
servers (anti-entropy); the dev agent has no delay, so every change is one catalog write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..._rules import parse_go_duration
from ..server.decode import health_check_durations
from ..server.wire import ApiError
from .catalog import CatalogState, Rec, Write, new_check, new_service
from .store import StateStore

__all__ = [
    "NODE_MAINT",
    "SERVICE_MAINT_PREFIX",
    "STATUSES",
    "LocalAgent",
    "LocalCheck",
    "check_ttl",
    "check_type",
    "service_checks",
    "validate_service",
]

STATUSES = ("passing", "warning", "critical")
_META_KEY = re.compile(r"[A-Za-z0-9_-]+")


# -- definitions -----------------------------------------------------------------------------


def check_ttl(definition: Rec) -> float | None:
    """Validate a check definition; returns its TTL in seconds (None for non-TTL checks).

    Raises :class:`ApiError` with the agent's 400 texts (``Invalid check: ...``).
    """

    def duration(key: str) -> float:
        raw = definition.get(key) or 0
        try:
            return parse_go_duration(raw) if isinstance(raw, str) else float(raw) / 1e9
        except ValueError:
            raise ApiError(400, f"Request decode failed: time: invalid duration {raw!r}") from None

    interval_check = any(definition.get(k) for k in ("HTTP", "TCP", "Args", "ScriptArgs", "GRPC"))
    if interval_check and duration("Interval") <= 0:
        msg = "Interval must be > 0 for Script, HTTP, H2PING, or TCP checks"
        raise ApiError(400, f"Invalid check: {msg}")
    if interval_check:
        return None
    ttl = duration("TTL")
    if ttl <= 0:
        raise ApiError(400, "Invalid check: TTL must be > 0 for TTL checks")
    return ttl


def check_type(definition: Rec) -> str:
    """The ``Type`` Consul reports for a check definition."""
    for key, kind in (("TTL", "ttl"), ("HTTP", "http"), ("TCP", "tcp"), ("GRPC", "grpc")):
        if definition.get(key):
            return kind
    return "script"


def service_checks(svc: Rec, body: Rec) -> list[tuple[Rec, float | None]]:
    """The ``Check``/``Checks`` of a service definition with Consul's default IDs and names."""
    definitions = [body["Check"]] if isinstance(body.get("Check"), dict) else []
    definitions += [c for c in body.get("Checks") or [] if isinstance(c, dict)]
    ttls = [check_ttl(definition) for definition in definitions]
    # Consul validates every check's type first, then the initial statuses.
    for definition in definitions:
        if (definition.get("Status") or "") not in ("", *STATUSES):
            raise ApiError(400, "Status for checks must 'passing', 'warning', 'critical'")
    out: list[tuple[Rec, float | None]] = []
    for n, (definition, ttl) in enumerate(zip(definitions, ttls, strict=True), start=1):
        check = health_check_durations(dict(definition))
        default_id = f"service:{svc['ID']}"
        if len(definitions) > 1:
            default_id += f":{n}"
        check["CheckID"] = definition.get("CheckID") or definition.get("ID") or default_id
        check["Name"] = definition.get("Name") or f"Service '{svc['Service']}' check"
        check["Type"] = check_type(definition)
        out.append((check, ttl))
    return out


def validate_service(body: Rec) -> Rec:
    """Validate a service definition (agent texts) and build its service record."""
    if not body.get("Name"):
        raise ApiError(400, "Missing service name")
    svc = new_service({**body, "Service": body["Name"]})
    if svc["Address"] in ("0.0.0.0", "::", "[::]"):
        raise ApiError(400, "Invalid service address")
    weights = body.get("Weights")
    if isinstance(weights, dict) and int(weights.get("Passing") or 0) < 1:
        raise ApiError(400, "Invalid Weights: Passing must be greater than 0")
    problem = _meta_problem(svc["Meta"])
    if problem:
        raise ApiError(400, f"Invalid Service Meta: {problem}")
    return svc


def _meta_problem(meta: dict[str, Any]) -> str | None:
    """Consul's metadata rules (64 pairs, key charset and length, reserved prefix)."""
    if len(meta) > 64:
        return "Node metadata cannot contain more than 64 key/value pairs"
    for key, value in meta.items():
        if not key:
            return "Key cannot be blank"
        if not _META_KEY.fullmatch(key):
            return "Key contains invalid characters"
        if len(key) > 128:
            return "Key is too long (limit: 128 characters)"
        if key.startswith("consul-"):
            return "Key prefix 'consul-' is reserved for internal use"
        if len(str(value)) > 512:
            return "Value is too long (limit: 512 characters)"
    return None


# -- state -----------------------------------------------------------------------------------

NODE_MAINT = "_node_maintenance"
SERVICE_MAINT_PREFIX = "_service_maintenance:"
_MAINT_DEFAULT = (
    "Maintenance mode is enabled for this {what}, but no reason was provided. "
    "This is a default message."
)


@dataclass
class LocalCheck:
    """An agent-managed check: its TTL (seconds, None when not a TTL check) and timer."""

    ttl: float | None
    timer: Any = None


class LocalAgent:
    """What the agent itself registered (a SubStore), synced into the catalog at once.

    TTL checks get a timer on the store's injectable clock (``store.call_later``): when the
    TTL passes without an update the check turns ``critical`` with output ``TTL expired``.
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.services: set[str] = set()
        self.checks: dict[str, LocalCheck] = {}

    def reset(self) -> None:
        """Forget the agent's registrations (the store cancels the timers)."""
        for check in self.checks.values():
            self.store.cancel_timer(check.timer)
        self.services = set()
        self.checks = {}

    def shift_indexes(self, delta: int) -> None:
        """Nothing indexed lives here; the catalog holds the records."""

    @property
    def catalog(self) -> CatalogState:
        return self.store.get(CatalogState)

    @property
    def node(self) -> str:
        return self.store.node_name

    def service(self, service_id: str) -> Rec | None:
        """The catalog record of a local service, or None."""
        if service_id not in self.services:
            return None
        return self.catalog.services.get((self.node, service_id))

    def check(self, check_id: str) -> Rec | None:
        """The catalog record of a local check, or None."""
        if check_id not in self.checks:
            return None
        return self.catalog.checks.get((self.node, check_id))

    def add_service(
        self, service: Rec, checks: list[tuple[Rec, float | None]], *, replace_checks: bool
    ) -> None:
        """Register (or update) a local service with its checks, in one catalog write."""
        cat = self.catalog
        sid = service["ID"]
        with cat.write() as w:
            rec = cat.ensure_service(w, self.node, service)
            self.services.add(sid)
            new_ids = {check["CheckID"] for check, _ in checks}
            if replace_checks:
                for cid in [c["CheckID"] for c in cat.service_checks(self.node, sid)]:
                    owned = cat.checks[(self.node, cid)]["ServiceID"] == sid
                    if owned and cid in self.checks and cid not in new_ids:
                        self._drop_check(w, cid)
            for check, ttl in checks:
                record = new_check(self.node, check, service=rec)
                prev = cat.checks.get((self.node, record["CheckID"]))
                if prev is not None:
                    # Like Consul's checkStateSnapshot: re-registering keeps the health state.
                    record.update(Status=prev["Status"], Output=prev["Output"])
                self._put_check(w, record, ttl)

    def remove_service(self, service_id: str) -> None:
        """Deregister a local service, its checks and its maintenance check."""
        cat = self.catalog
        with cat.write() as w:
            for check in cat.service_checks(self.node, service_id):
                if check["ServiceID"] == service_id:
                    self._drop_check(w, check["CheckID"])
            cat.delete_service(w, self.node, service_id)
            self.services.discard(service_id)

    def add_check(self, check: Rec, ttl: float | None) -> None:
        """Register (or update) a local check (``check`` is a full HealthCheck record)."""
        with self.catalog.write() as w:
            self._put_check(w, check, ttl)

    def remove_check(self, check_id: str) -> None:
        """Deregister a local check."""
        with self.catalog.write() as w:
            self._drop_check(w, check_id)

    def update_check(self, check_id: str, status: str, output: str) -> None:
        """Set a check's status and output; a TTL check's timer starts over."""
        local = self.checks[check_id]
        if local.ttl is not None:
            self._arm(check_id, local)
        self._set_status(check_id, status, output)

    def _set_status(self, check_id: str, status: str, output: str) -> None:
        cat = self.catalog
        old = cat.checks.get((self.node, check_id))
        if old is None:
            return
        with cat.write() as w:
            cat.ensure_check(w, dict(old, Status=status, Output=output))

    def _put_check(self, w: Write, check: Rec, ttl: float | None) -> None:
        cid = check["CheckID"]
        old = self.checks.pop(cid, None)
        if old is not None:
            self.store.cancel_timer(old.timer)
        local = LocalCheck(ttl)
        self.checks[cid] = local
        self.catalog.ensure_check(w, check)
        if ttl is not None:
            self._arm(cid, local)

    def _drop_check(self, w: Write, check_id: str) -> None:
        local = self.checks.pop(check_id, None)
        if local is not None:
            self.store.cancel_timer(local.timer)
        self.catalog.delete_check(w, self.node, check_id)

    def _arm(self, check_id: str, local: LocalCheck) -> None:
        self.store.cancel_timer(local.timer)
        assert local.ttl is not None

        def expire() -> None:
            local.timer = None
            if self.checks.get(check_id) is local:
                self._set_status(check_id, "critical", "TTL expired")

        local.timer = self.store.call_later(local.ttl, expire)

    def maintenance(self, service_id: str | None, enable: bool, reason: str) -> None:
        """Enable/disable maintenance of a local service (or of the node when None)."""
        if service_id is None:
            cid, name, what, owner = NODE_MAINT, "Node Maintenance Mode", "node", None
        else:
            cid, name, what = (
                SERVICE_MAINT_PREFIX + service_id,
                "Service Maintenance Mode",
                "service",
            )
            owner = self.service(service_id)
        if not enable:
            if cid in self.checks:
                self.remove_check(cid)
            return
        notes = reason or _MAINT_DEFAULT.format(what=what)
        definition = {"CheckID": cid, "Name": name, "Notes": notes, "Status": "critical"}
        self.add_check(new_check(self.node, definition, service=owner), None)
