"""The dev agent's catalog: nodes, service instances and health checks, with Consul's indexes.

Records are stored in the JSON shapes the endpoints return (``Node``, ``AgentService``-like
service dicts, ``HealthCheck``), each with ``CreateIndex``/``ModifyIndex``. Besides the table
indexes (``nodes``, ``services``, ``checks``) the store keeps a per-service and a per-node
index and the "last extinction" indexes of services and nodes, so that a blocking read of
``web`` is neither woken nor advanced by writes to ``db`` (section 1.5 of consul-api.md).

Writes happen inside :meth:`CatalogState.write`, which allocates one raft-like index for the
whole request and, at the end, wakes the topics touched:

* ``("table", "nodes"|"services"|"checks")``, ``("service", name)``, ``("node", name)``.

Health changes are announced with ``store.emit("check", node, check_id, status | None)``
(None = the check was removed), which is how sessions learn that a check they depend on
turned critical.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .store import StateStore

__all__ = ["CatalogState", "Write", "go_map", "new_check", "new_service"]

Rec = dict[str, Any]
_INDEX_KEYS = ("CreateIndex", "ModifyIndex")
SERF_CHECK = "serfHealth"


def go_map(value: Any) -> dict[str, Any]:
    """A copy of a Go map value with its keys sorted, the order encoding/json writes them in."""
    return dict(sorted((value or {}).items()))


def new_service(definition: Rec) -> Rec:
    """A service instance record with Consul's defaults (``ID`` defaults to the name)."""
    name = definition.get("Service") or definition.get("Name") or ""
    weights = definition.get("Weights") or {}
    rec: Rec = {
        "ID": definition.get("ID") or name,
        "Service": name,
        "Tags": list(definition.get("Tags") or []),
        "Address": definition.get("Address") or "",
        "Meta": go_map(definition.get("Meta")),
        "Port": int(definition.get("Port") or 0),
        "Weights": {
            "Passing": int(weights.get("Passing", 1) or 1),
            "Warning": int(weights.get("Warning", 1) or 1),
        },
        "EnableTagOverride": bool(definition.get("EnableTagOverride", False)),
    }
    if definition.get("Kind"):
        rec["Kind"] = definition["Kind"]
    if definition.get("TaggedAddresses"):
        rec["TaggedAddresses"] = go_map(copy.deepcopy(definition["TaggedAddresses"]))
    return rec


def new_check(node: str, definition: Rec, *, service: Rec | None = None) -> Rec:
    """A health-check record; a new check is ``critical`` unless a status is given."""
    return {
        "Node": node,
        "CheckID": definition.get("CheckID") or definition.get("ID") or definition.get("Name"),
        "Name": definition.get("Name") or "",
        "Status": definition.get("Status") or "critical",
        "Notes": definition.get("Notes") or "",
        "Output": definition.get("Output") or "",
        "ServiceID": service["ID"] if service else "",
        "ServiceName": service["Service"] if service else "",
        "ServiceTags": list(service["Tags"]) if service else [],
        "Type": definition.get("Type") or "",
        "Interval": definition.get("Interval") or "",
        "Timeout": definition.get("Timeout") or "",
        "ExposedPort": 0,
        "Definition": {},
    }


def _same(old: Rec | None, new: Rec) -> bool:
    """Consul's IsSame: equal apart from the raft indexes."""
    if old is None:
        return False
    strip = {k: v for k, v in old.items() if k not in _INDEX_KEYS}
    return strip == {k: v for k, v in new.items() if k not in _INDEX_KEYS}


@dataclass
class Write:
    """One catalog transaction: its index, the topics to wake and the check events to emit."""

    index: int
    topics: set[Hashable] = field(default_factory=set)
    events: list[tuple[str, str, str | None]] = field(default_factory=list)
    nodes_removed: list[str] = field(default_factory=list)


