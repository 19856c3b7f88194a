"""Capacity of the embedded dev agent: write throughput and blocking-query fan-out.

Run: ``python -m benchmarks.agent_capacity`` (or ``python benchmarks/agent_capacity.py``).

(a) KV writes/s from one client, sequential PUTs, against aiohttp's own minimal handler on the
    same machine, printed as a ratio (target >= 0.5).
(b) Time from one write to the wake-up of 1,000 concurrent blocking queries on that key.
(c) 10,000 concurrent blocking queries held by an agent in a child process (the file
    descriptors of both ends would not fit one process), then all woken by one write.
(d) KV PUTs/s over 8 concurrent connections, against the same minimal handler.
(e) A one-operation ``/v1/txn`` on a store of 20,000 keys against the same on an empty store
    (a transaction journals what it writes; it must not copy the store).
Every agent here runs with ``commit_delay=0`` (capacity, not the pretend Raft latency); one
extra row shows sequential PUTs at the default commit delay. Prints a table; nothing here
asserts on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from consul_streams.testing import DevAgent

_CHILD = """
import asyncio, sys
from consul_streams.testing import DevAgent

async def main():
    loop = asyncio.get_running_loop()
    async with DevAgent(jitter=False, http_max_conns_per_client=0, commit_delay=0) as agent:
        print(agent.url, flush=True)
        # Each stdin line asks how many blocking queries are parked; EOF stops the agent.
        while await loop.run_in_executor(None, sys.stdin.readline):
            print(agent.blocked_queries, flush=True)

asyncio.run(main())
"""

# The floor for (c): aiohttp's minimal long-poll handler, parked GETs woken by one PUT.
_BASELINE_CHILD = """
import asyncio, sys
from aiohttp import web

