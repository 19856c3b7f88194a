"""Soak: 100 watches under continuous writes; memory, descriptors and loop lag over time.

Run: ``.venv/bin/python benchmarks/soak.py`` (10 minutes; ``--duration 30m``/``--duration 600``;
``--quick`` for a smoke run of a few seconds). Not for CI.

One ``Consul`` client, sized so every watch keeps a long-poll slot, watches 100 keys (default
rate limiter); a raw writer updates random keys at ``--rate`` writes/s; every interval
``--churn`` watches are closed and reopened, so teardown paths run too (``--client raw``:
hand-written aiohttp loops instead of ``watch()``, a control). Every ``--interval`` it runs a
full ``gc.collect()`` (``--no-collect`` to skip) and prints RSS, live Python blocks, open
descriptors, event-loop lag (p99 and max of a 50 ms ticker) and progress.
``--fault-every 60`` cuts the next soak reads of every watch without an answer (the agent's
connection-reset fault) every 60 s; with ``--tracemalloc`` the run then also prints the
allocations that grew from just before the first fault to the end.
Before measuring, ``--warmup`` reopened watches bring the allocator to its plateau (see
``_warm_up``). At the end every watch must converge on its key's last write, and a
least-squares slope is fitted to RSS and descriptors over the second half of the run: the exit
status is 1 when either grows steadily (slope above the tolerance with correlation >= 0.7) or a
watch fails to converge, 0 otherwise. The agent runs in a child process; its RSS is shown for
information only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import random
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    AgentProcess,
    Writer,
    fd_count,
    machine,
    percentile,
    raw_kv_watch,
    rss_kib,
)
from consul_streams import Consul
from consul_streams._budget import slots_for
from consul_streams._rules import parse_go_duration
from consul_streams.watch import WatchStream, watch

TICK = 0.05
_UNSEEN = object()
_COUNT = "#writes"  # bookkeeping entry of the writer's ``last`` map, not a key


@dataclass
class Sample:
    at: float  # seconds since start
    rss_kib: int
    blocks: int  # live Python allocations (sys.getallocatedblocks)
    fds: int
    lag_p99: float
    lag_max: float
    emits: int
    writes: int
    agent_rss_kib: int


class Watches:
    """The watch tasks and what each last saw."""

    def __init__(
        self, client: Consul, count: int, url: str, raw: aiohttp.ClientSession | None
    ) -> None:
        self.client = client
        self.url = url
        self.raw = raw
        self.keys = [f"soak/{i:03d}" for i in range(count)]
        self.seen: dict[str, bytes | None] = {}
        self.emits = 0
        self.changed = asyncio.Event()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.streams: dict[str, WatchStream[Any]] = {}

    def start(self, key: str) -> None:
        self.tasks[key] = asyncio.create_task(self._run(key), name=f"soak watch {key}")

    async def _run(self, key: str) -> None:
        if self.raw is not None:
            return await self._run_raw(self.raw, key)
        stream = self.streams[key] = watch(self.client.kv.get(key))
        async for entry, _meta in stream:
            self._saw(key, entry["Value"] if entry else None)

    def _saw(self, key: str, value: bytes | None) -> None:
        if self.seen.get(key, _UNSEEN) != value:
            self.seen[key] = value
            self.emits += 1
            self.changed.set()

    async def _run_raw(self, http: aiohttp.ClientSession, key: str) -> None:
        """The control: a hand-written long-poll loop on a plain aiohttp session."""

        def saw(value: bytes | None) -> None:
            self._saw(key, value)

        await raw_kv_watch(http, f"{self.url}/v1/kv/{key}", saw)

    async def restart(self, keys: list[str]) -> None:
        if not keys:
            return
        tasks = [self.tasks.pop(k) for k in keys]
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        for key in keys:
            self.start(key)

    def failed(self) -> list[str]:
        return [k for k, t in self.tasks.items() if t.done() and not t.cancelled()]

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks.values())


def _slope(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope (per second) and correlation of ``points``; (0, 0) if flat."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if len(points) < 3 or len(set(ys)) < 2:
        return 0.0, 0.0
    fit = statistics.linear_regression(xs, ys)
    return fit.slope, statistics.correlation(xs, ys)


def cap_for(watches: int) -> int:
    """The smallest connection cap whose long-poll budget holds every watch (no rotation)."""
    cap = watches + 1
    while slots_for(cap) < watches:
        cap += 1
    return cap


async def _lag_monitor(lags: list[float], paused_until: list[float]) -> None:
    """Append the lateness of a 50 ms ticker; ticks spanning a deliberate pause are skipped."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + TICK
        await asyncio.sleep(TICK)
        if due > paused_until[0]:
            lags.append(max(loop.time() - due, 0.0))


