"""TypedDicts for the JSON shapes Consul returns, keeping Consul's own field names.

Re-exported from :mod:`consul_streams.typing`; import them from there.

Optional fields use the two-class ``total=False`` split rather than ``NotRequired`` because
``typing.NotRequired`` only exists from Python 3.11 and ``typing_extensions`` is not a
dependency: the required fields live in a private ``_...Base`` class and the subclass adds the
fields Consul omits in some versions or answers. Fields Consul sends as base64 (``Value``,
``Payload``) are ``bytes`` here: the endpoint decoders turn them into bytes (``null`` -> ``b""``).
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "AgentService",
    "CatalogService",
    "Event",
    "HealthCheck",
    "KVEntry",
    "Node",
    "ServiceEntry",
    "Session",
    "TxnError",
    "TxnResponse",
    "TxnResult",
    "Weights",
]


class _KVEntryBase(TypedDict):
    Key: str
    Value: bytes
    Flags: int
    LockIndex: int
    CreateIndex: int
    ModifyIndex: int


class KVEntry(_KVEntryBase, total=False):
    """One key of ``/v1/kv``; ``Session`` is present only while the key is locked."""

    Session: str


class Weights(TypedDict):
    """DNS SRV weights of a service instance."""

    Passing: int
    Warning: int


class _NodeBase(TypedDict):
    Node: str
    Address: str


class Node(_NodeBase, total=False):
    """A node of ``/v1/catalog/nodes`` (and the ``Node`` of a health entry)."""

    ID: str
    Datacenter: str
    TaggedAddresses: dict[str, str]
    Meta: dict[str, str]
    CreateIndex: int
    ModifyIndex: int


class _CatalogServiceBase(TypedDict):
    Node: str
    Address: str
    ServiceID: str
    ServiceName: str
    ServiceTags: list[str]
    ServiceAddress: str
    ServicePort: int


class CatalogService(_CatalogServiceBase, total=False):
    """One instance in ``/v1/catalog/service/:name``."""

    ID: str
    Datacenter: str
    TaggedAddresses: dict[str, str]
    NodeMeta: dict[str, str]
    ServiceKind: str
    ServiceMeta: dict[str, str]
    ServiceWeights: Weights
    ServiceEnableTagOverride: bool
    ServiceTaggedAddresses: dict[str, Any]
    CreateIndex: int
    ModifyIndex: int


class _AgentServiceBase(TypedDict):
    ID: str
    Service: str
    Tags: list[str]
    Port: int
    Address: str


class AgentService(_AgentServiceBase, total=False):
    """A service as the agent knows it (``/v1/agent/services``, ``Service`` of a health entry)."""

    Meta: dict[str, str]
    Weights: Weights
    EnableTagOverride: bool
    Kind: str
    Datacenter: str
    TaggedAddresses: dict[str, Any]
    ContentHash: str
    CreateIndex: int
    ModifyIndex: int


class _HealthCheckBase(TypedDict):
    Node: str
    CheckID: str
    Name: str
    Status: str
    Notes: str
    Output: str
    ServiceID: str
    ServiceName: str


class HealthCheck(_HealthCheckBase, total=False):
    """One check (``/v1/health/checks``, ``/v1/agent/checks``, ``Checks`` of a health entry)."""

    ServiceTags: list[str]
    Type: str
    Definition: dict[str, Any]
    CreateIndex: int
    ModifyIndex: int


class ServiceEntry(TypedDict):
    """One entry of ``/v1/health/service/:name``: node, service instance and its checks."""

    Node: Node
    Service: AgentService
    Checks: list[HealthCheck]


class Event(TypedDict):
    """A user event (``/v1/event/list``, ``/v1/event/fire``); ``Payload`` decoded to bytes."""

    ID: str
    Name: str
    Payload: bytes
    NodeFilter: str
    ServiceFilter: str
    TagFilter: str
    Version: int
    LTime: int


class _SessionBase(TypedDict):
    ID: str
    Name: str
    Node: str
    LockDelay: int  # nanoseconds, as Consul sends it
    Behavior: str
    TTL: str


class Session(_SessionBase, total=False):
    """A session of ``/v1/session/info`` and ``/v1/session/list``."""

    NodeChecks: list[str]
    ServiceChecks: list[dict[str, str]]
    Checks: list[str]  # older Consul versions
    CreateIndex: int
    ModifyIndex: int


class TxnError(TypedDict):
    """One failed operation of a transaction."""

    OpIndex: int
    What: str


class TxnResult(TypedDict, total=False):
    """One result of a transaction: exactly one of these keys is set."""

    KV: KVEntry
    Node: Node
    Service: AgentService
    Check: HealthCheck


class TxnResponse(TypedDict):
    """The answer of ``/v1/txn`` (``null`` lists normalised to ``[]``)."""

    Results: list[TxnResult]
    Errors: list[TxnError]
