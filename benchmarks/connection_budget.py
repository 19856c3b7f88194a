"""Connection budget: 1,000 distinct watches on one ``Consul(max_connections=100)`` client.

Run: ``.venv/bin/python benchmarks/connection_budget.py`` (``--quick``: 200 watches, cap 20).

Measured:

* the peak of concurrent connections the agent saw (target <= the cap; the writer's one
  keep-alive connection is counted by the agent and shown separately);
* the time for every watch to reach its first value, and to converge after a round of writes
  that changes every key at once;
* then three probes of what a saturated long-poll budget means: writes to a few random keys,
  whose watches are most likely queued rather than parked at the agent (how long until each
  is seen: the budget's rotation preempts the longest-held long-poll after ``min_hold``); a
  ``kv.put`` through the same saturated client (it uses the slots kept out of the long-poll
  budget); and a second round of writes to every key after those probes (whether all watches
  converge within ``--settle``).

Then (``--part idle``, also part of the default run) the idle cost of more watches than
long-poll slots (#13): ``--idle-watches`` (500) key watches on a client whose budget has
``slots_for(--idle-cap)`` (48) slots, nothing written: the client's and the agent's CPU (% of
one core) over ``--idle-seconds`` windows, for the two designs side by side, interleaved, over
``--idle-rounds`` (>= 3) rounds: slot *rotation* (preempt the longest-held long-poll every
``min_hold``) and the *prefix cover* (waiting key watches served by one recursive read of their
prefix). After each window, a few single writes probe that every design still delivers.

Watches use the default rate limiter. The agent runs in a child process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import AgentProcess, Board, Writer, machine, median, print_table
from consul_streams import Consul
from consul_streams._budget import slots_for
from consul_streams.watch import watch

WRITER_CONNECTIONS = 1


async def subscriber(client: Consul, key: str, board: Board) -> None:
    async for entry, _meta in watch(client.kv.get(key)):
        board.arrive(key, entry["Value"] if entry else None, time.perf_counter())


async def _all_hold(board: Board, keys: list[str], value: bytes, timeout: float) -> float:
    """Seconds until every watch of ``keys`` holds ``value`` (board expectations set first)."""
    waits = [board.expect(key, value, 1) for key in keys]
    return await _elapsed(asyncio.gather(*waits), timeout)


async def _elapsed(waiting: asyncio.Future[list[list[float]]], timeout: float) -> float:
    started = time.perf_counter()
    await asyncio.wait_for(waiting, timeout)
    return time.perf_counter() - started


async def _probe_writes(
    writer: Writer, board: Board, keys: list[str], count: int, timeout: float
) -> str:
    """Write ``count`` random keys; how long until their watches see the write."""
    chosen = random.Random(5).sample(keys, count)
    waits = [board.expect(key, b"probe", 1) for key in chosen]
    started = time.perf_counter()
    await writer.put_many((key, b"probe") for key in chosen)
    seen: list[float] = []

    async def one(wait: asyncio.Future[list[float]]) -> None:
        await wait
        seen.append(time.perf_counter() - started)

    _done, pending = await asyncio.wait(
        [asyncio.ensure_future(one(w)) for w in waits], timeout=timeout
    )
    for task in pending:
        task.cancel()
    seen.sort()
    if not seen:
        return f"0 of {count} within {timeout:g} s"
    return (
        f"{len(seen)} of {count} within {timeout:g} s "
        f"(median {seen[len(seen) // 2]:.1f} s, last {seen[-1]:.1f} s)"
    )


async def _probe_put(client: Consul, timeout: float) -> str:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(client.kv.put("budget-probe", b"x"), timeout)
    except asyncio.TimeoutError:
        return f"not done after {timeout:g} s"
    return f"done in {(time.perf_counter() - started) * 1000:.1f} ms"


async def run(args: argparse.Namespace) -> list[tuple[str, str]]:
    keys = [f"budget/{i:04d}" for i in range(args.watches)]
    board = Board()
    async with AgentProcess() as agent, Writer(agent.url) as writer:
        await writer.put_many((key, b"0") for key in keys)
        async with Consul(agent.address, environ={}, max_connections=args.cap) as client:
            first = board.expect(keys[0], b"0", 1)
            rest = [board.expect(key, b"0", 1) for key in keys[1:]]
            started = time.perf_counter()
            tasks = [asyncio.create_task(subscriber(client, key, board)) for key in keys]
            await asyncio.wait_for(asyncio.gather(first, *rest), 120)
            first_values = time.perf_counter() - started
            slots = slots_for(args.cap)
            saturated = await agent.wait_blocked(slots)
            converge = await _writes_round(writer, board, keys, b"1", 120)
            after = await agent.wait_blocked(slots)
            seen = await _probe_writes(writer, board, keys, args.probes, args.probe_timeout)
            put = await _probe_put(client, args.probe_timeout)
            again = await _writes_round(writer, board, keys, b"2", args.settle)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
    peak = after["peak"]
    return [
        ("watches / client max_connections", f"{args.watches:,} / {args.cap}"),
        ("all watches hold their first value", f"{first_values:.2f} s"),
        ("long-poll slots (cap minus the reserve for other requests)", f"{slots_for(args.cap)}"),
        ("blocking queries held at the agent (saturated)", f"{saturated['blocked']}"),
        ("round of writes to every key: all converged in", converge),
        ("peak concurrent connections at the agent", f"{peak}"),
        ("  minus the writer's connection (target <= cap)", f"{peak - WRITER_CONNECTIONS}"),
        ("probe: single writes to random keys, seen", seen),
        ("probe: kv.put through the saturated client", put),
        ("a second round of writes after the probes", again),
    ]


async def _writes_round(
    writer: Writer, board: Board, keys: list[str], value: bytes, timeout: float
) -> str:
    """Write ``value`` to every key; how long until every watch holds it (or how many not)."""
    waits = [board.expect(key, value, 1) for key in keys]
    started = time.perf_counter()
    await writer.put_many((key, value) for key in keys)
    done, pending = await asyncio.wait(waits, timeout=timeout)
    elapsed = time.perf_counter() - started
    if pending:
        return f"NO: {len(pending)} of {len(keys)} stale after {elapsed:.0f} s"
    return f"{elapsed:.2f} s (all {len(done):,})"


DESIGNS = ("rotation", "prefix cover")


def _agent_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _idle_round(
    agent: AgentProcess, writer: Writer, keys: list[str], design: str, args: argparse.Namespace
) -> dict[str, float]:
    board = Board()
    async with Consul(agent.address, environ={}, max_connections=args.idle_cap) as client:
        client.engine.cover_prefixes = design == "prefix cover"
        waits = [board.expect(key, b"0", 1) for key in keys]
        tasks = [asyncio.create_task(subscriber(client, key, board)) for key in keys]
        await asyncio.wait_for(asyncio.gather(*waits), 120)
        await asyncio.sleep(args.idle_settle)  # let the first-read burst and queueing settle
        budget = client.engine.budget
        preempted = budget.preemptions if budget else 0
        requests = (await agent.stats())["requests"]
        cpu, agent_cpu, started = (
            time.process_time(),
            _agent_cpu_seconds(agent.pid),
            time.perf_counter(),
        )
        await asyncio.sleep(args.idle_seconds)
        wall = time.perf_counter() - started
        result = {
            "client": (time.process_time() - cpu) / wall * 100,
            "agent": (_agent_cpu_seconds(agent.pid) - agent_cpu) / wall * 100,
            "preemptions/s": ((budget.preemptions if budget else 0) - preempted) / wall,
            "requests/s": ((await agent.stats())["requests"] - requests) / wall,
        }
        chosen = random.Random(len(keys)).sample(keys, args.idle_probes)
        seen = [board.expect(key, b"probe", 1) for key in chosen]
        started = time.perf_counter()
        await writer.put_many((key, b"probe") for key in chosen)
        try:
            await asyncio.wait_for(asyncio.gather(*seen), args.probe_timeout)
            result["probe"] = time.perf_counter() - started
        except asyncio.TimeoutError:
            result["probe"] = float("inf")
        await writer.put_many((key, b"0") for key in chosen)
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
    return result


async def idle(args: argparse.Namespace) -> None:
    """Idle CPU with more key watches than long-poll slots: rotation vs the prefix cover."""
    keys = [f"idle/{i:04d}" for i in range(args.idle_watches)]
    results: dict[str, list[dict[str, float]]] = {design: [] for design in DESIGNS}
    async with AgentProcess() as agent, Writer(agent.url) as writer:
        await writer.put_many((key, b"0") for key in keys)
        for round_ in range(args.idle_rounds):
            order = DESIGNS if round_ % 2 == 0 else DESIGNS[::-1]  # interleaved
            for design in order:
                results[design].append(await _idle_round(agent, writer, keys, design, args))

    def spread(design: str, measure: str, fmt: str) -> str:
        values = [r[measure] for r in results[design]]
        return f"{median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"

    slots = slots_for(args.idle_cap)
    print(
        f"# idle: {args.idle_watches} key watches over {slots} long-poll slots, nothing written;"
        f" {args.idle_rounds} rounds of {args.idle_seconds:g} s per design ({machine()})"
    )
    print_table(
        ("design", "client CPU %", "agent CPU %", "preemptions/s", "requests/s", "probe s"),
        [
            (
                design,
                spread(design, "client", ".2f"),
                spread(design, "agent", ".2f"),
                spread(design, "preemptions/s", ".1f"),
                spread(design, "requests/s", ".1f"),
                spread(design, "probe", ".2f"),
            )
            for design in DESIGNS
        ],
    )
    rotation = median([r["client"] for r in results["rotation"]])
    cover = median([r["client"] for r in results["prefix cover"]])
    print(
        "median (min-max) over rounds; CPU in % of one core; probe: "
        f"{args.idle_probes} single writes, all seen. Client CPU cover/rotation: "
        f"{cover / rotation if rotation else float('nan'):.2f}x (target: <= 0.5 % of a core)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=1_000)
    parser.add_argument("--cap", type=int, default=100, help="Consul(max_connections=)")
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--probe-timeout", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=20.0, help="second round timeout, s")
    parser.add_argument("--quick", action="store_true", help="200 watches under a cap of 20")
    parser.add_argument("--part", choices=("all", "budget", "idle"), default="all")
    parser.add_argument("--idle-watches", type=int, default=500)
    parser.add_argument("--idle-cap", type=int, default=64, help="64: 48 long-poll slots")
    parser.add_argument("--idle-rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--idle-settle", type=float, default=3.0)
    parser.add_argument("--idle-probes", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        args.watches, args.cap, args.probe_timeout, args.settle = 200, 20, 15.0, 3.0
        args.idle_watches, args.idle_cap, args.idle_seconds = 200, 20, 5.0
    if args.part in ("all", "budget"):
        rows = asyncio.run(run(args))
        print(f"# connection budget ({machine()})")
        print_table(("measure", "result"), rows)
    if args.part in ("all", "idle"):
        asyncio.run(idle(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
