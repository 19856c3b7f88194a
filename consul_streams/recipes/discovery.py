"""Service discovery: one service's healthy instances as a stream, a live picker, and a
catalog-wide subscription to the list of services."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Callable, Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

from consul_streams._diff import diff_keyed, keyed
from consul_streams._health import Health, HealthMonitor
from consul_streams._identity import MAPPING
from consul_streams._parse import parse_duration
from consul_streams._policy import widen
from consul_streams.exceptions import ConsulError, InvalidArgument
from consul_streams.recipes._instances import (
    Instance,
    InstanceDiff,
    NoHealthyInstances,
    Picker,
    Strategy,
    diff_instances,
    instance_from_entry,
)
from consul_streams.typing import Duration
from consul_streams.watch import DEFAULT_BACKOFF, DEFAULT_RATE_LIMIT, Backoff, RateLimit

if TYPE_CHECKING:
    from consul_streams._client import Consul
    from consul_streams._clock import Clock
    from consul_streams._shapes import ServiceEntry
    from consul_streams.watch import WatchStream

__all__ = [
    "ServiceInstances",
    "ServiceUpdate",
    "ServicesUpdate",
    "watch_instances",
    "watch_services",
]


@dataclass(frozen=True)
class ServiceUpdate:
    """The instances of one service after a change, and what changed since the previous."""

    service: str
    instances: tuple[Instance, ...]
    diff: InstanceDiff
    index: int

    @property
    def healthy(self) -> tuple[Instance, ...]:
        """The instances a picker may choose (weight > 0)."""
        return tuple(i for i in self.instances if i.weight > 0)


@dataclass(frozen=True)
class ServicesUpdate:
    """The catalog's services (name -> tags) after a change, and the names added/removed."""

    services: Mapping[str, tuple[str, ...]]
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    index: int = 0


def watch_instances(
    client: Consul,
    service: str,
    *,
    passing: bool = True,
    tag: str | list[str] | None = None,
    node_meta: Mapping[str, str] | None = None,
    near: str | None = None,
    filter: str | None = None,
    wait: Duration = "5m",
    clock: Clock | None = None,
    health: HealthMonitor | None = None,
    rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
    backoff: Backoff = DEFAULT_BACKOFF,
    retry: Callable[[ConsulError], bool] | None = None,
    rng: random.Random | None = None,
) -> AsyncGenerator[ServiceUpdate, None]:
    """Yield the instances of ``service`` first, then after every change of the list.

    ``passing=True`` (default) keeps only instances whose checks all pass; with
    ``passing=False`` warning and critical instances are listed with their ``status`` (a
    picker gives them ``Weights.Warning`` and 0). ``tag``, ``node_meta``, ``near`` and
    ``filter`` go to ``/v1/health/service`` as is. ``health``: a :class:`HealthMonitor`
    kept up to date with the watch's health. ``rate_limit``, ``backoff`` and ``rng`` go to
    ``watch()``; ``retry`` can only add errors to those the policy retries.

    Note: updates where nothing about the instances changed (an index bump) are skipped.
    Failures follow the error policy (docs/contracts.md): retriable ones are retried forever
    (the stream goes quiet, ``health`` says why); the others end the stream with their error.
    """
    if not isinstance(service, str) or not service:
        raise InvalidArgument("service", f"expected a non-empty service name, got {service!r}")
    from consul_streams.watch import watch

    query = client.health.service(
        service, passing=passing, tag=tag, near=near, node_meta=node_meta, filter=filter
    )
    # Built here, not in the generator, so that bad arguments fail at call time.
    stream = watch(
        query,
        wait=wait,
        clock=clock,
        health=health,
        rate_limit=rate_limit,
        backoff=backoff,
        retry=widen(retry),
        rng=rng,
    )
    return _instance_updates(service, stream, sort=near is None)


async def _instance_updates(
    service: str, stream: WatchStream[list[ServiceEntry]], *, sort: bool
) -> AsyncGenerator[ServiceUpdate, None]:
    previous: tuple[Instance, ...] = ()
    first = True
    async with stream.stream() as rounds:
        async for entries, meta in rounds:
            instances = tuple(instance_from_entry(e) for e in entries)
            if sort:
                instances = tuple(sorted(instances, key=lambda i: i.key))
            diff = diff_instances(previous, instances)
            if not first and not diff and instances == previous:
                continue
            first, previous = False, instances
            yield ServiceUpdate(service, instances, diff, meta.index)


def watch_services(
    client: Consul,
    *,
    filter: str | None = None,
    wait: Duration = "5m",
    clock: Clock | None = None,
    health: HealthMonitor | None = None,
) -> AsyncGenerator[ServicesUpdate, None]:
    """Yield the catalog's service names and tags, then every change: one long-poll for the
    whole catalog, however many services there are.

    Use it to follow many services: react to ``added``/``removed``/``changed`` names instead
    of holding one blocking query per service.
    """
    from consul_streams.watch import watch

    kwargs: dict[str, Any] = {"filter": filter} if filter is not None else {}
    query = client.catalog.services(**kwargs)
    return _services_updates(watch(query, wait=wait, clock=clock, health=health))


