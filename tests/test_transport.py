"""AiohttpTransport against a loopback stub agent: requests, timeouts, errors, lifecycle."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from _stub_agent import StubAgent, raw_server, spy_requests
from aiohttp import web

from consul_streams._address import parse_address
from consul_streams._query import BlockingMode, Query, Request, Response
from consul_streams._transport import BODY_LIMIT, AiohttpTransport, _Slots
from consul_streams.exceptions import (
    BadRequest,
    Conflict,
    ConnectError,
    ConsulError,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    RateLimited,
    ReadTimeout,
    RequestTooLarge,
    ServerError,
    TransportError,
)
from consul_streams.typing import Consistency

TOKEN = "b1gs3cr3t-token-0000"


def make(address: str = "127.0.0.1:8500", **kwargs: Any) -> AiohttpTransport:
    kwargs.setdefault("token", TOKEN)
    return AiohttpTransport(parse_address(address), **kwargs)


@pytest.fixture
async def agent() -> AsyncIterator[StubAgent]:
    stub = await StubAgent().start()
    yield stub
    await stub.close()


@pytest.fixture
async def transport(agent: StubAgent) -> AsyncIterator[AiohttpTransport]:
    t = make(agent.address)
    yield t
    await t.aclose()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    return spy_requests(monkeypatch)


# --- what goes on the wire ---------------------------------------------------------------


async def test_token_travels_only_in_the_header(
    agent: StubAgent, transport: AiohttpTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="consul_streams")
    response = await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    (seen,) = agent.seen
    assert seen.headers["X-Consul-Token"] == TOKEN
    assert "Authorization" not in seen.headers
    assert seen.path_qs == "/v1/kv/a"
    assert TOKEN not in response.url
    assert TOKEN not in repr(transport)
    assert TOKEN not in str(transport.identity)
    assert caplog.records, "debug logging should have recorded the request"
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


async def test_no_token_no_header(agent: StubAgent) -> None:
    transport = make(agent.address, token=None)
    await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    await transport.aclose()
    assert "X-Consul-Token" not in agent.seen[0].headers


async def test_request_headers_and_body_are_sent(
    agent: StubAgent, transport: AiohttpTransport, sent: list[dict[str, Any]]
) -> None:
    request = Request("PUT", "/v1/kv/a", body=b"v", headers=(("Content-Type", "text/plain"),))
    await transport.send(request, timeout=None)
    (seen,) = agent.seen
    assert seen.method == "PUT"
    assert seen.body == b"v"
    assert seen.headers["Content-Type"] == "text/plain"
    assert sent[0]["allow_redirects"] is False


async def test_one_requests_headers_do_not_leak_into_the_next(
    agent: StubAgent, transport: AiohttpTransport
) -> None:
    """Requests without headers of their own share one prebuilt dict (#13); it stays clean."""
    own = Request("PUT", "/v1/kv/a", body=b"v", headers=(("Content-Type", "text/plain"),))
    await transport.send(own, timeout=None)
    await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    await transport.send(Request("GET", "/v1/kv/b"), timeout=None)
    first, second, third = agent.seen
    assert first.headers["Content-Type"] == "text/plain"
    for seen in (second, third):
        assert "Content-Type" not in seen.headers
        assert seen.headers["X-Consul-Token"] == TOKEN
        assert seen.headers["Accept-Encoding"] == "identity"


async def test_path_and_params_arrive_as_built(
    agent: StubAgent, transport: AiohttpTransport
) -> None:
    params = (("recurse", ""), ("tag", "a"), ("tag", "b"), ("filter", 'Node == "x"'))
    await transport.send(Request("GET", "/v1/catalog/service/a%2Fb", params=params), timeout=None)
    assert agent.seen[0].path_qs == (
        "/v1/catalog/service/a%2Fb?recurse=&tag=a&tag=b&filter=Node+%3D%3D+%22x%22"
    )


async def test_default_datacenter_is_added(agent: StubAgent) -> None:
    transport = make(agent.address, datacenter="dc2")
    await transport.send(Request("GET", "/v1/kv/a", params=(("recurse", ""),)), timeout=None)
    await transport.aclose()
    assert agent.seen[0].path_qs == "/v1/kv/a?recurse=&dc=dc2"


def test_a_request_datacenter_beats_the_default() -> None:
    url = make(datacenter="dc2").build_url(Request("GET", "/v1/kv/a", params=(("dc", "dc9"),)))
    assert url.query_string == "dc=dc9"


@pytest.mark.parametrize("mode", ["stale", "consistent"])
async def test_default_consistency_is_a_presence_flag_on_reads(
    agent: StubAgent, mode: Consistency
) -> None:
    transport = make(agent.address, consistency=mode)
    await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    await transport.aclose()
    assert agent.seen[0].path_qs == f"/v1/kv/a?{mode}="


def test_default_consistency_is_not_added_to_writes_or_overrides() -> None:
    transport = make(consistency="stale")
    write = transport.build_url(Request("PUT", "/v1/kv/a"))
    assert "stale" not in str(write)
    for flag in ("leader", "consistent", "stale"):
        url = transport.build_url(Request("GET", "/v1/kv/a", params=((flag, ""),)))
        assert list(url.query) == [flag]


def test_default_consistency_default_adds_nothing() -> None:
    url = make().build_url(Request("GET", "/v1/kv/a"))
    assert str(url) == "http://127.0.0.1:8500/v1/kv/a"


# --- timeouts ----------------------------------------------------------------------------


async def test_timeout_none_uses_the_client_default_not_aiohttps(
    agent: StubAgent, sent: list[dict[str, Any]]
) -> None:
    transport = make(agent.address, timeout=12.0)
    await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    await transport.aclose()
    timeout = sent[0]["timeout"]
    assert isinstance(timeout, aiohttp.ClientTimeout)
    # The whole request's deadline (#11): a trickling peer cannot hold it longer.
    assert timeout.total == 12.0
    # No per-read timer (#13): it restarts with every chunk, so it could never fire first.
    assert timeout.sock_read is None
    assert timeout.sock_connect == 12.0


async def test_blocking_fetch_derives_its_read_timeout_from_wait(
    agent: StubAgent, transport: AiohttpTransport, sent: list[dict[str, Any]]
) -> None:
    agent.reply(200, b"[]", X_Consul_Index="8")
    query: Query[bytes] = Query(transport, Request("GET", "/v1/kv/a"), lambda r: r.body)
    value, meta = await query.fetch(index=7, wait=160.0)
    assert agent.seen[0].path_qs == "/v1/kv/a?index=7&wait=160000ms"
    timeout = sent[0]["timeout"]
    assert timeout.sock_read is None
    assert timeout.total == pytest.approx(160.0 * 17 / 16 + 5.0)
    # Connecting is still bounded by the (short) client default.
    assert timeout.sock_connect == 30.0
    assert value == b"[]"
    assert meta.index == 8


async def test_non_blocking_fetch_uses_the_default_timeout(
    transport: AiohttpTransport, sent: list[dict[str, Any]]
) -> None:
    query: Query[bytes] = Query(
        transport, Request("GET", "/v1/agent/self"), lambda r: r.body, mode=BlockingMode.NONE
    )
    await query.fetch(index=7, wait=160.0)
    assert sent[0]["timeout"].total == 30.0


async def test_no_answer_within_the_read_timeout_is_a_read_timeout(
    agent: StubAgent, transport: AiohttpTransport
) -> None:
    never = asyncio.Event()

    async def hold(request: web.Request) -> web.StreamResponse:
        await never.wait()
        return web.Response()

    agent.handler = hold
    with pytest.raises(ReadTimeout) as info:
        await transport.send(Request("GET", "/v1/kv/a"), timeout=0.2)
    assert isinstance(info.value, TimeoutError)
    assert info.value.retriable


# --- answers and errors ------------------------------------------------------------------


async def test_ok_answer_becomes_a_response(agent: StubAgent, transport: AiohttpTransport) -> None:
    agent.reply(200, b'["a"]', x_consul_index="3")
    response = await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    assert isinstance(response, Response)
    assert response.status == 200
    assert response.body == b'["a"]'
    assert response.method == "GET"
    assert response.url == f"http://{agent.address}/v1/kv/a"
    assert response.headers["X-Consul-Index"] == "3"
    assert response.meta.index == 3


async def test_ok_statuses_make_a_404_a_value(
    agent: StubAgent, transport: AiohttpTransport
) -> None:
    agent.reply(404, b"", X_Consul_Index="5")
    response = await transport.send(
        Request("GET", "/v1/kv/a"), timeout=None, ok_statuses=frozenset({200, 404})
    )
    assert response.status == 404
    assert response.meta.index == 5


@pytest.mark.parametrize(
    ("status", "cls", "retriable"),
    [
        (400, BadRequest, False),
        (401, HTTPError, False),
        (403, PermissionDenied, False),
        (404, NotFound, False),
        (405, MethodNotAllowed, False),
        (409, Conflict, False),
        (413, RequestTooLarge, False),
        (418, HTTPError, False),
        (429, RateLimited, True),
        (500, ServerError, True),
        (502, ServerError, True),
        (503, ServerError, True),
        (202, HTTPError, False),
    ],
)
async def test_status_mapping(
    agent: StubAgent,
    transport: AiohttpTransport,
    status: int,
    cls: type[HTTPError],
    retriable: bool,
) -> None:
    agent.reply(status, b"Invalid wait time")
    with pytest.raises(HTTPError) as info:
        await transport.send(Request("PUT", "/v1/kv/a", params=(("cas", "1"),)), timeout=None)
    error = info.value
    assert type(error) is cls
    assert error.retriable is retriable
    assert error.status == status
    assert error.body == "Invalid wait time"
    assert error.method == "PUT"
    assert error.url == f"http://{agent.address}/v1/kv/a?cas=1"
    assert str(error).startswith(f"Unexpected response code: {status} (Invalid wait time)")
    assert TOKEN not in str(error)


async def test_conflict_carries_the_txn_errors(
    agent: StubAgent, transport: AiohttpTransport
) -> None:
    body = b'{"Results":null,"Errors":[{"OpIndex":0,"What":"key \\"missing\\" doesn\'t exist"}]}'
    agent.reply(409, body)
    with pytest.raises(Conflict) as info:
        await transport.send(Request("PUT", "/v1/txn", body=b"[]"), timeout=None)
    assert info.value.errors == [{"OpIndex": 0, "What": 'key "missing" doesn\'t exist'}]


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"Errors": null}', b'{"Errors": [1]}'])
async def test_conflict_without_parsable_errors_has_none(
    agent: StubAgent, transport: AiohttpTransport, body: bytes
) -> None:
    agent.reply(409, body)
    with pytest.raises(Conflict) as info:
        await transport.send(Request("PUT", "/v1/txn"), timeout=None)
    assert info.value.errors == []