class CatalogState:
    """Nodes, services and checks of the dev datacenter (a :class:`~._state.SubStore`)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.reset()

    # -- SubStore ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything, then register the dev node as ``consul agent -dev`` does."""
        self.nodes: dict[str, Rec] = {}
        self.services: dict[tuple[str, str], Rec] = {}
        self.checks: dict[tuple[str, str], Rec] = {}
        self.table_index: dict[str, int] = {"nodes": 0, "services": 0, "checks": 0}
        self.service_index: dict[str, int] = {}
        self.node_index: dict[str, int] = {}
        self.service_extinction = 0
        self.node_extinction = 0
        self._seed_dev_node()

    def shift_indexes(self, delta: int) -> None:
        """Move every stored index down by ``-delta`` (never below 1)."""

        def shift(value: int) -> int:
            return max(1, value + delta) if value else 0

        for rec in (*self.nodes.values(), *self.services.values(), *self.checks.values()):
            for key in _INDEX_KEYS:
                rec[key] = shift(rec[key])
        for table in (self.table_index, self.service_index, self.node_index):
            for key in table:
                table[key] = shift(table[key])
        self.service_extinction = shift(self.service_extinction)
        self.node_extinction = shift(self.node_extinction)

    def _seed_dev_node(self) -> None:
        store = self.store
        addr = store.node_address
        with self.write() as w:
            self.ensure_node(
                w,
                {
                    "ID": store.node_id,
                    "Node": store.node_name,
                    "Address": addr,
                    "TaggedAddresses": {
                        "lan": addr,
                        "lan_ipv4": addr,
                        "wan": addr,
                        "wan_ipv4": addr,
                    },
                    "Meta": {
                        **store.node_meta,
                        "consul-network-segment": "",
                        "consul-version": "1.22.0",
                    },
                },
            )
            self.ensure_service(
                w, store.node_name, new_service({"Service": "consul", "Port": 8300})
            )
            serf = {"CheckID": SERF_CHECK, "Name": "Serf Health Status", "Status": "passing"}
            serf["Output"] = "Agent alive and reachable"
            self.ensure_check(w, new_check(store.node_name, serf))

    # -- transactions --------------------------------------------------------------------------

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a rollback of a failed ``/v1/txn`` needs."""
        return copy.deepcopy(
            (
                self.nodes,
                self.services,
                self.checks,
                self.table_index,
                self.service_index,
                self.node_index,
                self.service_extinction,
                self.node_extinction,
            )
        )

    def rollback(self, snap: tuple[Any, ...]) -> None:
        """Undo every write since ``snap`` was taken (nobody was woken yet)."""
        (
            self.nodes,
            self.services,
            self.checks,
            self.table_index,
            self.service_index,
            self.node_index,
            self.service_extinction,
            self.node_extinction,
        ) = snap

    def finish(self, w: Write) -> None:
        """Wake the watchers of ``w`` and emit its events (what :meth:`write` does at exit)."""
        self.store.notify(*w.topics)
        for node, check_id, status in w.events:
            self.store.emit("check", node, check_id, status)
        for node in w.nodes_removed:
            self.store.emit("node", node)

    # -- writes ------------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Write]:
        """Group the changes of one request under one index; wake watchers at the end."""
        w = Write(self.store.next_index())
        try:
            yield w
        finally:
            self.finish(w)

    def _touch_service(self, w: Write, name: str) -> None:
        self.service_index[name] = w.index
        w.topics.add(("service", name))

    def _touch_node(self, w: Write, node: str) -> None:
        self.node_index[node] = w.index
        w.topics.add(("node", node))

    def _touch_table(self, w: Write, table: str) -> None:
        self.table_index[table] = w.index
        w.topics.add(("table", table))

    def _services_on(self, node: str) -> list[Rec]:
        return [svc for (n, _), svc in self.services.items() if n == node]

    def ensure_node(self, w: Write, node: Rec) -> None:
        """Create or update a node (``ID, Node, Address, TaggedAddresses, Meta``)."""
        name = node["Node"]
        old = self.nodes.get(name)
        rec: Rec = {
            "ID": node.get("ID") or (old or {}).get("ID", ""),
            "Node": name,
            "Address": node.get("Address", ""),
            "Datacenter": self.store.datacenter,
            "TaggedAddresses": go_map(node.get("TaggedAddresses")),
            "Meta": go_map(node.get("Meta")),
            "CreateIndex": old["CreateIndex"] if old else w.index,
            "ModifyIndex": w.index,
        }
        if _same(old, rec):
            return
        self.nodes[name] = rec
        self._touch_table(w, "nodes")
        self._touch_node(w, name)
        # Catalog/health entries embed the node, so its services' watchers see the change.
        for svc in self._services_on(name):
            self._touch_service(w, svc["Service"])

    def ensure_service(self, w: Write, node: str, service: Rec) -> Rec:
        """Create or update a service instance on ``node``; identical instances are kept."""
        old = self.services.get((node, service["ID"]))
        rec = dict(service)
        rec["CreateIndex"] = old["CreateIndex"] if old else w.index
        rec["ModifyIndex"] = w.index
        if _same(old, rec):
            assert old is not None
            return old
        self.services[(node, service["ID"])] = rec
        self._touch_table(w, "services")
        self._touch_node(w, node)
        self._touch_service(w, rec["Service"])
        if old is not None and old["Service"] != rec["Service"]:
            self._touch_service(w, old["Service"])
        # Service checks denormalise the service's name and tags.
        for check in list(self.checks.values()):
            if check["Node"] == node and check["ServiceID"] == rec["ID"]:
                updated = dict(check, ServiceName=rec["Service"], ServiceTags=list(rec["Tags"]))
                self.ensure_check(w, updated)
        return rec

    def ensure_check(self, w: Write, check: Rec) -> Rec:
        """Create or update a check; unchanged checks keep their ModifyIndex."""
        node, check_id = check["Node"], check["CheckID"]
        old = self.checks.get((node, check_id))
        rec = dict(check)
        rec["CreateIndex"] = old["CreateIndex"] if old else w.index
        rec["ModifyIndex"] = w.index
        if _same(old, rec):
            assert old is not None
            return old
        self.checks[(node, check_id)] = rec
        self._touch_table(w, "checks")
        self._touch_node(w, node)
        if rec["ServiceID"]:
            svc = self.services.get((node, rec["ServiceID"]))
            if svc is not None:
                self._touch_service(w, svc["Service"])
        else:
            for svc in self._services_on(node):
                self._touch_service(w, svc["Service"])
        if old is None or old["Status"] != rec["Status"]:
            w.events.append((node, check_id, rec["Status"]))
        return rec

    def delete_check(self, w: Write, node: str, check_id: str) -> bool:
        """Remove one check; False if it did not exist."""
        old = self.checks.pop((node, check_id), None)
        if old is None:
            return False
        self._touch_table(w, "checks")
        self._touch_node(w, node)
        if old["ServiceID"]:
            svc = self.services.get((node, old["ServiceID"]))
            if svc is not None:
                self._touch_service(w, svc["Service"])
        else:
            for svc in self._services_on(node):
                self._touch_service(w, svc["Service"])
        w.events.append((node, check_id, None))
        return True

    def delete_service(self, w: Write, node: str, service_id: str) -> bool:
        """Remove a service instance and its checks; False if it did not exist."""
        old = self.services.pop((node, service_id), None)
        if old is None:
            return False
        for (n, cid), check in list(self.checks.items()):
            if n == node and check["ServiceID"] == service_id:
                self.delete_check(w, node, cid)
        self._touch_table(w, "services")
        self._touch_node(w, node)
        self._touch_service(w, old["Service"])
        if not self.instances(old["Service"]):
            self.service_extinction = w.index
        return True

    def delete_node(self, w: Write, node: str) -> bool:
        """Remove a node with all its services and checks; False if it did not exist."""
        if node not in self.nodes:
            return False
        for svc in self._services_on(node):
            self.delete_service(w, node, svc["ID"])
        for n, cid in list(self.checks):
            if n == node:
                self.delete_check(w, node, cid)
        del self.nodes[node]
        self._touch_table(w, "nodes")
        self._touch_node(w, node)
        self.node_extinction = w.index
        w.nodes_removed.append(node)
        return True

    # -- reads -------------------------------------------------------------------------------

    def instances(self, name: str) -> list[tuple[Rec, Rec]]:
        """``(node, service)`` pairs of every instance of service ``name``, node order."""
        found = [
            (self.nodes[node], svc)
            for (node, _), svc in sorted(self.services.items())
            if svc["Service"] == name and node in self.nodes
        ]
        return found

    def index_for_service(self, name: str) -> int:
        """Per-service index; for a missing service the last extinction or the table max."""
        if self.instances(name) and name in self.service_index:
            return self.service_index[name]
        return self.service_extinction or max(self.table_index.values())

    def index_for_node(self, node: str) -> int:
        """Per-node index; for a missing node the last node extinction or the table max."""
        if node in self.nodes and node in self.node_index:
            return self.node_index[node]
        return self.node_extinction or max(self.table_index.values())

    def node_checks(self, node: str) -> list[Rec]:
        """Checks of ``node`` (node-level and service-level), sorted by check ID."""
        return [c for (n, _), c in sorted(self.checks.items()) if n == node]

    def service_checks(self, node: str, service_id: str) -> list[Rec]:
        """Node-level checks of ``node`` plus the checks of one service instance."""
        return [c for c in self.node_checks(node) if c["ServiceID"] in ("", service_id)]

    # -- for sessions ------------------------------------------------------------------------

    def check_status(self, node: str, check_id: str) -> str | None:
        """Status of check ``check_id`` on ``node``, or None when there is no such check."""
        check = self.checks.get((node, check_id))
        return None if check is None else str(check["Status"])

    def node_exists(self, node: str) -> bool:
        """Whether ``node`` is registered."""
        return node in self.nodes

    has_node = node_exists
