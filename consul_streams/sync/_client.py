"""The sync :class:`Consul`: the asyncio client, driven from any thread through one loop thread.

Lifecycle: the loop thread starts on the first call (a client built at import time, e.g. in a
gunicorn master with ``--preload``, starts no thread until used). :meth:`Consul.close`, the
``with`` block, or interpreter exit stop every watch and recipe of the client, release its
locks (destroying their sessions), close the HTTP session, then stop and join the threads.

Fork: a client used in a child process after ``fork()`` notices (``os.register_at_fork`` and
a pid check) and starts a fresh loop thread and HTTP session there. What the parent built is
left alone, never closed or finalised in the child: closing it would unregister the parent's
sockets from the epoll instance parent and child share.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from consul_streams._client import Consul as AsyncConsul
from consul_streams.exceptions import ClientClosed, InvalidArgument
from consul_streams.sync._base import Engine, Resource
from consul_streams.sync._endpoints import (
    KV,
    Agent,
    Catalog,
    Events,
    Health,
    Sessions,
    Status,
    Txn,
)
from consul_streams.sync._loop import LoopThread

if TYPE_CHECKING:
    from consul_streams.sync._recipes import Lock

__all__ = ["Consul"]


class Consul:
    """A blocking Consul client, safe to call from any thread.

    It takes exactly the arguments of :class:`consul_streams.Consul` (the same ``CONSUL_*``
    environment variables, the same precedence), except ``session``: the HTTP session belongs
    to the client's own loop thread. The endpoints (``kv``, ``catalog``, ``health``, ``agent``,
    ``event``, ``session``, ``status``, ``txn``) have every method of the async ones, with the
    same arguments, blocking: a read returns its ``(value, meta)`` (a :class:`Reply` that
    :func:`watch` can re-issue), a write returns the decoded answer.

    Use ``with Consul() as client:`` or call :meth:`close`; interpreter exit closes what is
    left open.

    Note: every call from every thread is run on the one loop thread, so the client's
    connection cap and long-poll sharing hold across threads. Values handed out (entries,
    snapshots, instances) are the ones the engine decoded: treat them as read-only; the recipe
    snapshots are immutable.
    """

    kv: KV
    catalog: Catalog
    health: Health
    agent: Agent
    event: Events
    session: Sessions
    status: Status
    txn: Txn

    def __init__(self, address: str | None = None, **settings: Any) -> None:
        if "session" in settings:
            raise InvalidArgument(
                "session",
                "not accepted by the sync client, which owns its HTTP session (it lives on the "
                "client's loop thread); pass the other settings of consul_streams.Consul",
            )
        # Built once here so that bad settings raise in the caller, as with the async client;
        # the loop thread starts on first use.
        self._settings: dict[str, Any] = dict(settings, address=address)
        self._prototype: AsyncConsul | None = AsyncConsul(**self._settings)
        self.address: str = self._prototype.address
        self.datacenter: str | None = self._prototype.datacenter
        self._has_token = bool(getattr(self._prototype.transport, "has_token", False))
        self._lock = threading.Lock()
        self._state: Engine | None = None
        self._closed = False
        self._resources: dict[int, Resource] = {}
        self.kv = KV(self)
        self.catalog = Catalog(self)
        self.health = Health(self)
        self.agent = Agent(self)
        self.event = Events(self)
        self.session = Sessions(self)
        self.status = Status(self)
        self.txn = Txn(self)
        _OPEN.add(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Consul:
        """A client configured from ``environ`` (default ``os.environ``); ``kwargs`` win."""
        return cls(environ=os.environ if environ is None else environ, **kwargs)

    # -- the engine ----------------------------------------------------------------------------

    def _engine(self) -> Engine:
        """The loop thread and async client of this process, started on first use."""
        state = self._state
        if state is not None and state.pid == os.getpid():
            return state
        with self._lock:
            if self._closed:
                raise ClientClosed(f"{self!r} is closed")
            state = self._state
            if state is None or state.pid != os.getpid():
                if state is not None:  # forked without the at-fork hook (a C-level fork)
                    self._forked()
                loop = LoopThread(f"consul_streams.sync {self.address}")
                state = Engine(loop, self._new_async_client(), os.getpid())
                self._state = state
            return state

    def _new_async_client(self) -> AsyncConsul:
        prototype, self._prototype = self._prototype, None
        # The prototype has not sent anything (it owns no session yet): use it once.
        if prototype is not None:
            return prototype
        return AsyncConsul(**self._settings)

    @property
    def aio(self) -> AsyncConsul:
        """The asyncio client this client drives (use it only on :attr:`loop`)."""
        return self._engine().client

    @property
    def loop(self) -> LoopThread:
        """The loop thread of this client (started on first use)."""
        return self._engine().loop

    def _register(self, resource: Resource) -> None:
        with self._lock:
            if self._closed:
                raise ClientClosed(f"{self!r} is closed")
            self._resources[id(resource)] = resource

    def _unregister(self, resource: Resource) -> None:
        with self._lock:
            self._resources.pop(id(resource), None)

    # -- lifecycle -----------------------------------------------------------------------------

    def lock(self, key: str, **options: Any) -> Lock:
        """A session lock on ``key``: ``with client.lock("service/x/leader") as lock:``.

        See :class:`consul_streams.sync.Lock` (``lock.lost``, ``lock.check()``,
        ``lock.fencing_token``).
        """
        from consul_streams.sync._recipes import Lock

        return Lock(self, key, **options)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the watches and recipes, release the locks, close HTTP and the threads.

        Safe to call twice and from any thread but a callback of this client's own watches
        (which would wait for itself).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            resources = list(self._resources.values())
            self._resources.clear()
            state, self._state = self._state, None
        _OPEN.discard(self)
        try:
            # Locks first: their sessions are destroyed while HTTP is still open.
            for resource in sorted(resources, key=lambda r: not _is_lock(r)):
                resource._close()
        finally:
            if state is not None and state.pid == os.getpid():
                try:
                    if not state.loop.closed:
                        state.loop.run(state.client.aclose())
                finally:
                    state.loop.close()

    def _forked(self) -> None:
        """In a child after fork: forget the parent's engine and resources, touch nothing."""
        state, self._state = self._state, None
        resources = list(self._resources.values())
        self._resources.clear()
        for resource in resources:
            resource._forked()
        if state is not None:
            _ORPHANS.append(state)
        _ORPHANS.extend(resources)

    def __enter__(self) -> Consul:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        token = "set" if self._has_token else "none"
        state = "closed" if self._closed else "open"
        return f"<sync Consul {self.address} dc={self.datacenter!r} token={token} {state}>"


def _is_lock(resource: Resource) -> bool:
    from consul_streams.sync._recipes import Lock

    return isinstance(resource, Lock)


#: Clients not closed yet: closed at interpreter exit. A strong set: an open client keeps its
#: loop thread, so it is not garbage until closed.
_OPEN: set[Consul] = set()
#: What a forked child inherited from its parent and must never close or finalise.
_ORPHANS: list[object] = []
# The child's interpreter exit would otherwise finalise _ORPHANS, and finalising a connector
# closes its transports, which unregisters their sockets from the epoll instance parent and
# child share. One extra reference, never dropped, keeps them out of finalisation for good:
# they are the parent's, not the child's garbage. (Defensive: objects a dead thread's frame
# still references are leaked by CPython after fork anyway; these may not be.)
if hasattr(ctypes, "pythonapi"):  # CPython
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(_ORPHANS))


def _after_fork_in_child() -> None:
    for client in list(_OPEN):
        client._lock = threading.Lock()  # it may have been held by a parent thread
        client._forked()


def _close_all_at_exit() -> None:
    for client in list(_OPEN):
        client.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all_at_exit)
