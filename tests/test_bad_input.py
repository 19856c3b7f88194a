"""Bad input, table-driven: every public entry point refuses malformed arguments at call time.

Each case calls one entry point (constructor, endpoint method, ``watch()``, operator, recipe)
with one malformed argument against a running dev agent. It must raise
:class:`~consul_streams.exceptions.InvalidArgument` naming the parameter, with a message that
says what is accepted, and the agent must have seen no request at all. The CLI cases run
``main()`` against the agent: a non-zero status, one line on stderr, no request.
"""

# This file passes wrongly typed arguments on purpose.
# mypy: disable-error-code="arg-type,list-item"
from __future__ import annotations

import asyncio
import inspect
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from consul_streams import Consul, InvalidArgument, Meta, ops
from consul_streams.cli import main
from consul_streams.recipes import (
    LiveConfig,
    Lock,
    Semaphore,
    ServiceInstances,
    config_events,
    elect,
    watch_instances,
    watch_services,
)
from consul_streams.testing import DevAgent
from consul_streams.watch import Backoff, RateLimit, watch

TOKEN = "s3cr3t-token-value"


@dataclass(frozen=True)
class Case:
    """``call(client)`` must raise InvalidArgument whose ``parameter`` is ``parameter``."""

    id: str
    call: Callable[[Consul], Any]
    parameter: str


def _c(id: str, parameter: str, call: Callable[[Consul], Any]) -> Any:
    return pytest.param(Case(id, call, parameter), id=id)


def _names(reported: str, parameter: str) -> bool:
    """``reported`` is ``parameter`` or a part of it (``watch wait``, ``operations[0].KV``)."""
    return reported == parameter or reported.startswith(
        (f"{parameter} ", f"{parameter}[", f"{parameter}.")
    )


def _client(**kwargs: Any) -> Callable[[Consul], Any]:
    def make(client: Consul) -> Any:
        kwargs.setdefault("environ", {})
        return Consul(**kwargs)

    return make


CLIENT_CASES = [
    _c("address-scheme", "address", _client(address="ftp://127.0.0.1:8500")),
    _c("address-port-text", "address", _client(address="127.0.0.1:http")),
    _c("address-port-range", "address", _client(address="127.0.0.1:70000")),
    _c("address-type", "address", _client(address=8500)),
    _c("timeout-unitless", "timeout", _client(timeout="10")),
    _c("timeout-negative", "timeout", _client(timeout=-1)),
    _c("max-connections-zero", "max_connections", _client(max_connections=0)),
    _c("max-connections-type", "max_connections", _client(max_connections="64")),
    _c("consistency-name", "consistency", _client(consistency="strong")),
    _c("datacenter-type", "datacenter", _client(datacenter=1)),
    _c("token-type", "token", _client(token=123)),
    _c("verify-type", "verify", _client(verify="yes")),
    _c("env-address", "CONSUL_HTTP_ADDR", _client(environ={"CONSUL_HTTP_ADDR": "ftp://x"})),
]

