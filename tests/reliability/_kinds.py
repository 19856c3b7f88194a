"""The watch kinds of the fault matrix: how each is seeded, watched, changed and compared."""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import AsyncIterator, Callable
from types import AsyncGeneratorType
from typing import Any, cast

from consul_streams import Consul, ConsulError, Health, HealthMonitor, Query
from consul_streams.recipes import (
    ConfigSnapshot,
    LiveConfig,
    Lock,
    LockLost,
    ServiceInstances,
    build_document,
    config_events,
    freeze,
)
from consul_streams.watch import DEFAULT_BACKOFF, Backoff, WatchStats, watch

from ._harness import BACKOFF, RATE, MaxJitter

__all__ = ["KINDS", "SLACK", "WAIT", "Kind"]

#: Blocking wait and read-timeout slack: the read timeout is 1 * 17/16 + 0.5 ~ 1.56 s.
WAIT = 1.0
SLACK = 0.5

Retry = Callable[[ConsulError], bool] | None


async def _iterate(stream: Any) -> AsyncIterator[Any]:
    """Iterate a watch inside its own context, so cancelling the consumer closes the poll."""
    async with stream.stream() as items:
        async for item in items:
            yield item


class Kind:
    """One watched thing. Subclasses say what is watched and how the state is compared."""

    name = ""
    #: the watched path: counted in agent.requests (a trailing ``/`` counts a prefix)
    path = ""
    #: the backoff the watch really uses (for request bounds)
    backoff: Backoff = BACKOFF
    #: whether its watch blocks on X-Consul-Index and so resets on a lower one
    index_mode = True

    def __init__(self) -> None:
        self.stats: Callable[[], WatchStats] = WatchStats
        #: the watch's (or recipe's) health, and every value it took
        self.health = HealthMonitor()
        self.history: list[Health] = []
        self._changed = asyncio.Event()
        self.health.add_listener(self._record)

    def _record(self, health: Health) -> None:
        self.history.append(health)
        self._changed.set()

    def errors(self) -> dict[str, int] | None:
        """The watch's own error counters (``None``: a recipe, whose watch is private)."""
        return self.stats().errors

    def failed_attempts(self) -> dict[str, int]:
        """The failed attempts the health reported, by error class (one value per attempt)."""
        return dict(
            Counter(
                type(h.last_error).__name__
                for h in self.history
                if h.failing_since is not None and h.last_error is not None
            )
        )

    async def until_failures(self, count: int, timeout: float) -> None:
        """Wait until the health has reported ``count`` failed attempts in a row."""

        async def wait() -> None:
            while self.health.health.failures < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    async def during_fault(self) -> None:
        """What the kind's user can still do while the fault lasts (recipes: serve stale)."""

    #: the error kinds the cell's fault provokes (set by the runner before the fault)
    expected: dict[str, tuple[int, int]] = {}  # noqa: RUF012  # replaced, never mutated

    def raised_as(self, error: BaseException, cls: type[BaseException]) -> bool:
        """Whether ``error`` ending the stream is how this kind reports a ``cls`` failure."""
        return isinstance(error, cls) and self.health.health.last_error is error

    async def seed(self, client: Consul) -> None:
        """Write the state present before the watch starts."""

    def source(self, client: Consul, retry: Retry) -> AsyncIterator[Any]:
        """The stream under test; sets :attr:`stats`."""
        raise NotImplementedError

    def fold(self, state: Any, item: Any) -> Any:
        """The tracked state after ``item`` was emitted."""
        value, _meta = item
        return value

    async def change(self, client: Consul) -> None:
        """The writes made while the fault is active; the last one is the "final update"."""
        raise NotImplementedError

    def has_final(self, state: Any) -> bool:
        """Whether ``state`` includes the final update."""
        raise NotImplementedError

    async def server(self, client: Consul) -> Any:
        """The server's state, in the tracker's form."""
        raise NotImplementedError

    def converged(self, state: Any, server: Any) -> bool:
        return bool(state == server)

    def _watch(self, query: Query[Any], retry: Retry, **options: Any) -> AsyncIterator[Any]:
        stream = watch(
            query.replace(timeout_slack=SLACK),
            wait=WAIT,
            rate_limit=RATE,
            backoff=BACKOFF,
            rng=MaxJitter(),
            retry=retry,
            share=False,
            health=self.health,
            **options,
        )
        self.stats = lambda: stream.stats
        return _iterate(stream)


