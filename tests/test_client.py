"""Consul: configuration from arguments and CONSUL_* variables, lifecycle, endpoints."""

from __future__ import annotations

import gc
import hashlib
import logging
import ssl
import sys
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _stub_agent import StubAgent, mutual_tls_server_context, self_signed

from consul_streams import Consul
from consul_streams._config import resolve_settings
from consul_streams._transport import AiohttpTransport
from consul_streams.endpoints import KV, Agent, Catalog, Events, Health, Sessions, Status, Txn
from consul_streams.exceptions import ConnectError, InvalidArgument, PermissionDenied

TOKEN = "c0ffee-secret-token-1234"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def token_digest(client: Consul) -> str | None:
    identity = client.transport.identity
    assert isinstance(identity, tuple)
    value = identity[2]
    assert value is None or isinstance(value, str)
    return value


def settings(environ: dict[str, str], **explicit: Any) -> Any:
    args: dict[str, Any] = dict.fromkeys(
        [
            "address",
            "token",
            "token_file",
            "datacenter",
            "consistency",
            "verify",
            "ca_file",
            "ca_path",
            "cert",
            "key",
            "tls_server_name",
        ]
    )
    args.update(timeout=30.0, max_connections=64)
    args.update(explicit)
    return resolve_settings(environ=environ, **args)


@pytest.fixture
async def agent() -> AsyncIterator[StubAgent]:
    stub = await StubAgent().start()
    yield stub
    await stub.close()


# --- configuration -----------------------------------------------------------------------


def test_defaults_without_environment() -> None:
    client = Consul(environ={})
    assert client.address == "http://127.0.0.1:8500"
    assert client.datacenter is None
    assert client.consistency == "default"
    assert client.timeout == 30.0
    assert client.transport.identity == ("http://127.0.0.1:8500", None, None)


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("10.0.0.5:8600", "http://10.0.0.5:8600"),
        ("consul.local", "http://consul.local:8500"),
        ("http://127.0.0.1:9500", "http://127.0.0.1:9500"),
        ("https://consul.local:8501", "https://consul.local:8501"),
        ("unix:///run/consul/http.sock", "unix:///run/consul/http.sock"),
        ("[::1]:8500", "http://[::1]:8500"),
    ],
)
def test_consul_http_addr_forms(value: str, address: str) -> None:
    assert Consul(environ={"CONSUL_HTTP_ADDR": value}).address == address


@pytest.mark.parametrize("value", ["ftp://h", "h:notaport", "http://h/path", "h:70000"])
def test_a_bad_consul_http_addr_names_the_variable(value: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        Consul(environ={"CONSUL_HTTP_ADDR": value})
    assert info.value.parameter == "CONSUL_HTTP_ADDR"


def test_an_address_with_a_password_is_not_echoed() -> None:
    with pytest.raises(InvalidArgument) as info:
        Consul("http://user:hunter2@h/x", environ={})
    assert "hunter2" not in str(info.value)


def test_the_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "10.1.2.3:8500")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", TOKEN)
    client = Consul()
    assert client.address == "http://10.1.2.3:8500"
    assert token_digest(client) == digest(TOKEN)
    assert Consul.from_env().address == "http://10.1.2.3:8500"


def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "10.1.2.3:8500")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "from-env")
    client = Consul("127.0.0.1:8600", token=TOKEN)
    assert client.address == "http://127.0.0.1:8600"
    assert token_digest(client) == digest(TOKEN)


def test_from_env_reads_a_given_mapping_and_kwargs_win() -> None:
    client = Consul.from_env({"CONSUL_HTTP_ADDR": "10.9.9.9:1"}, timeout="5s", datacenter="dc2")
    assert client.address == "http://10.9.9.9:1"
    assert client.timeout == 5.0
    assert client.datacenter == "dc2"


def test_consul_http_ssl_picks_https_only_for_scheme_less_addresses() -> None:
    env = {"CONSUL_HTTP_SSL": "true", "CONSUL_HTTP_ADDR": "h:8501"}
    assert Consul(environ=env).address == "https://h:8501"
    assert Consul("http://h:8500", environ=env).address == "http://h:8500"
    assert Consul("h:8502", environ=env).address == "https://h:8502"
    assert Consul(environ={"CONSUL_HTTP_SSL": "0"}).address == "http://127.0.0.1:8500"


@pytest.mark.parametrize("name", ["CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY"])
def test_a_bad_boolean_variable_is_named(name: str) -> None:
    with pytest.raises(InvalidArgument, match=rf"^{name}: expected true or false"):
        Consul(environ={name: "maybe"})


def test_an_empty_variable_counts_as_unset() -> None:
    client = Consul(environ={"CONSUL_HTTP_ADDR": "", "CONSUL_HTTP_TOKEN": ""})
    assert client.address == "http://127.0.0.1:8500"
    assert token_digest(client) is None


