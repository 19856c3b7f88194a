"""A dev agent (or the minimal aiohttp floor) in its own process, driven over stdin/stdout.

Run as ``python benchmarks/_agent_server.py [max_conns_per_client] [--cpu N]
[--commit-delay S] [--floor]``: prints the server's URL, then answers one JSON line per
command line read from stdin:

* ``stats [path-prefix]``: connections (active, peak), blocked queries, request counts (all,
  and GETs under the prefix, split into blocking and non-blocking), RSS in KiB;
* ``blocked N``: wait (up to 30 s) until N blocking queries are held, then answer as ``stats``;
* ``clear``: forget the request log (keeps a long soak from growing the agent);
* ``reset N``: cut the next N soak reads without an answer (a connection-reset fault);
* ``kvset VALUE KEY...``: write ``VALUE`` to every KEY in the agent itself, as transactions
  of at most 64 keys (one index and one wake-up per transaction), so that a benchmark's
  writes cost its own process nothing; answers the new index;
* ``cpu``: this process's CPU time so far (``process_time``, in microseconds, key ``cpu_us``);
* EOF: stop the agent and exit.

``--cpu N`` pins the process to CPU ``N`` (``os.sched_setaffinity``) before it starts
serving; ``--commit-delay`` sets the agent's ``commit_delay`` (default: the agent's own).
``--floor`` serves aiohttp's minimal KV PUT handler instead of a dev agent (a
``web.Application`` route that reads the body and answers ``true``): the floor the agent's
write throughput is compared with; it answers ``cpu`` and ``stats`` (requests only).

A separate process keeps the agent's CPU off the client's event loop and core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

from aiohttp import web

from consul_streams.testing import DevAgent
from consul_streams.testing.state.kv import KVState

#: Consul's limit of operations per transaction.
_TXN_OPS = 64


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _stats(agent: DevAgent, prefix: str) -> dict[str, int]:
    gets = [r for r in agent.requests if r.method == "GET" and r.path.startswith(prefix)]
    blocking = sum(1 for r in gets if any(name == "index" for name, _ in r.query))
    return {
        "active": agent.active_connections,
        "peak": agent.peak_connections,
        "blocked": agent.blocked_queries,
        "requests": len(agent.requests),
        "gets": len(gets),
        "blocking_gets": blocking,
        "rss_kib": _rss_kib(),
    }


def _kvset(agent: DevAgent, words: list[str]) -> int:
    """Write ``words[0]`` to the keys ``words[1:]``, 64 keys per transaction."""
    value, keys = words[0].encode(), words[1:]
    kv = agent.store.get(KVState)
    for start in range(0, len(keys), _TXN_OPS):
        idx = kv.pending_index()
        for key in keys[start : start + _TXN_OPS]:
            kv.set(key, value, 0, idx)
        kv.commit()
    return agent.store.index


def _cpu() -> dict[str, int]:
    return {"cpu_us": round(time.process_time() * 1e6)}


async def _floor() -> None:
    """aiohttp's minimal KV PUT handler: the floor of the dev agent's write throughput."""
    loop = asyncio.get_running_loop()
    count = 0

    async def put(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        await request.read()
        return web.Response(body=b"true", content_type="application/json")

    app = web.Application()
    app.router.add_route("PUT", "/v1/kv/{key:.*}", put)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = line.strip().partition(" ")[0]
            answer = _cpu() if command == "cpu" else {"requests": count, "rss_kib": _rss_kib()}
            print(json.dumps(answer), flush=True)
    finally:
        await runner.cleanup()


async def _agent(max_conns: int, commit_delay: float | None) -> None:
    loop = asyncio.get_running_loop()
    async with DevAgent(
        jitter=False, http_max_conns_per_client=max_conns, commit_delay=commit_delay
    ) as agent:
        print(agent.url, flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command, _, argument = line.strip().partition(" ")
            answer: dict[str, int] = {}
            if command == "clear":
                agent.requests.clear()
            elif command == "reset":
                # The connection-reset fault: the next N soak reads are cut without an answer.
                agent.faults.drop_connection(int(argument), path="/v1/kv/soak/", method="GET")
            elif command == "cpu":
                answer = _cpu()
            elif command == "kvset":
                answer = {"index": _kvset(agent, argument.split())}
            elif command == "blocked":
                try:
                    await asyncio.wait_for(agent.wait_blocked(int(argument)), 30)
                except asyncio.TimeoutError:
                    answer["timeout"] = 1
                answer.update(_stats(agent, "/"))
            else:
                answer = _stats(agent, argument or "/")
            print(json.dumps(answer), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("max_conns", type=int, nargs="?", default=200)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--commit-delay", type=float, default=None)
    parser.add_argument("--floor", action="store_true")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.floor:
        asyncio.run(_floor())
    else:
        asyncio.run(_agent(args.max_conns, args.commit_delay))


if __name__ == "__main__":
    main()