async def test_long_error_bodies_are_truncated(
    agent: StubAgent, transport: AiohttpTransport
) -> None:
    agent.reply(500, b"x" * 10_000)
    with pytest.raises(ServerError) as info:
        await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    assert info.value.body.startswith("x" * BODY_LIMIT)
    assert len(info.value.body) < BODY_LIMIT + 20


async def test_an_echoed_token_is_scrubbed_from_error_bodies(
    agent: StubAgent, transport: AiohttpTransport
) -> None:
    agent.reply(403, f"ACL not found: {TOKEN}".encode())
    with pytest.raises(PermissionDenied) as info:
        await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    assert TOKEN not in info.value.body
    assert TOKEN not in str(info.value)
    assert "REDACTED" in info.value.body


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ClientConnectionError("refused"), ConnectError),
        (aiohttp.ServerDisconnectedError(), ConnectError),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), ConnectError),
        (aiohttp.ClientPayloadError("truncated"), ConnectError),
        (ConnectionResetError(104, "reset"), ConnectError),
        (aiohttp.ConnectionTimeoutError("connect"), ConnectError),
        (aiohttp.SocketTimeoutError("read"), ReadTimeout),
        (asyncio.TimeoutError(), ReadTimeout),
        (aiohttp.InvalidURL("http://[bad"), TransportError),
    ],
)
async def test_aiohttp_failures_are_mapped(
    monkeypatch: pytest.MonkeyPatch,
    raised: BaseException,
    expected: type[TransportError],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise raised

    monkeypatch.setattr(aiohttp.ClientSession, "request", fail)
    caplog.set_level(logging.DEBUG, logger="consul_streams")
    transport = make()
    with pytest.raises(TransportError) as info:
        await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    await transport.aclose()
    error = info.value
    assert type(error) is expected
    assert not isinstance(error, aiohttp.ClientError)
    assert error.retriable
    assert error.method == "GET"
    assert error.url == "http://127.0.0.1:8500/v1/kv/a"
    assert TOKEN not in str(error)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused_is_a_connect_error() -> None:
    transport = make(f"127.0.0.1:{closed_port()}")
    with pytest.raises(ConnectError, match="connection failed"):
        await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    await transport.aclose()


@pytest.mark.parametrize(
    "script",
    [
        b"",  # closed before any answer
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial",  # truncated body
    ],
)
async def test_a_broken_connection_is_a_connect_error(script: bytes) -> None:
    server, port = await raw_server(script)
    transport = make(f"127.0.0.1:{port}")
    with pytest.raises(ConnectError):
        await transport.send(Request("GET", "/v1/kv/a"), timeout=5.0)
    await transport.aclose()
    server.close()
    await server.wait_closed()


# --- concurrency cap and cancellation ----------------------------------------------------


def gate_handler(agent: StubAgent, gate: asyncio.Event, entered: asyncio.Event, at: int) -> None:
    async def hold(request: web.Request) -> web.StreamResponse:
        if agent.in_flight >= at:
            entered.set()
        await gate.wait()
        return web.Response(body=b"[]")

    agent.handler = hold


@pytest.mark.parametrize("own_session", [True, False])
async def test_max_connections_caps_concurrent_requests(
    agent: StubAgent, own_session: bool
) -> None:
    """Also with a caller's session whose own pool would allow more."""
    gate, entered, third = asyncio.Event(), asyncio.Event(), asyncio.Event()
    gate_handler(agent, gate, entered, at=2)
    session = None if own_session else aiohttp.ClientSession()
    transport = make(agent.address, max_connections=2, session=session)
    tasks = [
        asyncio.create_task(transport.send(Request("GET", f"/v1/kv/{i}"), timeout=None))
        for i in range(5)
    ]
    await asyncio.wait_for(entered.wait(), timeout=5)
    gate_handler(agent, gate, third, at=3)
    # A third request reaching the server would break the cap; give it a short chance.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(third.wait(), timeout=0.2)
    gate.set()
    responses = await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    assert [r.status for r in responses] == [200] * 5
    assert agent.peak == 2
    await transport.aclose()
    if session is not None:
        assert not session.closed
        await session.close()


async def test_cancelling_a_request_releases_its_slot_and_connection(agent: StubAgent) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    gate_handler(agent, gate, entered, at=1)
    transport = make(agent.address, max_connections=1)
    task = asyncio.create_task(transport.send(Request("GET", "/v1/kv/slow"), timeout=None))
    await asyncio.wait_for(entered.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    agent.handler = None
    # With one slot, this only completes if the cancelled request gave back everything.
    response = await asyncio.wait_for(
        transport.send(Request("GET", "/v1/kv/fast"), timeout=None), timeout=5
    )
    assert response.status == 200
    await transport.aclose()
    gate.set()


async def test_cancelling_a_queued_request_leaves_the_cap_intact(agent: StubAgent) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    gate_handler(agent, gate, entered, at=1)
    transport = make(agent.address, max_connections=1)
    first = asyncio.create_task(transport.send(Request("GET", "/v1/kv/1"), timeout=None))
    await asyncio.wait_for(entered.wait(), timeout=5)
    queued = asyncio.create_task(transport.send(Request("GET", "/v1/kv/2"), timeout=None))
    await asyncio.sleep(0)  # let it reach the semaphore; nothing is awaited on time here
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    gate.set()
    assert (await asyncio.wait_for(first, timeout=5)).status == 200
    agent.handler = None
    third = await asyncio.wait_for(
        transport.send(Request("GET", "/v1/kv/3"), timeout=None), timeout=5
    )
    assert third.status == 200
    assert [s.path_qs for s in agent.seen] == ["/v1/kv/1", "/v1/kv/3"]
    assert agent.peak == 1
    await transport.aclose()


async def test_slots_hand_over_in_order_and_stay_capped() -> None:
    """The transport's cap (``_Slots``, #13): a released slot goes to the oldest waiter, never
    to the free count while someone waits; a waiter cancelled after being handed its slot
    passes it on, one cancelled before leaves the line."""
    slots = _Slots(1)
    slots.free -= 1  # held by "a request" (the inline fast path of send)
    order: list[str] = []

    async def queue(name: str) -> None:
        await slots.wait()
        order.append(name)

    first, gone, handed, last = (
        asyncio.create_task(queue(name)) for name in ("first", "gone", "handed", "last")
    )
    await asyncio.sleep(0)  # all four queued; nothing is awaited on time here
    gone.cancel()  # cancelled while waiting: leaves the line
    slots.release()  # to "first"
    await asyncio.wait_for(first, timeout=5)
    assert order == ["first"]
    assert slots.free == 0
    slots.release()  # to "handed" ("gone" is skipped) ...
    handed.cancel()  # ... which is cancelled before it runs: the slot goes on to "last"
    for task in (gone, handed):
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.wait_for(last, timeout=5)  # hangs if the handed slot were lost
    assert order == ["first", "last"]
    assert slots.free == 0
    assert not slots.waiters
    slots.release()
    assert slots.free == 1


# --- session ownership, identity, TLS, unix sockets -------------------------------------


async def test_session_is_created_lazily_and_closed_by_aclose(agent: StubAgent) -> None:
    transport = make(agent.address)
    assert not transport.owns_open_session
    await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    assert transport.owns_open_session
    await transport.aclose()
    assert not transport.owns_open_session
    assert transport.closed


async def test_a_callers_session_is_used_and_never_closed(agent: StubAgent) -> None:
    async with aiohttp.ClientSession() as session:
        transport = make(agent.address, session=session)
        await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
        assert not transport.owns_open_session
        await transport.aclose()
        assert not session.closed
        assert len(agent.seen) == 1


async def test_send_after_aclose_fails_clearly() -> None:
    transport = make()
    await transport.aclose()
    with pytest.raises(ConsulError, match="closed"):
        await transport.send(Request("GET", "/v1/kv/a"), timeout=None)


def test_identity_hashes_the_token() -> None:
    a = make(token="t1", datacenter="dc1")
    b = make(token="t2", datacenter="dc1")
    c = make(token="t1", datacenter="dc1")
    assert a.identity == c.identity
    assert a.identity != b.identity
    assert make(token=None).identity == ("http://127.0.0.1:8500", None, None)
    identity = a.identity
    assert isinstance(identity, tuple)
    address, dc, digest = identity
    assert (address, dc) == ("http://127.0.0.1:8500", "dc1")
    assert isinstance(digest, str)
    assert len(digest) == 16
    assert "t1" not in repr(a.identity)
    assert hash(a.identity) == hash(c.identity)


async def test_https_requests_carry_tls_settings(
    monkeypatch: pytest.MonkeyPatch, sent: list[dict[str, Any]]
) -> None:
    context = ssl.create_default_context()
    transport = AiohttpTransport(
        parse_address(f"https://127.0.0.1:{closed_port()}"),
        ssl_context=context,
        tls_server_name="consul.local",
    )
    with pytest.raises(ConnectError):
        await transport.send(Request("GET", "/v1/kv/a"), timeout=None)
    await transport.aclose()
    assert sent[0]["url"].startswith("https://127.0.0.1:")
    assert sent[0]["ssl"] is context
    assert sent[0]["server_hostname"] == "consul.local"


async def test_unix_socket_address(tmp_path: Any) -> None:
    stub = await StubAgent().start(unix_path=str(tmp_path / "agent.sock"))
    transport = make(stub.address)
    response = await transport.send(Request("GET", "/v1/status/leader"), timeout=None)
    await transport.aclose()
    await stub.close()
    assert response.status == 200
    assert stub.seen[0].path_qs == "/v1/status/leader"
    assert transport.identity[0] == stub.address  # type: ignore[index]