def test_token_precedence(tmp_path: Path) -> None:
    explicit_file = tmp_path / "explicit"
    explicit_file.write_text("from-explicit-file\n")
    env_file = tmp_path / "env"
    env_file.write_text("  from-env-file  \n")
    env = {"CONSUL_HTTP_TOKEN": "from-env", "CONSUL_HTTP_TOKEN_FILE": str(env_file)}
    assert token_digest(Consul(token=TOKEN, token_file=explicit_file, environ=env)) == digest(TOKEN)
    assert token_digest(Consul(token_file=explicit_file, environ=env)) == digest(
        "from-explicit-file"
    )
    assert token_digest(Consul(environ=env)) == digest("from-env")
    only_file = {"CONSUL_HTTP_TOKEN_FILE": str(env_file)}
    assert token_digest(Consul(environ=only_file)) == digest("from-env-file")


def test_an_empty_explicit_token_means_none_even_with_an_env_token() -> None:
    assert token_digest(Consul(token="", environ={"CONSUL_HTTP_TOKEN": "x"})) is None


def test_an_unreadable_token_file_is_named_without_content(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        Consul(token_file=tmp_path / "missing", environ={})
    assert info.value.parameter == "token_file"
    with pytest.raises(InvalidArgument) as info:
        Consul(environ={"CONSUL_HTTP_TOKEN_FILE": str(tmp_path / "missing")})
    assert info.value.parameter == "CONSUL_HTTP_TOKEN_FILE"
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfesecret")
    with pytest.raises(InvalidArgument) as info:
        Consul(token_file=binary, environ={})
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"address": 8500}, "address"),
        ({"address": ""}, "address"),
        ({"address": "unix://"}, "address"),
        ({"token": 5}, "token"),
        ({"token_file": 5}, "token_file"),
        ({"datacenter": ""}, "datacenter"),
        ({"datacenter": 1}, "datacenter"),
        ({"consistency": "strong"}, "consistency"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "abc"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": True}, "max_connections"),
        ({"max_connections": "4"}, "max_connections"),
        ({"verify": "no"}, "verify"),
        ({"session": object()}, "session"),
        ({"tls_server_name": ""}, "tls_server_name"),
    ],
)
def test_bad_arguments_fail_at_call_time(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        Consul(environ={}, **kwargs)
    assert info.value.parameter == parameter


@pytest.mark.parametrize("timeout", ["5s", timedelta(seconds=5), 5, 5.0])
def test_timeout_accepts_every_duration_form(timeout: Any) -> None:
    assert Consul(timeout=timeout, environ={}).timeout == 5.0


# --- TLS ---------------------------------------------------------------------------------


def test_no_tls_context_for_plain_http() -> None:
    assert settings({}, ca_file="/nonexistent").ssl_context is None


def test_tls_verifies_by_default() -> None:
    context = settings({}, address="https://h").ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_verify_false_and_its_variable() -> None:
    for s in (
        settings({}, address="https://h", verify=False),
        settings({"CONSUL_HTTP_SSL_VERIFY": "false"}, address="https://h"),
    ):
        assert s.ssl_context.verify_mode == ssl.CERT_NONE
        assert not s.ssl_context.check_hostname
    explicit = settings({"CONSUL_HTTP_SSL_VERIFY": "false"}, address="https://h", verify=True)
    assert explicit.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_tls_server_name_from_argument_or_variable() -> None:
    env = {"CONSUL_TLS_SERVER_NAME": "env.name"}
    assert settings(env, address="https://h").tls_server_name == "env.name"
    assert settings(env, address="https://h", tls_server_name="arg").tls_server_name == "arg"


def system_ca_file() -> str:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("no system CA bundle file to load")


def test_ca_file_from_variable_replaces_the_system_pool() -> None:
    context = settings({"CONSUL_CACERT": system_ca_file()}, address="https://h").ssl_context
    assert context.cert_store_stats()["x509_ca"] > 0
    assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("explicit", "parameter"),
    [
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file"),
        ({"ca_path": "/nonexistent/dir"}, "ca_path"),
        ({"cert": "/nonexistent/cert.pem"}, "cert"),
        ({"key": "/nonexistent/key.pem"}, "key"),
        ({"ca_file": 5}, "ca_file"),
    ],
)
def test_bad_tls_files_are_named(explicit: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        settings({}, address="https://h", **explicit)
    assert info.value.parameter == parameter


@pytest.fixture
async def tls_agent(tmp_path: Path) -> AsyncIterator[tuple[StubAgent, Path, Path]]:
    cert, key = self_signed(tmp_path)
    stub = await StubAgent().start(ssl_context=mutual_tls_server_context(cert, key))
    yield stub, cert, key
    await stub.close()


async def test_https_with_ca_client_cert_and_server_name(
    tls_agent: tuple[StubAgent, Path, Path],
) -> None:
    agent, cert, key = tls_agent
    env = {"CONSUL_CACERT": str(cert), "CONSUL_TLS_SERVER_NAME": "consul.test"}
    async with Consul(f"https://{agent.address}", cert=cert, key=key, environ=env) as client:
        peers, _ = await client.status.peers()
        assert peers == []
    assert len(agent.seen) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"ca_file": None},  # the self-signed server is not in the system pool
        {"tls_server_name": None},  # 127.0.0.1 is not the certificate's name
        pytest.param(
            {"cert": None, "key": None},  # the server wants a client certificate
            # Python 3.10's sslproto never closes a transport whose handshake the peer
            # aborted (the 3.11 rewrite of asyncio's TLS fixed it); the leak is asyncio's.
            marks=pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
            if sys.version_info < (3, 11)
            else (),
        ),
    ],
)
async def test_https_failures_are_connect_errors(
    tls_agent: tuple[StubAgent, Path, Path], change: dict[str, Any]
) -> None:
    agent, cert, key = tls_agent
    kwargs: dict[str, Any] = {"ca_file": cert, "tls_server_name": "consul.test"}
    kwargs.update(cert=cert, key=key)
    kwargs.update(change)
    async with Consul(f"https://{agent.address}", environ={}, **kwargs) as client:
        with pytest.raises(ConnectError):
            await client.status.peers()
    assert agent.seen == []