class KeyKind(Kind):
    name = "key"
    path = "/v1/kv/cfg/key"

    async def seed(self, client: Consul) -> None:
        await client.kv.put("cfg/key", "v0")

    def source(self, client: Consul, retry: Retry) -> AsyncIterator[Any]:
        return self._watch(client.kv.get("cfg/key"), retry)

    async def change(self, client: Consul) -> None:
        await client.kv.put("cfg/key", "v1")
        await client.kv.put("cfg/key", "final")

    def has_final(self, state: Any) -> bool:
        return state is not None and state["Value"] == b"final"

    async def server(self, client: Consul) -> Any:
        return (await client.kv.get("cfg/key"))[0]


class PrefixKind(Kind):
    name = "prefix"
    path = "/v1/kv/app/"

    async def seed(self, client: Consul) -> None:
        await client.kv.put("app/a", "1")
        await client.kv.put("app/b", "2")

    def source(self, client: Consul, retry: Retry) -> AsyncIterator[Any]:
        return self._watch(client.kv.items("app/"), retry)

    async def change(self, client: Consul) -> None:
        await client.kv.put("app/c", "3")
        await client.kv.delete("app/b")
        await client.kv.put("app/a", "final")

    def has_final(self, state: Any) -> bool:
        return any(e["Key"] == "app/a" and e["Value"] == b"final" for e in state or ())

    async def server(self, client: Consul) -> Any:
        return (await client.kv.items("app/"))[0]


class HealthKind(Kind):
    name = "health"
    path = "/v1/health/service/web"

    async def seed(self, client: Consul) -> None:
        await client.agent.service_register("web", service_id="web-1", port=80)

    def source(self, client: Consul, retry: Retry) -> AsyncIterator[Any]:
        return self._watch(client.health.service("web"), retry)

    async def change(self, client: Consul) -> None:
        await client.agent.service_register("web", service_id="web-2", port=81)
        await client.agent.service_register("web", service_id="web-1", port=8080)

    def has_final(self, state: Any) -> bool:
        ports = {e["Service"]["ID"]: e["Service"]["Port"] for e in state or ()}
        return ports.get("web-1") == 8080

    async def server(self, client: Consul) -> Any:
        return (await client.health.service("web"))[0]


class EventKind(Kind):
    """Events: the tracked state is the set of event IDs delivered so far."""

    name = "event"
    path = "/v1/event/list"
    index_mode = False

    def __init__(self) -> None:
        super().__init__()
        self.final_id = ""

    async def seed(self, client: Consul) -> None:
        await client.event.fire("deploy", b"0")

    def source(self, client: Consul, retry: Retry) -> AsyncIterator[Any]:
        # "all": events fired before the first successful read (during a 403) still count.
        return self._watch(client.event.items("deploy"), retry, events="all")

    def fold(self, state: Any, item: Any) -> Any:
        events, _meta = item
        return frozenset(state or ()) | {e["ID"] for e in events}

    async def change(self, client: Consul) -> None:
        await client.event.fire("deploy", b"1")
        self.final_id = (await client.event.fire("deploy", b"final"))["ID"]

    def has_final(self, state: Any) -> bool:
        return state is not None and self.final_id in state

    async def server(self, client: Consul) -> Any:
        return frozenset(e["ID"] for e in (await client.event.items("deploy"))[0])

    def converged(self, state: Any, server: Any) -> bool:
        # Every event the server still holds was delivered (a wiped agent forgets old ones).
        return state is not None and server <= state


class _SlackKV:
    """``client.kv`` whose queries use the short read-timeout slack of the matrix."""

    def __init__(self, client: Consul) -> None:
        self._kv = client.kv

    def get(self, key: str) -> Query[Any]:
        return self._kv.get(key).replace(timeout_slack=SLACK)

    def items(self, prefix: str) -> Query[Any]:
        return self._kv.items(prefix).replace(timeout_slack=SLACK)


class _SlackClient:
    def __init__(self, client: Consul) -> None:
        self.kv = _SlackKV(client)


