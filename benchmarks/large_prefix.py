"""Large prefix: a 10,000-key prefix (256-byte values) changing one key at a time.

Run: ``.venv/bin/python benchmarks/large_prefix.py`` (``--quick`` for a smoke run on 2,000
keys, ``--profile`` to print where consul_streams spends its time).

Per update (write acknowledged -> result in hand), for:

* ``consul_streams watch + ops.diff``: ``watch(c.kv.items(prefix), rate_limit=None) | ops.diff()``
  receives, decodes (base64 -> bytes for every value) and diffs (the one changed key);
* ``consul_streams watch``: the same without the diff (asking the local agent for identity
  bodies, the default); ``(gzip)``: the same with ``Consul(compression="gzip")``;
* ``py-consul``: ``index, data = await c.kv.get(prefix, recurse=True, index=index)``, which
  receives and decodes the same response (its values are decoded from base64 too);
* ``raw aiohttp``: a hand-written long-poll loop (JSON + base64 of every value): the floor,
  with aiohttp's default ``Accept-Encoding`` (gzip); ``(identity)``: the same loop asking for
  plain bodies, the floor for what we do by default.

Two measures: wall time per update, and the client process's CPU time per update
(``time.process_time``; the agent runs in a child process, so it is not counted). The table
gives pooled medians and the median over rounds of per-round ratios against py-consul.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import io
import json
import pstats
import random
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import consul.aio

from benchmarks._common import AgentProcess, Writer, machine, median, print_table
from consul_streams import Consul, ops
from consul_streams.watch import watch

PREFIX = "big/"


class Sink:
    """Signals the driver when a client holds a result containing the value it waits for."""

    def __init__(self) -> None:
        self.expected: tuple[str, bytes] | None = None
        self._future: asyncio.Future[float] | None = None

    def expect(self, key: str | None = None, value: bytes = b"") -> asyncio.Future[float]:
        """A future for the arrival of ``key`` = ``value`` (``key=None``: of any result)."""
        self.expected = (key, value) if key is not None else None
        self._future = asyncio.get_running_loop().create_future()
        return self._future

    def deliver(self, received: float, holds: Callable[[str, bytes], bool]) -> None:
        """``holds(key, value)``: whether the result just received contains the change."""
        future, expected = self._future, self.expected
        if future is None or future.done():
            return
        if expected is None or holds(*expected):
            future.set_result(received)


def _holds(entries: list[Any]) -> Callable[[str, bytes], bool]:
    return lambda key, value: any(e["Key"] == key and e["Value"] == value for e in entries)


def _in_diff(news: dict[str, bytes]) -> Callable[[str, bytes], bool]:
    return lambda key, value: news.get(key) == value


Client = Callable[[str, Sink], Coroutine[Any, Any, None]]


async def _consul_streams_diff(address: str, sink: Sink) -> None:
    async with Consul(address, environ={}) as client:
        stream = watch(client.kv.items(PREFIX), rate_limit=None) | ops.diff()
        async with stream.stream() as updates:
            async for change, _meta in updates:
                now = time.perf_counter()
                # The check below is not timed: it only tells the driver which update this is.
                news = {new["Key"]: new["Value"] for _old, new in change.changed}
                news.update((e["Key"], e["Value"]) for e in change.added)
                sink.deliver(now, _in_diff(news))


async def _consul_streams(address: str, sink: Sink) -> None:
    async with Consul(address, environ={}) as client:
        async for entries, _meta in watch(client.kv.items(PREFIX), rate_limit=None):
            now = time.perf_counter()
            sink.deliver(now, _holds(entries))


async def _py_consul(address: str, sink: Sink) -> None:
    host, port = address.rsplit(":", 1)
    client = consul.aio.Consul(host=host, port=int(port))
    try:
        index = None
        while True:
            index, data = await client.kv.get(PREFIX, recurse=True, index=index)
            now = time.perf_counter()
            entries = data or []
            sink.deliver(now, _holds(entries))
    finally:
        await client.close()


def _raw_aiohttp(encoding: str | None) -> Client:
    """The hand-written floor; ``encoding`` sets Accept-Encoding (None: aiohttp's gzip)."""

    async def run(address: str, sink: Sink) -> None:
        await _raw_loop(address, sink, {"Accept-Encoding": encoding} if encoding else {})

    return run


async def _consul_streams_gzip(address: str, sink: Sink) -> None:
    async with Consul(address, environ={}, compression="gzip") as client:
        async for entries, _meta in watch(client.kv.items(PREFIX), rate_limit=None):
            now = time.perf_counter()
            sink.deliver(now, _holds(entries))


async def _raw_loop(address: str, sink: Sink, headers: dict[str, str]) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=400)
    url = f"http://{address}/v1/kv/{PREFIX}"
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:
        index = 0
        while True:
            params = (
                {"recurse": "", "index": str(index), "wait": "5m"} if index else {"recurse": ""}
            )
            async with http.get(url, params=params) as resp:
                body = await resp.read()
                new = int(resp.headers.get("X-Consul-Index", "0"))
            entries = json.loads(body) if resp.status == 200 else []
            for entry in entries:
                entry["Value"] = base64.b64decode(entry["Value"] or "")
            now = time.perf_counter()
            sink.deliver(now, _holds(entries))
            index = max(new, 1) if new >= index else 0


