"""``Consul(transport=...)`` and ``testing.MockTransport``: the client's one seam for unit tests."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest
from test_watch_helpers import asking, within

from consul_streams import ClientClosed, Consul, PermissionDenied, Request, Response, watch
from consul_streams.exceptions import InvalidArgument
from consul_streams.testing import MockTransport


def kv_answer(key: str, value: bytes, index: int) -> Response:
    body = [
        {
            "Key": key,
            "Value": base64.b64encode(value).decode(),
            "Flags": 0,
            "LockIndex": 0,
            "CreateIndex": 1,
            "ModifyIndex": index,
        }
    ]
    return Response(200, {"X-Consul-Index": str(index)}, json.dumps(body).encode())


async def test_a_read_goes_through_the_handler_and_meta_comes_from_its_headers() -> None:
    def handler(request: Request) -> Response:
        assert (request.method, request.path) == ("GET", "/v1/kv/app/flag")
        return kv_answer("app/flag", b"on", 7)

    mock = MockTransport(handler)
    async with Consul(transport=mock, environ={}) as client:
        entry, meta = await client.kv.get("app/flag")
    assert entry is not None
    assert entry["Value"] == b"on"
    assert meta.index == 7
    assert [r.path for r in mock.requests] == ["/v1/kv/app/flag"]
    assert mock.closed  # the client closes the transport it was given


async def test_an_error_status_raises_the_mapped_error() -> None:
    mock = MockTransport(lambda request: Response(403, {}, b"ACL not found"))
    async with Consul(transport=mock, environ={}) as client:
        with pytest.raises(PermissionDenied, match="ACL not found"):
            await client.status.leader()


async def test_a_watch_threads_the_index_through_an_async_handler(poll_mode: str) -> None:
    """The second request blocks on the first answer's index (the handler may block too)."""
    second_seen = asyncio.Event()
    release = asyncio.Event()

    async def handler(request: Request) -> Response:
        if ("index", "7") in request.params:
            second_seen.set()
            await release.wait()
            return kv_answer("k", b"2", 9)
        if ("index", "9") in request.params:
            await asyncio.Event().wait()  # a long-poll that never returns
        return kv_answer("k", b"1", 7)

    mock = MockTransport(handler)
    client = Consul(transport=mock, environ={})
    async with client, watch(client.kv.get("k"), wait="10s", rate_limit=None) as stream:
        first, meta = await asyncio.wait_for(anext(stream), 5)
        assert (first and first["Value"], meta.index) == (b"1", 7)
        pending = asking(stream)
        await within(second_seen.wait())
        assert not pending.done()  # the handler holds the blocking read
        release.set()
        second, meta = await within(pending)
        assert (second and second["Value"], meta.index) == (b"2", 9)
    assert ("wait", "10000ms") in mock.requests[1].params


def test_bad_transport_arguments_name_the_parameter() -> None:
    with pytest.raises(InvalidArgument, match=r"^transport: "):
        Consul(transport=object(), environ={})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"^handler: "):
        MockTransport("not callable")  # type: ignore[arg-type]


async def test_session_and_transport_exclude_each_other() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidArgument, match=r"^session: .*transport"):
            Consul(transport=MockTransport(lambda r: Response(200, {}, b"")), session=session)


async def test_closing_the_client_ends_its_watches_and_requests_with_client_closed(
    poll_mode: str,
) -> None:
    async def handler(request: Request) -> Response:
        if ("index", "7") in request.params:
            await asyncio.Event().wait()  # the long-poll the close interrupts
        return kv_answer("k", b"1", 7)

    mock = MockTransport(handler)
    client = Consul(transport=mock, environ={})
    stream = watch(client.kv.get("k"), wait="10s", rate_limit=None).stream()
    await asyncio.wait_for(anext(stream), 5)
    await client.aclose()
    with pytest.raises(ClientClosed):
        await asyncio.wait_for(anext(stream), 5)
    await stream.aclose()
    assert client.closed
    with pytest.raises(ClientClosed):
        await client.kv.get("k")