async def _writer(
    writer: Writer, keys: list[str], rate: float, last: dict[str, bytes], stop: asyncio.Event
) -> None:
    """Write random keys at ``rate``/s until ``stop``; ``last``: each key's newest value.

    Stopped by an event, not cancelled: a write cancelled in flight may or may not have reached
    the agent, and ``last`` must be exact for the convergence check.
    """
    loop = asyncio.get_running_loop()
    rng = random.Random(7)
    due = loop.time()
    n = 0
    while not stop.is_set():
        key = rng.choice(keys)
        value = f"{n}".encode()
        await writer.put(key, value)
        last[key] = value
        n += 1
        last[_COUNT] = str(n).encode()
        due += 1.0 / rate
        # Pacing: the writer keeps a steady rate (and stops at once when told to).
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), max(due - loop.time(), 0.0))


async def _warm_up(watches: Watches, restarts: int) -> None:
    """Reopen watches ``restarts`` times as fast as possible before measuring.

    Measured: under churn the process's RSS climbs to a plateau (~7 MiB above the start after
    ~10,000 reopened watches, then flat): allocator high-water marks, not live objects
    (tracemalloc stays flat). Without a warm-up, a 10-minute run at the default churn ends
    while still climbing and its slope says "grows"; after it, a real leak still shows.
    """
    if restarts <= 0:
        return
    rng = random.Random(3)
    started = time.monotonic()
    while restarts > 0:
        batch = min(10, restarts)
        await watches.restart(rng.sample(watches.keys, batch))
        restarts -= batch
        await asyncio.sleep(0.005)  # pacing only: let the reopened watches make a request
    print(f"# warm-up: reopened watches in {time.monotonic() - started:.0f} s, RSS {rss_kib()} KiB")


