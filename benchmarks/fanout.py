"""Fan-out: 10,000 subscribers over 100 distinct queries in one process, one client.

Run: ``.venv/bin/python benchmarks/fanout.py`` (``--quick``: 2,000 subscribers over 20 queries).

Each subscriber is a task iterating ``watch(client.kv.get(key), rate_limit=None)``; identical
watches share one long-poll. Measured:

* long-polls at the agent: GETs of the watched keys (all, and blocking ones) and the queries
  the agent holds once everyone has its first value (target: one per query, 100);
* memory per subscriber (``tracemalloc``): traced growth of the whole process divided by the
  number of subscribers, and the marginal cost of a subscriber joining an existing poll;
* delivery delay (a change's origin -> value in a subscriber's hands) of every subscriber of
  a written key, from two origins alternated write by write (``--origin`` picks one): the
  agent's commit of the write (the agent writes the key itself and stamps the commit, clocks
  compared across processes), and the acknowledgement of a raw aiohttp writer on the
  subscribers' own event loop (whose answer the agent may send before or after the watchers',
  see ``latency.py``), against one subscriber on one query (its own key, same client) measured in
  alternation in the same run: median ratio, target <= 2 (#13), p99 ratio, target <= 3. The
  rate limiter is off on both sides so that the ratio isolates the cost of fan-out;
* the floor of one task per subscriber: as many resident bare tasks as subscribers, each
  running the same loop body (``Board.arrive``) over a plain async iterator whose ``anext()``
  is a future; ``per_key`` of them woken at once (no client, no network): the median wake
  delay, and the fan-out ratio it alone implies next to each round's single-subscriber delay;
  its traced memory per subscriber is printed next to ours, and the difference is the
  library's own cost (the <= 2 KB target is judged on the total per extra subscriber);
* memory per unshared watch (``share=False``, each with its own poll parked at the agent):
  ``--unshared`` of them on a second client, traced growth / count (target <= 10 KB, #13).

The agent runs in a child process pinned to another CPU than this one (``--no-pin`` not to),
so its CPU does not share the client's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    ORIGINS,
    AgentProcess,
    Board,
    CpuPlan,
    Writer,
    add_origin_arguments,
    machine,
    median,
    percentile,
    pin_cpus,
    print_table,
)
from consul_streams import Consul
from consul_streams._budget import slots_for
from consul_streams.watch import watch

SOLO = "solo/key"


async def subscriber(client: Consul, key: str, board: Board, share: bool = True) -> None:
    async for entry, _meta in watch(client.kv.get(key), rate_limit=None, share=share):
        board.arrive(key, entry["Value"] if entry else None, time.perf_counter())


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def _start(
    client: Consul, board: Board, keys: list[str], per_key: int, value: bytes
) -> list[asyncio.Task[None]]:
    """Start ``per_key`` subscribers on each key; return once all hold ``value``."""
    waits = [board.expect(key, value, per_key) for key in keys]
    tasks = [
        asyncio.create_task(subscriber(client, key, board)) for _ in range(per_key) for key in keys
    ]
    await asyncio.wait_for(asyncio.gather(*waits), 300)
    return tasks


Put = Callable[[str, bytes], Awaitable[float]]

#: where a change's delay starts (see the module docstring)
ORIGIN_TEXT = {
    "commit": "from the agent's commit of the write (stamped in the agent)",
    "ack": "from the writer's acknowledgement (a raw aiohttp writer on this loop)",
}


async def _deliveries(put: Put, board: Board, key: str, value: bytes, count: int) -> list[float]:
    """Delays from the write of ``value`` at ``key`` to each of its ``count`` subscribers."""
    arrived = board.expect(key, value, count)
    acked = await put(key, value)
    times = await asyncio.wait_for(arrived, 60)
    return [t - acked for t in times]


async def _unshared(agent: AgentProcess, keys: list[str], count: int) -> float:
    """Traced bytes per unshared watch, every one of them parked at the agent."""
    cap = count + 1
    while slots_for(cap) < count:
        cap += 1
    board = Board()
    async with Consul(agent.address, environ={}, max_connections=cap) as client:
        before = await agent.stats()
        tracemalloc.start()
        base = _traced()
        # Watch i is on keys[i % len(keys)]: how many watch each key (none for some keys
        # when there are fewer watches than keys).
        per_key = Counter(keys[i % len(keys)] for i in range(count))
        waits = [board.expect(key, b"0", n) for key, n in per_key.items()]
        tasks = [
            asyncio.create_task(subscriber(client, keys[i % len(keys)], board, share=False))
            for i in range(count)
        ]
        await asyncio.wait_for(asyncio.gather(*waits), 300)
        await agent.wait_blocked(before["blocked"] + count)
        grown = _traced() - base
        tracemalloc.stop()
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
    return grown / count


class _PlainSource:
    """The plainest async iterator a subscriber could loop over: each ``anext()`` is a future
    that the publisher completes with the shared item."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[tuple[dict[str, bytes], None]] | None = None

    def __aiter__(self) -> _PlainSource:
        return self

    def __anext__(self) -> asyncio.Future[tuple[dict[str, bytes], None]]:
        future = self.future = asyncio.get_running_loop().create_future()
        return future


