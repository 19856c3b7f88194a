"""1,000 watches of distinct keys: client CPU per delivered update, against a raw aiohttp loop.

Run: ``.venv/bin/python benchmarks/many_watches.py`` (``--quick`` for a smoke run of a few
seconds; ``--watches``, ``--subset``, ``--rounds``; ``--profile FILE`` writes a cProfile of
consul_streams' rounds).

Three clients, each in a process of its own and watching its own ``--watches`` keys (``cs/``,
``raw/``, ``pyc/``), all parked at once on one dev agent in another process (its
``http_max_conns_per_client`` raised so every long-poll fits); the agent is pinned to one CPU,
the clients to the other. A process per client keeps one client's objects out of another's
garbage collections:

* ``consul_streams``: one ``Consul`` whose ``max_connections`` gives every watch a long-poll
  slot, a task per key iterating ``watch(client.kv.get(key), rate_limit=None)``;
* ``raw aiohttp``: one ``ClientSession``, a task per key running a hand-written long-poll
  loop (index threading, JSON and base64 decoding only, like ``_raw_aiohttp`` in
  ``latency.py``): the floor for a Python client;
* ``py-consul``: one ``consul.aio.Consul``, a task per key running
  ``index, data = await c.kv.get(key, index=index, wait="5m")``.

Each round writes, for each client in rotating order, first every one of its keys (in
transactions of 64, the limit of Consul's ``/v1/txn``) and then a random ``--subset`` of them.
The writes are applied inside the agent process (one line on its stdin), so the client
process's CPU time (``time.process_time``) from just before the write until every watcher
holds the new value and every long-poll is parked again is the client's work alone; divided
by the updates delivered it gives the CPU per update. The ratios are per round against the
raw loop; the table gives the median and min-max over rounds. Nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import random
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import aiohttp

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import consul.aio

from benchmarks._common import (
    AgentProcess,
    Board,
    Handoff,
    machine,
    median,
    pin_cpus,
    print_table,
    raw_kv_watch,
)
from consul_streams import Consul
from consul_streams.watch import watch

#: A client under test: starts one watcher task per key, each reporting to the board.
Starter = Callable[[str, Sequence[str], Board], Coroutine[Any, Any, list[asyncio.Task[None]]]]
#: What each client holds open, closed at the end (sessions, clients).
_CLEANUP: list[Callable[[], Coroutine[Any, Any, None]]] = []


def _slots_for(watches: int) -> int:
    """The smallest ``max_connections`` whose long-poll budget holds ``watches`` polls.

    The budget is ``max_connections - max(1, max_connections // 4)`` (docs/architecture.md).
    """
    cap = watches + 1
    while cap - max(1, cap // 4) < watches:
        cap += 1
    return cap


async def _consul_streams(
    address: str, keys: Sequence[str], board: Board
) -> list[asyncio.Task[None]]:
    client = Consul(address, environ={}, max_connections=_slots_for(len(keys)))
    await client.__aenter__()

    async def close() -> None:
        await client.aclose()

    _CLEANUP.append(close)

    async def one(key: str) -> None:
        async for entry, _meta in watch(client.kv.get(key), rate_limit=None):
            board.arrive(key, entry["Value"] if entry else None, time.perf_counter())

    return [asyncio.create_task(one(key)) for key in keys]


async def _consul_streams_bare(
    address: str, keys: Sequence[str], board: Board
) -> list[asyncio.Task[None]]:
    client = Consul(address, environ={}, max_connections=len(keys) + 8)
    await client.__aenter__()

    async def close() -> None:
        await client.aclose()

    _CLEANUP.append(close)

    async def one(key: str) -> None:
        query = client.kv.get(key)
        entry, meta = await query
        while True:
            board.arrive(key, entry["Value"] if entry else None, time.perf_counter())
            entry, meta = await query.fetch(index=meta.index, wait=300.0)

    return [asyncio.create_task(one(key)) for key in keys]


def _raw_session(keys: Sequence[str]) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=400)
    connector = aiohttp.TCPConnector(limit=len(keys) + 8)
    http = aiohttp.ClientSession(timeout=timeout, connector=connector)
    _CLEANUP.append(http.close)
    return http


async def _raw_aiohttp(address: str, keys: Sequence[str], board: Board) -> list[asyncio.Task[None]]:
    http = _raw_session(keys)

    async def one(key: str) -> None:
        def deliver(value: bytes | None) -> None:
            board.arrive(key, value, time.perf_counter())

        await raw_kv_watch(http, f"http://{address}/v1/kv/{key}", deliver)

    return [asyncio.create_task(one(key)) for key in keys]


async def _raw_aiohttp_hop(
    address: str, keys: Sequence[str], board: Board
) -> list[asyncio.Task[None]]:
    """The raw loop handing each value to a consumer task, as ``watch()`` does: the floor of a
    design with a poll task and a consumer task (``latency.py`` has the same diagnostic)."""
    http = _raw_session(keys)

    async def one(key: str) -> None:
        def deliver(value: bytes | None) -> None:
            board.arrive(key, value, time.perf_counter())

        handoff = Handoff(deliver)
        try:
            await raw_kv_watch(http, f"http://{address}/v1/kv/{key}", handoff)
        finally:
            await handoff.aclose()

    return [asyncio.create_task(one(key)) for key in keys]


async def _py_consul(address: str, keys: Sequence[str], board: Board) -> list[asyncio.Task[None]]:
    host, port = address.rsplit(":", 1)
    client = consul.aio.Consul(
        host=host, port=int(port), connections_limit=len(keys) + 8, connections_timeout=700
    )
    _CLEANUP.append(client.close)

    async def one(key: str) -> None:
        index = None
        while True:
            index, data = await client.kv.get(key, index=index, wait="5m")
            board.arrive(key, data["Value"] if data else None, time.perf_counter())

    return [asyncio.create_task(one(key)) for key in keys]


CLIENTS: dict[str, tuple[str, Starter]] = {
    "consul_streams": ("cs/", _consul_streams),
    "raw aiohttp": ("raw/", _raw_aiohttp),
    "py-consul": ("pyc/", _py_consul),
    # Diagnosis, not in the default run: one Query's blocking reads in a loop, no watch engine.
    "consul_streams bare reads": ("csb/", _consul_streams_bare),
    "raw aiohttp, consumer task": ("rh/", _raw_aiohttp_hop),
}
DEFAULT_CLIENTS = ["consul_streams", "raw aiohttp", "py-consul"]
FLOOR = "raw aiohttp"


class Sample:
    """One measured write round of one client."""

    def __init__(self, updates: int, cpu: float, gc_cpu: float, wall: float) -> None:
        self.updates = updates
        self.cpu_us = cpu / updates * 1e6
        self.gc_us = gc_cpu / updates * 1e6
        self.wall_ms = wall * 1e3


async def _child(args: argparse.Namespace) -> None:
    """One client in this process, driven over stdin (``expect VALUE KEY...``, ``cpu``)."""
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    prefix, start = CLIENTS[args.child]
    keys = [f"{prefix}{i:05d}" for i in range(args.watches)]
    board = Board()
    first = [board.expect(key, b"v0", 1) for key in keys]
    tasks = await start(args.address, keys, board)
    await asyncio.wait_for(asyncio.gather(*first), 120)
    if args.gc == "off":
        gc.disable()
    elif args.gc == "freeze":  # what was alive after the first values is never scanned again
        gc.collect()
        gc.freeze()
    collecting = [0.0, 0.0]  # CPU time in the collector: total, start of the current pass

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting[1] = time.process_time()
        else:
            collecting[0] += time.process_time() - collecting[1]

    gc.callbacks.append(on_gc)
    print("ready", flush=True)
    profile = cProfile.Profile() if args.profile else None
    cpu = 0.0
    try:
        while line := await stdin.readline():
            command, *words = line.decode().split()
            if command == "expect":
                futures = [board.expect(key, words[0].encode(), 1) for key in words[1:]]
                if profile is not None and words[0][1] != "0":  # round 0 is the warm-up
                    profile.enable()
                cpu = time.process_time()
                in_gc = collecting[0]
                print("ok", flush=True)
                began = time.perf_counter()
                await asyncio.wait_for(asyncio.gather(*futures), 60)
                print(f"{time.perf_counter() - began:.6f}", flush=True)
            elif command == "cpu":
                spent = time.process_time() - cpu
                if profile is not None:
                    profile.disable()
                print(f"{spent:.6f} {collecting[0] - in_gc:.6f}", flush=True)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for close in _CLEANUP:
            await close()
        if profile is not None:
            profile.dump_stats(args.profile)


class ClientProcess:
    """A client under test in a child process (``--child NAME``), pinned to ``cpu``."""

    def __init__(
        self, name: str, address: str, watches: int, cpu: int | None, gc_mode: str
    ) -> None:
        self.name = name
        self._argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            name,
            "--address",
            address,
            "--watches",
            str(watches),
            "--gc",
            gc_mode,
        ]
        self.cpu = cpu
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self, profile: str | None) -> None:
        argv = self._argv + (["--profile", profile] if profile else [])
        if self.cpu is not None:
            argv += ["--cpu", str(self.cpu)]
        self._proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        if await self._line() != "ready":
            raise RuntimeError(f"{self.name} did not start")

    async def _line(self) -> str:
        assert self._proc is not None
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 180)
        return line.decode().strip()

    async def send(self, line: str) -> None:
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.write(line.encode() + b"\n")
        await self._proc.stdin.drain()

    async def measure(
        self, agent: AgentProcess, keys: Sequence[str], value: str, parked: int
    ) -> Sample:
        """Write ``value`` to ``keys``; the client's CPU until it has them and is parked again."""
        await self.send(f"expect {value} {' '.join(keys)}")
        if await self._line() != "ok":
            raise RuntimeError(f"{self.name} did not take the round")
        await agent.kv_set(value, keys)
        wall = float(await self._line())
        stats = await agent.wait_blocked(parked)
        if "timeout" in stats:
            raise RuntimeError(f"long-polls not parked again: {stats}")
        await self.send("cpu")
        cpu, gc_cpu = (float(word) for word in (await self._line()).split())
        return Sample(len(keys), cpu, gc_cpu, wall)

    async def stop(self) -> None:
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        await self._proc.wait()


def _spread(values: Sequence[float], fmt: str) -> str:
    return f"{format(median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


async def run(args: argparse.Namespace) -> None:
    plan = pin_cpus()
    print(machine())
    print(
        f"{plan}; {args.watches:,} watches per client, {args.rounds} rounds of: every key "
        f"(txns of 64), then a random {args.subset:,} keys; cyclic GC {args.gc}"
    )
    names = [name for name in CLIENTS if name in args.clients]
    parked = args.watches * len(names)
    rng = random.Random(13)
    samples: dict[tuple[str, str], list[Sample]] = {
        (name, kind): [] for name in names for kind in ("all", "subset")
    }
    async with AgentProcess(
        max_conns_per_client=parked + 200, cpu=plan.server, commit_delay=0
    ) as agent:
        clients: dict[str, ClientProcess] = {}
        keysets: dict[str, list[str]] = {}
        try:
            for name in names:
                prefix, _ = CLIENTS[name]
                keysets[name] = [f"{prefix}{i:05d}" for i in range(args.watches)]
                await agent.kv_set("v0", keysets[name])
                client = clients[name] = ClientProcess(
                    name, agent.address, args.watches, plan.client, args.gc
                )
                await client.start(args.profile if name == "consul_streams" else None)
            stats = await agent.wait_blocked(parked)
            if "timeout" in stats:
                raise RuntimeError(f"not every watch parked a long-poll: {stats}")
            print(f"all {parked:,} long-polls parked at the agent ({stats['blocked']:,})")
            for round_ in range(args.rounds + 1):  # round 0 warms up and is not counted
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for kind in ("all", "subset"):
                    for name in order:
                        keys = keysets[name]
                        if kind == "subset":
                            keys = sorted(rng.sample(keys, args.subset))
                        value = f"r{round_}-{kind}"
                        sample = await clients[name].measure(agent, keys, value, parked)
                        if round_:
                            samples[name, kind].append(sample)
        finally:
            for client in clients.values():
                await client.stop()
    if args.profile:
        print(f"cProfile of consul_streams' rounds written to {args.profile}")

    rows: list[tuple[str, ...]] = []
    for kind in ("all", "subset"):
        label = f"every key ({args.watches:,})" if kind == "all" else f"random {args.subset:,}"
        floor = samples.get((FLOOR, kind))
        for name in names:
            runs = samples[name, kind]
            ratio = (
                _spread([s.cpu_us / f.cpu_us for s, f in zip(runs, floor, strict=True)], ".2f")
                if floor
                else "-"
            )
            rows.append(
                (
                    f"{name}, {label}",
                    f"{sum(s.updates for s in runs):,}",
                    _spread([s.cpu_us for s in runs], ".1f"),
                    ratio,
                    _spread([s.gc_us for s in runs], ".1f"),
                    _spread([s.wall_ms for s in runs], ".1f"),
                )
            )
    print()
    print_table(
        (
            "client, keys written",
            "updates",
            "CPU us/update",
            "CPU vs raw loop",
            "of which GC us",
            "wall ms/round",
        ),
        rows,
    )
    print("(median (min-max) over rounds; ratios per round; target: consul_streams <= 1.1x)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 watches, 2 rounds")
    parser.add_argument("--watches", type=int, default=1000)
    parser.add_argument("--subset", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--clients", nargs="+", default=DEFAULT_CLIENTS, choices=list(CLIENTS), metavar="NAME"
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile consul_streams' rounds")
    parser.add_argument(
        "--gc",
        choices=("on", "freeze", "off"),
        default="on",
        help="the clients' cyclic GC: on (default), frozen after start-up, or off (diagnosis)",
    )
    parser.add_argument("--child", choices=list(CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.watches, args.subset, args.rounds = 200, 20, 2
    asyncio.run(_child(args) if args.child else run(args))


if __name__ == "__main__":
    main()
