"""The one diff: changes between two collections, keyed by a declared :class:`Identity`.

``ops.diff`` runs it on every round of a stream; the discovery recipes call it directly.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from consul_streams._identity import Identity

__all__ = ["Diff", "diff_keyed", "keyed", "plain_identity"]

I = TypeVar("I")  # noqa: E741 - the item of a collection

_UNSET: Any = object()


@dataclass(frozen=True)
class Diff(Generic[I]):
    """Changes between two consecutive collections: items added, removed, changed (old, new).

    For a mapping (``catalog.services()``) the items are its ``(key, value)`` pairs.
    """

    added: list[I] = field(default_factory=list)
    removed: list[I] = field(default_factory=list)
    changed: list[tuple[I, I]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


# What a diff of a value without a declared identity keys by: a mapping's keys, or the items
# themselves; never field names.
_PLAIN_LIST = Identity("list")
_PLAIN_MAPPING = Identity("mapping")


def plain_identity(value: Any) -> Identity:
    return _PLAIN_MAPPING if isinstance(value, Mapping) else _PLAIN_LIST


def keyed(items: list[Any], identity: Identity) -> dict[Hashable, Any]:
    """``{key: item}`` in order; a later item with the same key wins."""
    key_of = identity.key_function()
    try:
        return {key_of(item): item for item in items}
    except TypeError as exc:
        raise TypeError(
            f"diff() cannot key these items ({exc}): pass key=, or diff a watch() of an "
            "endpoint read, which declares its items' identity"
        ) from None


def diff_keyed(
    before: dict[Hashable, Any], after: dict[Hashable, Any], identity: Identity
) -> Diff[Any]:
    """The Diff between two collections already keyed by :func:`keyed`."""
    added: list[Any] = []
    changed: list[tuple[Any, Any]] = []
    version = identity.version  # the change test, read once (thousands of items)
    for k, item in after.items():
        old = before.get(k, _UNSET)
        if old is _UNSET:
            added.append(item)
        elif (version(old) != version(item)) if version is not None else (old != item):
            changed.append((old, item))
    removed = [item for k, item in before.items() if k not in after]
    return Diff(added=added, removed=removed, changed=changed)