async def main():
    loop = asyncio.get_running_loop()
    state = {"event": asyncio.Event(), "index": 1, "parked": 0}

    async def get(request):
        if "index" in request.query:
            event = state["event"]
            state["parked"] += 1
            try:
                await event.wait()
            finally:
                state["parked"] -= 1
        headers = {"X-Consul-Index": str(state["index"])}
        return web.Response(body=b"[]", content_type="application/json", headers=headers)

    async def put(request):
        await request.read()
        state["index"] += 1
        state["event"].set()
        state["event"] = asyncio.Event()
        return web.Response(body=b"true", content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/kv/hot", get)
    app.router.add_put("/v1/kv/hot", put)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    while await loop.run_in_executor(None, sys.stdin.readline):
        print(state["parked"], flush=True)
    await runner.cleanup()

asyncio.run(main())
"""


async def _sequential_puts(url: str, count: int, connections: int = 1) -> float:
    """Requests per second of ``count`` PUTs, sequential on each of ``connections``."""
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_connection(n: int) -> None:
            for i in range(n):
                async with session.put(f"{url}/v1/kv/bench", data=str(i).encode()) as resp:
                    await resp.read()

        start = time.perf_counter()
        share = count // connections
        await asyncio.gather(*(one_connection(share) for _ in range(connections)))
        return share * connections / (time.perf_counter() - start)


async def _txn_seconds(url: str, count: int) -> float:
    """Median seconds of ``count`` one-operation KV transactions."""
    op = json.dumps([{"KV": {"Verb": "set", "Key": "txn/one", "Value": "MQ=="}}]).encode()
    times: list[float] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            start = time.perf_counter()
            async with session.put(f"{url}/v1/txn", data=op) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"txn answered {resp.status}")
            times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _txn_cost(keys: int, count: int) -> tuple[float, float]:
    """(median one-op txn seconds on an empty store, the same on a ``keys``-key store)."""
    async with DevAgent(jitter=False, commit_delay=0) as agent:
        empty = await _txn_seconds(agent.url, count)
    async with DevAgent(jitter=False, commit_delay=0) as agent, aiohttp.ClientSession() as session:
        for start in range(0, keys, 128):
            batch = [
                {"KV": {"Verb": "set", "Key": f"fill/{i:06d}", "Value": "eA=="}}
                for i in range(start, min(keys, start + 128))
            ]
            async with session.put(f"{agent.url}/v1/txn", data=json.dumps(batch)) as resp:
                await resp.read()
        full = await _txn_seconds(agent.url, count)
    return empty, full


async def _baseline_rate(count: int, connections: int = 1) -> float:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"true", content_type="application/json")

    app = web.Application()
    app.router.add_route("PUT", "/v1/kv/{key:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        return await _sequential_puts(f"http://127.0.0.1:{port}", count, connections)
    finally:
        await runner.cleanup()


async def _fan_out(url: str, watchers: int, held: Callable[[], Awaitable[None]]) -> float:
    """Seconds from one write to the answer of ``watchers`` blocked GETs (all must be 200)."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with session.put(f"{url}/v1/kv/hot", data=b"0") as resp:
            await resp.read()
        async with session.get(f"{url}/v1/kv/hot") as resp:
            index = int(resp.headers["X-Consul-Index"])

        async def watch() -> int:
            async with session.get(f"{url}/v1/kv/hot?index={index}&wait=5m") as resp:
                await resp.read()
                return resp.status

        tasks = [asyncio.ensure_future(watch()) for _ in range(watchers)]
        await held()
        start = time.perf_counter()
        async with session.put(f"{url}/v1/kv/hot", data=b"1") as resp:
            await resp.read()
        statuses = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    if set(statuses) != {200}:
        raise RuntimeError(f"some watchers failed: {sorted(set(statuses))}")
    return elapsed


async def _in_process(watchers: int) -> float:
    async with DevAgent(jitter=False, http_max_conns_per_client=0, commit_delay=0) as agent:

        async def held() -> None:
            await asyncio.wait_for(agent.wait_blocked(watchers), 120)

        return await _fan_out(agent.url, watchers, held)


async def _child_process(watchers: int, script: str = _CHILD) -> tuple[float, float]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdin is not None
    url = (await child.stdout.readline()).decode().strip()
    held_for = 0.0

    async def held() -> None:
        nonlocal held_for
        assert child.stdout is not None
        assert child.stdin is not None
        start = time.perf_counter()
        while True:  # ask the child agent how many queries it holds
            child.stdin.write(b"count\n")
            await child.stdin.drain()
            if int(await child.stdout.readline()) >= watchers:
                break
            await asyncio.sleep(0.25)
        held_for = time.perf_counter() - start

    try:
        wake = await _fan_out(url, watchers, held)
    finally:
        child.stdin.close()
        await child.wait()
    return wake, held_for


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--held", type=int, default=10_000)
    parser.add_argument("--store", type=int, default=20_000, help="keys for the txn measure")
    args = parser.parse_args(argv)

    baseline = agent_rate = baseline8 = agent_rate8 = 0.0
    for _ in range(2):  # best of two rounds, alternating, so warm-up favours neither side
        baseline = max(baseline, await _baseline_rate(args.writes))
        baseline8 = max(baseline8, await _baseline_rate(args.writes, 8))
        async with DevAgent(jitter=False, commit_delay=0) as agent:
            agent_rate = max(agent_rate, await _sequential_puts(agent.url, args.writes))
            agent_rate8 = max(agent_rate8, await _sequential_puts(agent.url, args.writes, 8))
    # The rows above measure capacity, so the agents run with commit_delay=0; this one shows
    # what the default commit delay (a dev agent's Raft commit, issue 9) costs one writer.
    async with DevAgent(jitter=False) as agent:
        delayed_rate = await _sequential_puts(agent.url, max(1, args.writes // 10))
    txn_empty, txn_full = await _txn_cost(args.store, 200)
    wake = await _in_process(args.watchers)
    wake_many, held_for = await _child_process(args.held)
    wake_floor, _ = await _child_process(args.held, _BASELINE_CHILD)

    rows = [
        ("aiohttp minimal PUT handler", f"{baseline:,.0f} req/s"),
        ("dev agent KV PUT", f"{agent_rate:,.0f} req/s"),
        ("ratio (target >= 0.5)", f"{agent_rate / baseline:.2f}"),
        ("dev agent KV PUT, default 10 ms commit delay", f"{delayed_rate:,.0f} req/s"),
        ("aiohttp minimal PUT handler, 8 connections", f"{baseline8:,.0f} req/s"),
        ("dev agent KV PUT, 8 connections", f"{agent_rate8:,.0f} req/s"),
        ("ratio, 8 connections (target >= 0.8)", f"{agent_rate8 / baseline8:.2f}"),
        ("one-op txn, empty store", f"{txn_empty * 1000:.2f} ms"),
        (f"one-op txn, {args.store:,}-key store", f"{txn_full * 1000:.2f} ms"),
        ("ratio (target <= 1.5)", f"{txn_full / txn_empty:.2f}"),
        (f"write -> {args.watchers:,} blocked GETs answered", f"{wake * 1000:,.1f} ms"),
        (f"{args.held:,} blocked GETs parked (child agent)", f"after {held_for:.1f} s"),
        (f"write -> {args.held:,} blocked GETs answered", f"{wake_many * 1000:,.1f} ms"),
        ("the same, aiohttp minimal long-poll handler", f"{wake_floor * 1000:,.1f} ms"),
        ("ratio (target <= 1.5)", f"{wake_many / wake_floor:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  result")
    print(f"{'-' * width}  {'-' * 24}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    asyncio.run(main())
