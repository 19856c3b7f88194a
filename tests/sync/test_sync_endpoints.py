"""Every async endpoint method has a blocking twin with the same signature."""

from __future__ import annotations

import copy
import inspect
import pickle

import pytest

from consul_streams import Consul as AsyncConsul
from consul_streams import InvalidArgument, Meta, Query
from consul_streams.sync import Consul, Reply
from consul_streams.sync._forward import SyncEndpoint

ENDPOINTS = ["kv", "catalog", "health", "agent", "event", "session", "status", "txn"]


def public_methods(cls: type) -> dict[str, object]:
    return {
        name: fn
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_the_sync_client_has_every_endpoint_of_the_async_one() -> None:
    aio = AsyncConsul(environ={})
    endpoint_names = {n for n, v in vars(aio).items() if hasattr(v, "_transport")}
    assert endpoint_names == set(ENDPOINTS)
    client = Consul(environ={})
    try:
        for name in ENDPOINTS:
            assert isinstance(getattr(client, name), SyncEndpoint)
            assert getattr(client, name).name == name
    finally:
        client.close()


@pytest.mark.parametrize("name", ENDPOINTS)
def test_every_public_async_method_has_a_sync_twin_with_its_signature(name: str) -> None:
    async_endpoint = getattr(AsyncConsul(environ={}), name)
    async_cls = type(async_endpoint)
    client = Consul(environ={})
    try:
        endpoint = getattr(client, name)
        sync_methods = {n for n in dir(type(endpoint)) if not n.startswith("_") and n != "name"}
        async_methods = public_methods(async_cls)
        assert sync_methods == set(async_methods), f"{name}: twins differ"
        for method_name, async_fn in async_methods.items():
            expected = inspect.signature(getattr(async_endpoint, method_name))  # bound
            twin = getattr(endpoint, method_name)
            assert inspect.signature(twin) == expected, method_name
            assert twin.__doc__ == async_fn.__doc__
    finally:
        client.close()


def test_a_read_returns_its_value_and_meta_and_keeps_its_query(client: Consul) -> None:
    assert client.kv.put("e/a", b"1") is True
    reply = client.kv.get("e/a")
    entry, meta = reply
    assert entry is not None
    assert entry["Value"] == b"1"
    assert isinstance(meta, Meta)
    assert meta.index >= entry["ModifyIndex"]
    assert isinstance(reply.query, Query)
    assert reply.value is entry
    assert reply.meta is meta
    missing, _ = client.kv.get("e/missing")
    assert missing is None


def test_writes_return_the_decoded_answer(client: Consul) -> None:
    assert client.kv.put("e/a", b"1") is True
    entry, _ = client.kv.get("e/a")
    assert entry is not None
    assert client.kv.cas("e/a", b"2", index=entry["ModifyIndex"] + 100) is False
    session = client.session.create(ttl=30)
    assert isinstance(session, str)
    assert client.kv.acquire("e/lock", session) is True
    assert client.session.destroy(session) is True
    leader, _ = client.status.leader()
    assert isinstance(leader, str)


def test_a_plain_helper_is_returned_as_is(client: Consul) -> None:
    assert client.txn.kv_op("get", "e/a") == client.aio.txn.kv_op("get", "e/a")


def test_bad_input_raises_in_the_calling_thread_naming_the_parameter(client: Consul) -> None:
    with pytest.raises(InvalidArgument) as info:
        client.kv.get("/leading-slash")
    assert info.value.parameter == "key"
    with pytest.raises(InvalidArgument) as info:
        client.kv.put("e/a", b"1", flags=-1)
    assert info.value.parameter == "flags"


def test_a_reply_pickles_and_copies_as_a_plain_tuple(client: Consul) -> None:
    client.kv.put("e/a", b"1")
    reply = client.kv.get("e/a")
    assert pickle.loads(pickle.dumps(reply)) == tuple(reply)
    assert copy.copy(reply) == tuple(reply)
    assert type(copy.copy(reply)) is tuple


def test_reply_is_a_tuple_of_value_and_meta() -> None:
    meta = Meta(index=7)
    reply: Reply[int] = Reply(3, meta, None, None)  # type: ignore[arg-type]
    assert reply == (3, meta)
