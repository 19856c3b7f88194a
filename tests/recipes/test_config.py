"""Config hot-reload against the dev agent: snapshots, rejection, debounce, LiveConfig."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import pytest

from consul_streams import Consul, ConsulError, PermissionDenied
from consul_streams.exceptions import InvalidArgument
from consul_streams.recipes import (
    ConfigEvent,
    ConfigRejected,
    ConfigSnapshot,
    LiveConfig,
    config_events,
)
from consul_streams.testing import DevAgent
from consul_streams.watch import Backoff

PREFIX = "app/"


@dataclass(frozen=True)
class DB:
    host: str
    port: int


def parse(doc: dict[str, Any]) -> DB:
    return DB(host=str(doc["db"]["host"]), port=int(doc["db"]["port"]))


async def next_event(events: AsyncGenerator[ConfigEvent[Any], None]) -> ConfigEvent[Any]:
    return await asyncio.wait_for(anext(events), 5)


async def seed(client: Consul) -> None:
    await client.kv.put("app/db/host", "db1")
    await client.kv.put("app/db/port", "5432")


async def test_prefix_becomes_one_nested_read_only_snapshot(client: Consul) -> None:
    await seed(client)
    async with aclosing(config_events(client, PREFIX, debounce=None)) as events:
        snap = await next_event(events)
        assert isinstance(snap, ConfigSnapshot)
        assert snap.document == {"db": {"host": "db1", "port": "5432"}}
        assert snap.value is snap.document
        assert snap.version == 1
        with pytest.raises(TypeError):
            snap.document["db"]["host"] = "x"


async def test_one_key_holding_a_document(client: Consul) -> None:
    await client.kv.put("app.yaml", "db:\n  host: h\n  port: 1\n")
    async with aclosing(config_events(client, key="app.yaml", validate=parse, debounce=None)) as ev:
        snap = await next_event(ev)
        assert isinstance(snap, ConfigSnapshot)
        assert snap.value == DB("h", 1)
        await client.kv.put("app.yaml", "db:\n  host: h2\n  port: 2\n")
        snap2 = await next_event(ev)
        assert isinstance(snap2, ConfigSnapshot)
        assert snap2.value == DB("h2", 2)
        assert snap2.version == 2


async def test_invalid_value_is_rejected_and_last_good_kept(
    client: Consul, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(client)
    async with aclosing(config_events(client, PREFIX, validate=parse, debounce=None)) as events:
        good = await next_event(events)
        assert isinstance(good, ConfigSnapshot)
        with caplog.at_level(logging.WARNING, logger="consul_streams.recipes.config"):
            await client.kv.put("app/db/port", "many")
            bad = await next_event(events)
        assert isinstance(bad, ConfigRejected)
        assert bad.current is good
        assert "invalid literal for int" in str(bad.error)
        assert "config rejected" in caplog.text
        await client.kv.put("app/db/port", "6543")
        fixed = await next_event(events)
        assert isinstance(fixed, ConfigSnapshot)
        assert fixed.value == DB("db1", 6543)
        assert fixed.version == 2


async def test_undecodable_document_is_rejected_naming_the_key(client: Consul) -> None:
    await client.kv.put("cfg.json", '{"a": 1}')
    async with aclosing(config_events(client, key="cfg.json", debounce=None)) as events:
        assert isinstance(await next_event(events), ConfigSnapshot)
        await client.kv.put("cfg.json", '{"a": ')
        bad = await next_event(events)
        assert isinstance(bad, ConfigRejected)
        assert bad.error.key == "cfg.json"
        assert bad.current is not None
        assert bad.current.document == {"a": 1}


async def test_missing_document_key_is_rejected(client: Consul) -> None:
    async with aclosing(config_events(client, key="absent.json", debounce=None)) as events:
        bad = await next_event(events)
        assert isinstance(bad, ConfigRejected)
        assert bad.current is None
        assert "does not exist" in str(bad.error)


async def test_burst_of_writes_reloads_once(client: Consul) -> None:
    await seed(client)
    async with aclosing(config_events(client, PREFIX, debounce=0.3)) as events:
        first = await next_event(events)
        assert isinstance(first, ConfigSnapshot)
        for i in range(5):
            await client.kv.put(f"app/flags/f{i}", str(i))
        await client.kv.put("app/db/host", "db2")
        second = await next_event(events)
        assert isinstance(second, ConfigSnapshot)
        assert second.version == 2  # one reload for the whole burst
        assert second.document["flags"] == {f"f{i}": str(i) for i in range(5)}
        assert second.document["db"]["host"] == "db2"


async def test_bad_arguments_fail_at_call_time(client: Consul) -> None:
    with pytest.raises(InvalidArgument, match="prefix/key"):
        config_events(client)
    with pytest.raises(InvalidArgument, match="prefix/key"):
        config_events(client, "a/", key="b")
    with pytest.raises(InvalidArgument, match="format"):
        config_events(client, "a/", format="ini")
    with pytest.raises(InvalidArgument, match="debounce"):
        config_events(client, "a/", debounce=-1)
    with pytest.raises(InvalidArgument, match="validate"):
        config_events(client, "a/", validate=3)


async def test_live_config_holds_current_and_notifies(client: Consul) -> None:
    await seed(client)
    changes: list[ConfigSnapshot[DB]] = []
    errors: list[ConfigRejected] = []
    async with LiveConfig[DB](client, PREFIX, validate=parse, debounce=None) as config:
        assert config.value == DB("db1", 5432)
        config.on_change(changes.append)
        config.on_error(errors.append)

        await client.kv.put("app/db/port", "oops")
        rejected = asyncio.get_running_loop().create_future()
        config.on_error(rejected.set_result)
        await asyncio.wait_for(rejected, 5)
        assert config.value == DB("db1", 5432)  # last good stays
        assert config.last_error is not None

        waiter = asyncio.create_task(config.changed())
        await client.kv.put("app/db/port", "1")
        snap = await asyncio.wait_for(waiter, 5)
        assert snap.value == DB("db1", 1)
        assert config.current is snap
    assert [c.value for c in changes] == [DB("db1", 1)]
    assert len(errors) == 1


async def test_live_config_iterates_snapshots_from_current(client: Consul) -> None:
    await seed(client)
    async with LiveConfig[Any](client, PREFIX, debounce=None) as config:
        seen: list[int] = []
        async with aclosing(config.__aiter__()) as snapshots:
            async for snap in snapshots:
                seen.append(snap.version)
                if snap.version == 1:
                    await client.kv.put("app/x", "1")
                else:
                    break
        assert seen == [1, 2]


async def test_live_config_ready_timeout(client: Consul) -> None:
    config = LiveConfig[Any](client, key="absent.json", ready_timeout=0.1, debounce=None)
    with pytest.raises(asyncio.TimeoutError):
        await config.__aenter__()
    with pytest.raises(LookupError):
        config.current  # noqa: B018


async def test_async_callbacks_run_and_unsubscribe_stops_them(client: Consul) -> None:
    await seed(client)
    seen: list[int] = []
    delivered = asyncio.Event()

    async def on_change(snapshot: ConfigSnapshot[Any]) -> None:
        seen.append(snapshot.version)
        delivered.set()

    async with LiveConfig[Any](client, PREFIX, debounce=None) as config:
        unsubscribe = config.on_change(on_change)
        await client.kv.put("app/x", "1")
        await asyncio.wait_for(delivered.wait(), 5)
        unsubscribe()
        await client.kv.put("app/x", "2")
        third = await asyncio.wait_for(config.changed(after=2), 5)
        assert third.version == 3
    assert seen == [2]


async def test_failing_callback_is_logged_and_reloading_goes_on(
    client: Consul, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(client)

    def broken(snapshot: ConfigSnapshot[Any]) -> None:
        raise RuntimeError("boom")

    async with LiveConfig[Any](client, PREFIX, debounce=None) as config:
        config.on_change(broken)
        await client.kv.put("app/x", "1")
        snap = await asyncio.wait_for(config.changed(after=1), 5)
        await client.kv.put("app/x", "2")
        later = await asyncio.wait_for(config.changed(after=snap.version), 5)
        assert later.document["x"] == "2"
    assert "config callback" in caplog.text
    assert "boom" in caplog.text


class _Ceiling(random.Random):
    """Jitter at the top of the range, remembering each backoff ceiling it was asked for."""

    def __init__(self) -> None:
        super().__init__(0)
        self.ceilings: list[float] = []

    def uniform(self, a: float, b: float) -> float:
        self.ceilings.append(b)
        return b


async def test_retry_backoff_rng_wait_out_a_token_not_yet_valid() -> None:
    """A 403 of a token not replicated yet is retried with the given backoff, then loads."""
    agent = DevAgent(jitter=False, acl_default_policy="deny", management_token="root")
    async with agent, Consul(agent.url, token="app", environ={}) as app:
        agent.add_token("app")
        async with Consul(agent.url, token="root", environ={}) as admin:
            await seed(admin)
        rule = agent.faults.reject_token("app")
        denied = asyncio.Event()

        def retry(exc: ConsulError) -> bool:
            if isinstance(exc, PermissionDenied):
                denied.set()
                return True
            return exc.retriable

        rng = _Ceiling()
        config = LiveConfig[DB](
            app,
            PREFIX,
            validate=parse,
            debounce=None,
            retry=retry,
            backoff=Backoff(base=0.01, cap=0.04),
            rng=rng,
        )
        start = asyncio.create_task(config.start())
        try:
            await asyncio.wait_for(denied.wait(), 5)
            assert not start.done()
            rule.cancel()
            await asyncio.wait_for(start, 5)
            assert config.value == DB("db1", 5432)
            assert rule.hits >= 1
            assert rng.ceilings
            assert set(rng.ceilings) <= {0.01, 0.02, 0.04}
        finally:
            start.cancel()
            await config.aclose()


async def test_default_policy_ends_the_config_stream_on_403() -> None:
    """Without a retry policy, a rejected token raises out of the stream, token unsaid."""
    agent = DevAgent(jitter=False, acl_default_policy="deny", management_token="root")
    async with agent, Consul(agent.url, token="app-s3cret", environ={}) as app:
        agent.add_token("app-s3cret")
        agent.faults.reject_token("app-s3cret")
        async with aclosing(config_events(app, PREFIX, debounce=None)) as events:
            with pytest.raises(PermissionDenied) as info:
                await next_event(events)
        assert "app-s3cret" not in str(info.value)
        assert len([r for r in agent.requests if r.path == "/v1/kv/app/"]) == 1


async def test_watch_options_are_checked_at_call_time(client: Consul) -> None:
    with pytest.raises(InvalidArgument, match=r"^retry: "):
        config_events(client, "a/", retry=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"^backoff: "):
        LiveConfig[Any](client, "a/", backoff=0.5)
    with pytest.raises(InvalidArgument, match=r"^rng: "):
        config_events(client, "a/", rng=random)  # type: ignore[arg-type]


async def test_a_rejected_first_config_does_not_block_start_forever(client: Consul) -> None:
    """The default ready timeout is finite: a start that never sees a good config ends."""
    import inspect

    from consul_streams.recipes.config import DEFAULT_READY_TIMEOUT

    default = inspect.signature(LiveConfig).parameters["ready_timeout"].default
    assert default == DEFAULT_READY_TIMEOUT == 30.0
    await client.kv.put("bad.json", b"{not json")
    config = LiveConfig[Any](client, key="bad.json", ready_timeout=0.2, debounce=None)
    with pytest.raises(asyncio.TimeoutError):  # TimeoutError itself from 3.11 on
        await config.__aenter__()
    assert config.last_error is not None  # says why it never became ready