class ConfigKind(Kind):
    """The config recipe over a prefix; the tracked state is the last good document."""

    name = "config"
    path = "/v1/kv/conf/"

    async def seed(self, client: Consul) -> None:
        await client.kv.put("conf/a", "1")
        await client.kv.put("conf/b", "2")

    def source(self, client: Consul, retry: Retry) -> AsyncIterator[Any]:
        events = config_events(
            cast(Consul, _SlackClient(client)),
            "conf/",
            format="text",
            debounce=None,
            wait=WAIT,
            rate_limit=RATE,
            retry=retry,
            backoff=BACKOFF,
            rng=MaxJitter(),
            health=self.health,
        )
        # The recipe keeps its watch private; its not-yet-started frame holds it.
        frame = cast(AsyncGeneratorType[Any, None], events).ag_frame
        assert frame is not None
        stream = frame.f_locals["stream"]
        self.stats = lambda: stream.stats
        return events

    def fold(self, state: Any, item: Any) -> Any:
        return item.document if isinstance(item, ConfigSnapshot) else state

    async def change(self, client: Consul) -> None:
        await client.kv.put("conf/c", "3")
        await client.kv.put("conf/b", "final")

    def has_final(self, state: Any) -> bool:
        return state is not None and state.get("b") == "final"

    async def server(self, client: Consul) -> Any:
        return freeze(build_document((await client.kv.items("conf/"))[0], "conf/", "text"))


class LiveKind(Kind):
    """``LiveConfig``: the tracked state is its ``current`` document after each change."""

    name = "live"
    path = "/v1/kv/live/"

    def __init__(self) -> None:
        super().__init__()
        self.config: LiveConfig[Any] | None = None

    async def seed(self, client: Consul) -> None:
        await client.kv.put("live/a", "1")

    def source(self, client: Consul, retry: Retry) -> AsyncIterator[Any]:
        self.config = LiveConfig(
            cast(Consul, _SlackClient(client)),
            "live/",
            format="text",
            debounce=None,
            wait=WAIT,
            rate_limit=RATE,
            retry=retry,
            backoff=BACKOFF,
            rng=MaxJitter(),
            health=self.health,
        )
        return self._follow(self.config)

    async def _follow(self, config: LiveConfig[Any]) -> AsyncIterator[Any]:
        # The user's side: start it (a typed error if the first read cannot succeed), follow.
        async with config:
            async for snapshot in config:
                yield snapshot

    def fold(self, state: Any, item: Any) -> Any:
        return item.document

    async def change(self, client: Consul) -> None:
        await client.kv.put("live/b", "2")
        await client.kv.put("live/a", "final")

    def has_final(self, state: Any) -> bool:
        return state is not None and state.get("a") == "final"

    async def server(self, client: Consul) -> Any:
        return freeze(build_document((await client.kv.items("live/"))[0], "live/", "text"))

    def errors(self) -> dict[str, int] | None:
        return None

    async def during_fault(self) -> None:
        assert self.config is not None
        health = self.config.health
        assert health.stale, health
        assert not health.ok, health
        assert self.config.current.document is not None  # the last good one, still served


class _SlackHealth:
    def __init__(self, client: Consul) -> None:
        self._health = client.health

    def service(self, name: str, **options: Any) -> Query[Any]:
        return self._health.service(name, **options).replace(timeout_slack=SLACK)


class _SlackHealthClient:
    def __init__(self, client: Consul) -> None:
        self.health = _SlackHealth(client)


class InstancesKind(Kind):
    """``ServiceInstances``: the tracked state is the picker's ``(id, port)`` set."""

    name = "instances"
    path = "/v1/health/service/web"

    def __init__(self) -> None:
        super().__init__()
        self.instances: ServiceInstances | None = None

    async def seed(self, client: Consul) -> None:
        await client.agent.service_register("web", service_id="web-1", port=80)

    def source(self, client: Consul, retry: Retry) -> AsyncIterator[Any]:
        self.instances = ServiceInstances(
            cast(Consul, _SlackHealthClient(client)),
            "web",
            wait=WAIT,
            rate_limit=RATE,
            retry=retry,
            backoff=BACKOFF,
            rng=MaxJitter(),
            health=self.health,
        )
        return self._follow(self.instances)

    async def _follow(self, instances: ServiceInstances) -> AsyncIterator[Any]:
        async with instances:
            yield instances.healthy
            while True:
                await instances.updated()
                yield instances.healthy

    def fold(self, state: Any, item: Any) -> Any:
        return frozenset((i.id, i.port) for i in item)

    async def change(self, client: Consul) -> None:
        await client.agent.service_register("web", service_id="web-2", port=81)
        await client.agent.service_register("web", service_id="web-1", port=8080)

    def has_final(self, state: Any) -> bool:
        return state is not None and ("web-1", 8080) in state

    async def server(self, client: Consul) -> Any:
        entries = (await client.health.service("web", passing=True))[0]
        return frozenset((e["Service"]["ID"], e["Service"]["Port"]) for e in entries)

    def errors(self) -> dict[str, int] | None:
        return None

    async def during_fault(self) -> None:
        assert self.instances is not None
        assert self.instances.health.stale, self.instances.health
        # The last good list keeps serving: a bad answer does not break the picker.
        assert self.instances.pick().service == "web"