async def _bare_subscriber(source: _PlainSource, key: str, board: Board) -> None:
    """The floor: a bare task running the benchmark's loop body over a plain async iterator."""
    async for entry, _meta in source:
        board.arrive(key, entry["Value"] if entry else None, time.perf_counter())


class _Floor:
    """``count * groups`` resident bare subscribers (as many tasks as the benchmark's), woken a
    group of ``count`` at a time by completing each one's future: one task wake per
    subscriber, with the same loop body (``Board.arrive``) as the real subscribers."""

    def __init__(self, count: int, groups: int) -> None:
        self.count, self.groups = count, groups
        self.keys = [f"floor/{g:03d}" for g in range(groups)]
        self.board = Board()
        self.sources: list[list[_PlainSource]] = [[] for _ in range(groups)]
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> float:
        """Start every subscriber; the traced bytes per subscriber (task, coroutine, source,
        its future), measured as the real subscribers' memory is."""
        tracemalloc.start()
        base = _traced()
        # Created in the real subscribers' order (one per key in turn, see ``_start``), so the
        # group woken together lies as scattered in memory as a written key's subscribers.
        for _ in range(self.count):
            for g, key in enumerate(self.keys):
                source = _PlainSource()
                self.sources[g].append(source)
                self.tasks.append(asyncio.create_task(_bare_subscriber(source, key, self.board)))
        await asyncio.sleep(0)  # every task now waits on its source's future
        grown = _traced() - base
        tracemalloc.stop()
        return grown / len(self.tasks)

    async def wake(self, group: int, value: bytes) -> list[float]:
        """Delays from completing the group's futures to each subscriber's loop body."""
        key = self.keys[group]
        arrived = self.board.expect(key, value, self.count)
        item = ({"Value": value}, None)
        started = time.perf_counter()
        for source in self.sources[group]:
            if source.future is not None:
                source.future.set_result(item)
        times = await asyncio.wait_for(arrived, 60)
        return [t - started for t in times]

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.wait(self.tasks)


async def _wake_floor(
    count: int, groups: int, rounds: int, writes: int
) -> tuple[list[list[float]], float]:
    """Per round, the floor's delays; and its memory per subscriber."""
    floor = _Floor(count, groups)
    memory = await floor.start()
    delays: list[list[float]] = []
    for round_ in range(rounds):
        delays.append([])
        for i in range(writes):
            n = round_ * writes + i
            delays[-1] += await floor.wake(n % groups, f"{round_}-{i}".encode())
    await floor.aclose()
    return delays, memory


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


async def run(args: argparse.Namespace) -> None:
    per_key = args.subscribers // args.queries
    keys = [f"fan/{q:03d}" for q in range(args.queries)]
    board = Board()
    plan = pin_cpus() if args.pin else CpuPlan(None, None)
    async with (
        AgentProcess(max_conns_per_client=args.unshared + 400, cpu=plan.server) as agent,
        Writer(agent.url) as writer,
    ):
        await writer.put_many([(key, b"0") for key in keys] + [(SOLO, b"0")])
        # A long-poll slot for every query and the solo one (a quarter of the cap is kept for
        # other requests), so every poll is parked at the agent and none waits its turn.
        cap = args.queries + 1
        while slots_for(cap) < args.queries + 1:
            cap += 1
        client = Consul(agent.address, environ={}, max_connections=cap)
        async with client:
            tracemalloc.start()
            base = _traced()
            tasks = await _start(client, board, [SOLO], 1, b"0")
            tasks += await _start(client, board, keys, 1, b"0")
            one_each = _traced() - base
            started = time.perf_counter()
            tasks += await _start(client, board, keys, per_key - 1, b"0")
            join_seconds = time.perf_counter() - started
            everyone = _traced() - base
            tracemalloc.stop()
            held = await agent.wait_blocked(args.queries + 1)
            polls = await agent.stats("/v1/kv/fan/")

            async def committed(key: str, value: bytes) -> float:
                return await agent.kv_stamp(key, value.decode())

            puts: dict[str, Put] = {"commit": committed, "ack": writer.put}
            origins = ORIGINS if args.origin == "both" else (args.origin,)
            solo: dict[str, list[list[float]]] = {origin: [] for origin in origins}
            fanned: dict[str, list[list[float]]] = {origin: [] for origin in origins}
            for round_ in range(args.rounds):
                for origin in origins:
                    solo[origin].append([])
                    fanned[origin].append([])
                for i in range(args.writes):
                    for origin in origins:
                        value = f"{origin}-{round_}-{i}".encode()
                        put = puts[origin]
                        solo[origin][-1] += await _deliveries(put, board, SOLO, value, 1)
                        key = keys[(round_ * args.writes + i) % len(keys)]
                        fanned[origin][-1] += await _deliveries(put, board, key, value, per_key)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        # Writes are over: every key holds its last value again for the unshared watches.
        await writer.put_many([(key, b"0") for key in keys])
        unshared = await _unshared(agent, keys, args.unshared)
    floor, floor_memory = await _wake_floor(per_key, args.queries, args.rounds, args.writes)
    subscribers = per_key * args.queries
    extra = (everyone - one_each) / (subscribers - args.queries)
    print(f"# fan-out: {subscribers:,} subscribers over {args.queries} queries ({machine()})")
    print_table(
        ("measure", "result"),
        [
            ("GETs of the watched keys (first reads + blocking)", f"{polls['gets']:,}"),
            ("  of which blocking (long-polls opened)", f"{polls['blocking_gets']:,}"),
            ("blocking queries held by the agent (incl. 1 solo)", f"{held['blocked']:,}"),
            ("target long-polls", f"{args.queries}"),
            ("traced memory, 1 subscriber per query", f"{one_each / 1024:,.0f} KiB"),
            (f"traced memory, all {subscribers:,} subscribers", f"{everyone / 1024:,.0f} KiB"),
            ("memory per subscriber (all / count)", f"{everyone / subscribers:,.0f} B"),
            ("memory per extra subscriber joining a poll (target <= 2 KB)", f"{extra:,.0f} B"),
            (
                "  floor: a bare task, same loop body over a plain async iterator",
                f"{floor_memory:,.0f} B",
            ),
            ("  the library's own cost per extra subscriber", f"{extra - floor_memory:,.0f} B"),
            (
                f"time for {subscribers - args.queries:,} to join (tracemalloc on)",
                f"{join_seconds:.2f} s",
            ),
            (
                f"memory per unshared watch ({args.unshared} parked polls; target <= 10 KB)",
                f"{unshared:,.0f} B",
            ),
        ],
    )
    for origin in origins:
        print()
        _delivery_table(ORIGIN_TEXT[origin], solo[origin], fanned[origin], floor, per_key, args)
    print(f"(client and agent pinned: {plan})")