ENDPOINT_CASES = [
    # KV
    _c("kv.get-key-type", "key", lambda c: c.kv.get(5)),
    _c("kv.get-key-leading-slash", "key", lambda c: c.kv.get("/a")),
    _c("kv.get-key-empty", "key", lambda c: c.kv.get("")),
    _c("kv.get-watch-index", "watch", lambda c: c.kv.get("a", watch=-1)),
    _c("kv.get-watch-text", "watch", lambda c: c.kv.get("a", watch="seven")),
    _c("kv.get-watch-wait", "watch", lambda c: c.kv.get("a", watch=(7, "10"))),
    _c("kv.get-consistency", "consistency", lambda c: c.kv.get("a", consistency="strong")),
    _c("kv.items-prefix-type", "prefix", lambda c: c.kv.items(b"a/")),
    _c("kv.keys-separator", "separator", lambda c: c.kv.keys("a/", separator=1)),
    _c("kv.raw-key", "key", lambda c: c.kv.raw(None)),
    _c("kv.put-payload-type", "value", lambda c: c.kv.put("a", 12)),
    _c("kv.put-flags", "flags", lambda c: c.kv.put("a", "v", flags=-1)),
    _c("kv.put-cas", "cas", lambda c: c.kv.put("a", "v", cas="x")),
    _c("kv.put-acquire", "acquire", lambda c: c.kv.put("a", "v", acquire=5)),
    _c("kv.cas-index", "index", lambda c: c.kv.cas("a", "v", index=-2)),
    _c("kv.acquire-session", "session", lambda c: c.kv.acquire("a", {"Id": "x"})),
    _c("kv.release-session", "session", lambda c: c.kv.release("a", 7)),
    _c("kv.delete-recurse", "recurse", lambda c: c.kv.delete("a", recurse="yes")),
    _c("kv.set-value", "value", lambda c: c.kv.set("a", 1.5)),
    _c("kv.delete-cas", "cas", lambda c: c.kv.delete("a", cas=-1)),
    # catalog
    _c("catalog.service-name", "name", lambda c: c.catalog.service("")),
    _c("catalog.service-tag", "tag", lambda c: c.catalog.service("web", tag=5)),
    _c("catalog.services-node-meta", "node_meta", lambda c: c.catalog.services(node_meta=5)),
    _c("catalog.nodes-filter", "filter", lambda c: c.catalog.nodes(filter=5)),
    _c("catalog.node-name", "name", lambda c: c.catalog.node(None)),
    _c("catalog.register-node", "node", lambda c: c.catalog.register("", "10.0.0.1")),
    _c("catalog.register-service", "service", lambda c: c.catalog.register("n", "a", service=1)),
    _c("catalog.deregister-node", "node", lambda c: c.catalog.deregister(5)),
    # health
    _c("health.service-passing", "passing", lambda c: c.health.service("web", passing="1")),
    _c("health.service-name", "name", lambda c: c.health.service(3)),
    _c("health.service-watch", "watch", lambda c: c.health.service("web", watch="x")),
    _c("health.checks-service", "service", lambda c: c.health.checks("")),
    _c("health.node-node", "node", lambda c: c.health.node(1)),
    _c("health.state-state", "state", lambda c: c.health.state("sick")),
    # agent
    _c("agent.self-dc", "dc", lambda c: c.agent.self(dc=5)),
    _c("agent.checks-filter", "filter", lambda c: c.agent.checks(filter=5)),
    _c("agent.check_deregister-id", "check_id", lambda c: c.agent.check_deregister("")),
    _c("agent.check_warn-note", "note", lambda c: c.agent.check_warn("c", note=5)),
    _c("agent.check_fail-id", "check_id", lambda c: c.agent.check_fail(None)),
    _c(
        "agent.service_maintenance-enable",
        "enable",
        lambda c: c.agent.service_maintenance("w", "y"),
    ),
    _c("agent.service-id", "service_id", lambda c: c.agent.service("")),
    _c("agent.service-hash", "watch", lambda c: c.agent.service("web", watch=7)),
    _c("agent.services-filter", "filter", lambda c: c.agent.services(filter=1)),
    _c("agent.members-wan", "wan", lambda c: c.agent.members(wan="yes")),
    _c("agent.service_register-port", "port", lambda c: c.agent.service_register("w", port="80")),
    _c("agent.service_register-tags", "tags", lambda c: c.agent.service_register("w", tags="a")),
    _c("agent.check_register-ttl", "ttl", lambda c: c.agent.check_register("c", ttl="10")),
    _c("agent.check_update-status", "status", lambda c: c.agent.check_update("c", "sick")),
    _c("agent.check_pass-id", "check_id", lambda c: c.agent.check_pass("")),
    _c("agent.node_maintenance-enable", "enable", lambda c: c.agent.node_maintenance("yes")),
    _c("agent.service_deregister-id", "service_id", lambda c: c.agent.service_deregister(None)),
    # events
    _c("event.fire-name", "name", lambda c: c.event.fire("")),
    _c("event.fire-payload-type", "payload", lambda c: c.event.fire("deploy", 5)),
    _c("event.fire-node-regex", "node", lambda c: c.event.fire("deploy", node="(")),
    _c("event.items-name", "name", lambda c: c.event.items(5)),
    # sessions
    _c("session.create-ttl-unitless", "ttl", lambda c: c.session.create(ttl="15")),
    _c("session.create-ttl-range", "ttl", lambda c: c.session.create(ttl="48h")),
    _c("session.create-behavior", "behavior", lambda c: c.session.create(behavior="drop")),
    _c("session.create-lock-delay", "lock_delay", lambda c: c.session.create(lock_delay=-1)),
    _c("session.create-checks", "checks", lambda c: c.session.create(checks="serfHealth")),
    _c("session.destroy-id", "session", lambda c: c.session.destroy(5)),
    _c("session.renew-id", "session", lambda c: c.session.renew("")),
    _c("session.info-id", "session", lambda c: c.session.info(None)),
    _c("session.node-node", "node", lambda c: c.session.node("")),
    _c("session.list-consistency", "consistency", lambda c: c.session.list(consistency="x")),
    # status, txn
    _c("status.leader-dc", "dc", lambda c: c.status.leader(dc=5)),
    _c("status.peers-dc", "dc", lambda c: c.status.peers(dc=[])),
    _c("txn.execute-type", "operations", lambda c: c.txn.execute("KV")),
    _c("txn.execute-verb", "operations", lambda c: c.txn.execute([{"KV": {"Verb": "nuke"}}])),
    _c("txn.execute-item", "operations", lambda c: c.txn.execute([5])),
]

