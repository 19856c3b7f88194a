"""Event endpoint: fire with regex filters and payload bytes, list with EVENT blocking."""

from __future__ import annotations

import base64
import re

import pytest

from consul_streams._query import BlockingMode
from consul_streams._rules import event_id_to_index
from consul_streams.exceptions import DecodeError, InvalidArgument

from ._mock import Endpoints, Wire

EVENT_ID = "b54fe110-7af5-cafc-d1fb-afc8ba432b1c"
FIRED = {
    "ID": EVENT_ID,
    "Name": "deploy",
    "Payload": base64.b64encode(b"abc").decode(),
    "NodeFilter": "",
    "ServiceFilter": "web",
    "TagFilter": "v[0-9]",
    "Version": 1,
    "LTime": 0,
}


async def test_fire_sends_payload_and_regex_patterns(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/event/fire/deploy", json_body=FIRED)
    event = await consul.event.fire(
        "deploy", b"abc", service="web", tag=re.compile("v[0-9]"), node="^n"
    )
    assert event["Payload"] == b"abc"
    assert event["ID"] == EVENT_ID
    call = wire.only()
    assert call.method == "PUT"
    assert call.body == b"abc"
    assert call.query == [("node", "^n"), ("service", "web"), ("tag", "v[0-9]")]


async def test_fire_without_payload_sends_no_body(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/event/fire/ping", json_body={**FIRED, "Payload": None})
    event = await consul.event.fire("ping")
    assert event["Payload"] == b""
    assert wire.only().body == b""
    assert wire.only().raw_body is None  # no body at all, not an empty JSON string


async def test_items_decodes_payloads_and_is_event_mode(consul: Endpoints, wire: Wire) -> None:
    index = event_id_to_index(EVENT_ID)
    wire.reply(
        "GET",
        "/v1/event/list",
        json_body=[{**FIRED, "LTime": 4}, {**FIRED, "Payload": ""}],
        headers={"X-Consul-Index": str(index)},
    )
    query = consul.event.items("deploy", watch=(7, "1s"))
    assert query.mode is BlockingMode.EVENT
    events, meta = await query
    assert [e["Payload"] for e in events] == [b"abc", b""]
    assert meta.index == index
    assert wire.only().query == [("name", "deploy"), ("index", "7"), ("wait", "1000ms")]


def test_items_watch_accepts_the_last_event(consul: Endpoints) -> None:
    assert consul.event.items(watch=FIRED).index == event_id_to_index(EVENT_ID)
    with pytest.raises(InvalidArgument, match=r"watch: .*'not-a-uuid'"):
        consul.event.items(watch={"ID": "not-a-uuid"})


async def test_items_rejects_non_event_elements(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", "/v1/event/list", json_body=[{"Name": "no id"}])
    with pytest.raises(DecodeError):
        await consul.event.items()


async def test_rejected_event_arguments(consul: Endpoints, wire: Wire) -> None:
    cases = [
        ("name", consul.event.fire("")),
        ("name", consul.event.fire("_rexec")),
        ("tag", consul.event.fire("x", tag="t")),
        ("node", consul.event.fire("x", node="(")),
        ("service", consul.event.fire("x", service=3)),  # type: ignore[arg-type]
        ("payload", consul.event.fire("x", 3)),  # type: ignore[arg-type]
    ]
    for parameter, coro in cases:
        with pytest.raises(InvalidArgument) as info:
            await coro
        assert info.value.parameter == parameter
    with pytest.raises(InvalidArgument, match="name"):
        consul.event.items("")
    assert wire.calls == []
