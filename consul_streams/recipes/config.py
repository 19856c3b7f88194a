"""Config hot-reload: a KV prefix (or one key holding a document) as a stream of snapshots.

:func:`config_events` is the stream; :class:`LiveConfig` runs it in the background and always
holds the last good configuration in :attr:`LiveConfig.current`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from consul_streams._health import Health, HealthMonitor
from consul_streams._parse import parse_duration
from consul_streams._policy import hint, widen
from consul_streams.exceptions import ConsulError, InvalidArgument
from consul_streams.recipes._document import (
    ConfigError,
    Decoder,
    build_document,
    decode_value,
    freeze,
    resolve_format,
)
from consul_streams.recipes._validate import Validator, make_validator
from consul_streams.typing import Duration
from consul_streams.watch import DEFAULT_BACKOFF, Backoff, RateLimit

if TYPE_CHECKING:
    from consul_streams._client import Consul
    from consul_streams._clock import Clock
    from consul_streams._query import Query

__all__ = [
    "BURST_RATE_LIMIT",
    "ConfigEvent",
    "ConfigRejected",
    "ConfigSnapshot",
    "LiveConfig",
    "config_events",
]

T = TypeVar("T")

#: The watch rate limit of the config recipe: bursts pass at once (the debounce needs every
#: round of a burst promptly, or a rate-limit pause looks like the end of the burst).
BURST_RATE_LIMIT = RateLimit(burst=32, per_second=10.0)
log = logging.getLogger("consul_streams.recipes.config")


@dataclass(frozen=True)
class ConfigSnapshot(Generic[T]):
    """One good configuration. ``document`` is the decoded data, deeply read-only
    (``MappingProxyType``/tuples); ``value`` is what the validator made of it (the document
    itself without a validator). ``version`` counts good snapshots from 1."""

    value: T
    document: Mapping[str, Any]
    index: int
    version: int


@dataclass(frozen=True)
class ConfigRejected:
    """A change that did not become the configuration: ``error`` says why; the last good
    configuration (``current``, ``None`` if there was none yet) stays in place."""

    error: ConfigError
    index: int
    current: ConfigSnapshot[Any] | None


ConfigEvent = ConfigSnapshot[T] | ConfigRejected


def _check_source(prefix: str | None, key: str | None) -> None:
    if (prefix is None) == (key is None):
        raise InvalidArgument("prefix/key", "give exactly one: prefix='app/' or key='app.json'")
    name, value = ("prefix", prefix) if prefix is not None else ("key", key)
    if not isinstance(value, str) or (name == "key" and not value):
        raise InvalidArgument(name, f"expected a non-empty str, got {value!r}")


def _check_seconds(value: object, parameter: str) -> float | None:
    return None if value is None else parse_duration(value, parameter)


def _document(value: Any, prefix: str | None, key: str | None, fmt: str | Decoder) -> Any:
    if key is not None:
        if value is None:
            raise ConfigError("key does not exist", key=key)
        doc = decode_value(bytes(value["Value"]), fmt, key)
        if not isinstance(doc, Mapping):
            raise ConfigError(f"document is a {type(doc).__name__}, not a mapping", key=key)
        return doc
    return build_document(value, prefix or "", fmt)


def config_events(
    client: Consul,
    prefix: str | None = None,
    *,
    key: str | None = None,
    format: str | Decoder = "auto",
    validate: object = None,
    debounce: Duration | None = 0.1,
    max_wait: Duration | None = None,
    clock: Clock | None = None,
    wait: Duration = "5m",
    rate_limit: RateLimit | None = BURST_RATE_LIMIT,
    retry: Callable[[ConsulError], bool] | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
    rng: random.Random | None = None,
    health: HealthMonitor | None = None,
) -> AsyncGenerator[ConfigEvent[Any], None]:
    """Yield a :class:`ConfigSnapshot` for each new good configuration and a
    :class:`ConfigRejected` for each change that failed to decode or validate.

    ``prefix`` nests keys by path (``app/db/host`` -> ``{"db": {"host": ...}}``); ``key`` reads
    one key holding a whole document. ``format`` is ``auto`` (by extension, else text),
    ``json``, ``yaml``, ``toml``, ``text``, ``bytes`` or a callable. Writes closer together
    than ``debounce`` seconds reload once (``max_wait`` caps the delay under constant writes).

    ``rate_limit`` goes to ``watch()``; the default (:data:`BURST_RATE_LIMIT`) lets a burst of
    changes through at once, so that the debounce sees it as one burst, and caps sustained
    churn at 10 reads a second. ``retry``, ``backoff`` and ``rng`` also go to ``watch()``,
    with its meaning and checks: e.g. ``retry=lambda exc: exc.retriable or
    isinstance(exc, PermissionDenied)`` waits out the 403 of a token that is not valid yet,
    where the default policy ends the stream with that error.

    Note: each read is one atomic view of the prefix, and a burst is collapsed to its last
    view, so a consumer never sees part of a burst applied. A new view equal to the current
    configuration is not yielded again.
    """
    _check_source(prefix, key)
    fmt = resolve_format(format)
    validator: Validator | None = make_validator(validate)
    debounce = _check_seconds(debounce, "debounce")
    max_wait = _check_seconds(max_wait, "max_wait")

    from consul_streams.watch import watch

    query: Query[Any] = client.kv.get(key) if key is not None else client.kv.items(prefix or "")
    stream: Any = watch(
        query,
        wait=wait,
        clock=clock,
        rate_limit=rate_limit,
        retry=widen(retry),
        backoff=backoff,
        rng=rng,
        health=health,
    )
    if debounce:
        from consul_streams import ops

        stream = stream | ops.debounce(debounce, max_wait=max_wait, clock=clock)
    # Everything above runs at call time, so that bad arguments fail there.
    return _events(stream, prefix, key, fmt, validator)


async def _events(
    stream: Any,
    prefix: str | None,
    key: str | None,
    fmt: str | Decoder,
    validator: Validator | None,
) -> AsyncGenerator[ConfigEvent[Any], None]:
    current: ConfigSnapshot[Any] | None = None
    async with stream.stream() as rounds:
        async for value, meta in rounds:
            try:
                document = freeze(_document(value, prefix, key, fmt))
                if current is not None and document == current.document:
                    continue
                result = validator(document) if validator is not None else document
            except ConfigError as exc:
                log.warning(
                    "config rejected at index %s, keeping the last good: %s", meta.index, exc
                )
                yield ConfigRejected(exc, meta.index, current)
                continue
            except Exception as exc:  # a validator may raise anything
                error = ConfigError(f"validation failed: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
                log.warning(
                    "config rejected at index %s, keeping the last good: %s", meta.index, error
                )
                yield ConfigRejected(error, meta.index, current)
                continue
            version = current.version + 1 if current is not None else 1
            current = ConfigSnapshot(result, document, meta.index, version)
            yield current


Callback = Callable[[Any], Any]


class LiveConfig(Generic[T]):
    """Holds the last good configuration of a KV prefix or key, reloaded in the background.

    ``async with LiveConfig(client, "app/") as config:`` waits for the first good
    configuration (``ready_timeout`` seconds at most), then ``config.current`` is always the
    last good :class:`ConfigSnapshot`. ``await config.changed()`` waits for the next one;
    ``async for snapshot in config`` follows them; ``on_change``/``on_error`` register
    callbacks (plain functions or coroutine functions). Arguments as :func:`config_events`.

    Health: while the watch fails (agent down, a bad answer) ``current`` stays the last good
    configuration and :attr:`health` says it is stale, since when, and the last error;
    ``await config.wait_healthy(timeout)`` waits for it to be current again and
    ``async for h in config.health_changes()`` follows it.

    Note: callbacks run in the background task in order; an exception in one is logged and
    does not stop reloading. Iterators see every snapshot published after they start.
    """

    def __init__(
        self,
        client: Consul,
        prefix: str | None = None,
        *,
        ready_timeout: Duration | None = None,
        **options: Any,
    ) -> None:
        _check_source(prefix, options.get("key"))
        self._ready_timeout = _check_seconds(ready_timeout, "ready_timeout")
        given = options.pop("health", None)
        self._health = given if given is not None else HealthMonitor(options.get("clock"))
        self._events = config_events(client, prefix, health=self._health, **options)
        self._current: ConfigSnapshot[T] | None = None
        self._last_error: ConfigRejected | None = None
        self._change = asyncio.Condition()
        self._on_change: list[Callback] = []
        self._on_error: list[Callback] = []
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    @property
    def current(self) -> ConfigSnapshot[T]:
        """The last good configuration; ``LookupError`` before the first one arrived."""
        if self._current is None:
            raise LookupError("no good configuration has been loaded yet")
        return self._current

    @property
    def value(self) -> T:
        """Shortcut for ``current.value``."""
        return self.current.value

    @property
    def last_error(self) -> ConfigRejected | None:
        """The most recent rejected change, if any (watch failures: :attr:`health`)."""
        return self._last_error

    @property
    def health(self) -> Health:
        """Whether ``current`` is up to date: the watch's failures, since when, stale or not."""
        return self._health.health

    async def wait_healthy(self, timeout: float | None = None) -> Health:
        """Wait until the configuration is followed again; raises the error that stopped it."""
        return await self._health.wait_healthy(timeout)

    def health_changes(self) -> AsyncGenerator[Health, None]:
        """The current :class:`Health`, then each change (latest-wins)."""
        return self._health.changes()

    def on_change(self, callback: Callable[[ConfigSnapshot[T]], Any]) -> Callable[[], None]:
        """Call ``callback(snapshot)`` on each new good configuration; returns an unsubscriber."""
        self._on_change.append(callback)
        return lambda: self._on_change.remove(callback)

    def on_error(self, callback: Callable[[ConfigRejected], Any]) -> Callable[[], None]:
        """Call ``callback(rejected)`` on each rejected change; returns an unsubscriber."""
        self._on_error.append(callback)
        return lambda: self._on_error.remove(callback)

    async def _call(self, callbacks: list[Callback], arg: Any) -> None:
        for callback in list(callbacks):
            try:
                result = callback(arg)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("config callback %r failed", callback)

    async def _run(self) -> None:
        try:
            async for event in self._events:
                if isinstance(event, ConfigSnapshot):
                    self._current = event
                    await self._call(self._on_change, event)
                else:
                    self._last_error = event
                    await self._call(self._on_error, event)
                async with self._change:
                    self._change.notify_all()
        except BaseException as exc:
            self._failure = exc
            async with self._change:
                self._change.notify_all()
            if not isinstance(exc, asyncio.CancelledError):
                fix = hint(exc) if isinstance(exc, ConsulError) else ""
                log.error("config watch stopped: %s%s", exc, f" ({fix})" if fix else "")
            if isinstance(exc, Exception):
                # Kept for changed()/wait_healthy() to raise; never "Task exception was never
                # retrieved" in the user's loop.
                return
            raise

    async def changed(self, *, after: int | None = None) -> ConfigSnapshot[T]:
        """Wait for a good configuration newer than version ``after`` (default: the current)."""
        if after is None:
            after = self._current.version if self._current is not None else 0
        async with self._change:
            while self._current is None or self._current.version <= after:
                failure = self._failure
                if isinstance(failure, ConsulError):
                    # The typed error that stopped the watch (it says what to fix).
                    raise failure
                if failure is not None:
                    raise ConfigError(f"config watch stopped: {failure!r}")
                await self._change.wait()
            return self._current

    async def __aiter__(self) -> AsyncGenerator[ConfigSnapshot[T], None]:
        version = 0 if self._current is None else self._current.version - 1
        while True:
            snapshot = await self.changed(after=version)
            version = snapshot.version
            yield snapshot

    async def start(self) -> None:
        """Start reloading and wait for the first good configuration."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="LiveConfig")
        await asyncio.wait_for(self.changed(after=0), self._ready_timeout)

    async def aclose(self) -> None:
        """Stop reloading; ``current`` keeps the last good configuration."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._events.aclose()

    async def __aenter__(self) -> LiveConfig[T]:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