WATCH_CASES = [
    _c("watch-query", "query", lambda c: watch("app/")),
    _c("watch-wait-unitless", "wait", lambda c: watch(c.kv.get("a"), wait="10")),
    _c("watch-wait-zero", "wait", lambda c: watch(c.kv.get("a"), wait=0)),
    _c("watch-wait-too-long", "wait", lambda c: watch(c.kv.get("a"), wait="11m")),
    _c("watch-wait-type", "wait", lambda c: watch(c.kv.get("a"), wait=[1])),
    _c("watch-initial", "initial", lambda c: watch(c.kv.get("a"), initial="no")),
    _c("watch-rate-limit", "rate_limit", lambda c: watch(c.kv.get("a"), rate_limit=5)),
    _c("watch-rate-burst", "rate_limit", lambda c: RateLimit(burst=0)),
    _c("watch-rate-per-second", "rate_limit.per_second", lambda c: RateLimit(per_second=-1)),
    _c("watch-backoff", "backoff", lambda c: watch(c.kv.get("a"), backoff=(1, 2))),
    _c("watch-backoff-order", "backoff", lambda c: Backoff(base=2, cap=1)),
    _c("watch-retry", "retry", lambda c: watch(c.kv.get("a"), retry=True)),
    _c("watch-clock", "clock", lambda c: watch(c.kv.get("a"), clock=1.0)),
    _c("watch-events", "events", lambda c: watch(c.event.items(), events="old")),
]

OPS_CASES = [
    _c("ops.match-regex", "pattern", lambda c: ops.match("(")),
    _c("ops.match-type", "pattern", lambda c: ops.match(5)),
    _c("ops.match-field", "field", lambda c: ops.match("a", field="")),
    _c("ops.debounce-negative", "quiet", lambda c: ops.debounce(-1)),
    _c("ops.debounce-unitless", "quiet", lambda c: ops.debounce("10")),
    _c("ops.debounce-max-wait", "max_wait", lambda c: ops.debounce(1, max_wait="soon")),
    _c("ops.debounce-clock", "clock", lambda c: ops.debounce(1, clock=object())),
    _c("ops.throttle-zero", "interval", lambda c: ops.throttle(0)),
    _c("ops.throttle-timedelta", "interval", lambda c: ops.throttle(timedelta(seconds=-1))),
    _c("ops.distinct-key", "key", lambda c: ops.distinct(5)),
    _c("ops.diff-key", "key", lambda c: ops.diff("Key")),
    _c("ops.decode-format", "fmt", lambda c: ops.decode("xml")),
    _c("ops.combine-empty", "streams", lambda c: ops.combine()),
    _c("ops.combine-source", "a", lambda c: ops.combine(a=[1, 2])),
]