async def test_https_without_verification(tls_agent: tuple[StubAgent, Path, Path]) -> None:
    agent, cert, key = tls_agent
    env = {"CONSUL_HTTP_SSL": "true", "CONSUL_HTTP_SSL_VERIFY": "false"}
    async with Consul(agent.address, cert=cert, key=key, environ=env) as client:
        assert client.address.startswith("https://")
        peers, _ = await client.status.peers()
        assert peers == []


def test_settings_repr_hides_the_token() -> None:
    assert TOKEN not in repr(settings({}, token=TOKEN))


# --- requests through the client ---------------------------------------------------------


async def test_client_defaults_reach_the_wire(
    agent: StubAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="consul_streams")
    async with Consul(
        agent.address, token=TOKEN, datacenter="dc7", consistency="stale", environ={}
    ) as client:
        await client.status.peers()
    (seen,) = agent.seen
    assert seen.path_qs == "/v1/status/peers?dc=dc7&stale="
    assert seen.headers["X-Consul-Token"] == TOKEN
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


async def test_errors_from_the_client_hide_the_token(agent: StubAgent) -> None:
    agent.reply(403, b"Permission denied")
    async with Consul(agent.address, token=TOKEN, environ={}) as client:
        with pytest.raises(PermissionDenied) as info:
            await client.status.peers()
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    assert info.value.url == f"http://{agent.address}/v1/status/peers"


def test_repr_shows_address_not_token() -> None:
    client = Consul("127.0.0.1:8600", token=TOKEN, datacenter="dc1", environ={})
    assert repr(client) == "<Consul http://127.0.0.1:8600 dc='dc1' token=set>"
    assert TOKEN not in repr(client.transport)


def test_endpoint_attributes_share_the_transport() -> None:
    client = Consul(environ={})
    expected = {
        "kv": KV,
        "catalog": Catalog,
        "health": Health,
        "agent": Agent,
        "event": Events,
        "session": Sessions,
        "status": Status,
        "txn": Txn,
    }
    for name, cls in expected.items():
        endpoint = getattr(client, name)
        assert type(endpoint) is cls
        assert endpoint._transport is client.transport


# --- lifecycle ---------------------------------------------------------------------------


async def test_async_with_closes_the_owned_session(agent: StubAgent) -> None:
    async with Consul(agent.address, environ={}) as client:
        await client.status.peers()
        assert isinstance(client.transport, AiohttpTransport)
        assert client.transport.owns_open_session
    assert client.closed
    assert not client.transport.owns_open_session


async def test_a_callers_session_survives_aclose(agent: StubAgent) -> None:
    async with aiohttp.ClientSession() as session:
        client = Consul(agent.address, session=session, environ={})
        await client.status.peers()
        await client.aclose()
        assert not session.closed
        assert client.closed


async def test_an_unclosed_client_warns_on_collection(agent: StubAgent) -> None:
    client = Consul(agent.address, environ={})
    await client.status.peers()
    transport = client.transport
    assert isinstance(transport, AiohttpTransport)
    del client  # the endpoints refer back to the client: only the collector frees it
    with pytest.warns(ResourceWarning, match=r"unclosed <Consul .*aclose"):
        gc.collect()
    # The warning does not close anything: the session is still ours to close.
    assert transport.owns_open_session
    await transport.aclose()


async def test_no_warning_when_closed_or_never_used(agent: StubAgent) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unused = Consul(agent.address, environ={})
        closed = Consul(agent.address, environ={})
        await closed.status.peers()
        await closed.aclose()
        del unused, closed
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
