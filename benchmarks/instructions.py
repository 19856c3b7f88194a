"""Instructions per delivered update of one ``many_watches.py`` client, counted by callgrind.

Wall and CPU time on a shared VM move by tens of percent between runs; instruction counts do
not (repeatable to ~0.5 %). Run one client, ``--watches`` watches, twice under callgrind with
a different number of write rounds; the difference of the two totals divided by the extra
updates is that client's instructions per update, start-up excluded::

    for r in 1 6; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/instructions.py "raw aiohttp" --rounds $r 2>&1 | grep Collected
    done

(``(total(6) - total(1)) / (5 * watches)``). Every round writes every key inside the agent
(one line on its stdin, so the writes cost this process nothing) and waits until every
watcher holds the value and every long-poll is parked again. The agent runs in a child
process, which callgrind does not follow. Clients: the names in ``many_watches.CLIENTS``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import AgentProcess, Board
from benchmarks.many_watches import _CLEANUP, CLIENTS


async def run(name: str, watches: int, rounds: int, collector: bool) -> None:
    prefix, start = CLIENTS[name]
    keys = [f"{prefix}{i:05d}" for i in range(watches)]
    async with AgentProcess(max_conns_per_client=watches + 100) as agent:
        await agent.kv_set("v0", keys)
        board = Board()
        first = [board.expect(key, b"v0", 1) for key in keys]
        tasks = await start(agent.address, keys, board)
        await asyncio.wait_for(asyncio.gather(*first), 600)
        await agent.wait_blocked(watches)
        if not collector:
            gc.disable()
        for round_ in range(1, rounds + 1):
            value = f"v{round_}"
            waits = [board.expect(key, value.encode(), 1) for key in keys]
            await agent.kv_set(value, keys)
            await asyncio.wait_for(asyncio.gather(*waits), 600)
            await agent.wait_blocked(watches)
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        for close in _CLEANUP:
            await close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("client", choices=list(CLIENTS))
    parser.add_argument("--watches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--gc", choices=("on", "off"), default="off", help="the cyclic collector (default off)"
    )
    args = parser.parse_args(argv)
    asyncio.run(run(args.client, args.watches, args.rounds, args.gc == "on"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
