"""What the sync layer's parts know of a sync client: a protocol, so that none imports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from consul_streams._client import Consul as AsyncConsul
from consul_streams.sync._loop import LoopThread

__all__ = ["Engine", "Resource", "SyncClient"]


@dataclass(frozen=True)
class Engine:
    """The per-process half of a sync client: its loop thread and its asyncio client."""

    loop: LoopThread
    client: AsyncConsul
    pid: int


class Resource(Protocol):
    """What a client closes with itself: watches, recipes and locks built on it."""

    def _close(self) -> None: ...

    def _forked(self) -> None: ...


class SyncClient(Protocol):
    """A :class:`consul_streams.sync.Consul`, as its endpoints, watches and recipes use it."""

    address: str

    def _engine(self) -> Engine: ...

    @property
    def loop(self) -> LoopThread: ...

    @property
    def aio(self) -> AsyncConsul: ...

    def _register(self, resource: Resource) -> None: ...

    def _unregister(self, resource: Resource) -> None: ...
