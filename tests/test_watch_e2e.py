"""watch() end to end: the real client over HTTP against the embedded dev agent.

Covers the watch-client scenario vectors 77-80 of the Consul API notes, event and hash
watches, sharing, the connection budget, clean cancellation, and a hypothesis test that the
last emitted state of a prefix watch converges to the server's final state.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import warnings
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_watch_helpers import asking

from consul_streams._client import Consul
from consul_streams._query import Query
from consul_streams.exceptions import PermissionDenied
from consul_streams.testing import DevAgent
from consul_streams.typing import KVEntry
from consul_streams.watch import Backoff, RateLimit, WatchStream, watch

T = 5.0
BACKOFF = Backoff(base=0.01, cap=0.05)
Q = TypeVar("Q")


def fw(query: Query[Q], **kw: Any) -> WatchStream[Q]:
    """A watch without rate limit and with short backoffs (tests run in real time here)."""
    kw.setdefault("rate_limit", None)
    kw.setdefault("backoff", BACKOFF)
    return watch(query, **kw)


def val(entry: KVEntry | None) -> bytes:
    assert entry is not None
    return entry["Value"]


async def nxt(it: Any) -> Any:
    return await asyncio.wait_for(it.__anext__(), T)


async def within(aw: Any) -> Any:
    return await asyncio.wait_for(aw, T)


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[DevAgent]:
    async with DevAgent(jitter=False) as a:
        yield a


@pytest_asyncio.fixture
async def client(agent: DevAgent) -> AsyncIterator[Consul]:
    async with Consul(agent.url, environ={}) as c:
        yield c


def gets(agent: DevAgent, path: str) -> list[dict[str, str]]:
    return [dict(r.query) for r in agent.requests if r.method == "GET" and r.path == path]


async def test_vector_77_missing_key_emits_none_once_then_blocks(
    agent: DevAgent, client: Consul, poll_mode: str
) -> None:
    async with fw(client.kv.get("missing")) as s:
        value, meta = await nxt(s)
        assert value is None
        assert meta.index >= 1
        pending = asking(s, T)
        await within(agent.wait_blocked(1))
        await client.kv.put("other", "x")  # an unrelated write does not emit a second None
        await client.kv.put("missing", "now")
        value, _ = await within(pending)
        assert value is not None
        assert value["Value"] == b"now"
        assert s.stats.emits == 2


async def test_vector_78_identical_put_does_not_emit(
    agent: DevAgent, client: Consul, poll_mode: str
) -> None:
    await client.kv.put("a", "x")
    async with fw(client.kv.get("a")) as s:
        assert val((await nxt(s))[0]) == b"x"
        pending = asking(s, T)
        await within(agent.wait_blocked(1))
        await client.kv.put("a", "x")
        await client.kv.put("a", "y")
        assert val((await within(pending))[0]) == b"y"
        assert s.stats.emits == 2


async def test_vector_79_timeout_emits_nothing_and_reuses_the_index(
    agent: DevAgent, client: Consul
) -> None:
    await client.kv.put("a", "x")
    q = client.kv.get("a")
    # A heartbeat consumer of the same (shared) poll observes the unchanged timeouts.
    async with (
        fw(q, wait="100ms") as s,
        fw(q, wait="100ms", heartbeat=True) as hb,
    ):
        _, meta = await nxt(s)
        await nxt(hb)
        for _ in range(2):
            await nxt(hb)  # a blocking read timed out unchanged
        await client.kv.put("a", "y")
        assert val((await nxt(s))[0]) == b"y"  # nothing was emitted for the timeouts
        assert s.stats.emits == 2
        assert s.stats.unchanged >= 2
    blocking = [q for q in gets(agent, "/v1/kv/a") if "index" in q]
    assert [q["index"] for q in blocking[:3]] == [str(meta.index)] * 3
    assert blocking[0]["wait"] == "100ms"


async def test_vector_80_index_going_back_resets_and_rereads(
    agent: DevAgent, client: Consul
) -> None:
    await client.kv.put("a", "x")
    await client.kv.put("b", "x")
    q = client.kv.get("b")
    async with fw(q) as s, fw(q, heartbeat=True) as hb:
        _, meta = await nxt(s)
        await nxt(hb)
        await within(agent.wait_blocked(1))
        before = len(gets(agent, "/v1/kv/b"))
        agent.restore_snapshot(index_offset=-(meta.index - 1))  # same data, lower indexes
        _, woke = await nxt(hb)  # the blocked read returns the lower index
        assert woke.index < meta.index
        await nxt(hb)  # the non-blocking re-read
        reads = gets(agent, "/v1/kv/b")
        assert "index" in reads[before - 1]
        assert "index" not in reads[before]
        assert s.stats.index_resets == 1
        # The restored entry differs (its ModifyIndex moved back): delivered once.
        entry, _ = await nxt(s)
        assert entry["Value"] == b"x"
        assert entry["ModifyIndex"] < meta.index
        await client.kv.put("b", "changed")
        assert val((await nxt(s))[0]) == b"changed"
        assert s.stats.emits == 3


async def test_vector_80_agent_restart_empty_delivers_the_new_state(
    agent: DevAgent, client: Consul, poll_mode: str
) -> None:
    await client.kv.put("a", "x")
    async with fw(client.kv.get("a")) as s:
        assert val((await nxt(s))[0]) == b"x"
        pending = asking(s, T)
        await within(agent.wait_blocked(1))
        await agent.restart(keep_state=False)  # connection cut, then all indexes start over
        value, meta = await within(pending)
        assert value is None
        assert meta.index >= 1
        assert s.stats.retries >= 1
    reads = gets(agent, "/v1/kv/a")
    assert "index" not in reads[-2] or "index" not in reads[-1]


async def test_event_watch_emits_only_new_events(
    agent: DevAgent, client: Consul, poll_mode: str
) -> None:
    old = await client.event.fire("deploy", b"old")
    async with fw(client.event.items("deploy")) as s:
        assert (await nxt(s))[0] == []  # subscribed; the old event is not delivered
        pending = asking(s, T)
        await within(agent.wait_blocked(1))
        new = await client.event.fire("deploy", b"new")
        events, _ = await within(pending)
        assert [e["ID"] for e in events] == [new["ID"]]
        assert old["ID"] != new["ID"]


async def test_hash_watch_on_an_agent_service(
    agent: DevAgent, client: Consul, poll_mode: str
) -> None:
    await client.agent.service_register("web", tags=["a"])
    async with fw(client.agent.service("web")) as s:
        service, meta = await nxt(s)
        assert service["Tags"] == ["a"]
        assert meta.content_hash
        pending = asking(s, T)
        await within(agent.wait_blocked(1))
        await client.agent.service_register("web", tags=["b"])
        assert (await within(pending))[0]["Tags"] == ["b"]
    assert gets(agent, "/v1/agent/service/web")[1]["hash"] == meta.content_hash


async def test_identical_watches_share_one_long_poll(agent: DevAgent, client: Consul) -> None:
    await client.kv.put("a", "x")
    async with fw(client.kv.get("a")) as s1, fw(client.kv.get("a")) as s2:
        await nxt(s1)
        await nxt(s2)
        await within(agent.wait_blocked(1))
        await client.kv.put("a", "y")
        assert val((await nxt(s1))[0]) == b"y"
        assert val((await nxt(s2))[0]) == b"y"
    assert len(gets(agent, "/v1/kv/a")) <= 3  # one poll: initial, blocking, blocking


async def test_watches_beyond_max_connections_converge(agent: DevAgent) -> None:
    async with Consul(agent.url, environ={}, max_connections=2) as c:
        for i in range(5):
            await c.kv.put(f"k{i}", str(i))
        streams = [fw(c.kv.get(f"k{i}"), wait="100ms") for i in range(5)]

        async def first(i: int) -> bytes:
            async with streams[i] as s:
                return val((await s.__anext__())[0])

        values = await asyncio.wait_for(asyncio.gather(*(first(i) for i in range(5))), 10)
    assert values == [str(i).encode() for i in range(5)]
    assert agent.peak_connections <= 2


async def test_429_500_and_dropped_connections_are_backpressure_not_the_end(
    agent: DevAgent, client: Consul, poll_mode: str
) -> None:
    await client.kv.put("a", "x")
    agent.faults.fail_next(1, status=429, body="Your IP is issuing too many concurrent connections")
    agent.faults.fail_next(1, status=500, body="rpc error")
    agent.faults.drop_connection(1, path="^/v1/kv/a$")
    async with fw(client.kv.get("a")) as s:
        assert val((await nxt(s))[0]) == b"x"
        # (the transport may itself retry a GET whose connection dropped before any answer)
        assert s.stats.retries >= 2
        assert {"RateLimited", "ServerError"} <= set(s.stats.errors)
        assert s.stats.emits == 1
        pending = asking(s, T)
        await within(agent.wait_blocked(1))
        await client.kv.put("a", "y")
        assert val((await within(pending))[0]) == b"y"


async def test_403_ends_the_watch_with_the_typed_error(agent: DevAgent, client: Consul) -> None:
    agent.faults.fail_next(1, status=403, body="Permission denied", path="^/v1/kv/a$")
    async with fw(client.kv.get("a")) as s:
        with pytest.raises(PermissionDenied, match="Permission denied"):
            await nxt(s)


async def test_breaking_out_leaves_no_task_connection_or_response(
    agent: DevAgent, poll_mode: str
) -> None:
    """A poll task's parked read is aborted by the break; a poll run inline parks none while
    the body runs (it has no task). Either way nothing is left: no task, read or response."""
    asyncio.get_running_loop().set_debug(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with Consul(agent.url, environ={}) as c:
            await c.kv.put("a", "x")
            # Taken after the put: the agent's handler of the client's pooled keep-alive
            # connection is the client's, not the watch's (inline, nothing aborts it).
            before = asyncio.all_tasks()
            async for value, _ in fw(c.kv.get("a")):
                assert val(value) == b"x"
                if poll_mode == "task":
                    await within(agent.wait_blocked(1))
                else:
                    assert c.engine.tasks == 0
                    assert agent.blocked_queries == 0
                break
            await within(agent.wait_unblocked())
            assert c.engine.polls == 0
            await within(_settled(before))
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def _settled(before: set[asyncio.Task[Any]]) -> None:
    me = {asyncio.current_task(), *before}
    while extra := asyncio.all_tasks() - me:
        await asyncio.wait(extra)


KEYS = st.sampled_from(["p/a", "p/b", "p/c"])
OPS = st.lists(st.tuples(KEYS, st.one_of(st.none(), st.binary(max_size=3))), max_size=12)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
async def test_random_writes_converge_to_the_final_state(
    ops: list[tuple[str, bytes | None]],
) -> None:
    """Whatever the writes and deletes, the watch's last emitted state is the server's."""
    async with DevAgent(jitter=False) as agent, Consul(agent.url, environ={}) as c:
        limit = RateLimit(burst=2, per_second=50.0)
        async with watch(c.kv.items("p/"), rate_limit=limit, backoff=BACKOFF) as s:
            last, _ = await nxt(s)
            emitted = [last]
            for key, value in ops:
                if value is None:
                    await c.kv.delete(key)
                else:
                    await c.kv.put(key, value)
            final, _ = await c.kv.items("p/")
            while last != final:  # a watch that never converges times out here
                last, _ = await nxt(s)
                emitted.append(last)
        assert all(a != b for a, b in itertools.pairwise(emitted))  # no duplicates