RECIPE_CASES = [
    _c("config-both", "prefix/key", lambda c: config_events(c, "app/", key="app.json")),
    _c("config-neither", "prefix/key", lambda c: config_events(c)),
    _c("config-format", "format", lambda c: config_events(c, "app/", format="xml")),
    _c("config-debounce", "debounce", lambda c: config_events(c, "app/", debounce=-1)),
    _c("config-wait", "wait", lambda c: config_events(c, "app/", wait="10")),
    _c("config-validate", "validate", lambda c: config_events(c, "app/", validate=5)),
    _c("config-retry", "retry", lambda c: config_events(c, "app/", retry=True)),
    _c("config-backoff", "backoff", lambda c: config_events(c, "app/", backoff=(1, 2))),
    _c("config-rng", "rng", lambda c: config_events(c, "app/", rng=7)),
    _c("live-config-retry", "retry", lambda c: LiveConfig(c, "app/", retry="yes")),
    _c("live-config-ready", "ready_timeout", lambda c: LiveConfig(c, "app/", ready_timeout=-1)),
    _c("instances-service", "service", lambda c: watch_instances(c, "")),
    _c("instances-passing", "passing", lambda c: watch_instances(c, "web", passing="y")),
    _c("instances-wait", "wait", lambda c: watch_instances(c, "web", wait="forever")),
    _c("instances-strategy", "strategy", lambda c: ServiceInstances(c, "web", strategy="best")),
    _c("services-filter", "filter", lambda c: watch_services(c, filter=5)),
    _c("lock-key", "key", lambda c: Lock(c, "")),
    _c("lock-key-slash", "key", lambda c: Lock(c, "/locks/a")),
    _c("lock-key-dot-segment", "key", lambda c: Lock(c, "locks/../a")),
    _c("elect-key-slash", "key", lambda c: elect(c, "/leader")),
    _c("lock-ttl", "ttl", lambda c: Lock(c, "locks/a", ttl=1)),
    _c("lock-behavior", "behavior", lambda c: Lock(c, "locks/a", behavior="keep")),
    _c("lock-delay", "lock_delay", lambda c: Lock(c, "locks/a", lock_delay=-1)),
    _c("elect-ttl", "ttl", lambda c: elect(c, "leader", ttl=1)),
    _c("semaphore-limit", "limit", lambda c: Semaphore(c, "sem/", 0)),
    _c("semaphore-prefix", "prefix", lambda c: Semaphore(c, "", 2)),
    _c("semaphore-prefix-slash", "prefix", lambda c: Semaphore(c, "/sem/", 2)),
]


async def _call(case: Case, client: Consul) -> None:
    result = case.call(client)
    # Async entry points check when awaited, before any I/O; async generators at call.
    if inspect.isawaitable(result):
        await result


@pytest.mark.parametrize(
    "case", CLIENT_CASES + ENDPOINT_CASES + WATCH_CASES + OPS_CASES + RECIPE_CASES
)
async def test_bad_argument_is_refused_before_sending(
    case: Case, consul_agent: DevAgent, consul_client: Consul
) -> None:
    """InvalidArgument naming the parameter and what is accepted; nothing reaches the agent."""
    with pytest.raises(InvalidArgument) as info:
        await _call(case, consul_client)
    exc = info.value
    assert _names(exc.parameter, case.parameter), str(exc)
    message = str(exc)
    assert message.startswith(f"{exc.parameter}: "), message
    assert len(message) > len(case.parameter) + 12, f"message says too little: {message!r}"
    assert TOKEN not in message
    assert consul_agent.requests == [], consul_agent.requests


async def test_token_never_in_invalid_argument_message(consul_agent: DevAgent) -> None:
    """A token given next to a bad argument is not echoed back."""
    with pytest.raises(InvalidArgument) as info:
        Consul(consul_agent.url, token=TOKEN, timeout="10", environ={})
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)


async def test_consul_with_meta_seed_is_accepted(consul_client: Consul) -> None:
    """Control: the accepted forms used by the table really are accepted."""
    consul_client.kv.get("a", watch=Meta(index=7))
    consul_client.kv.get("a", watch=(7, "10s"))
    watch(consul_client.kv.get("a"), wait="10s")
    ops.debounce("10ms")
    ops.match(re.compile("a"))


