"""Every public parameter that takes a duration accepts the same forms and fails the same way.

Forms: seconds as int/float, a Go duration string (``time.ParseDuration``: "2m30s", "1.5h",
"300ms"), a timedelta. A bad value raises ``InvalidArgument`` naming the parameter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from consul_streams import Consul, InvalidArgument, Request, Response, ops, watch
from consul_streams.recipes import LiveConfig, Lock, Semaphore, config_events
from consul_streams.testing import MockTransport

# The same 12.5 s, in each form.
FORMS: list[object] = [12.5, "12.5s", "12s500ms", timedelta(seconds=12.5)]

Make = Callable[[Consul, object], object]

CASES: list[tuple[str, Make]] = [
    ("wait", lambda c, d: watch(c.kv.get("k"), wait=d)),  # type: ignore[arg-type]
    ("ttl", lambda c, d: Lock(c, "k", ttl=d)),  # type: ignore[arg-type]
    ("lock_delay", lambda c, d: Lock(c, "k", lock_delay=d)),  # type: ignore[arg-type]
    ("retry_interval", lambda c, d: Lock(c, "k", retry_interval=d)),  # type: ignore[arg-type]
    ("wait", lambda c, d: Lock(c, "k", wait=d)),  # type: ignore[arg-type]
    ("ttl", lambda c, d: Semaphore(c, "p", limit=2, ttl=d)),  # type: ignore[arg-type]
    ("debounce", lambda c, d: config_events(c, "app/", debounce=d)),  # type: ignore[arg-type]
    ("max_wait", lambda c, d: config_events(c, "app/", max_wait=d)),  # type: ignore[arg-type]
    ("ready_timeout", lambda c, d: LiveConfig(c, "app/", ready_timeout=d)),  # type: ignore[arg-type]
    ("quiet", lambda c, d: ops.debounce(d)),  # type: ignore[arg-type]
    ("max_wait", lambda c, d: ops.debounce(1, max_wait=d)),  # type: ignore[arg-type]
    ("interval", lambda c, d: ops.throttle(d)),  # type: ignore[arg-type]
    ("timeout", lambda c, d: Consul(timeout=d, environ={})),  # type: ignore[arg-type]
]
IDS = [f"{i}-{name}" for i, (name, _) in enumerate(CASES)]


async def _close(made: object) -> None:
    aclose = getattr(made, "aclose", None)
    if aclose is not None and not isinstance(made, (Lock, Semaphore)):
        await aclose()


@pytest.mark.parametrize(("parameter", "make"), CASES, ids=IDS)
@pytest.mark.parametrize("duration", FORMS, ids=repr)
async def test_every_form_is_accepted(parameter: str, make: Make, duration: object) -> None:
    client = Consul(environ={})
    try:
        await _close(make(client, duration))
    finally:
        await client.aclose()


@pytest.mark.parametrize(("parameter", "make"), CASES, ids=IDS)
@pytest.mark.parametrize("bad", ["soon", "10", True, [1]], ids=repr)
async def test_a_bad_form_names_the_parameter(parameter: str, make: Make, bad: object) -> None:
    client = Consul(environ={})
    try:
        with pytest.raises(InvalidArgument) as info:
            make(client, bad)
        assert info.value.parameter == parameter
        assert "Go duration" in str(info.value)
    finally:
        await client.aclose()


def test_the_watch_wait_rule_is_zero_exclusive_to_ten_minutes() -> None:
    query = Consul(environ={}).kv.get("k")
    assert watch(query, wait="10m").config.wait == 600
    for bad in ("0s", 0, "10m1s", timedelta(minutes=11)):
        with pytest.raises(InvalidArgument, match=r"^wait: .*at most 10m"):
            watch(query, wait=bad)


async def test_session_ttl_forms_send_the_same_body() -> None:
    bodies: list[Any] = []

    def handler(request: Request) -> Response:
        bodies.append(json.loads(request.body or b"{}"))
        return Response(200, {}, b'{"ID": "s1"}')

    async with Consul(transport=MockTransport(handler), environ={}) as client:
        for duration in (90, "1m30s", timedelta(seconds=90)):
            await client.session.create(ttl=duration)
    assert bodies[0] == bodies[1] == bodies[2]
    assert "TTL" in bodies[0]
