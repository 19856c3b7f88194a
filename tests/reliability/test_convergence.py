"""Randomised convergence: watchers always end on the server's state, whatever happened.

A hypothesis state machine interleaves KV writes and deletes, sessions holding keys (destroyed
or left to expire), and faults (bursts of 500/429/503, dropped connections, restarts keeping
state) while four watchers follow the data: a key, a prefix, the prefix through
``ops.match`` and the prefix through ``ops.debounce``. A ``settle`` step (at random points
and always at the end) waits, with a timeout and never a sleep, until every watcher's last
emitted state equals the server's.

One dev agent and one event loop serve every example of a run; each example starts from an
empty ``k/`` prefix, no sessions and no faults.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from consul_streams import ConnectError, Consul, KVEntry, ServerError, ops
from consul_streams.testing import DevAgent
from consul_streams.watch import watch

from ._harness import BACKOFF, RATE, MaxJitter, Tracker

T = TypeVar("T")

KEYS = ("k/a", "k/b", "k/c", "k/a/x")
VALUES = ("", "1", "2", "x" * 40)
MATCH = re.compile(r"^k/[ab]$")
#: Far below the blocking wait: a watcher must catch up because the change woke it, not
#: because its blocking query timed out and re-read.
SETTLE = 3.0
WAIT = 60.0


class Env:
    """The loop, agent and clients shared by every example of one test run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.agent = DevAgent(jitter=False, time_scale=0.01)
        self.loop.run_until_complete(self.agent.start())
        self.client = self.run(self._client())
        self.writer = self.run(self._client())
        self.examples = 0

    async def _client(self) -> Consul:
        return Consul(self.agent.url, environ={})

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        async def close() -> None:
            await self.client.aclose()
            await self.writer.aclose()
            self.agent.faults.clear()
            await self.agent.stop()
            self.agent.store.cancel_timers()

        try:
            self.run(close())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()


async def _iterate(stream: Any) -> AsyncIterator[Any]:
    async with stream.stream() as items:
        async for item in items:
            yield item


async def _write(action: Callable[[], Awaitable[T]]) -> T:
    """A write by the test itself; retried when a restart cut its pooled connection."""
    for _ in range(3):
        try:
            return await action()
        except ConnectError:
            continue
    return await action()


def _key_state(items: list[KVEntry]) -> KVEntry | None:
    return next((e for e in items if e["Key"] == "k/a"), None)


def _matched(items: list[KVEntry]) -> list[KVEntry]:
    return [e for e in items if MATCH.search(e["Key"])]


def _watchers(client: Consul) -> dict[str, tuple[Any, Callable[[list[KVEntry]], Any]]]:
    """name -> (stream, how the server's ``k/`` listing maps to that watcher's state)."""

    def make(query: Any) -> Any:
        return watch(
            query, wait=WAIT, rate_limit=RATE, backoff=BACKOFF, rng=MaxJitter(), share=False
        )

    prefix = client.kv.items("k/")
    return {
        "key": (make(client.kv.get("k/a")), _key_state),
        "prefix": (make(prefix), list),
        "match": (make(prefix) | ops.match(MATCH), _matched),
        "debounce": (make(prefix) | ops.debounce(0.01), list),
    }


def _last_value(_state: Any, item: Any) -> Any:
    value, _meta = item
    return value