# --- the CLI ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def threaded_agent() -> Iterator[DevAgent]:
    """A dev agent in its own thread and loop: ``main()`` runs its own ``asyncio.run``."""
    loop = asyncio.new_event_loop()
    agent = DevAgent(jitter=False)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(agent.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="dev-agent", daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield agent
    finally:
        asyncio.run_coroutine_threadsafe(agent.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


CLI_CASES = [
    pytest.param([], id="no-command"),
    pytest.param(["watch"], id="watch-no-type"),
    pytest.param(["watch", "bogus"], id="watch-bad-type"),
    pytest.param(["watch", "key"], id="watch-key-missing"),
    pytest.param(["watch", "key", "-key", "a", "--wait", "10"], id="wait-unitless"),
    pytest.param(["watch", "key", "-key", "a", "--wait", "0s"], id="wait-zero"),
    pytest.param(["watch", "key", "-key", "a", "--wait", "-1s"], id="wait-negative"),
    pytest.param(["watch", "key", "-key", "a", "--wait", "11m"], id="wait-too-long"),
    pytest.param(["watch", "keyprefix", "-prefix", "a/", "--match", "("], id="match-regex"),
    pytest.param(["watch", "key", "-key", "a", "--debounce", "soon"], id="debounce-text"),
    pytest.param(["watch", "key", "-key", "a", "--debounce", "-1s"], id="debounce-negative"),
    pytest.param(["watch", "key", "-key", "a", "--max-wait", "1s"], id="max-wait-alone"),
    pytest.param(["watch", "key", "-key", "a", "--count", "x"], id="count-text"),
    pytest.param(["watch", "key", "-key", "a", "--count", "0"], id="count-zero"),
    pytest.param(["watch", "key", "-key", "a", "-filter", "x"], id="filter-on-key"),
    pytest.param(["watch", "checks", "-service", "w", "-state", "any"], id="service-and-state"),
    pytest.param(["watch", "checks", "-state", "sick"], id="state-choice"),
    pytest.param(["watch", "services", "--format", "xml"], id="format-choice"),
    pytest.param(["watch", "key", "-key", "/a"], id="key-leading-slash"),
    pytest.param(["watch", "keyprefix", "-prefix", "/a/"], id="prefix-leading-slash"),
    pytest.param(["watch", "service", "-service", "web", "-tag", ""], id="service-empty-tag"),
    pytest.param(["watch", "key", "-key", "a", "-http-addr", "ftp://x:1"], id="addr-scheme"),
    pytest.param(["watch", "key", "-key", "a", "-http-addr", "h:port"], id="addr-port"),
    pytest.param(["watch", "key", "-key", "a", "--bogus"], id="unknown-flag"),
    pytest.param(["kv"], id="kv-no-command"),
    pytest.param(["kv", "get"], id="kv-get-no-key"),
    pytest.param(["kv", "put", "/a", "v"], id="kv-put-leading-slash"),
    pytest.param(["kv", "put", "a", "v", "--cas", "x"], id="kv-put-cas-text"),
    pytest.param(["kv", "put", "a", "v", "--cas", "-1"], id="kv-put-cas-negative"),
    pytest.param(["kv", "put", "a", "v", "--flags", "-1"], id="kv-put-flags-negative"),
    pytest.param(["event", "fire"], id="event-no-name"),
    pytest.param(["dev", "--port", "70000"], id="dev-port-range"),
    pytest.param(["demo", "--duration", "-1"], id="demo-duration"),
    pytest.param(["demo", "--debounce", "10"], id="demo-debounce"),
]


@pytest.mark.parametrize("argv", CLI_CASES)
def test_cli_bad_flag_exits_with_one_line(
    argv: list[str],
    threaded_agent: DevAgent,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Non-zero status, one line on stderr naming the problem, and no request sent."""
    monkeypatch.setenv("CONSUL_HTTP_ADDR", threaded_agent.address)
    monkeypatch.delenv("CONSUL_HTTP_TOKEN", raising=False)
    seen = len(threaded_agent.requests)
    # --once: a watch that wrongly starts still ends after its first result.
    status = main([*argv, "--once"] if argv[:1] == ["watch"] and len(argv) > 1 else argv)
    err = capsys.readouterr().err
    assert status != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("consul-streams: error: "), err
    assert len(threaded_agent.requests) == seen, threaded_agent.requests[seen:]


#: Endpoint methods without any argument that could be malformed.
_NO_ARGUMENTS = {"catalog.datacenters"}


def test_every_endpoint_method_has_a_bad_input_case() -> None:
    """The table keeps up with the endpoints: each public method has a case."""
    client = Consul("127.0.0.1:8500", environ={})
    methods = {
        f"{attr}.{name}"
        for attr in ("kv", "catalog", "health", "agent", "event", "session", "status", "txn")
        for name, member in inspect.getmembers(getattr(client, attr), inspect.ismethod)
        if not name.startswith("_")
    }
    covered = {p.values[0].id.split("-")[0] for p in ENDPOINT_CASES}
    assert methods - covered - _NO_ARGUMENTS == set()