#: Whether locks publish their health (``Lock(health=)``, from the locks work of #10/#11).
LOCK_HEALTH = "health" in inspect.signature(Lock.__init__).parameters


class _SlackKVClient:
    """The client with ``kv.get`` on the matrix's short slack; everything else as is."""

    def __init__(self, client: Consul) -> None:
        self._client = client
        self.kv = _SlackKVAll(client)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class _SlackKVAll:
    def __init__(self, client: Consul) -> None:
        self._kv = client.kv

    def get(self, key: str, **options: Any) -> Query[Any]:
        return self._kv.get(key, **options).replace(timeout_slack=SLACK)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)


class LockKind(Kind):
    """A lock holder. The tracked state is the holder's view, ``(held, session, healthy)``,
    after each change of the lock's health: it must still hold the lock, healthy again, once
    the fault is over (its key watch retried it), and the key on the server names its session.
    The "final update" is the holder re-acquiring with its own session (a new ModifyIndex the
    watch must read past the fault)."""

    name = "lock"
    path = "/v1/kv/locks/leader"
    backoff = DEFAULT_BACKOFF  # the lock's own watch backoff (not configurable)
    index_mode = False  # its watch's stats are private: no index-reset count to check

    def __init__(self) -> None:
        super().__init__()
        self.lock: Lock | None = None

    def source(self, client: Consul, retry: Retry) -> AsyncIterator[Any]:
        options: dict[str, Any] = {"health": self.health}
        self.lock = Lock(
            cast(Consul, _SlackKVClient(client)),
            "locks/leader",
            ttl=10.0,
            lock_delay=0.0,
            wait=WAIT,
            cancel_on_loss=False,
            **options,
        )
        return self._hold(self.lock)

    async def _hold(self, lock: Lock) -> AsyncIterator[Any]:
        changed = asyncio.Event()
        self.health.add_listener(lambda _health: changed.set())
        async with lock:
            while True:
                yield (lock.held, lock.session, self.health.health.ok)
                waits = {
                    asyncio.ensure_future(changed.wait()),
                    asyncio.ensure_future(lock.lost.wait()),
                }
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiting in waits:
                        waiting.cancel()
                    await asyncio.gather(*waits, return_exceptions=True)
                changed.clear()
                if lock.lost.is_set():
                    raise LockLost(lock.key, lock.lost_reason or "lost")

    def fold(self, state: Any, item: Any) -> Any:
        return item

    def errors(self) -> dict[str, int] | None:
        return None

    async def change(self, client: Consul) -> None:
        assert self.lock is not None
        assert self.lock.session is not None
        assert await client.kv.acquire("locks/leader", self.lock.session, b"final")

    def has_final(self, state: Any) -> bool:
        # Healthy again, after having reported (at least) the failures the fault provokes.
        reported = self.failed_attempts()
        seen = all(reported.get(name, 0) >= low for name, (low, _) in self.expected.items())
        return state is not None and state[0] and state[2] and seen

    async def server(self, client: Consul) -> Any:
        entry = (await client.kv.get("locks/leader"))[0]
        assert entry is not None
        return (True, entry.get("Session"), True)

    def raised_as(self, error: BaseException, cls: type[BaseException]) -> bool:
        # The lock reports a failure its watch cannot retry as the loss of the lock.
        last = self.health.health.last_error
        return isinstance(error, LockLost) and isinstance(last, cls)

    async def during_fault(self) -> None:
        assert self.lock is not None
        assert self.lock.held, self.lock  # a retried failure does not lose the lock
        assert not self.health.health.ok


KINDS: dict[str, type[Kind]] = {
    k.name: k
    for k in (
        KeyKind,
        PrefixKind,
        HealthKind,
        EventKind,
        ConfigKind,
        LiveKind,
        InstancesKind,
        *((LockKind,) if LOCK_HEALTH else ()),
    )
}