def machine_for(env: Env) -> type[RuleBasedStateMachine]:
    """The state machine class bound to ``env``."""

    class Convergence(RuleBasedStateMachine):
        sessions = Bundle("sessions")

        def __init__(self) -> None:
            super().__init__()
            self.trackers: dict[str, tuple[Tracker[Any], Callable[[list[KVEntry]], Any]]] = {}
            env.examples += 1
            env.run(self._start())

        async def _start(self) -> None:
            for name, (stream, expect) in _watchers(env.client).items():
                self.trackers[name] = (Tracker(_iterate(stream), _last_value), expect)
            for tracker, _ in self.trackers.values():
                await tracker.until(lambda _, t=tracker: t.items > 0, SETTLE)  # type: ignore[misc]

        # -- data --------------------------------------------------------------------------

        @rule(key=st.sampled_from(KEYS), value=st.sampled_from(VALUES))
        def put(self, key: str, value: str) -> None:
            env.run(_write(lambda: env.writer.kv.put(key, value)))

        @rule(key=st.sampled_from(KEYS))
        def delete(self, key: str) -> None:
            env.run(_write(lambda: env.writer.kv.delete(key)))

        @rule()
        def delete_tree(self) -> None:
            env.run(_write(lambda: env.writer.kv.delete("k/", recurse=True)))

        @rule(target=sessions, behavior=st.sampled_from(["release", "delete"]), ttl=st.booleans())
        def create_session(self, behavior: str, ttl: bool) -> str:
            # With time_scale=0.01 a 10 s TTL expires on its own within a fraction of a second.
            return env.run(
                _write(
                    lambda: env.writer.session.create(
                        behavior=behavior, lock_delay=0, ttl="10s" if ttl else None
                    )
                )
            )

        @rule(session=sessions, key=st.sampled_from(KEYS), value=st.sampled_from(VALUES))
        def acquire(self, session: str, key: str, value: str) -> None:
            # False when held by another session; a TTL session may have expired already,
            # which Consul answers with 500 "invalid session".
            try:
                env.run(_write(lambda: env.writer.kv.acquire(key, session, value)))
            except ServerError as exc:
                if "invalid session" not in str(exc):
                    raise

        @rule(session=consumes(sessions))
        def destroy_session(self, session: str) -> None:
            env.run(_write(lambda: env.writer.session.destroy(session)))

        # -- faults ------------------------------------------------------------------------

        @rule(n=st.integers(1, 3), status=st.sampled_from([500, 429, 503]))
        def fail_reads(self, n: int, status: int) -> None:
            env.agent.faults.fail_next(n, status=status, path="/v1/kv/", method="GET")

        @rule(n=st.integers(1, 2))
        def drop_reads(self, n: int) -> None:
            env.agent.faults.drop_connection(n, path="/v1/kv/", method="GET")

        @rule()
        def restart(self) -> None:
            env.run(env.agent.restart(keep_state=True))

        # -- convergence -------------------------------------------------------------------

        @rule()
        def settle(self) -> None:
            """Faults end; every watcher reaches the server's state."""
            env.agent.faults.clear()
            env.run(self._settle())

        async def _settle(self) -> None:
            for _ in range(5):
                items = await self._server()
                stuck = await self._reach(items)
                # A session TTL may have expired meanwhile: then the target moved; go again.
                if await self._server() != items:
                    continue
                if stuck is not None:
                    pytest.fail(stuck)
                return
            pytest.fail("the server's state kept changing while settling")

        async def _server(self) -> list[KVEntry]:
            return (await _write(lambda: env.client.kv.items("k/")))[0]

        async def _reach(self, items: list[KVEntry]) -> str | None:
            """Wait for every watcher to show ``items``; what is stuck, if one is."""
            for name, (tracker, expect) in self.trackers.items():
                wanted = expect(items)
                try:
                    await tracker.until(lambda state, w=wanted: state == w, SETTLE)  # type: ignore[misc]
                except asyncio.TimeoutError:
                    return f"{name} stuck at {tracker.state!r}, server has {wanted!r}"
                assert tracker.error is None, f"{name} ended: {tracker.error!r}"
            return None

        @invariant()
        def watchers_alive(self) -> None:
            for name, (tracker, _) in self.trackers.items():
                assert not tracker.done, f"{name} ended: {tracker.error!r}"

        def teardown(self) -> None:
            try:
                self.settle()
            finally:
                env.run(self._reset())

        async def _reset(self) -> None:
            for tracker, _ in self.trackers.values():
                await tracker.aclose()
            env.agent.faults.clear()
            await _write(lambda: env.writer.kv.delete("k/", recurse=True))
            for session in (await _write(lambda: env.writer.session.list()))[0]:
                await _write(partial(env.writer.session.destroy, session["ID"]))

    return Convergence


def _run(examples: int, steps: int) -> None:
    env = Env()
    try:
        run_state_machine_as_test(
            machine_for(env),
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
        assert env.examples >= examples
    finally:
        env.close()


def test_watchers_converge_to_server_state() -> None:
    """200 random histories: every watcher ends on the server's state."""
    _run(examples=200, steps=10)


@pytest.mark.slow
def test_watchers_converge_to_server_state_long() -> None:
    """The same, with more and longer histories."""
    _run(examples=1000, steps=25)
