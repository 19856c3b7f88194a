"""Dev agent conformance over raw HTTP: ``/v1/event/*`` (consul-api.md 2.4, vectors 49-54)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from consul_streams._rules import event_id_to_index
from consul_streams.testing import DevAgent

from ._http_helpers import Http, Reply

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest_asyncio.fixture
async def http() -> AsyncIterator[Http]:
    async with DevAgent(jitter=False, node_name="dev") as agent, aiohttp.ClientSession() as session:
        yield Http(agent, session)


async def fire(http: Http, name: str, payload: bytes | None = None, query: str = "") -> Any:
    reply = await http.put(f"/v1/event/fire/{name}{query}", payload)
    assert reply.status == 200, reply.text
    return reply.json()


async def timed(coro: Any) -> tuple[Reply, float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    reply = await coro
    return reply, loop.time() - start


async def test_v49_fire_answers_with_the_event(http: Http) -> None:
    event = await fire(http, "deploy", b"abc")
    assert UUID.fullmatch(event.pop("ID"))
    assert event == {
        "Name": "deploy",
        "Payload": "YWJj",
        "NodeFilter": "",
        "ServiceFilter": "",
        "TagFilter": "",
        "Version": 1,
        "LTime": 0,
    }


async def test_v50_fire_errors(http: Http) -> None:
    missing = await http.put("/v1/event/fire/")
    assert (missing.status, missing.text) == (400, "Missing name")
    tag = await http.put("/v1/event/fire/x?tag=t")
    assert (tag.status, tag.text) == (500, "Cannot provide tag filter without service filter")
    method = await http.get("/v1/event/fire/x")
    assert method.status == 405


async def test_v51_empty_list_has_index_1_and_no_meta_headers(http: Http) -> None:
    reply = await http.get("/v1/event/list")
    assert (reply.status, reply.json(), reply.index) == (200, [], 1)
    assert "X-Consul-Knownleader" not in reply.headers
    assert "X-Consul-Lastcontact" not in reply.headers


async def test_v52_index_is_the_xor_of_the_last_ids_halves(http: Http) -> None:
    event = await fire(http, "deploy", b"x")
    await fire(http, "other")
    reply = await http.get("/v1/event/list?name=deploy")
    events = reply.json()
    assert [e["Name"] for e in events] == ["deploy"]
    assert events[-1]["ID"] == event["ID"]
    assert events[-1]["LTime"] > 0
    assert reply.index == event_id_to_index(event["ID"])
    hi, lo = event["ID"].replace("-", "")[:16], event["ID"].replace("-", "")[16:]
    assert reply.index == int(hi, 16) ^ int(lo, 16)


async def test_v53_blocking_without_jitter_and_early_wake(http: Http) -> None:
    await fire(http, "deploy")
    index = (await http.get("/v1/event/list")).index
    reply, elapsed = await timed(http.get(f"/v1/event/list?index={index}&wait=1s"))
    assert 0.95 <= elapsed < 1.25  # no jitter on this endpoint
    assert reply.index == index
    watch = asyncio.ensure_future(timed(http.get(f"/v1/event/list?index={index}&wait=30s")))
    newer = await fire(http, "deploy")
    reply, elapsed = await asyncio.wait_for(watch, 5)
    assert reply.index == event_id_to_index(newer["ID"])
    assert reply.index != index


async def test_v54_list_skips_consistency_parsing(http: Http) -> None:
    reply = await http.get("/v1/event/list?stale&consistent")
    assert reply.status == 200


async def test_bad_wait_and_index_are_still_400(http: Http) -> None:
    reply = await http.get("/v1/event/list?wait=10")
    assert (reply.status, reply.text) == (400, "Invalid wait time")
    index = await http.get("/v1/event/list?index=-1")
    assert (index.status, index.text) == (400, "Invalid index")


async def test_index_without_wait_defaults_to_max_query_time() -> None:
    async with (
        DevAgent(jitter=False, default_query_time=0.2, max_query_time=1.0) as agent,
        aiohttp.ClientSession() as session,
    ):
        http = Http(agent, session)
        reply, elapsed = await timed(http.get("/v1/event/list?index=1"))
        assert reply.index == 1
        assert elapsed >= 0.95  # the max (1 s), not the default (0.2 s)


async def test_ltime_increases_and_buffer_keeps_256(http: Http) -> None:
    for n in range(260):
        await fire(http, f"e{n}")
    events = (await http.get("/v1/event/list")).json()
    assert len(events) == 256
    assert events[0]["Name"] == "e4"
    assert events[-1]["Name"] == "e259"
    ltimes = [e["LTime"] for e in events]
    assert ltimes == sorted(ltimes)
    assert len(set(ltimes)) == 256


async def test_chunked_body_is_ignored(http: Http) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"abc"  # an async body has no Content-Length: aiohttp sends it chunked

    async with http.session.put(http.agent.url + "/v1/event/fire/c", data=body()) as resp:
        assert resp.status == 200
        assert (await resp.json())["Payload"] is None


async def test_large_payload_is_413(http: Http) -> None:
    reply = await http.put("/v1/event/fire/big", b"x" * 101)
    assert reply.status == 413
    ok = await fire(http, "small", b"x" * 100)
    assert ok["Payload"]


async def test_filters_decide_whether_this_agent_receives_it(http: Http) -> None:
    await fire(http, "other-node", query="?node=^elsewhere$")
    await fire(http, "mine", query="?node=^de")
    await fire(http, "no-service", query="?service=web")
    reg = {"Name": "web", "Tags": ["blue"]}
    assert (await http.put("/v1/agent/service/register", json.dumps(reg))).status == 200
    await fire(http, "web-green", query="?service=web&tag=green")
    event = await fire(http, "web-blue", query="?service=web&tag=bl")
    assert (event["ServiceFilter"], event["TagFilter"]) == ("web", "bl")
    names = [e["Name"] for e in (await http.get("/v1/event/list")).json()]
    assert names == ["mine", "web-blue"]


async def test_invalid_filter_regexes_are_500(http: Http) -> None:
    reply = await http.put("/v1/event/fire/x?node=%5Bunclosed")
    assert reply.status == 500
    assert reply.text.startswith("Invalid node filter: error parsing regexp: ")
    # Every filter is validated, even when the node filter already rules this agent out.
    service = await http.put("/v1/event/fire/x?node=nomatch&service=%28")
    assert service.status == 500
    assert service.text.startswith("Invalid service filter: ")
    assert (await http.get("/v1/event/list")).json() == []