def keyed_services(services: dict[str, tuple[str, ...]]) -> dict[Hashable, Any]:
    return keyed(MAPPING.items(services), MAPPING)


async def _services_updates(
    stream: WatchStream[dict[str, list[str]]],
) -> AsyncGenerator[ServicesUpdate, None]:
    previous: dict[str, tuple[str, ...]] = {}
    first = True
    async with stream.stream() as rounds:
        async for services, meta in rounds:
            now = {name: tuple(tags or ()) for name, tags in services.items()}
            if not first and now == previous:
                continue
            change = diff_keyed(keyed_services(previous), keyed_services(now), MAPPING)
            update = ServicesUpdate(
                services=MappingProxyType(dict(now)),
                added=tuple(sorted(name for name, _ in change.added)),
                removed=tuple(sorted(name for name, _ in change.removed)),
                changed=tuple(sorted(name for (name, _), _ in change.changed)),
                index=meta.index,
            )
            first, previous = False, now
            yield update


class ServiceInstances:
    """A live, picker-ready view of one service's healthy instances.

    ``async with ServiceInstances(client, "web") as web:`` starts following the service
    (waiting for the first answer, not for a healthy instance); ``web.pick()`` returns an
    instance or raises :class:`NoHealthyInstances`; ``await web.wait_for_instance(timeout)``
    waits for the first healthy one. Filtering arguments as :func:`watch_instances`.

    Health: after a failed read (agent down, a bad answer) ``pick()`` keeps choosing from
    the last good list; :attr:`health` says it is stale, since when and why,
    ``await web.wait_healthy(timeout)`` waits for the list to be followed again and
    ``async for h in web.health_changes()`` follows it.

    Note: an instance that turns critical leaves the picker as soon as the update arrives;
    errors the watch cannot retry (400, 403, 404) end it and are raised by the next
    ``pick``/wait.
    """

    def __init__(
        self,
        client: Consul,
        service: str,
        *,
        strategy: Strategy = "round_robin",
        rng: random.Random | None = None,
        **options: Any,
    ) -> None:
        self.service = service
        self._picker = Picker(service, strategy, rng=rng)
        given = options.pop("health", None)
        self._health = given if given is not None else HealthMonitor(options.get("clock"))
        self._updates = watch_instances(client, service, health=self._health, **options)
        self._latest: ServiceUpdate | None = None
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    @property
    def instances(self) -> tuple[Instance, ...]:
        """Every listed instance (the healthy ones and, with ``passing=False``, the others)."""
        return self._latest.instances if self._latest is not None else ()

    @property
    def healthy(self) -> tuple[Instance, ...]:
        """The instances the picker chooses from."""
        return self._picker.instances

    @property
    def health(self) -> Health:
        """Whether the list is followed: failing since when, the last error, stale or not."""
        return self._health.health

    async def wait_healthy(self, timeout: float | None = None) -> Health:
        """Wait until the list is followed again; raises the error that stopped it."""
        return await self._health.wait_healthy(timeout)

    def health_changes(self) -> AsyncGenerator[Health, None]:
        """The current :class:`Health`, then each change (latest-wins)."""
        return self._health.changes()

    def _check_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    def pick(self) -> Instance:
        """An instance by the strategy; :class:`NoHealthyInstances` when none is healthy."""
        self._check_failed()
        return self._picker.pick()

    async def wait_for_instance(self, timeout: Duration | None = None) -> Instance:
        """Pick once an instance is healthy, waiting at most ``timeout``."""
        timeout_s = None if timeout is None else parse_duration(timeout, "timeout")

        async def wait() -> Instance:
            async with self._changed:
                while not self._picker.instances:
                    self._check_failed()
                    await self._changed.wait()
            return self.pick()

        return await asyncio.wait_for(wait(), timeout_s)

    async def updated(self) -> ServiceUpdate:
        """Wait for the next update of the list."""
        async with self._changed:
            seen = self._latest
            while self._latest is seen:
                self._check_failed()
                await self._changed.wait()
        if self._latest is None:  # unreachable once an update was published
            raise NoHealthyInstances(self.service)
        return self._latest

    async def _run(self) -> None:
        try:
            async for update in self._updates:
                self._picker.update(update.instances)
                self._latest = update
                async with self._changed:
                    self._changed.notify_all()
        except Exception as exc:
            self._failure = exc
            async with self._changed:
                self._changed.notify_all()

    async def __aenter__(self) -> ServiceInstances:
        self._task = asyncio.create_task(self._run(), name=f"ServiceInstances({self.service})")
        try:
            await self.updated()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def aclose(self) -> None:
        """Stop following the service."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._updates.aclose()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
