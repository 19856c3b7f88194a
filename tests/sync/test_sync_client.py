"""The sync client's lifecycle and thread safety."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from consul_streams import InvalidArgument
from consul_streams.sync import ClientClosed, Consul, LiveConfig, watch
from consul_streams.sync.testing import DevAgentThread

from ._recorder import TIMEOUT, Recorder


def test_no_thread_starts_before_first_use(agent: DevAgentThread) -> None:
    before = set(threading.enumerate())
    client = Consul(agent.address, environ={})
    assert set(threading.enumerate()) == before
    client.close()
    assert set(threading.enumerate()) == before


def test_close_stops_every_thread_and_watch(
    agent: DevAgentThread, no_thread_left: set[threading.Thread]
) -> None:
    client = Consul(agent.address, environ={})
    client.kv.put("c/a", b"1")
    seen = Recorder()
    handle = watch(client.kv.get("c/a"), seen)
    config: LiveConfig[object] = LiveConfig(client, "c/", debounce=None).start()
    config.on_change(Recorder())
    seen.wait_for(lambda calls: len(calls) == 1)
    agent.run(agent.agent.wait_blocked(2))  # both long-polls are in flight
    client.close()
    assert client.closed
    assert handle.done.is_set()
    # The agent sees the long-polls end (without close they would be held for minutes).
    agent.run(asyncio.wait_for(agent.agent.wait_unblocked(0), TIMEOUT))
    client.close()  # idempotent


def test_close_releases_locks_and_destroys_their_sessions(
    agent: DevAgentThread, no_thread_left: set[threading.Thread]
) -> None:
    with Consul(agent.address, environ={}) as client:
        lock = client.lock("c/leader")
        lock.acquire()
        sessions, _ = client.session.list()
        assert len(sessions) == 1
    with Consul(agent.address, environ={}) as other:
        sessions, _ = other.session.list()
        assert sessions == []
        entry, _ = other.kv.get("c/leader")
        assert entry is not None
        assert "Session" not in entry


def test_a_closed_client_refuses_calls(client: Consul) -> None:
    client.close()
    with pytest.raises(ClientClosed):
        client.kv.get("c/a")


def test_any_thread_may_call_the_client(client: Consul) -> None:
    def work(n: int) -> bytes:
        client.kv.put(f"c/t/{n}", str(n))
        entry, _ = client.kv.get(f"c/t/{n}")
        assert entry is not None
        return entry["Value"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(64)))
    assert results == [str(n).encode() for n in range(64)]
    keys, _ = client.kv.keys("c/t/")
    assert len(keys) == 64


def test_a_callback_may_call_the_client(client: Consul) -> None:
    """Callbacks run off the loop thread, so a blocking call inside one does not deadlock."""
    client.kv.put("c/a", b"1")
    copied = threading.Event()

    def copy(entry: object, meta: object) -> None:
        client.kv.put("c/copy", b"copied")
        copied.set()

    with watch(client.kv.get("c/a"), copy):
        assert copied.wait(TIMEOUT)
    entry, _ = client.kv.get("c/copy")
    assert entry is not None
    assert entry["Value"] == b"copied"


def test_a_blocking_call_on_the_loop_thread_is_refused(client: Consul) -> None:
    async def nested() -> None:
        client.kv.get("c/a")

    with pytest.raises(RuntimeError, match="own event loop thread"):
        client.loop.run(nested())


def test_the_repr_never_shows_the_token(agent: DevAgentThread) -> None:
    with Consul(agent.address, token="s3cr3t-token", environ={}) as client:
        assert "s3cr3t" not in repr(client)
        assert "token=set" in repr(client)


def test_the_environment_configures_it_like_the_async_client(agent: DevAgentThread) -> None:
    with Consul(environ={"CONSUL_HTTP_ADDR": agent.address}) as client:
        assert client.address == agent.url
        assert client.kv.put("c/env", b"1") is True


def test_a_session_argument_is_refused() -> None:
    with pytest.raises(InvalidArgument) as info:
        Consul(session=object())
    assert info.value.parameter == "session"
