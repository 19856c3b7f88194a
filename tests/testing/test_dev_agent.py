"""DevAgent lifecycle, arguments, state-store core and run_dev."""

from __future__ import annotations

import asyncio
import io
import pkgutil

import aiohttp
import pytest

import consul_streams.testing as testing
from consul_streams.exceptions import InvalidArgument
from consul_streams.testing import DevAgent, routes
from consul_streams.testing._run import serve_dev
from consul_streams.testing.state import StateStore, WatchSet

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


def test_public_names() -> None:
    assert sorted(testing.__all__) == [
        "DevAgent",
        "Fault",
        "FaultProxy",
        "Faults",
        "LoggedRequest",
        "MockTransport",
        "ProxiedConnection",
        "VirtualClock",
        "run_dev",
    ]


def test_every_route_module_is_registered() -> None:
    """A module added under ``testing/routes/`` but not to ``ROUTE_MODULES`` would answer 404."""
    names = {
        info.name for info in pkgutil.iter_modules(routes.__path__) if not info.name.startswith("_")
    }
    assert {module.__name__.rsplit(".", 1)[1] for module in routes.ROUTE_MODULES} == names


async def test_defaults_bind_loopback_and_a_free_port(agent: DevAgent) -> None:
    assert agent.host == "127.0.0.1"
    assert agent.port > 0
    assert agent.url == f"http://127.0.0.1:{agent.port}"
    assert agent.address == f"127.0.0.1:{agent.port}"
    assert "running" in repr(agent)


def test_binding_beyond_loopback_must_be_asked_for() -> None:
    """Loopback by default; another address only when given (nothing is started here)."""
    assert DevAgent().host == "127.0.0.1"
    assert DevAgent(host="0.0.0.0").host == "0.0.0.0"
    assert DevAgent(host="::1").host == "::1"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"host": "example.com"}, "host"),
        ({"host": 127001}, "host"),
        ({"port": -1}, "port"),
        ({"port": "8500"}, "port"),
        ({"acl_default_policy": "maybe"}, "acl_default_policy"),
        ({"time_scale": 0}, "time_scale"),
        ({"max_query_time": -1}, "max_query_time"),
        ({"http_max_conns_per_client": -3}, "http_max_conns_per_client"),
    ],
)
def test_bad_arguments_fail_at_call_time(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        DevAgent(**kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


def test_restore_snapshot_needs_a_negative_offset() -> None:
    with pytest.raises(InvalidArgument, match="index_offset"):
        DevAgent().restore_snapshot(5)


async def test_restart_keeps_port_and_state(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    port = http.agent.port
    await http.agent.restart()
    assert http.agent.port == port
    assert (await http.get("/v1/kv/a?raw")).body == b"x"


async def test_restart_without_state_starts_empty(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    before = (await http.get("/v1/kv/a")).index
    await http.agent.restart(keep_state=False)
    r = await http.get("/v1/kv/a")
    assert r.status == 404
    assert r.index < before  # a fresh server: the client must reset its index


async def test_stop_cuts_blocked_queries(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    idx = (await http.get("/v1/kv/a")).index
    blocked = asyncio.ensure_future(http.get(f"/v1/kv/a?index={idx}&wait=30s"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    await http.agent.stop()
    with pytest.raises(aiohttp.ClientError):
        await asyncio.wait_for(blocked, 5)
    assert http.agent.blocked_queries == 0
    await http.agent.start()


async def test_wait_unblocked_returns_once_the_blocked_query_is_answered(http: Http) -> None:
    await http.put("/v1/kv/a", b"x")
    idx = (await http.get("/v1/kv/a")).index
    blocked = asyncio.ensure_future(http.get(f"/v1/kv/a?index={idx}&wait=30s"))
    await asyncio.wait_for(http.agent.wait_blocked(), 5)
    unblocked = asyncio.ensure_future(http.agent.wait_unblocked())
    await asyncio.sleep(0)
    assert not unblocked.done()  # the query is still parked
    await http.put("/v1/kv/a", b"y")
    await asyncio.wait_for(unblocked, 5)
    assert http.agent.blocked_queries == 0
    assert (await asyncio.wait_for(blocked, 5)).status == 200


async def test_watch_set_wakes_only_on_its_topics() -> None:
    store = StateStore()
    ws = WatchSet(store)
    ws.add(("kv", "a"))
    waiting = asyncio.ensure_future(ws.wait(5))
    await asyncio.wait_for(store.wait_blocked(1), 5)
    store.notify(("kv", "b"))
    assert store.blocked == 1
    store.notify_key("kv", "a")
    assert await asyncio.wait_for(waiting, 5) is True
    assert not ws.abandoned
    assert store.waiting == 0


async def test_prefix_topics_and_abandon() -> None:
    store = StateStore()
    ws = WatchSet(store)
    ws.add_prefix("kv", "app/")
    waiting = asyncio.ensure_future(ws.wait(5))
    await asyncio.wait_for(store.wait_blocked(1), 5)
    store.notify_key("kv", "app/x/y")
    assert await asyncio.wait_for(waiting, 5) is True
    ws2 = WatchSet(store)
    ws2.add(("kv", "z"))
    waiting = asyncio.ensure_future(ws2.wait(5))
    await asyncio.wait_for(store.wait_blocked(1), 5)
    store.notify_all()
    assert await asyncio.wait_for(waiting, 5) is True
    assert ws2.abandoned


async def test_watch_set_times_out_and_cleans_up() -> None:
    store = StateStore()
    ws = WatchSet(store)
    ws.add(("kv", "a"))
    assert await ws.wait(0.01) is False
    assert (store.waiting, store.blocked) == (0, 0)


async def test_timers_run_in_scaled_agent_time() -> None:
    store = StateStore(time_scale=0.001)
    fired = asyncio.get_running_loop().create_future()
    store.call_later(10.0, lambda: fired.set_result(store.now()))
    start = store.now()
    assert await asyncio.wait_for(fired, 1) - start >= 10.0
    cancelled = store.call_later(1.0, lambda: fired.set_result(0.0))
    store.cancel_timers()
    assert cancelled.cancelled()


async def test_ten_thousand_blocked_watchers_are_cheap() -> None:
    store = StateStore()
    sets = [WatchSet(store) for _ in range(10_000)]
    for ws in sets:
        ws.add(("kv", "hot"))
    tasks = [asyncio.ensure_future(ws.wait(30)) for ws in sets]
    await asyncio.wait_for(store.wait_blocked(10_000), 10)
    store.notify_key("kv", "hot")
    assert all(await asyncio.wait_for(asyncio.gather(*tasks), 10))


async def test_serve_dev_prints_address() -> None:
    out = io.StringIO()
    ready: asyncio.Future[DevAgent] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(serve_dev("127.0.0.1", 0, out=out, ready=ready))
    dev = await asyncio.wait_for(ready, 5)
    async with aiohttp.ClientSession() as session, session.get(dev.url + "/v1/status/leader") as r:
        assert r.status == 200
    assert f"CONSUL_HTTP_ADDR={dev.url}" in out.getvalue()
    assert "Consul agent running!" in out.getvalue()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not dev.running


def test_tokens_not_in_config_repr() -> None:
    dev = DevAgent(acl_default_policy="deny", management_token="m4n4g3ment")
    dev.add_token("0th3r")
    assert "m4n4g3ment" not in repr(dev.config)
    assert "0th3r" not in repr(dev.config)
    assert "m4n4g3ment" not in repr(dev)
