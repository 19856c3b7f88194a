"""What a read's value is made of, and what names each item: declared by the endpoint.

Every endpoint method that returns a collection declares an :class:`Identity` on its
:class:`~consul_streams.Query`. ``ops.diff`` keys items by it and ``ops.match`` matches the
name it gives, so neither has to guess an item's shape from its field names (a service named
``ID`` or ``Key`` is a key of ``catalog.services()``, not a field of one object).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

__all__ = ["Identity"]

Shape = Literal["list", "mapping", "one"]


def _itself(item: Any) -> Hashable:
    return item  # type: ignore[no-any-return]


def _field(*path: str) -> Callable[[Any], Any]:
    def get(item: Any) -> Any:
        for part in path:
            item = item.get(part) if isinstance(item, Mapping) else None
        return item

    get.__name__ = ".".join(path)
    return get


def _fields(*getters: Callable[[Any], Any]) -> Callable[[Any], Hashable]:
    def get(item: Any) -> Hashable:
        return tuple(g(item) for g in getters)

    return get


@dataclass(frozen=True)
class Identity:
    """How a Query's value splits into items and how each item is named and versioned.

    ``shape``: ``"list"`` (a JSON array), ``"mapping"`` (an object whose keys name its
    entries, which are ``(key, value)`` pairs), or ``"one"`` (a single object or ``None``).
    ``key(item)`` names an item (``None``: the item names itself, e.g. a key list);
    ``version(item)``, when declared, changes whenever the item does (KV ``ModifyIndex``), so
    a diff can tell an unchanged item without comparing its value; ``name(item)`` is the text
    ``ops.match`` matches.
    """

    shape: Shape
    key: Callable[[Any], Hashable] | None = None
    version: Callable[[Any], Hashable] | None = None
    name: Callable[[Any], object] | None = None

    def items(self, value: Any) -> list[Any]:
        """The items of one value, in order."""
        if value is None:
            return []
        if self.shape == "mapping":
            return list(value.items())
        if self.shape == "one":
            return [value]
        return list(value)

    def key_function(self) -> Callable[[Any], Hashable]:
        """``key_of`` as one callable, chosen once (a diff keys thousands of items)."""
        if self.shape == "mapping":
            return itemgetter(0)
        return _itself if self.key is None else self.key

    def key_of(self, item: Any) -> Hashable:
        return self.key_function()(item)

    def name_of(self, item: Any) -> object:
        if self.shape == "mapping":
            return item[0]
        if self.name is not None:
            return self.name(item)
        return item if self.key is None else self.key(item)

    def changed(self, old: Any, new: Any) -> bool:
        """Whether two items with the same key differ (by version when one is declared)."""
        if self.version is not None:
            return self.version(old) != self.version(new)
        return bool(old != new)


# KV entries are plain dicts with these keys: itemgetter skips the Mapping check per entry.
KV_ENTRIES = Identity("list", key=itemgetter("Key"), version=itemgetter("ModifyIndex"))
KV_ENTRY = Identity("one", key=itemgetter("Key"), version=itemgetter("ModifyIndex"))
#: a list of strings naming themselves (KV keys, datacenters, peers)
STRINGS = Identity("list")
#: a JSON object keyed by name (catalog services, agent services and checks)
MAPPING = Identity("mapping")
NODES = Identity("list", key=_field("Node"))
CATALOG_NODE = Identity("one", key=_field("Node", "Node"))
CATALOG_SERVICES = Identity(
    "list", key=_fields(_field("Node"), _field("ServiceID")), name=_field("ServiceName")
)
HEALTH_ENTRIES = Identity(
    "list",
    key=_fields(_field("Node", "Node"), _field("Service", "ID")),
    name=_field("Service", "Service"),
)
CHECKS = Identity(
    "list", key=_fields(_field("Node"), _field("CheckID")), name=_field("ServiceName")
)
AGENT_SERVICE = Identity("one", key=_field("ID"), name=_field("Service"))
MEMBERS = Identity("list", key=_field("Name"))
EVENTS = Identity("list", key=_field("ID"), name=_field("Name"))
SESSIONS = Identity("list", key=_field("ID"), name=_field("Node"))
SESSION = Identity("one", key=_field("ID"), name=_field("Node"))
