"""Session endpoint: create body, ObjectID arguments, info/renew absence as None."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consul_streams.exceptions import DecodeError, InvalidArgument

from ._mock import Endpoints, Wire

SID = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
SESSION = {
    "ID": SID,
    "Name": "lock",
    "Node": "dev",
    "LockDelay": 15000000000,
    "Behavior": "release",
    "TTL": "",
    "NodeChecks": ["serfHealth"],
    "CreateIndex": 5,
    "ModifyIndex": 5,
}


async def test_create_sends_consul_shaped_body(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/session/create", json_body={"ID": SID})
    sid = await consul.session.create(
        name="lock",
        ttl="15s",
        behavior="delete",
        lock_delay=timedelta(seconds=1),
        node="dev",
        node_checks=[],
        service_checks=["svc-check", {"ID": "other"}],
        dc="dc2",
    )
    assert sid == SID
    call = wire.only()
    assert (call.method, call.query) == ("PUT", [("dc", "dc2")])
    assert call.json() == {
        "Name": "lock",
        "TTL": "15000ms",
        "Behavior": "delete",
        "LockDelay": "1000ms",
        "Node": "dev",
        "NodeChecks": [],
        "ServiceChecks": [{"ID": "svc-check"}, {"ID": "other"}],
    }


async def test_create_with_defaults_sends_empty_object(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/session/create", json_body={"ID": SID})
    assert await consul.session.create() == SID
    assert wire.only().json() == {}


async def test_create_answer_without_id_is_decode_error(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", "/v1/session/create", json_body={"Nope": 1})
    with pytest.raises(DecodeError):
        await consul.session.create()


async def test_destroy_and_renew_accept_object_ids(consul: Endpoints, wire: Wire) -> None:
    wire.reply("PUT", f"/v1/session/destroy/{SID}", json_body=True)
    wire.reply("PUT", f"/v1/session/renew/{SID}", json_body=[SESSION])
    wire.reply("PUT", f"/v1/session/renew/{SID}", status=404, body=f"Session id '{SID}' not found")
    assert await consul.session.destroy({"ID": SID}) is True
    renewed = await consul.session.renew(SESSION)
    assert renewed is not None
    assert renewed["LockDelay"] == 15000000000
    assert await consul.session.renew(SID) is None
    assert {c.method for c in wire.calls} == {"PUT"}


async def test_info_unknown_is_none_and_reads_block_on_index(consul: Endpoints, wire: Wire) -> None:
    wire.reply("GET", f"/v1/session/info/{SID}", json_body=[], headers={"X-Consul-Index": "9"})
    wire.reply("GET", "/v1/session/node/dev", json_body=[SESSION])
    wire.reply("GET", "/v1/session/list", json_body=[SESSION])
    info, meta = await consul.session.info(SID, watch=3)
    assert info is None
    assert meta.index == 9
    assert (await consul.session.node("dev"))[0] == [SESSION]
    assert (await consul.session.list(consistency="stale"))[0] == [SESSION]
    assert [c.query for c in wire.calls] == [[("index", "3")], [], [("stale", "")]]


async def test_rejected_session_arguments(consul: Endpoints, wire: Wire) -> None:
    cases = [
        ("ttl", consul.session.create(ttl="10")),
        ("ttl", consul.session.create(ttl=0)),
        ("ttl", consul.session.create(ttl=timedelta(days=2))),
        ("behavior", consul.session.create(behavior="explode")),
        ("lock_delay", consul.session.create(lock_delay="-1s")),
        ("node_checks", consul.session.create(node_checks="serfHealth")),
        ("service_checks", consul.session.create(service_checks=[{"Name": "x"}])),
        ("session", consul.session.destroy("")),
        ("session", consul.session.renew({"Name": "x"})),
    ]
    for parameter, coro in cases:
        with pytest.raises(InvalidArgument) as info:
            await coro
        assert info.value.parameter == parameter
    with pytest.raises(InvalidArgument, match="session"):
        consul.session.info(None)  # type: ignore[arg-type]
    assert wire.calls == []
