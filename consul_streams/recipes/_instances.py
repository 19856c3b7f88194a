"""Service instances, their diff, and pickers weighted by Consul's ``Weights``.

Pure: the discovery recipe builds :class:`Instance` values from health entries and hands
the live list to a :class:`Picker`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Literal

from consul_streams._diff import diff_keyed, keyed
from consul_streams._identity import Identity
from consul_streams.exceptions import InvalidArgument, NoHealthyInstances

__all__ = [
    "Instance",
    "InstanceDiff",
    "NoHealthyInstances",
    "Picker",
    "Strategy",
    "diff_instances",
    "instance_from_entry",
]

Strategy = Literal["round_robin", "random"]
_STATUS_ORDER = {"passing": 0, "warning": 1, "critical": 2, "maintenance": 3}


@dataclass(frozen=True)
class Instance:
    """One registered instance of a service, with the aggregate status of its checks."""

    id: str
    service: str
    node: str
    address: str
    port: int
    tags: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    status: str = "passing"
    weight_passing: int = 1
    weight_warning: int = 1

    @property
    def key(self) -> tuple[str, str]:
        """Identity across updates: instance IDs are unique per node, not cluster-wide."""
        return (self.node, self.id)

    @property
    def weight(self) -> int:
        """The weight a picker gives it now: by status; 0 when critical or in maintenance."""
        if self.status == "passing":
            return self.weight_passing
        if self.status == "warning":
            return self.weight_warning
        return 0

    @property
    def url_host(self) -> str:
        """``address:port`` with IPv6 addresses bracketed, ready for a URL."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def _aggregate(checks: Iterable[Mapping[str, Any]]) -> str:
    worst = "passing"
    for check in checks:
        status = str(check.get("Status", "passing"))
        if _STATUS_ORDER.get(status, 2) > _STATUS_ORDER[worst]:
            worst = status if status in _STATUS_ORDER else "critical"
    return worst


def instance_from_entry(entry: Mapping[str, Any]) -> Instance:
    """Build an :class:`Instance` from one ``/v1/health/service`` entry."""
    node = entry.get("Node") or {}
    svc = entry.get("Service") or {}
    weights = svc.get("Weights") or {}
    return Instance(
        id=str(svc.get("ID", "")),
        service=str(svc.get("Service", "")),
        node=str(node.get("Node", "")),
        # The service address is optional; Consul's own clients fall back to the node's.
        address=str(svc.get("Address") or node.get("Address") or ""),
        port=int(svc.get("Port") or 0),
        tags=tuple(svc.get("Tags") or ()),
        meta=MappingProxyType(dict(svc.get("Meta") or {})),
        status=_aggregate(entry.get("Checks") or ()),
        weight_passing=int(weights.get("Passing", 1)),
        weight_warning=int(weights.get("Warning", 1)),
    )


@dataclass(frozen=True)
class InstanceDiff:
    """What changed between two instance lists (by ``(node, id)``)."""

    added: tuple[Instance, ...] = ()
    removed: tuple[Instance, ...] = ()
    changed: tuple[Instance, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff_instances(old: Sequence[Instance], new: Sequence[Instance]) -> InstanceDiff:
    """The instances added, removed, and changed (same key, any other field different)."""
    change = diff_keyed(keyed(list(old), _BY_KEY), keyed(list(new), _BY_KEY), _BY_KEY)
    return InstanceDiff(
        added=tuple(change.added),
        removed=tuple(change.removed),
        changed=tuple(after for _, after in change.changed),
    )


#: An instance is named by its ``(node, service ID)`` key (``ops.diff``'s one diff).
_BY_KEY = Identity("list", key=attrgetter("key"))


class Picker:
    """Chooses one instance from a live list, weighted by ``Weights.Passing``/``Warning``.

    ``round_robin`` is a smooth weighted round robin (weights 3:1 give a a b a, not a a a b);
    ``random`` draws with probability proportional to the weight. Instances with weight 0
    (critical, maintenance) are never chosen. Call :meth:`update` with each new list.
    """

    def __init__(
        self,
        service: str,
        strategy: Strategy = "round_robin",
        *,
        rng: random.Random | None = None,
    ) -> None:
        if strategy not in ("round_robin", "random"):
            raise InvalidArgument("strategy", f"expected round_robin or random, got {strategy!r}")
        self.service = service
        self.strategy = strategy
        self._rng = rng or random.Random()
        self._instances: tuple[Instance, ...] = ()
        self._current: dict[tuple[str, str], int] = {}

    @property
    def instances(self) -> tuple[Instance, ...]:
        """The instances that can be picked now (weight > 0)."""
        return self._instances

    def update(self, instances: Iterable[Instance]) -> None:
        """Replace the live list; round-robin state is kept for instances that stay."""
        self._instances = tuple(i for i in instances if i.weight > 0)
        keys = {i.key for i in self._instances}
        self._current = {k: v for k, v in self._current.items() if k in keys}

    def pick(self) -> Instance:
        """One instance; raises :class:`NoHealthyInstances` when none can be picked."""
        if not self._instances:
            raise NoHealthyInstances(self.service)
        if self.strategy == "random":
            weights = [i.weight for i in self._instances]
            return self._rng.choices(self._instances, weights=weights)[0]
        total = 0
        best: Instance | None = None
        best_score = 0
        for inst in self._instances:
            score = self._current.get(inst.key, 0) + inst.weight
            self._current[inst.key] = score
            total += inst.weight
            if best is None or score > best_score:
                best, best_score = inst, score
        if best is None:  # unreachable: the list is not empty
            raise NoHealthyInstances(self.service)
        self._current[best.key] -= total
        return best