CLIENTS: dict[str, Client] = {
    "consul_streams watch + ops.diff": _consul_streams_diff,
    "consul_streams watch": _consul_streams,
    "py-consul": _py_consul,
    "consul_streams watch (gzip)": _consul_streams_gzip,
    "raw aiohttp": _raw_aiohttp(None),
    "raw aiohttp (identity)": _raw_aiohttp("identity"),
}


def _value(rng: random.Random) -> bytes:
    return rng.randbytes(128).hex().encode()  # 256 bytes of text


async def updates(
    agent: AgentProcess,
    writer: Writer,
    client: Client,
    keys: list[str],
    count: int,
    rng: random.Random,
) -> list[tuple[float, float]]:
    """``(wall seconds, client CPU seconds)`` from each acknowledged write to its result."""
    sink = Sink()
    first = sink.expect()
    task = asyncio.create_task(client(agent.address, sink))
    results: list[tuple[float, float]] = []
    try:
        await asyncio.wait_for(first, 60)
        for i in range(count + 1):
            key = rng.choice(keys)
            value = _value(rng)
            arrived = sink.expect(key, value)
            cpu = time.process_time()
            acked = await writer.put(key, value)
            received = await asyncio.wait_for(arrived, 60)
            if i:  # the first update warms up the blocking loop
                results.append((received - acked, time.process_time() - cpu))
    finally:
        task.cancel()
        await asyncio.wait({task})
    return results


async def profile(agent: AgentProcess, writer: Writer, keys: list[str], count: int) -> str:
    """cProfile of the consul_streams client (watch + diff) over ``count`` updates."""
    profiler = cProfile.Profile()
    profiler.enable()
    await updates(agent, writer, _consul_streams_diff, keys, count, random.Random(3))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
    return out.getvalue()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=20, help="measured updates per round")
    parser.add_argument("--profile", action="store_true", help="also profile consul_streams")
    parser.add_argument("--quick", action="store_true", help="smoke run on 2,000 keys")
    args = parser.parse_args(argv)
    if args.quick:
        args.keys, args.rounds, args.updates = 2_000, 1, 4
    rng = random.Random(1)
    keys = [f"{PREFIX}{i:05d}" for i in range(args.keys)]
    names = list(CLIENTS)
    results: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in names}
    async with AgentProcess() as agent, Writer(agent.url) as writer:
        await writer.put_many((key, _value(rng)) for key in keys)
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                samples = await updates(agent, writer, CLIENTS[name], keys, args.updates, rng)
                results[name].append(samples)
        report = await profile(agent, writer, keys, args.updates) if args.profile else ""
    print(f"# large prefix: {args.keys:,} keys x 256 B, {args.rounds} rounds ({machine()})")
    print_table(
        ("client", "updates", "wall ms", "CPU ms", "wall / py-consul", "CPU / py-consul"),
        [_row(name, results) for name in names],
    )
    print("target: consul_streams watch + ops.diff / py-consul <= 1.0 (wall)")
    if report:
        print("\n# cProfile of consul_streams watch + ops.diff (by own time)")
        print(report)
    return 0


def _row(name: str, results: dict[str, list[list[tuple[float, float]]]]) -> tuple[str, ...]:
    pooled = [s for r in results[name] for s in r]

    def ratio(column: int) -> str:
        mine = [median([s[column] for s in r]) for r in results[name]]
        base = [median([s[column] for s in r]) for r in results["py-consul"]]
        return f"{median([a / b for a, b in zip(mine, base, strict=True)]):.2f}"

    return (
        name,
        str(len(pooled)),
        f"{median([s[0] for s in pooled]) * 1000:.1f}",
        f"{median([s[1] for s in pooled]) * 1000:.1f}",
        ratio(0),
        ratio(1),
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
