"""watch() for sync code: callbacks on a thread per watch, in order, latest value wins."""

from __future__ import annotations

import logging
import threading

import pytest

from consul_streams import InvalidArgument, ServerError
from consul_streams.sync import Consul, watch
from consul_streams.sync._dispatch import Dispatcher
from consul_streams.sync.testing import DevAgentThread

from ._recorder import TIMEOUT, Recorder


def test_callback_runs_on_the_watch_thread_never_the_loop_thread(client: Consul) -> None:
    client.kv.put("w/a", b"1")
    seen = Recorder()
    with watch(client.kv.get("w/a"), seen) as handle:
        seen.wait_for(lambda calls: len(calls) == 1)
        thread = seen.threads[0]
        assert thread is handle.callback_thread
        assert thread is not client.loop.thread
        assert thread is not threading.current_thread()


def test_callbacks_follow_changes_in_order(client: Consul) -> None:
    client.kv.put("w/a", b"0")
    seen = Recorder()
    with watch(client.kv.get("w/a"), seen):
        seen.wait_for(lambda calls: len(calls) == 1)
        for n in range(1, 6):
            client.kv.put("w/a", str(n))
            seen.wait_value(str(n).encode())
    values = [int(v) for v in seen.values()]
    assert values == sorted(values)
    assert values[0] == 0
    assert values[-1] == 5


def test_an_exception_in_a_callback_is_logged_and_the_watch_goes_on(
    client: Consul, caplog: pytest.LogCaptureFixture
) -> None:
    def explode_first(entry: object, meta: object) -> None:
        if len(seen.calls) == 1:
            raise RuntimeError("boom in the callback")

    seen = Recorder(explode_first)
    client.kv.put("w/a", b"1")
    with caplog.at_level(logging.ERROR, "consul_streams.sync"), watch(client.kv.get("w/a"), seen):
        seen.wait_for(lambda calls: len(calls) == 1)
        client.kv.put("w/a", b"2")
        seen.wait_value(b"2")
    failures = [r for r in caplog.records if r.exc_info and "boom" in str(r.exc_info[1])]
    assert len(failures) == 1
    assert "the watch goes on" in failures[0].getMessage()


def test_a_slow_callback_delays_only_its_own_watch(client: Consul) -> None:
    gate = threading.Event()
    slow = Recorder(lambda *args: gate.wait(TIMEOUT))
    fast = Recorder()
    client.kv.put("w/slow", b"s0")
    client.kv.put("w/fast", b"f0")
    with watch(client.kv.get("w/slow"), slow), watch(client.kv.get("w/fast"), fast):
        slow.wait_for(lambda calls: len(calls) == 1)  # now blocked inside its callback
        for n in range(1, 4):
            client.kv.put("w/slow", f"s{n}")
            client.kv.put("w/fast", f"f{n}")
            fast.wait_value(f"f{n}".encode())
        assert slow.values() == [b"s0"]  # still in its first call
        gate.set()
        slow.wait_value(b"s3")
    # After the slow call, the watch caught up: never an older value after a newer one.
    assert slow.values() == sorted(slow.values())


def test_pending_updates_coalesce_to_the_latest() -> None:
    """While a callback runs, later posts under one key replace each other."""
    gate = threading.Event()
    seen = Recorder(lambda n: gate.wait(TIMEOUT) if n == 1 else None)
    dispatcher = Dispatcher("test")
    try:
        dispatcher.post("value", seen, 1)
        seen.wait_for(lambda calls: len(calls) == 1)
        for n in (2, 3, 4):
            dispatcher.post("value", seen, n)
        gate.set()
        assert dispatcher.wait_idle(TIMEOUT)
        assert seen.values() == [1, 4]
    finally:
        dispatcher.stop()


def test_no_callback_runs_after_stop_returns(client: Consul) -> None:
    client.kv.put("w/a", b"1")
    seen = Recorder()
    handle = watch(client.kv.get("w/a"), seen)
    seen.wait_for(lambda calls: len(calls) == 1)
    handle.stop()
    assert handle.done.is_set()
    assert not handle.callback_thread.is_alive()
    client.kv.put("w/a", b"2")
    # The poll is gone: a read of the key at the new index is not followed by a callback.
    assert client.kv.get("w/a")[0] is not None
    assert seen.values() == [b"1"]


def test_debounce_collapses_a_burst(client: Consul) -> None:
    client.kv.put("w/a", b"0")
    seen = Recorder()
    with watch(client.kv.get("w/a"), seen, debounce=0.2):
        seen.wait_for(lambda calls: len(calls) == 1)
        for n in range(1, 6):
            client.kv.put("w/a", str(n))
        seen.wait_value(b"5")
    assert seen.values()[-1] == b"5"


def test_an_error_that_ends_the_watch_reaches_on_error(
    agent: DevAgentThread, client: Consul
) -> None:
    errors = Recorder()
    seen = Recorder()
    client.kv.put("w/a", b"1")
    handle = watch(client.kv.get("w/a"), seen, on_error=errors, retry=lambda exc: False)
    seen.wait_for(lambda calls: len(calls) == 1)
    agent.call(lambda: agent.agent.faults.fail_next(1, status=500, path="/v1/kv/w/a", method="GET"))
    client.kv.put("w/a", b"2")  # ends the blocking read; the next one gets the 500
    assert handle.done.wait(TIMEOUT)
    assert isinstance(handle.error, ServerError)
    assert [type(args[0]) for args in errors.calls] == [ServerError]
    handle.stop()


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"debounce": -1}, "debounce"),
        ({"debounce": "1s"}, "debounce"),
        ({"on_error": 3}, "on_error"),
        ({"wait": "forever"}, "wait"),
    ],
)
def test_bad_arguments_name_the_parameter(
    client: Consul, kwargs: dict[str, object], parameter: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        watch(client.kv.get("w/a"), print, **kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


def test_watch_needs_a_sync_read(client: Consul) -> None:
    with pytest.raises(InvalidArgument, match="reply") as info:
        watch(client.aio.kv.get("w/a"), print)  # type: ignore[arg-type]
    assert info.value.parameter == "reply"