def _verdict(samples: list[Sample], args: argparse.Namespace) -> tuple[bool, list[str]]:
    half = samples[len(samples) // 2 :]
    rss_slope, rss_r = _slope([(s.at, s.rss_kib) for s in half])
    fd_slope, fd_r = _slope([(s.at, s.fds) for s in half])
    rss_per_min, fd_per_min = rss_slope * 60, fd_slope * 60
    span = half[-1].at - half[0].at if half else 0.0
    rss_grows = rss_per_min > args.max_rss_slope and rss_r >= 0.7
    # A connection being replaced shows as +-1 descriptor: demand a few, not a blip.
    fd_grows = fd_per_min > args.max_fd_slope and fd_r >= 0.7 and fd_slope * span >= 3
    lines = [
        f"RSS slope over the second half: {rss_per_min:+.1f} KiB/min (r={rss_r:.2f},"
        f" tolerance {args.max_rss_slope} KiB/min) -> {'GROWS' if rss_grows else 'flat'}",
        f"descriptor slope over the second half: {fd_per_min:+.2f} /min (r={fd_r:.2f},"
        f" tolerance {args.max_fd_slope} /min) -> {'GROWS' if fd_grows else 'flat'}",
    ]
    return rss_grows or fd_grows, lines


class _CountWarnings(logging.Handler):
    """Counts the watches' WARNING lines (one per watch per fault) instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def run(args: argparse.Namespace) -> int:
    warnings = _CountWarnings()
    watch_log = logging.getLogger("consul_streams.watch")
    watch_log.addHandler(warnings)
    watch_log.propagate = False
    lags: list[float] = []
    mid_snapshot: tracemalloc.Snapshot | None = None
    fault_snapshot: tracemalloc.Snapshot | None = None
    next_fault = args.fault_every if args.fault_every > 0 else float("inf")
    faults = 0
    if args.tracemalloc:
        tracemalloc.start(8)
    last: dict[str, bytes] = {}
    samples: list[Sample] = []
    # One connection per long-poll (plus a few): with fewer, queued polls wait for a held one
    # to return (measured by connection_budget.py), which is not what this run is about.
    connector = aiohttp.TCPConnector(limit=args.watches + 4)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=400)
    async with (
        AgentProcess() as agent,
        Writer(agent.url) as writer,
        aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
    ):
        client = Consul(agent.address, environ={}, max_connections=cap_for(args.watches))
        async with client:
            raw = http if args.client == "raw" else None
            watches = Watches(client, args.watches, agent.url, raw)
            for key in watches.keys:
                watches.start(key)
            await _warm_up(watches, args.warmup)
            paused_until = [0.0]
            monitor = asyncio.create_task(_lag_monitor(lags, paused_until))
            stop = asyncio.Event()
            writing = asyncio.create_task(_writer(writer, watches.keys, args.rate, last, stop))
            start = time.monotonic()
            rng = random.Random(11)
            print(
                f"# soak: {args.watches} {args.client} watches, {args.rate:g} writes/s,"
                f" churn {args.churn}/interval ({machine()})"
            )
            header = ("t s", "RSS KiB", "py blocks", "fds", "lag p99 ms", "lag max ms", "emits")
            print("  ".join(f"{h:>10}" for h in (*header, "writes", "agent KiB")))
            try:
                while (elapsed := time.monotonic() - start) < args.duration:
                    await asyncio.sleep(min(args.interval, args.duration - elapsed))
                    if failed := watches.failed():
                        raise RuntimeError(f"watches ended: {failed[:5]}")
                    if args.collect:
                        # Count live memory: closing a watch leaves reference cycles that only
                        # a full collection frees, and 10 minutes may hold none.
                        gc.collect()
                    if args.trim:
                        _malloc_trim()
                        paused_until[0] = asyncio.get_running_loop().time()
                    window, lags[:] = lags[:], []
                    await agent.clear_requests()
                    sample = Sample(
                        at=time.monotonic() - start,
                        rss_kib=rss_kib(),
                        blocks=sys.getallocatedblocks(),
                        fds=fd_count(),
                        lag_p99=percentile(window, 99) if window else 0.0,
                        lag_max=max(window, default=0.0),
                        emits=watches.emits,
                        writes=int(last.get(_COUNT, b"0")),
                        agent_rss_kib=rss_kib(agent.pid),
                    )
                    samples.append(sample)
                    _print_sample(sample)
                    if args.tracemalloc and mid_snapshot is None and sample.at >= args.duration / 2:
                        mid_snapshot = tracemalloc.take_snapshot()
                    if sample.at >= next_fault:
                        if args.tracemalloc and fault_snapshot is None:
                            fault_snapshot = tracemalloc.take_snapshot()
                        # Each watch's next read (two, for aiohttp's silent retry) is cut.
                        await agent.reset_connections(2 * args.watches)
                        faults += 1
                        print(f"# fault {faults}: connection reset of every watch's next read")
                        next_fault += args.fault_every
                    await watches.restart(rng.sample(watches.keys, args.churn))
                stop.set()
                await writing
                converged = await _converge(watches, last, args.settle)
                if mid_snapshot is not None or fault_snapshot is not None:
                    gc.collect()
                    end = tracemalloc.take_snapshot()
                    if mid_snapshot is not None:
                        _print_growth(mid_snapshot, end, "over the second half")
                    if fault_snapshot is not None:
                        _print_growth(fault_snapshot, end, "from before the first fault")
            finally:
                stop.set()
                monitor.cancel()
                await asyncio.wait({writing, monitor})
                await watches.close()
    print()
    grows, lines = _verdict(samples, args)
    for line in lines:
        print(line)
    print(f"convergence after the last write: {'all watches' if converged else 'FAILED'}")
    print(f"watch warnings logged: {warnings.count} ({faults} faults)")
    if args.quick:
        print("verdict: informational only (--quick is too short to judge a trend)")
        return 0 if converged else 1
    ok = converged and not grows
    print(f"verdict: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def _malloc_trim() -> None:
    """Give glibc's free heap pages back to the OS (RSS then counts live memory only)."""
    name = ctypes.util.find_library("c")
    if name is not None:
        libc = ctypes.CDLL(name)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)


