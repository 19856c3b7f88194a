"""The recipes for sync code: each is the async recipe, run on the client's loop thread.

:class:`LiveConfig` and :class:`ServiceInstances` hold immutable snapshots that any thread may
read; their callbacks run on a callback thread of their own. :class:`Lock` cannot cancel a
thread when the lock is lost, so it sets :attr:`Lock.lost` (a ``threading.Event``) and
:meth:`Lock.check` raises :class:`LockLost`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from consul_streams._health import Health
from consul_streams.exceptions import InvalidArgument
from consul_streams.recipes import ConfigRejected, ConfigSnapshot, Instance, LockLost, ServiceUpdate
from consul_streams.recipes import LiveConfig as AsyncLiveConfig
from consul_streams.recipes import Lock as AsyncLock
from consul_streams.recipes import ServiceInstances as AsyncServiceInstances
from consul_streams.sync._dispatch import Dispatcher

if TYPE_CHECKING:
    from consul_streams.sync._base import SyncClient as Consul
    from consul_streams.sync._loop import LoopThread

__all__ = ["LiveConfig", "Lock", "ServiceInstances"]

T = TypeVar("T")


class LiveConfig(Generic[T]):
    """The last good configuration of a KV prefix or key, reloaded in the background.

    ``with LiveConfig(client, "app/") as config:`` waits for the first good configuration
    (``ready_timeout`` seconds at most); then ``config.value`` / ``config.current`` are always
    the last good one, an immutable snapshot any thread may read. Arguments, decoding,
    validation and debounce are those of :class:`consul_streams.recipes.LiveConfig`.

    ``on_change(callback)`` / ``on_error(callback)`` run ``callback(snapshot)`` /
    ``callback(rejected)`` on this config's callback thread (never the event-loop thread), in
    order; a slow callback sees the latest snapshot (intermediate ones are skipped); an
    exception in one is logged and reloading goes on.

    Note: in a child process after ``fork()``, the first use restarts the watch there (on the
    child's own loop thread) and keeps the callbacks; until then the snapshot is the parent's.
    """

    def __init__(
        self,
        client: Consul,
        prefix: str | None = None,
        *,
        ready_timeout: float | None = None,
        **options: Any,
    ) -> None:
        self.client = client
        self._args = (prefix, ready_timeout, options)
        self._guard = threading.Lock()
        self._on_change: list[Callable[[ConfigSnapshot[T]], object]] = []
        self._on_error: list[Callable[[ConfigRejected], object]] = []
        self._started = False
        self._closed = False
        self._pid = os.getpid()
        self._loop, self._aio = self._build()  # bad arguments raise here
        self._dispatcher: Dispatcher | None = None
        self._last: ConfigSnapshot[T] | None = None
        client._register(self)

    def _build(self) -> tuple[LoopThread, AsyncLiveConfig[T]]:
        prefix, ready_timeout, options = self._args
        loop, aio = self.client.loop, self.client.aio

        def build() -> AsyncLiveConfig[T]:
            config: AsyncLiveConfig[T] = AsyncLiveConfig(
                aio, prefix, ready_timeout=ready_timeout, **options
            )
            config.on_change(self._changed)
            config.on_error(self._rejected)
            return config

        return loop, loop.call(build)

    # Run on the loop thread by the async recipe: hand over, one hop, never wait.
    def _changed(self, snapshot: ConfigSnapshot[T]) -> None:
        self._last = snapshot
        for callback in self._callbacks(self._on_change):
            self._post(("change", id(callback)), callback, snapshot)

    def _rejected(self, rejected: ConfigRejected) -> None:
        for callback in self._callbacks(self._on_error):
            self._post(("error", id(callback)), callback, rejected)

    def _callbacks(self, callbacks: list[Any]) -> list[Any]:
        with self._guard:
            return list(callbacks)

    def _post(self, key: object, callback: Callable[..., object], arg: object) -> None:
        dispatcher = self._dispatcher
        if dispatcher is not None:
            dispatcher.post(key, callback, arg)

    def _subscribe(
        self, callbacks: list[Any], callback: Callable[..., object]
    ) -> Callable[[], None]:
        if not callable(callback):
            raise InvalidArgument("callback", f"expected a callable, got {callback!r}")
        with self._guard:
            if self._dispatcher is None and not self._closed:
                self._dispatcher = Dispatcher(f"consul_streams.sync LiveConfig {self._args[0]!r}")
            callbacks.append(callback)

        def unsubscribe() -> None:
            with self._guard:
                if callback in callbacks:
                    callbacks.remove(callback)

        return unsubscribe

    def on_change(self, callback: Callable[[ConfigSnapshot[T]], object]) -> Callable[[], None]:
        """Call ``callback(snapshot)`` for each new good configuration; returns an
        unsubscriber. Runs on the callback thread (see the class docstring)."""
        return self._subscribe(self._on_change, callback)

    def on_error(self, callback: Callable[[ConfigRejected], object]) -> Callable[[], None]:
        """Call ``callback(rejected)`` for each rejected change; returns an unsubscriber."""
        return self._subscribe(self._on_error, callback)

    def _live(self) -> AsyncLiveConfig[T]:
        """The async recipe of this process (restarted in a forked child)."""
        if self._pid != os.getpid():
            with self._guard:
                if self._pid != os.getpid():
                    self._pid = os.getpid()
                    self._loop, self._aio = self._build()
                    self.client._register(self)
                    if self._on_change or self._on_error:
                        self._dispatcher = Dispatcher("consul_streams.sync LiveConfig (forked)")
                    restart = self._started
            if restart:
                self._loop.run(self._aio.start())
        return self._aio

    def start(self) -> LiveConfig[T]:
        """Start reloading and wait for the first good configuration."""
        self._started = True
        self._loop.run(self._live().start())
        return self

    @property
    def current(self) -> ConfigSnapshot[T]:
        """The last good configuration; ``LookupError`` before the first one arrived."""
        return self._live().current

    @property
    def value(self) -> T:
        """Shortcut for ``current.value``."""
        return self.current.value

    @property
    def last_error(self) -> ConfigRejected | None:
        """The most recent rejected change, if any."""
        return self._live().last_error

    @property
    def health(self) -> Health:
        """Whether ``current`` is up to date (an immutable value): failures, since when, stale."""
        return self._live().health

    def wait_healthy(self, timeout: float | None = None) -> Health:
        """Block until the configuration is followed again; raises the error that stopped it."""
        return self._loop.run(self._live().wait_healthy(timeout))

    def changed(
        self, timeout: float | None = None, *, after: int | None = None
    ) -> ConfigSnapshot[T]:
        """Block until a good configuration newer than version ``after`` (default: the
        current) arrives; ``TimeoutError`` after ``timeout`` seconds."""
        aio = self._live()
        return self._loop.run(asyncio.wait_for(aio.changed(after=after), timeout))

    def close(self) -> None:
        """Stop reloading (``current`` keeps the last good configuration). Idempotent."""
        self.client._unregister(self)
        self._close()

    def _close(self) -> None:
        with self._guard:
            if self._closed:
                return
            self._closed = True
            dispatcher, self._dispatcher = self._dispatcher, None
        try:
            if not self._loop.closed:
                self._loop.run(self._aio.aclose())
        finally:
            if dispatcher is not None:
                dispatcher.stop()

    def _forked(self) -> None:
        # The parent's loop and callback thread are not in this process; _live() rebuilds.
        self._dispatcher = None

    def __enter__(self) -> LiveConfig[T]:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sync LiveConfig {self._args[0]!r}>"


class ServiceInstances:
    """A live, picker-ready view of one service's healthy instances, for sync code.

    ``with ServiceInstances(client, "web") as web:`` follows the service;
    ``web.pick()`` returns an instance (or raises ``NoHealthyInstances``);
    ``web.wait_for_instance(timeout)`` blocks for the first healthy one. Arguments as
    :class:`consul_streams.recipes.ServiceInstances`. Any thread may call it; picks are made
    on the loop thread, so the picker's state is never shared between threads.
    """

    def __init__(self, client: Consul, service: str, **options: Any) -> None:
        self.client = client
        self.service = service
        self._loop = client.loop
        aio = client.aio
        self._aio: AsyncServiceInstances = self._loop.call(
            lambda: AsyncServiceInstances(aio, service, **options)
        )
        self._closed = False
        client._register(self)

    @property
    def instances(self) -> tuple[Instance, ...]:
        """Every listed instance (an immutable tuple)."""
        return self._aio.instances

    @property
    def healthy(self) -> tuple[Instance, ...]:
        """The instances the picker chooses from (an immutable tuple)."""
        return self._aio.healthy

    @property
    def health(self) -> Health:
        """Whether the list is up to date (an immutable value): failures, since when, stale."""
        return self._aio.health

    def wait_healthy(self, timeout: float | None = None) -> Health:
        """Block until the service is followed again; raises the error that stopped it."""
        return self._loop.run(self._aio.wait_healthy(timeout))

    def pick(self) -> Instance:
        """An instance by the strategy; ``NoHealthyInstances`` when none is healthy."""
        return self._loop.call(self._aio.pick)

    def wait_for_instance(self, timeout: float | None = None) -> Instance:
        """Pick once an instance is healthy, blocking at most ``timeout`` seconds."""
        return self._loop.run(self._aio.wait_for_instance(timeout))

    def updated(self, timeout: float | None = None) -> ServiceUpdate:
        """Block until the next update of the list (``TimeoutError`` after ``timeout``).

        Note: an update that arrived before the call does not count; to wait for a state,
        use :meth:`wait_until`.
        """
        return self._loop.run(asyncio.wait_for(self._aio.updated(), timeout))

    def wait_until(
        self, predicate: Callable[[tuple[Instance, ...]], bool], timeout: float | None = None
    ) -> tuple[Instance, ...]:
        """Block until ``predicate(healthy)`` is true; returns those healthy instances.

        The predicate runs on the loop thread, checked against each update with no gap in
        between: keep it quick and free of blocking calls.
        """
        aio = self._aio

        async def until() -> tuple[Instance, ...]:
            while not predicate(aio.healthy):
                await aio.updated()
            return aio.healthy

        return self._loop.run(asyncio.wait_for(until(), timeout))

    def start(self) -> ServiceInstances:
        """Start following the service and wait for its first answer."""
        self._loop.run(self._aio.__aenter__())
        return self

    def close(self) -> None:
        """Stop following the service. Idempotent."""
        self.client._unregister(self)
        self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._loop.closed:
            self._loop.run(self._aio.aclose())

    def _forked(self) -> None:
        self._closed = True

    def __enter__(self) -> ServiceInstances:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sync ServiceInstances {self.service!r}>"


class Lock:
    """A session lock for sync code: ``with client.lock("service/x/leader") as lock:``.

    The async :class:`consul_streams.recipes.Lock` runs it (session, renewals, the watch on
    the key); options are its options except ``cancel_on_loss``: a lost lock cannot cancel a
    thread. Instead, as soon as the async lock sees the loss, :attr:`lost` (a
    ``threading.Event``) is set and :meth:`check` raises :class:`LockLost`; leaving the
    ``with`` block after a loss raises :class:`LockLost` too (unless another exception is
    already on its way). :attr:`fencing_token` is the async lock's token.

    Note: the guarantee is the async lock's lease: the hold is only as good as the last moment
    the lock was known held. Call :meth:`check` right before each side effect, and pass
    :attr:`fencing_token` to a store that rejects stale tokens for effects that must never
    happen twice.
    """

    def __init__(self, client: Consul, key: str, **options: Any) -> None:
        if "cancel_on_loss" in options:
            raise InvalidArgument(
                "cancel_on_loss",
                "a sync lock cannot cancel its thread: use lock.lost / lock.check() instead",
            )
        self.client = client
        self.key = key
        self._loop = client.loop
        aio = client.aio
        self._aio: AsyncLock = self._loop.call(
            lambda: AsyncLock(aio, key, cancel_on_loss=False, **options)
        )
        #: set as soon as the lock is lost while held.
        self.lost = threading.Event()
        self._forked_away = False
        self._monitor: asyncio.Task[None] | None = None

    @property
    def lost_reason(self) -> str | None:
        """Why the lock was lost, once it was."""
        if self._forked_away:
            return "the process forked: the lock is held by the parent process"
        return self._aio.lost_reason

    @property
    def held(self) -> bool:
        return not self._forked_away and self._aio.held

    @property
    def session(self) -> str | None:
        """The Consul session holding the lock (``None`` when not held)."""
        return self._aio.session

    @property
    def fencing_token(self) -> int | None:
        """The async lock's fencing token: larger for each new holder of the key (``None``
        before the first acquire); see :attr:`consul_streams.recipes.Lock.fencing_token`."""
        return self._aio.fencing_token

    @property
    def health(self) -> Health:
        """How talking to Consul goes for this lock (renewals, reads, writes)."""
        return self._aio.health

    def check(self) -> None:
        """Raise :class:`LockLost` if the lock has been lost (call before each side effect)."""
        if self.lost.is_set():
            raise LockLost(self.key, self.lost_reason or "lost")

    def acquire(self, timeout: float | None = None) -> None:
        """Block until the lock is held (``TimeoutError`` after ``timeout`` seconds)."""
        self.lost.clear()
        self._loop.run(self._acquire(timeout))
        self.client._register(self)

    async def _acquire(self, timeout: float | None) -> None:
        await self._aio.acquire(timeout)
        self._monitor = asyncio.create_task(self._watch_loss(self._aio.lost))

    async def _watch_loss(self, lost: asyncio.Event) -> None:
        await lost.wait()
        self.lost.set()

    def release(self) -> None:
        """Give the lock back and destroy its session. Idempotent."""
        self.client._unregister(self)
        self._close()

    def _close(self) -> None:
        if self._forked_away or self._loop.closed:
            return
        self._loop.run(self._release())

    async def _release(self) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            monitor.cancel()
            await asyncio.gather(monitor, return_exceptions=True)
        await self._aio.release()

    def _forked(self) -> None:
        # The session and its renewals belong to the parent: never release them from here.
        self._forked_away = True
        self.lost.set()

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
        if exc_type is None:
            self.check()

    def __repr__(self) -> str:
        state = "held" if self.held else ("lost" if self.lost.is_set() else "free")
        return f"<sync Lock {self.key!r} {state}>"
