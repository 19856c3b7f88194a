"""Sync layer cost: write acknowledged -> value received, sync callback versus async watch.

Run: ``.venv/bin/python benchmarks/sync_latency.py`` (``--quick`` for a smoke run).

Three consumers of one key, measured in rotating rounds of ping-pong writes (the next value
is written once the previous one arrived):

* ``async watch, writer's loop``: ``async for entry, meta in watch(c.kv.get(key),
  rate_limit=None)`` on the writer's own event loop, timestamped in the loop body. Its answer
  arrives in the same wake-up as the writer's acknowledgement: a floor no other thread can meet;
* ``async watch, own loop thread``: the same, on an event loop of its own thread, as an asyncio
  service in another thread or process would have it: the baseline of the ratios;
* ``sync watch, callback``: ``consul_streams.sync.watch(client.kv.get(key), callback,
  rate_limit=None)``, timestamped in the callback, on the watch's callback thread. Beside it, an
  async consumer of the same (shared) poll on the sync client's loop thread timestamps when the
  value reached that loop: callback time minus that time is the one thread hop the sync layer
  adds.

Each consumer watches a key of its own, so a round's writes wake only the consumer measured.
CPU per update is this process's CPU time (``time.process_time()``: every thread) over a
round, divided by its updates; the agent runs in a child process and the writer is the same
raw aiohttp connection for all, so the difference is the consumer's. (The sync rounds also
carry the probe, a second consumer of the shared poll: a slight overestimate.)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import AgentProcess, Writer, machine, median, percentile, print_table
from consul_streams import Consul, KVEntry, Meta
from consul_streams import sync as cs_sync
from consul_streams.sync._loop import LoopThread
from consul_streams.watch import watch

KEY = "bench/sync"


class Arrivals:
    """The arrival time of each expected value, handed to the driver's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: str) -> None:
        self.loop = loop
        self.key = key
        self.pending: dict[bytes, asyncio.Future[float]] = {}
        self.on_loop: dict[bytes, float] = {}
        self.at: dict[bytes, float] = {}

    def expect(self, value: bytes) -> asyncio.Future[float]:
        future = self.loop.create_future()
        self.pending[value] = future
        return future

    def arrived(self, value: bytes, at: float) -> None:
        self.at[value] = at
        future = self.pending.pop(value, None)
        if future is not None:
            self.loop.call_soon_threadsafe(_resolve, future, at)


def _resolve(future: asyncio.Future[float], at: float) -> None:
    if not future.done():
        future.set_result(at)


async def ping_pong(
    writer: Writer, arrivals: Arrivals, tag: str, count: int
) -> tuple[list[float], float, list[bytes]]:
    """``count`` writes, each after the previous arrived: latencies (s), CPU s per update."""
    latencies: list[float] = []
    values: list[bytes] = []
    cpu = time.process_time()
    for n in range(count):
        value = f"{tag}-{n}".encode()
        arrived = arrivals.expect(value)
        acked = await writer.put(arrivals.key, value)
        latencies.append(await asyncio.wait_for(arrived, 30) - acked)
        values.append(value)
    return latencies, (time.process_time() - cpu) / count, values


ASYNC_HERE = "async watch, writer's loop"
ASYNC_THREAD = "async watch, own loop thread"
SYNC = "sync watch, callback"


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    # A key per consumer: a round's writes wake only the consumer it measures.
    names = [ASYNC_HERE, ASYNC_THREAD, SYNC]
    arrivals = {name: Arrivals(loop, f"{KEY}/{n}") for n, name in enumerate(names)}

    async def consume(client: Consul, arrivals: Arrivals, *, probe: bool = False) -> None:
        async for entry, _ in watch(client.kv.get(arrivals.key), rate_limit=None):
            if entry is None:
                continue
            if probe:  # beside the sync watch, on its loop thread: when the value got there
                arrivals.on_loop[entry["Value"]] = time.perf_counter()
            else:
                arrivals.arrived(entry["Value"], time.perf_counter())

    def callback(entry: KVEntry | None, meta: Meta) -> None:
        if entry is not None:
            arrivals[SYNC].arrived(entry["Value"], time.perf_counter())

    results: dict[str, list[float]] = {name: [] for name in arrivals}
    cpu: dict[str, list[float]] = {name: [] for name in arrivals}
    hops: list[float] = []
    to_loop: list[float] = []
    async with AgentProcess() as agent, Writer(agent.url) as writer:
        for a in arrivals.values():
            await writer.put(a.key, b"start")
        own = LoopThread("async consumer")
        async with Consul(agent.address, environ={}) as here:
            here_task = asyncio.create_task(consume(here, arrivals[ASYNC_HERE]))
            there = own.call(lambda: Consul(agent.address, environ={}))
            there_task = own.spawn(consume(there, arrivals[ASYNC_THREAD]), name="there")
            with cs_sync.Consul(agent.address, environ={}) as sclient:
                probe = consume(sclient.aio, arrivals[SYNC], probe=True)
                probe_task = sclient.loop.spawn(probe, name="probe")
                handle = cs_sync.watch(
                    sclient.kv.get(arrivals[SYNC].key), callback, rate_limit=None
                )
                # One long-poll per client: the probe shares the sync watch's.
                await asyncio.wait_for(agent.wait_blocked(3), 30)
                for r in range(args.rounds):
                    for name in names[r % 3 :] + names[: r % 3]:  # rotate the order
                        lat, per_update, values = await ping_pong(
                            writer, arrivals[name], f"{r}-{name}", args.updates
                        )
                        results[name].extend(lat)
                        cpu[name].append(per_update)
                        if name != SYNC:
                            continue
                        sync = arrivals[SYNC]
                        for value, latency in zip(values, lat, strict=True):
                            if value in sync.on_loop:
                                to_loop.append(sync.on_loop[value] - (sync.at[value] - latency))
                                hops.append(sync.at[value] - sync.on_loop[value])
                handle.stop()
                sclient.loop.cancel(probe_task)
            own.cancel(there_task)
            own.run(there.aclose())
            own.close()
            here_task.cancel()
            await asyncio.gather(here_task, return_exceptions=True)
    ms = 1000.0
    base, base_cpu = median(results[ASYNC_THREAD]), median(cpu[ASYNC_THREAD])
    rows = [
        (
            name,
            len(lat),
            f"{median(lat) * ms:.3f}",
            f"{percentile(lat, 99) * ms:.3f}",
            f"{median(lat) / base:.2f}x",
            f"{median(cpu[name]) * 1e6:.0f}",
            f"{median(cpu[name]) / base_cpu:.2f}x",
        )
        for name, lat in results.items()
    ]
    print(machine())
    headers = ["consumer", "updates", "median ms", "p99 ms", "latency", "CPU us/upd", "CPU"]
    print_table(headers, rows)
    print(f"(ratios against {ASYNC_THREAD!r})")
    print(
        f"sync watch, ack -> its loop thread: median {median(to_loop) * ms:.3f} ms, "
        f"p99 {percentile(to_loop, 99) * ms:.3f} ms"
    )
    print(
        f"sync watch, loop thread -> callback thread (the one hop): median "
        f"{median(hops) * ms:.3f} ms, p99 {percentile(hops, 99) * ms:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 50 updates")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.updates = 2, 50
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
