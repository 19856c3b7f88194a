"""Capacity of the embedded dev agent: write throughput and blocking-query fan-out.

Run: ``python -m benchmarks.agent_capacity`` (or ``python benchmarks/agent_capacity.py``;
``--quick`` for a smoke run of a few seconds, ``--part puts`` for the write rows only).

(a) KV PUTs against aiohttp's own minimal PUT handler (the floor: a ``web.Application`` route
    that reads the body and answers ``true``), over 1 and over 8 connections (target >= 0.8
    with 8). Both servers run in child processes pinned to one CPU, the load generator in this
    process pinned to the other (``_common.pin_cpus``); the load generator writes the same
    request bytes to both over raw asyncio streams (much cheaper than an HTTP client, so the
    server is the bottleneck). Contenders alternate within each of ``--rounds`` rounds; the
    table gives the median and min-max over rounds of requests/s, of the server process's CPU
    time per PUT (insensitive to other load on the machine) and of the per-round ratios.
(b) Time from one write to the wake-up of 1,000 concurrent blocking queries on that key.
(c) 10,000 concurrent blocking queries held by an agent in a child process (the file
    descriptors of both ends would not fit one process), then all woken by one write.
(d) A one-operation ``/v1/txn`` on a store of 20,000 keys against the same on an empty store
    (a transaction journals what it writes; it must not copy the store).
Every agent here runs with ``commit_delay=0`` (capacity, not the pretend Raft latency); one
extra row shows sequential PUTs at the default commit delay. Prints tables; nothing here
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
from pathlib import Path

import aiohttp

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import AgentProcess, machine, median, pin_cpus, print_table
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
    """Requests per second of ``count`` PUTs, sequential on each of ``connections``.

    A minimal HTTP/1.1 client on asyncio streams: the same request bytes for every server,
    keep-alive, the answer's head read up to its blank line and its ``Content-Length`` body.
    """
    host, _, port = url.removeprefix("http://").rpartition(":")
    head = f"PUT /v1/kv/bench HTTP/1.1\r\nHost: {host}:{port}\r\n"

    async def one_connection(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in range(n):
                body = str(i).encode()
                writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                answer = await reader.readuntil(b"\r\n\r\n")
                if not answer.startswith(b"HTTP/1.1 200 "):
                    raise RuntimeError(f"PUT answered {answer[:40]!r}")
                length = 0
                for line in answer.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                if (await reader.readexactly(length)).strip() != b"true":
                    raise RuntimeError("PUT did not answer true")
        finally:
            writer.close()
            await writer.wait_closed()

    start = time.perf_counter()
    share = count // connections
    await asyncio.gather(*(one_connection(share) for _ in range(connections)))
    return share * connections / (time.perf_counter() - start)


class _Sample:
    """Requests/s and the server's and load generator's CPU us per request of one run."""

    def __init__(self, rate: float, cpu_us: float, client_us: float) -> None:
        self.rate = rate
        self.cpu_us = cpu_us
        self.client_us = client_us


async def _measure(server: AgentProcess, count: int, connections: int) -> _Sample:
    before = await server.cpu_seconds()
    client_before = time.process_time()
    rate = await _sequential_puts(server.url, count, connections)
    client = time.process_time() - client_before
    spent = await server.cpu_seconds() - before
    done = count // connections * connections
    return _Sample(rate, spent / done * 1e6, client / done * 1e6)


def _spread(values: list[float], fmt: str) -> str:
    """``median (min-max)`` of ``values`` formatted with ``fmt``."""
    return f"{format(median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


async def put_rows(writes: int, rounds: int) -> None:
    """(a): the dev agent's PUTs against the floor, pinned, interleaved, over ``rounds``."""
    plan = pin_cpus()
    print(machine())
    print(f"{plan}; {rounds} rounds x {writes:,} PUTs per contender and connection count")
    contenders = ("aiohttp minimal handler", "dev agent")
    samples: dict[tuple[str, int], list[_Sample]] = {
        (name, conns): [] for name in contenders for conns in (1, 8)
    }
    async with (
        AgentProcess(cpu=plan.server, floor=True) as floor,
        AgentProcess(cpu=plan.server, commit_delay=0) as agent,
    ):
        servers = dict(zip(contenders, (floor, agent), strict=True))
        for server in servers.values():  # warm up: imports, first connections, code paths
            await _sequential_puts(server.url, max(64, writes // 10), 8)
        for round_ in range(rounds):
            order = contenders if round_ % 2 == 0 else contenders[::-1]
            for conns in (1, 8):
                for name in order:
                    samples[name, conns].append(await _measure(servers[name], writes, conns))
    rows: list[tuple[str, ...]] = []
    for conns in (1, 8):
        base = samples[contenders[0], conns]
        for name in contenders:
            runs = samples[name, conns]
            rate_ratio = [s.rate / b.rate for s, b in zip(runs, base, strict=True)]
            cpu_ratio = [s.cpu_us / b.cpu_us for s, b in zip(runs, base, strict=True)]
            rows.append(
                (
                    f"{name}, {conns} conn{'s' if conns > 1 else ''}",
                    _spread([s.rate for s in runs], ",.0f"),
                    _spread(rate_ratio, ".2f"),
                    _spread([s.cpu_us for s in runs], ".0f"),
                    _spread(cpu_ratio, ".2f"),
                    _spread([s.client_us for s in runs], ".0f"),
                )
            )
    print_table(
        (
            "server",
            "PUT/s",
            "PUT/s vs floor",
            "server CPU us/PUT",
            "CPU vs floor",
            "load gen. CPU us/PUT",
        ),
        rows,
    )
    print("(median (min-max) over rounds; ratios per round; target: PUT/s vs floor >= 0.8)")


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
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--part", choices=("all", "puts"), default="all")
    parser.add_argument("--writes", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--held", type=int, default=10_000)
    parser.add_argument("--store", type=int, default=20_000, help="keys for the txn measure")
    args = parser.parse_args(argv)
    if args.quick:
        args.writes, args.rounds = 400, 2
        args.watchers, args.held, args.store = 100, 500, 2_000

    await put_rows(args.writes, args.rounds)
    if args.part == "puts":
        return
    # The rows above measure capacity, so the agents run with commit_delay=0; this one shows
    # what the default commit delay (a dev agent's Raft commit, issue 9) costs one writer.
    async with AgentProcess() as agent:
        delayed_rate = await _sequential_puts(agent.url, max(1, args.writes // 20))
    txn_empty, txn_full = await _txn_cost(args.store, 200)
    wake = await _in_process(args.watchers)
    wake_many, held_for = await _child_process(args.held)
    wake_floor, _ = await _child_process(args.held, _BASELINE_CHILD)

    print()
    print_table(
        ("measure", "result"),
        [
            ("dev agent KV PUT, default 10 ms commit delay", f"{delayed_rate:,.0f} req/s"),
            ("one-op txn, empty store", f"{txn_empty * 1000:.2f} ms"),
            (f"one-op txn, {args.store:,}-key store", f"{txn_full * 1000:.2f} ms"),
            ("ratio (target <= 1.5)", f"{txn_full / txn_empty:.2f}"),
            (f"write -> {args.watchers:,} blocked GETs answered", f"{wake * 1000:,.1f} ms"),
            (f"{args.held:,} blocked GETs parked (child agent)", f"after {held_for:.1f} s"),
            (f"write -> {args.held:,} blocked GETs answered", f"{wake_many * 1000:,.1f} ms"),
            ("the same, aiohttp minimal long-poll handler", f"{wake_floor * 1000:,.1f} ms"),
            ("ratio (target <= 1.5)", f"{wake_many / wake_floor:.2f}"),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
