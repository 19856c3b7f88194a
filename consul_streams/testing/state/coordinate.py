"""Network coordinates of the dev datacenter (Consul's ``coordinates`` table and Vivaldi math).

Consul keeps one coordinate per (node, segment), written by ``PUT /v1/coordinate/update`` and
by each agent's own periodic update; ``?near=`` sorts results by the estimated round-trip
time from a source node (``agent/consul/rtt.go``). The dev agent seeds its own node at the
origin, as a freshly started single agent reports itself, and applies updates at once (Consul
batches them every ``coordinate_update_period``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .store import StateStore

__all__ = ["DIMENSIONALITY", "CoordinateState", "distance", "origin", "sort_near"]

Rec = dict[str, Any]
T = TypeVar("T")

#: serf's default coordinate dimensionality (``coordinate.DefaultConfig``).
DIMENSIONALITY = 8


def origin() -> Rec:
    """A new coordinate as serf creates it (``coordinate.NewCoordinate``)."""
    return {"Vec": [0.0] * DIMENSIONALITY, "Error": 1.5, "Adjustment": 0.0, "Height": 1.0e-5}


def is_valid(coord: Rec) -> bool:
    """serf's ``Coordinate.IsValid``: every component is a finite number."""
    values = [*coord["Vec"], coord["Error"], coord["Adjustment"], coord["Height"]]
    return all(math.isfinite(v) for v in values)


def distance(a: Rec | None, b: Rec | None) -> float:
    """Estimated RTT in seconds (``lib.ComputeDistance``); +inf when either is missing."""
    if a is None or b is None:
        return math.inf
    dist = math.sqrt(sum((x - y) ** 2 for x, y in zip(a["Vec"], b["Vec"], strict=False)))
    dist += a["Height"] + b["Height"]
    adjusted = dist + a["Adjustment"] + b["Adjustment"]
    if adjusted > 0.0:
        dist = adjusted
    # Go converts to a time.Duration (whole nanoseconds) before reading the seconds back.
    return float(int(dist * 1e9)) / 1e9


class CoordinateState:
    """LAN coordinates keyed by (node, segment), with the table index."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        store.listen("node", self._on_node_removed)
        self.reset()

    def reset(self) -> None:
        self.coords: dict[tuple[str, str], Rec] = {}
        self.table_index = 0
        self.coords[(self.store.node_name, "")] = origin()

    def shift_indexes(self, delta: int) -> None:
        self.table_index = max(0, self.table_index + delta) if self.table_index else 0

    def get(self, node: str) -> Rec | None:
        """The node's coordinate in the default segment (``CoordinateGetRaw``)."""
        return self.coords.get((node, ""))

    def entries(self, node: str | None = None) -> list[Rec]:
        """``structs.Coordinate`` records sorted by node, then segment."""
        return [
            {"Node": n, "Segment": seg, "Coord": dict(c, Vec=list(c["Vec"]))}
            for (n, seg), c in sorted(self.coords.items())
            if node is None or n == node
        ]

    def update(self, node: str, segment: str, coord: Rec, *, node_known: bool) -> None:
        """Store a coordinate; updates for unknown nodes are dropped as Consul drops them."""
        if not node_known:
            return
        self.coords[(node, segment)] = coord
        self.table_index = self.store.next_index()
        self.store.notify(("table", "coordinates"))

    def _on_node_removed(self, node: str) -> None:
        gone = [key for key in self.coords if key[0] == node]
        for key in gone:
            del self.coords[key]
        if gone:
            self.table_index = self.store.index
            self.store.notify(("table", "coordinates"))


def sort_near(
    state: CoordinateState, source: str, items: Sequence[T], node_of: Callable[[T], str]
) -> list[T]:
    """``sortNodesByDistanceFrom``: stable sort by RTT from ``source``; unsorted without one."""
    here = state.get(source)
    if not source or here is None:
        return list(items)
    return sorted(items, key=lambda item: distance(here, state.get(node_of(item))))
