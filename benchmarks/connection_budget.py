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

Watches use the default rate limiter. The agent runs in a child process.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import AgentProcess, Board, Writer, machine, print_table
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=1_000)
    parser.add_argument("--cap", type=int, default=100, help="Consul(max_connections=)")
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--probe-timeout", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=20.0, help="second round timeout, s")
    parser.add_argument("--quick", action="store_true", help="200 watches under a cap of 20")
    args = parser.parse_args(argv)
    if args.quick:
        args.watches, args.cap, args.probe_timeout, args.settle = 200, 20, 15.0, 3.0
    rows = asyncio.run(run(args))
    print(f"# connection budget ({machine()})")
    print_table(("measure", "result"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
