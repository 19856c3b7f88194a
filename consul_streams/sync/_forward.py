"""The one forwarding mechanism: an async endpoint method, called from any thread, blocking.

``get = forward(KV.get)`` in a sync endpoint class makes ``client.kv.get(...)`` take exactly
the async method's arguments (its signature is copied, so ``inspect`` and IDEs see it) and
return, blocking:

- for a read (the async method returns a :class:`~consul_streams.Query`): the awaited
  ``(value, meta)``, as a :class:`Reply` that also keeps the query for :func:`watch`;
- for a write (a coroutine function): what the coroutine returns;
- for a plain helper: its result, unchanged.

The overloads of :func:`forward` give ``mypy`` those types from the async method's own
annotations, so no sync signature is written by hand.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from consul_streams._query import Query
from consul_streams.typing import Meta

if TYPE_CHECKING:
    from consul_streams.sync._base import SyncClient

__all__ = ["Reply", "SyncEndpoint", "forward"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


class Reply(tuple[T, Meta]):
    """The ``(value, meta)`` of one read: ``entry, meta = client.kv.get(key)``.

    It also remembers the read (:attr:`query`) and the client that made it, so that
    ``watch(client.kv.items("app/"), callback)`` can re-issue it as a blocking query.
    """

    query: Query[T]
    client: SyncClient

    def __new__(cls, value: T, meta: Meta, query: Query[T], client: SyncClient) -> Reply[T]:
        self = super().__new__(cls, (value, meta))
        self.query = query
        self.client = client
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled or copied, a reply is the plain (value, meta): a client does not travel.
        return (tuple, (tuple(self),))

    @property
    def value(self) -> T:
        return self[0]

    @property
    def meta(self) -> Meta:
        return self[1]


class SyncEndpoint:
    """Base of the sync endpoint classes: names the async endpoint they forward to.

    The async endpoint is looked up on every call (``client.<name>`` of the client's current
    async client), so that a client that forked reaches the fresh one of the child.
    """

    #: the attribute of :class:`consul_streams.Consul` this class mirrors (``"kv"``, ...).
    name: str = ""

    def __init__(self, client: SyncClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<sync {type(self).__name__}>"


class _Forward(Generic[P, R]):
    """A descriptor: the bound form calls the async method through the client's loop."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self.method = method
        self.is_coroutine = inspect.iscoroutinefunction(method)
        signature = inspect.signature(method)
        params = list(signature.parameters.values())[1:]  # without self
        self.signature = signature.replace(parameters=params)
        functools.update_wrapper(self, method)  # type: ignore[arg-type]

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.attribute = name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Forward[P, R]: ...

    @overload
    def __get__(self, obj: SyncEndpoint, owner: type[Any]) -> Callable[P, R]: ...

    def __get__(self, obj: SyncEndpoint | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        forward = self

        @functools.wraps(self.method)
        def call(*args: Any, **kwargs: Any) -> Any:
            return forward.invoke(obj, args, kwargs)

        call.__signature__ = self.signature  # type: ignore[attr-defined]
        return call

    def invoke(self, endpoint: SyncEndpoint, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        client = endpoint._client
        engine = client._engine()
        target = getattr(engine.client, endpoint.name)
        if self.is_coroutine:
            return engine.loop.run(self.method(target, *args, **kwargs))
        # Reads build their Query here, in the caller's thread: bad arguments raise at once.
        result = self.method(target, *args, **kwargs)
        if isinstance(result, Query):
            value, meta = engine.loop.run(_await(result))
            return Reply(value, meta, result, client)
        return result


async def _await(query: Query[T]) -> tuple[T, Meta]:
    return await query


@overload
def forward(method: Callable[Concatenate[Any, P], Query[T]]) -> _Forward[P, Reply[T]]: ...


@overload
def forward(method: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]) -> _Forward[P, R]: ...


@overload
def forward(method: Callable[Concatenate[Any, P], R]) -> _Forward[P, R]: ...


def forward(method: Callable[..., Any]) -> _Forward[Any, Any]:
    """The blocking twin of an async endpoint method (see the module docstring)."""
    return _Forward(method)