def _delivery_table(
    origin: str,
    solo: list[list[float]],
    fanned: list[list[float]],
    floor: list[list[float]],
    per_key: int,
    args: argparse.Namespace,
) -> None:
    subscribers = per_key * args.queries
    print(f"delivery delay {origin}")
    floor_med = [(median(fl) + median(so)) / median(so) for so, fl in zip(solo, floor, strict=True)]
    pooled_floor = [d for r in floor for d in r]
    pooled_solo = [d for r in solo for d in r]
    pooled_fan = [d for r in fanned for d in r]
    p99 = [percentile(f, 99) / percentile(s, 99) for s, f in zip(solo, fanned, strict=True)]
    med = [median(f) / median(s) for s, f in zip(solo, fanned, strict=True)]
    last = [max(r[i * per_key : (i + 1) * per_key]) for r in fanned for i in range(args.writes)]
    print_table(
        ("delivery delay", "deliveries", "median ms", "p99 ms", "ratio median", "ratio p99"),
        [
            (
                "1 subscriber, 1 query",
                len(pooled_solo),
                f"{median(pooled_solo) * 1000:.3f}",
                f"{percentile(pooled_solo, 99) * 1000:.3f}",
                "1.00",
                "1.00",
            ),
            (
                f"{per_key} subscribers of the written query",
                len(pooled_fan),
                f"{median(pooled_fan) * 1000:.3f}",
                f"{percentile(pooled_fan, 99) * 1000:.3f}",
                f"{median(med):.2f}",
                f"{median(p99):.2f}",
            ),
            (
                f"  last of the {per_key} (per write)",
                len(last),
                f"{median(last) * 1000:.3f}",
                f"{percentile(last, 99) * 1000:.3f}",
                "",
                "",
            ),
            (
                f"floor: {per_key} of {subscribers:,} bare tasks woken (+ solo)",
                len(pooled_floor),
                f"{(median(pooled_floor) + median(pooled_solo)) * 1000:.3f}",
                "",
                f"{median(floor_med):.2f}",
                "",
            ),
        ],
    )
    print(
        f"{args.rounds} rounds of {args.writes} writes to each side; ratios: median over rounds"
        " (targets: median ratio <= 2, p99 ratio <= 3). The floor wakes as many resident bare"
        " tasks running the same loop body (after the client closed); its ratio adds its"
        " median wake delay to the round's single-subscriber median."
    )
    print(
        f"spread over rounds: ratio median {_spread(med)}, ratio p99 {_spread(p99)},"
        f" floor ratio {_spread(floor_med)}"
    )
    print(
        "ratio median per round: "
        + ", ".join(f"{r:.2f}" for r in med)
        + "; ratio p99 per round: "
        + ", ".join(f"{r:.2f}" for r in p99)
        + "; floor ratio per round: "
        + ", ".join(f"{r:.2f}" for r in floor_med)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--writes", type=int, default=40, help="writes per side per round")
    parser.add_argument("--unshared", type=int, default=200, help="unshared watches (memory)")
    parser.add_argument("--quick", action="store_true", help="2,000 subscribers, 20 queries")
    add_origin_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.subscribers, args.queries, args.rounds, args.writes = 2_000, 20, 3, 10
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
