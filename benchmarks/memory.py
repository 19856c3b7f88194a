"""Memory per unshared watch, next to the floor: one raw aiohttp long-poll parked per connection.

Run: ``.venv/bin/python benchmarks/memory.py`` (``--quick`` for a smoke run; ``--top 15`` to
list where a watch's bytes are allocated).

Each contender parks ``--watches`` long-polls at the agent, one per connection, each on a key
of its own, and the script reports the traced growth (``tracemalloc``, after ``gc.collect()``)
divided by their count, once every one of them is held by the agent:

* ``consul_streams``: ``watch(c.kv.get(key), rate_limit=None, share=False)`` on one client
  whose long-poll budget has a slot for every watch;
* ``raw aiohttp``: a task per key looping ``GET /v1/kv/<key>?index=&wait=`` on one
  ``ClientSession`` with the client's connector settings (``TCPConnector(limit=cap,
  limit_per_host=0)``, a ``total`` deadline, ``Accept-Encoding: identity``), decoding with
  ``json`` and ``base64``: what any Python client holding that many parked requests pays;
* ``raw aiohttp, sock_read timeout``: the same with a ``sock_read`` timeout as well (the
  timer handle aiohttp re-arms per chunk).

Contenders run in rotating order over ``--rounds`` rounds (>= 3 with spread: min-max). The
agent runs in a child process, so only the client's allocations are traced.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import sys
import tracemalloc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import AgentProcess, Board, Writer, machine, median, print_table
from consul_streams import Consul
from consul_streams._budget import slots_for
from consul_streams.watch import watch

#: a watch's parked request: the deadline a 5 min wait gets (wait * 17/16 + 5 s)
DEADLINE = 300 * 17 / 16 + 5.0

Contender = Callable[
    [AgentProcess, list[str], Board, int], Coroutine[Any, Any, list[asyncio.Task[None]]]
]


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _cap(count: int) -> int:
    """The smallest ``max_connections`` whose long-poll budget parks ``count`` watches."""
    cap = count + 1
    while slots_for(cap) < count:
        cap += 1
    return cap


async def _consul_streams(
    agent: AgentProcess, keys: list[str], board: Board, cap: int, holder: list[Any]
) -> list[asyncio.Task[None]]:
    client = Consul(agent.address, environ={}, max_connections=cap)
    holder.append(client)

    async def one(key: str) -> None:
        query = client.kv.get(key)
        async for entry, _meta in watch(query, rate_limit=None, share=False):
            board.arrive(key, entry["Value"] if entry else None, 0.0)

    return [asyncio.create_task(one(key)) for key in keys]


def _raw(sock_read: bool) -> Callable[..., Coroutine[Any, Any, list[asyncio.Task[None]]]]:
    async def start(
        agent: AgentProcess, keys: list[str], board: Board, cap: int, holder: list[Any]
    ) -> list[asyncio.Task[None]]:
        timeout = aiohttp.ClientTimeout(
            total=DEADLINE, sock_connect=30.0, sock_read=DEADLINE if sock_read else None
        )
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=cap, limit_per_host=0), timeout=timeout
        )
        holder.append(http)
        headers = {"Accept-Encoding": "identity"}

        async def read(url: str) -> tuple[bytes | None, int]:
            # A function of its own, so the loop below keeps only the value and the index
            # while the next request is parked (not the previous response).
            async with http.get(url, headers=headers) as resp:
                body = await resp.read()
                new = int(resp.headers.get("X-Consul-Index", "0"))
                if resp.status != 200:
                    return None, new
            return base64.b64decode(json.loads(body)[0]["Value"] or ""), new

        async def one(key: str) -> None:
            url = f"{agent.url}/v1/kv/{key}"
            index = 0
            while True:
                query = f"?index={index}&wait=300000ms" if index else ""
                value, new = await read(url + query)
                board.arrive(key, value, 0.0)
                index = max(new, 1) if new >= index else 0

        return [asyncio.create_task(one(key)) for key in keys]

    return start


CONTENDERS: dict[str, Callable[..., Coroutine[Any, Any, list[asyncio.Task[None]]]]] = {
    "consul_streams (share=False)": _consul_streams,
    "raw aiohttp": _raw(False),
    "raw aiohttp, sock_read timeout": _raw(True),
}


async def measure(
    agent: AgentProcess, name: str, keys: list[str], top: int
) -> tuple[float, list[str]]:
    """Traced bytes per parked long-poll of ``name``, and its top allocation sites."""
    board = Board()
    cap = _cap(len(keys))
    holder: list[Any] = []
    before = await agent.stats()
    tracemalloc.start(25 if top else 1)
    base = _traced()
    first = tracemalloc.take_snapshot() if top else None
    waits = [board.expect(key, b"0", 1) for key in keys]
    tasks = await CONTENDERS[name](agent, keys, board, cap, holder)
    await asyncio.wait_for(asyncio.gather(*waits), 300)
    held = await agent.wait_blocked(before["blocked"] + len(keys))
    if held.get("timeout"):
        raise RuntimeError(f"{name}: not every long-poll was parked: {held}")
    grown = _traced() - base
    sites: list[str] = []
    if first is not None:
        diff = tracemalloc.take_snapshot().compare_to(first, "traceback")
        for stat in diff[:top]:
            frames = list(stat.traceback)  # oldest first: the last frame allocated
            where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"
            origin = next(
                (
                    f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno}"
                    for f in reversed(frames[:-1])
                    if "consul_streams" in f.filename or "benchmarks" in f.filename
                ),
                "",
            )
            per = stat.size_diff / len(keys)
            count = stat.count_diff / len(keys)
            sites.append(f"{per:7.0f} B {count:5.1f} blocks  {where:28s} <- {origin}")
    tracemalloc.stop()
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    for owner in holder:
        await (owner.aclose() if isinstance(owner, Consul) else owner.close())
    return grown / len(keys), sites


async def run(args: argparse.Namespace) -> None:
    names = list(CONTENDERS)
    results: dict[str, list[float]] = {name: [] for name in names}
    tops: dict[str, list[str]] = {}
    async with (
        AgentProcess(max_conns_per_client=args.watches * 2 + 50) as agent,
        Writer(agent.url) as writer,
    ):
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                keys = [f"mem/{round_}/{names.index(name)}/{i:04d}" for i in range(args.watches)]
                await writer.put_many([(key, b"0") for key in keys])
                per, sites = await measure(agent, name, keys, args.top if round_ == 0 else 0)
                results[name].append(per)
                if sites:
                    tops[name] = sites
    floor = results["raw aiohttp"]
    rows = []
    for name in names:
        values = results[name]
        ratios = [v / f for v, f in zip(values, floor, strict=True)]
        rows.append(
            (
                name,
                f"{median(values):,.0f}",
                f"{min(values):,.0f}-{max(values):,.0f}",
                f"{median(ratios):.2f}",
            )
        )
    print(f"# memory per parked long-poll, {args.watches} each, {args.rounds} rounds ({machine()})")
    print_table(("client", "bytes per watch", "spread (min-max)", "vs raw aiohttp"), rows)
    print("target: consul_streams <= 10 KB (10,240 B) per unshared watch")
    for name, sites in tops.items():
        print(f"\ntop allocation sites, {name} (per watch, first round):")
        for line in sites:
            print("  " + line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=200, help="parked long-polls per client")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=0, help="list this many allocation sites")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 watches, 3 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.watches = 50
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
