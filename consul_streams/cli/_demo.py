"""``consul-streams demo``: a live, debounced watch against the embedded dev agent.

Starts a :class:`~consul_streams.testing.DevAgent` on a free loopback port, writes bursts of
keys under ``demo/`` in the background, and prints each debounced change of ``demo/app/`` as it
arrives. Ends by itself after ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import TYPE_CHECKING, Any

from consul_streams._rules import parse_go_duration
from consul_streams.cli._parser import UsageError

if TYPE_CHECKING:
    from consul_streams._client import Consul

__all__ = ["run_demo"]

_PREFIX = "demo/"


async def _writer(client: Consul, writes: list[int]) -> None:
    """Bursts of related writes (a deploy touching several keys), plus noise elsewhere."""
    n = 0
    while True:
        n += 1
        # One burst: several keys that only make sense together.
        burst = {
            "demo/app/db/host": f"db-{n % 3}.internal",
            "demo/app/db/port": str(5432 + n % 2),
            "demo/app/feature/dark_mode": "true" if n % 2 else "false",
            "demo/app/version": f"1.{n}.0",
            "demo/noise/heartbeat": str(n),
        }
        for key, value in burst.items():
            await client.kv.put(key, value)
            writes[0] += 1
        await asyncio.sleep(0.8)  # pacing between bursts, not waiting for anything


def _describe(old: dict[str, bytes], new: dict[str, bytes]) -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            lines.append(f"  + {key} = {new[key].decode('utf-8', 'replace')}")
        elif key not in new:
            lines.append(f"  - {key}")
        elif old[key] != new[key]:
            before = old[key].decode("utf-8", "replace")
            lines.append(f"  ~ {key}: {before} -> {new[key].decode('utf-8', 'replace')}")
    return lines


async def _show(client: Consul, debounce: float, match: re.Pattern[str], writes: list[int]) -> None:
    from consul_streams import ops
    from consul_streams.recipes.config import BURST_RATE_LIMIT
    from consul_streams.watch import watch

    start = asyncio.get_running_loop().time()
    seen: dict[str, bytes] = {}
    # A burst must reach the debounce promptly: the default rate limit would split it.
    stream: Any = watch(client.kv.items(_PREFIX), wait="5s", rate_limit=BURST_RATE_LIMIT)
    stream = stream | ops.debounce(debounce)
    async with stream.stream() as changes:
        async for entries, meta in changes:
            now = {e["Key"]: bytes(e["Value"]) for e in entries if match.search(e["Key"])}
            lines = _describe(seen, now)
            if not lines:
                continue
            seen = now
            t = asyncio.get_running_loop().time() - start
            print(
                f"[{t:4.1f}s] index {meta.index}: {len(lines)} change(s) shown as one update "
                f"(after {writes[0]} writes, non-matching keys filtered out)",
                flush=True,
            )
            writes[0] = 0
            print("\n".join(lines), flush=True)


async def run_demo(args: argparse.Namespace) -> int:
    """Run the demo for ``--duration`` seconds and exit 0."""
    if args.duration <= 0:
        raise UsageError(f"--duration: expected a positive number of seconds, got {args.duration}")
    try:
        debounce = parse_go_duration(args.debounce)
    except ValueError:
        msg = f"--debounce: expected a duration like 300ms, got {args.debounce!r}"
        raise UsageError(msg) from None
    try:
        match = re.compile(args.match or r"^demo/app/")
    except re.error as exc:
        raise UsageError(f"--match: invalid regular expression: {exc}") from None

    from consul_streams._client import Consul
    from consul_streams.testing import DevAgent

    async with DevAgent() as agent, Consul(agent.address) as client:
        print(
            f"dev agent on {agent.url}; watching {_PREFIX} (keys matching "
            f"{match.pattern}), debounced {args.debounce}, for {args.duration:g}s",
            flush=True,
        )
        writes = [0]
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(_writer(client, writes)),
            asyncio.create_task(_show(client, debounce, match, writes)),
        ]
        try:
            done, _ = await asyncio.wait(
                tasks, timeout=args.duration, return_when=asyncio.FIRST_EXCEPTION
            )
            for task in done:
                task.result()  # a failure inside the demo is an error, not a silent stop
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    print("demo finished", file=sys.stderr)
    return 0
