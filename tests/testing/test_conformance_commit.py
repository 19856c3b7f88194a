"""Writes take the time a Raft commit takes (issue 9, point 5)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from consul_streams.exceptions import InvalidArgument
from consul_streams.testing import DevAgent
from consul_streams.testing._settings import DEFAULT_COMMIT_DELAY


def test_default_is_small_but_not_zero_and_settable() -> None:
    """agent/consul/rpc.go raftApply: a write answers after raft.Apply's future resolves."""
    assert 0 < DEFAULT_COMMIT_DELAY <= 0.05
    assert DevAgent().config.commit_delay == DEFAULT_COMMIT_DELAY
    assert DevAgent(commit_delay=0).config.commit_delay == 0
    assert DevAgent(commit_delay="20ms").config.commit_delay == pytest.approx(0.02)
    with pytest.raises(InvalidArgument, match=r"commit_delay: expected seconds in 0\.\.10"):
        DevAgent(commit_delay=-1)


async def test_a_read_during_a_commit_sees_the_state_before_the_write() -> None:
    """agent/consul/kvs_endpoint.go Apply: the KV store changes only once Raft commits."""
    async with DevAgent(commit_delay=10) as agent, aiohttp.ClientSession() as http:
        put = asyncio.ensure_future(http.put(agent.url + "/v1/kv/k", data=b"v"))
        try:
            await asyncio.wait_for(agent.wait_committing(1), 5)
            async with http.get(agent.url + "/v1/kv/k") as r:
                assert r.status == 404
            # Non-Raft work does not queue behind the commit: agent endpoints, reads.
            reg = json.dumps({"Name": "web"})
            async with http.put(agent.url + "/v1/agent/service/register", data=reg) as r:
                assert r.status == 200
            async with http.get(agent.url + "/v1/catalog/service/web") as r:
                assert len(await r.json()) == 1
            assert agent.committing_writes == 1
            assert not put.done()
        finally:
            put.cancel()
            with pytest.raises(asyncio.CancelledError):
                await put


async def test_every_raft_write_waits_and_zero_means_none() -> None:
    """KV, txn, catalog, session create/destroy, autopilot config go through raftApply."""
    writes = [
        ("PUT", "/v1/kv/a", b"x"),
        ("DELETE", "/v1/kv/a", b""),
        ("PUT", "/v1/txn", b'[{"KV": {"Verb": "set", "Key": "t", "Value": "eA=="}}]'),
        ("PUT", "/v1/catalog/register", b'{"Node": "n", "Address": "10.0.0.1"}'),
        ("PUT", "/v1/catalog/deregister", b'{"Node": "n"}'),
        ("PUT", "/v1/session/create", b""),
        ("PUT", "/v1/operator/autopilot/configuration", b'{"CleanupDeadServers": true}'),
    ]
    async with DevAgent(commit_delay=10) as agent, aiohttp.ClientSession() as http:
        for method, path, body in writes:
            task = asyncio.ensure_future(http.request(method, agent.url + path, data=body))
            await asyncio.wait_for(agent.wait_committing(1), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    async with DevAgent(commit_delay=0) as agent, aiohttp.ClientSession() as http:
        for method, path, body in writes:
            async with http.request(method, agent.url + path, data=body) as r:
                assert r.status == 200, path
        assert agent.committing_writes == 0
