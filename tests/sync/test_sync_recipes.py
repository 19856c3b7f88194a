"""LiveConfig, ServiceInstances and Lock for sync code."""

from __future__ import annotations

import threading
from types import MappingProxyType
from typing import Any

import pytest

from consul_streams import InvalidArgument
from consul_streams.sync import (
    ConfigSnapshot,
    Consul,
    LiveConfig,
    LockLost,
    NoHealthyInstances,
    ServiceInstances,
)
from consul_streams.sync.testing import DevAgentThread

from ._recorder import TIMEOUT, Recorder


def test_live_config_value_follows_the_keys(client: Consul) -> None:
    client.kv.put("app/greeting", b"hello")
    with LiveConfig[Any](client, "app/", debounce=None, ready_timeout=TIMEOUT) as config:
        assert config.value == {"greeting": "hello"}
        assert isinstance(config.value, MappingProxyType)  # immutable snapshot
        client.kv.put("app/greeting", b"bonjour")
        snapshot = config.changed(TIMEOUT, after=1)
        assert snapshot.value == {"greeting": "bonjour"}
        assert config.value == {"greeting": "bonjour"}
        assert config.current.version == 2
        assert config.health.ok
        assert config.wait_healthy(TIMEOUT).ok


def test_live_config_callbacks_run_on_its_callback_thread(client: Consul) -> None:
    client.kv.put("app/greeting", b'"hello"')
    seen = Recorder()
    errors = Recorder()
    with LiveConfig[Any](
        client, "app/", format="json", debounce=None, ready_timeout=TIMEOUT
    ) as config:
        config.on_change(seen)
        config.on_error(errors)
        client.kv.put("app/greeting", b'"bonjour"')
        seen.wait_for(lambda calls: len(calls) == 1)
        client.kv.put("app/greeting", b"{not json")
        errors.wait_for(lambda calls: len(calls) == 1)
        assert config.last_error is errors.calls[0][0]
        assert config.value == {"greeting": "bonjour"}  # the last good one stays
    snapshot = seen.calls[0][0]
    assert isinstance(snapshot, ConfigSnapshot)
    assert snapshot.value == {"greeting": "bonjour"}
    threads = {*seen.threads, *errors.threads}
    assert len(threads) == 1
    assert threading.current_thread() not in threads
    assert not threads.pop().is_alive()  # ended with the config


def test_an_unsubscribed_callback_is_not_called(client: Consul) -> None:
    client.kv.put("app/n", b"1")
    kept, dropped = Recorder(), Recorder()
    with LiveConfig[Any](client, "app/", debounce=None, ready_timeout=TIMEOUT) as config:
        config.on_change(kept)
        unsubscribe = config.on_change(dropped)
        unsubscribe()
        client.kv.put("app/n", b"2")
        kept.wait_for(lambda calls: len(calls) == 1)
    assert dropped.calls == []


def test_live_config_bad_arguments_fail_at_construction(client: Consul) -> None:
    with pytest.raises(InvalidArgument) as info:
        LiveConfig(client, "app/", debounce=-1)
    assert info.value.parameter == "debounce"


def test_service_instances_pick_and_follow(client: Consul) -> None:
    with ServiceInstances(client, "web") as web:
        with pytest.raises(NoHealthyInstances):
            web.pick()
        client.agent.service_register("web", service_id="web-1", port=8080)
        instance = web.wait_for_instance(timeout=TIMEOUT)
        assert instance.id == "web-1"
        assert web.pick().id == "web-1"
        assert [i.id for i in web.healthy] == ["web-1"]
        assert web.health.ok
        client.agent.service_register("web", service_id="web-2", port=8081)
        healthy = web.wait_until(lambda instances: len(instances) == 2, TIMEOUT)
        assert {i.id for i in healthy} == {"web-1", "web-2"}
        picks = {web.pick().id for _ in range(4)}
        assert picks == {"web-1", "web-2"}


def test_picks_from_many_threads_stay_balanced(client: Consul) -> None:
    """Picks run on the loop thread, so the round robin's state is never torn."""
    client.agent.service_register("web", service_id="web-1", port=8080)
    client.agent.service_register("web", service_id="web-2", port=8081)
    with ServiceInstances(client, "web") as web:
        web.wait_until(lambda instances: len(instances) == 2, TIMEOUT)
        picks: list[str] = []
        guard = threading.Lock()

        def pick_many() -> None:
            for _ in range(50):
                chosen = web.pick().id
                with guard:
                    picks.append(chosen)

        threads = [threading.Thread(target=pick_many) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert picks.count("web-1") == picks.count("web-2") == 100


def test_lock_is_held_inside_with_and_released_after(client: Consul) -> None:
    with client.lock("svc/leader") as lock:
        assert lock.held
        entry, _ = client.kv.get("svc/leader")
        assert entry is not None
        assert entry.get("Session") == lock.session
        assert lock.fencing_token == entry["ModifyIndex"]
        assert lock.health.ok
        lock.check()  # does not raise
    assert not lock.held
    sessions, _ = client.session.list()
    assert sessions == []


def test_a_lost_lock_sets_lost_and_check_raises(client: Consul) -> None:
    lock = client.lock("svc/leader")
    lock.__enter__()
    assert lock.session is not None
    client.session.destroy(lock.session)  # as if the session expired
    assert lock.lost.wait(TIMEOUT)
    with pytest.raises(LockLost) as info:
        lock.check()
    assert info.value.key == "svc/leader"
    assert lock.lost_reason is not None
    # Leaving the block after the loss says so too.
    with pytest.raises(LockLost):
        lock.__exit__(None, None, None)
    assert not lock.held


def test_a_sync_lock_refuses_cancel_on_loss(client: Consul) -> None:
    with pytest.raises(InvalidArgument) as info:
        client.lock("svc/leader", cancel_on_loss=True)
    assert info.value.parameter == "cancel_on_loss"


def test_a_second_holder_waits_for_the_first(agent: DevAgentThread, client: Consul) -> None:
    first = client.lock("svc/leader", lock_delay=0)
    first.acquire()
    acquired = threading.Event()
    with Consul(agent.address, environ={}) as other:
        second = other.lock("svc/leader", lock_delay=0)

        def take() -> None:
            second.acquire(timeout=TIMEOUT)
            acquired.set()

        taker = threading.Thread(target=take)
        taker.start()
        agent.run(agent.agent.wait_blocked(1))  # the second waits on the key
        assert not acquired.is_set()
        first.release()
        taker.join()
        assert acquired.is_set()
        assert second.held
        second.release()