def _print_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, when: str) -> None:
    """The allocation sites that grew most between the two snapshots."""
    stats = after.compare_to(before, "traceback")
    total = sum(stat.size_diff for stat in stats)
    print(f"\n# tracemalloc: largest growth {when} (all sites: {total / 1024:+.1f} KiB)")
    for stat in stats[:8]:
        print(f"{stat.size_diff / 1024:+.1f} KiB in {stat.count_diff:+d} blocks")
        for line in stat.traceback.format()[-6:]:
            print(f"    {line}")


def _print_sample(s: Sample) -> None:
    cells = (
        f"{s.at:.0f}",
        str(s.rss_kib),
        str(s.blocks),
        str(s.fds),
        f"{s.lag_p99 * 1000:.2f}",
        f"{s.lag_max * 1000:.2f}",
        str(s.emits),
        str(s.writes),
        str(s.agent_rss_kib),
    )
    print("  ".join(f"{c:>10}" for c in cells), flush=True)


async def _converge(watches: Watches, last: dict[str, bytes], timeout: float) -> bool:
    """Whether every watch reaches its key's last written value within ``timeout``."""

    def stale() -> list[str]:
        return [k for k, v in last.items() if k != _COUNT and watches.seen.get(k) != v]

    async def settled() -> None:
        while stale():
            watches.changed.clear()
            await watches.changed.wait()

    try:
        await asyncio.wait_for(settled(), timeout)
    except asyncio.TimeoutError:
        for key in stale()[:5]:
            stream = watches.streams.get(key)
            stats = f" {stream.stats}" if stream is not None else ""
            print(f"stale: {key} holds {watches.seen.get(key)!r}, last {last[key]!r};{stats}")
        return False
    return True


def _duration(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return parse_go_duration(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=_duration, default=600.0, help="seconds or 10m")
    parser.add_argument("--interval", type=_duration, default=10.0)
    parser.add_argument("--watches", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="writes per second")
    parser.add_argument("--churn", type=int, default=10, help="watches reopened per interval")
    parser.add_argument("--settle", type=float, default=30.0, help="convergence timeout, s")
    parser.add_argument("--max-rss-slope", type=float, default=64.0, help="KiB/min")
    parser.add_argument(
        "--no-collect",
        dest="collect",
        action="store_false",
        help="sample without a full gc.collect() first (cyclic garbage then counts as growth)",
    )
    parser.add_argument(
        "--warmup", type=int, default=10_000, help="watches reopened before measuring"
    )
    parser.add_argument("--max-fd-slope", type=float, default=0.1, help="descriptors/min")
    parser.add_argument(
        "--client",
        choices=("consul_streams", "raw"),
        default="consul_streams",
        help="raw: hand-written aiohttp long-poll loops instead of watch() (a control run)",
    )
    parser.add_argument(
        "--fault-every",
        type=_duration,
        default=0.0,
        help="seconds between connection-reset faults (0: none)",
    )
    parser.add_argument(
        "--trim",
        action="store_true",
        help="malloc_trim(0) before each sample: RSS without glibc's retained free pages",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run of a few seconds")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace allocations; print what grew over the second half (slows the run)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.interval, args.settle, args.warmup = 4.0, 1.0, 3.0, 100
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
