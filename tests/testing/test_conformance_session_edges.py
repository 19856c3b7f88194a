"""Session edge cases as the state store answers them (``agent/consul/kvs_endpoint.go``
kvsPreApply, ``agent/consul/state/kvs.go`` kvsLockTxn/kvsUnlockTxn, ``state/session.go``)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp

from consul_streams.testing import DevAgent

from ._http_helpers import Http, agent, http

__all__ = ["agent", "http"]


async def session(http: Http, body: object | None = None) -> str:
    r = await http.put("/v1/session/create", None if body is None else json.dumps(body))
    assert r.status == 200, r.text
    sid = r.json()["ID"]
    assert isinstance(sid, str)
    return sid


async def node_check(http: Http, check_id: str, status: str) -> None:
    body = {
        "Node": "dev",
        "Address": "127.0.0.1",
        "Check": {"CheckID": check_id, "Name": check_id, "Status": status},
    }
    assert (await http.put("/v1/catalog/register", json.dumps(body))).status == 200


async def test_lock_delay_is_checked_before_the_session(http: Http) -> None:
    """kvsPreApply rejects a lock in the lock delay before kvsLockTxn validates the session:
    inside the window even an unknown session gets ``false``, not ``invalid session``."""
    holder = await session(http, {"LockDelay": "60s"})
    assert (await http.put(f"/v1/kv/l?acquire={holder}", b"1")).json() is True
    await http.put(f"/v1/session/destroy/{holder}")
    ghost = str(uuid.uuid4())
    r = await http.put(f"/v1/kv/l?acquire={ghost}", b"1")
    assert (r.status, r.json()) == (200, False)
    # The invalidated session itself is just as unknown now.
    assert (await http.put(f"/v1/kv/l?acquire={holder}", b"1")).json() is False
    # Outside the window (another key) the unknown session is an error again.
    r = await http.put(f"/v1/kv/other?acquire={ghost}", b"1")
    assert (r.status, r.text) == (500, f'invalid session "{ghost}"')


async def test_invalidated_session_without_lock_delay_is_invalid(http: Http) -> None:
    """kvsLockTxn: a destroyed session no longer exists (no lock delay to hide it)."""
    sid = await session(http, {"LockDelay": 0})
    await http.put(f"/v1/kv/l?acquire={sid}", b"1")
    await http.put(f"/v1/session/destroy/{sid}")
    r = await http.put(f"/v1/kv/l?acquire={sid}", b"1")
    assert (r.status, r.text) == (500, f'invalid session "{sid}"')


async def test_release_never_checks_that_the_session_exists(http: Http) -> None:
    """kvsUnlockTxn: only an empty session is an error; others just do not hold the key."""
    sid = await session(http)
    assert (await http.put(f"/v1/kv/l?acquire={sid}", b"1")).json() is True
    ghost = str(uuid.uuid4())
    r = await http.put(f"/v1/kv/l?release={ghost}", b"1")
    assert (r.status, r.json()) == (200, False)
    r = await http.put(f"/v1/kv/missing?release={ghost}", b"1")
    assert (r.status, r.json()) == (200, False)
    r = await http.put("/v1/kv/l?release=", b"1")
    assert (r.status, r.text) == (500, "missing session")
    assert (await http.get("/v1/kv/l")).json()[0]["Session"] == sid


async def test_critical_node_check_invalidates_and_starts_lock_delay(http: Http) -> None:
    """state/session.go: a session's node check turning critical invalidates it; its locks
    are released and held back by the lock delay."""
    await node_check(http, "disk", "passing")
    sid = await session(http, {"NodeChecks": ["serfHealth", "disk"], "LockDelay": "60s"})
    other = await session(http)
    assert (await http.put(f"/v1/kv/l?acquire={sid}", b"1")).json() is True
    await node_check(http, "disk", "critical")
    assert (await http.get(f"/v1/session/info/{sid}")).json() == []
    entry = (await http.get("/v1/kv/l")).json()[0]
    assert "Session" not in entry
    assert entry["LockIndex"] == 1
    assert (await http.put(f"/v1/kv/l?acquire={other}", b"1")).json() is False


async def test_session_create_needs_healthy_existing_checks(http: Http) -> None:
    """state/session.go validateSessionChecksTxn: missing or critical checks refuse."""
    r = await http.put("/v1/session/create", json.dumps({"NodeChecks": ["nope"]}))
    assert (r.status, r.text) == (500, "Missing check 'nope' registration")
    await node_check(http, "down", "critical")
    r = await http.put("/v1/session/create", json.dumps({"NodeChecks": ["down"]}))
    assert (r.status, r.text) == (500, "Check 'down' is in critical state")
    r = await http.put("/v1/session/create", json.dumps({"Node": "elsewhere"}))
    assert (r.status, r.text) == (500, "Missing node registration")


async def test_txn_lock_checks(http: Http) -> None:
    """Txn.preCheck (lock delay) and kvsLockTxn/kvsUnlockTxn inside a transaction."""
    holder = await session(http, {"LockDelay": "60s"})
    ghost = str(uuid.uuid4())

    async def txn(*ops: dict[str, object]) -> tuple[int, Any]:
        r = await http.put("/v1/txn", json.dumps([{"KV": op} for op in ops]))
        return r.status, r.json()

    status, body = await txn({"Verb": "lock", "Key": "t", "Session": ghost})
    assert status == 409
    assert body["Errors"] == [{"OpIndex": 0, "What": f'invalid session "{ghost}"'}]
    status, body = await txn({"Verb": "lock", "Key": "t"})
    assert body["Errors"] == [{"OpIndex": 0, "What": "missing session"}]
    status, body = await txn({"Verb": "lock", "Key": "t", "Session": holder})
    assert status == 200
    status, body = await txn({"Verb": "unlock", "Key": "t", "Session": ghost})
    what = 'failed to unlock key "t", lock isn\'t held, or is held by another session'
    assert body["Errors"] == [{"OpIndex": 0, "What": what}]
    await http.put(f"/v1/session/destroy/{holder}")
    status, body = await txn(
        {"Verb": "set", "Key": "x", "Value": None},
        {"Verb": "lock", "Key": "t", "Session": ghost},
        {"Verb": "get", "Key": "missing"},
    )
    # Only the pre-check's error: nothing ran, so the get's error is not reported.
    assert status == 409
    assert body["Errors"] == [{"OpIndex": 1, "What": 'failed to lock key "t" due to lock delay'}]
    assert (await http.get("/v1/kv/x")).status == 404


async def test_deregistering_a_check_invalidates_its_sessions(http: Http) -> None:
    """state/catalog.go deleteCheckTxn deletes the sessions that depend on the check."""
    await node_check(http, "disk", "passing")
    sid = await session(http, {"NodeChecks": ["disk"], "Behavior": "delete", "LockDelay": 0})
    assert (await http.put(f"/v1/kv/l?acquire={sid}", b"1")).json() is True
    body = {"Node": "dev", "CheckID": "disk"}
    assert (await http.put("/v1/catalog/deregister", json.dumps(body))).status == 200
    assert (await http.get(f"/v1/session/info/{sid}")).json() == []
    # Behavior "delete": the held key went with the session.
    assert (await http.get("/v1/kv/l")).status == 404


async def test_an_expiring_ttl_check_invalidates_its_sessions() -> None:
    """A TTL check turning critical (agent/checks CheckTTL) invalidates the sessions that
    depend on it, and a blocking session read sees it go (no polling)."""
    async with (
        DevAgent(jitter=False, node_name="dev", time_scale=0.01) as dev,
        aiohttp.ClientSession() as client,
    ):
        http = Http(dev, client)
        check = {"ID": "beat", "Name": "beat", "TTL": "10s", "Status": "passing"}
        assert (await http.put("/v1/agent/check/register", json.dumps(check))).status == 200
        sid = await session(http, {"NodeChecks": ["serfHealth", "beat"]})
        first = await http.get(f"/v1/session/info/{sid}")
        assert len(first.json()) == 1
        # 10 s of agent time is 0.1 s here; the read returns when the session is destroyed.
        gone = await http.get(f"/v1/session/info/{sid}?index={first.index}&wait=30s")
        assert gone.json() == []
        checks = (await http.get("/v1/agent/checks")).json()
        assert checks["beat"]["Status"] == "critical"
