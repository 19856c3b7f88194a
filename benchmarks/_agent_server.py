"""A dev agent in its own process, driven over stdin/stdout by the benchmarks.

Run as ``python benchmarks/_agent_server.py [max_conns_per_client]``: prints the agent URL,
then answers one JSON line per command line read from stdin:

* ``stats [path-prefix]``: connections (active, peak), blocked queries, request counts (all,
  and GETs under the prefix, split into blocking and non-blocking), RSS in KiB;
* ``blocked N``: wait (up to 30 s) until N blocking queries are held, then answer as ``stats``;
* ``clear``: forget the request log (keeps a long soak from growing the agent);
* EOF: stop the agent and exit.

A separate process keeps the agent's CPU off the client's event loop and core.
"""

from __future__ import annotations

import asyncio
import json
import sys

from consul_streams.testing import DevAgent


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _stats(agent: DevAgent, prefix: str) -> dict[str, int]:
    gets = [r for r in agent.requests if r.method == "GET" and r.path.startswith(prefix)]
    blocking = sum(1 for r in gets if any(name == "index" for name, _ in r.query))
    return {
        "active": agent.active_connections,
        "peak": agent.peak_connections,
        "blocked": agent.blocked_queries,
        "requests": len(agent.requests),
        "gets": len(gets),
        "blocking_gets": blocking,
        "rss_kib": _rss_kib(),
    }


async def main(max_conns: int) -> None:
    loop = asyncio.get_running_loop()
    async with DevAgent(jitter=False, http_max_conns_per_client=max_conns) as agent:
        print(agent.url, flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command, _, argument = line.strip().partition(" ")
            answer: dict[str, int] = {}
            if command == "clear":
                agent.requests.clear()
            elif command == "reset":
                # The connection-reset fault: the next N soak reads are cut without an answer.
                agent.faults.drop_connection(int(argument), path="/v1/kv/soak/", method="GET")
            elif command == "blocked":
                try:
                    await asyncio.wait_for(agent.wait_blocked(int(argument)), 30)
                except asyncio.TimeoutError:
                    answer["timeout"] = 1
                answer.update(_stats(agent, "/"))
            else:
                answer = _stats(agent, argument or "/")
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
