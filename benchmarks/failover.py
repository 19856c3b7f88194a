"""Lock failover: the holder is killed or partitioned -> the next holder's body starts.

Run: ``.venv/bin/python benchmarks/failover.py`` (``--trials N``; ``--quick`` for 5 trials).

Three contenders on separate clients, each behind its own ``FaultProxy``, use ``Lock`` with the
defaults (ttl 15 s, lock_delay 15 s, retry_interval 1 s). At a random moment the holder is
*killed* (its connection black-holed and never healed, nothing released: a crashed process) or
*partitioned* (black-holed, healed 60 s later); for contrast it also *steps down* (leaves its
``async with``, which releases the key and destroys the session). The script prints, per
scenario, the time from the fault to the next holder's body starting, against the bound the
design promises:

    failover <= 2 x ttl (Consul reaps an unrenewed session after twice its TTL)
                + lock_delay + retry_interval

and, for the partitioned holder, how long before the new body started the old one stopped
(the lease ends 0.9 x ttl after the last renewal was sent, so this is always positive).

Everything runs on a virtual-time event loop (``consul_streams.testing._warp``): the agent's
TTL timers, the clients' timeouts and the lease deadlines share one clock that jumps when the
loop is idle, so a 45 s failover takes milliseconds and the figures are exact, not sampled.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics

from consul_streams import Consul
from consul_streams.recipes import Lock, LockLost
from consul_streams.testing import DevAgent, FaultProxy
from consul_streams.testing._warp import run_warped

KEY = "bench/failover"
TTL, LOCK_DELAY, RETRY = 15.0, 15.0, 1.0
BOUND = 2 * TTL + LOCK_DELAY + RETRY


async def trial(seed: int, scenario: str) -> tuple[float, float]:
    """One failover: (fault -> next body start, old body stop -> next body start)."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    log: list[tuple[float, int, str]] = []
    started = asyncio.Event()
    async with DevAgent(jitter=False) as agent:
        proxies = [FaultProxy(agent.address) for _ in range(3)]
        clients = []
        for proxy in proxies:
            await proxy.start()
            clients.append(Consul(proxy.address))

        async def contend(who: int) -> None:
            while True:
                try:
                    async with Lock(clients[who], KEY):
                        log.append((loop.time(), who, "start"))
                        started.set()
                        try:
                            await asyncio.sleep(3600)
                        finally:
                            log.append((loop.time(), who, "stop"))
                except LockLost:
                    await asyncio.sleep(1)

        tasks = [asyncio.create_task(contend(i)) for i in range(3)]
        await started.wait()
        await asyncio.sleep(rng.uniform(0, 2 * TTL))
        holder = log[-1][1]
        fault_at = loop.time()
        started.clear()
        if scenario == "stepped down":
            tasks[holder].cancel()  # leaves the `async with`: releases and destroys the session
        else:
            if scenario == "killed":
                proxies[holder].reset()  # its connections die with the process
            proxies[holder].blackhole()
        await started.wait()
        new_start = loop.time()
        old_stop = max((t for t, who, what in log if who == holder and what == "stop"), default=0)
        if scenario == "partitioned":
            await asyncio.sleep(60)
            proxies[holder].heal()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for proxy in proxies:
            proxy.heal()
        for client in clients:
            await client.aclose()
        for proxy in proxies:
            await proxy.stop()
    return new_start - fault_at, new_start - old_stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    trials = 5 if args.quick else args.trials
    print(f"defaults: ttl={TTL:g}s lock_delay={LOCK_DELAY:g}s retry_interval={RETRY:g}s")
    print(f"bound: 2 x ttl + lock_delay + retry_interval = {BOUND:g}s\n")
    header = f"{'scenario':<12} {'min':>7} {'median':>7} {'max':>7} {'bound':>6} {'max/bound':>9}"
    print(f"{header} {'old body stopped before (min)':>30}")
    for name in ("killed", "partitioned", "stepped down"):
        results = [run_warped(trial(seed, name)) for seed in range(trials)]
        failover = [f for f, _ in results]
        margin = [m for _, m in results]
        print(
            f"{name:<12} {min(failover):>6.1f}s {statistics.median(failover):>6.1f}s "
            f"{max(failover):>6.1f}s {BOUND:>5.0f}s {max(failover) / BOUND:>9.2f} "
            f"{min(margin):>29.1f}s"
        )


if __name__ == "__main__":
    main()
