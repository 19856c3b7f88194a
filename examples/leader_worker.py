"""Leader election: two workers contend for one lock; only the leader works.

Each worker follows ``elect()``: when it gains leadership it does a few units of work, then
steps down (leaving the loop releases the lock and destroys its session), and the other
worker takes over.

Run: ``python examples/leader_worker.py`` (embedded dev agent unless CONSUL_HTTP_ADDR is set).
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from _support import consul

from consul_streams import Consul
from consul_streams.recipes import elect

KEY = "examples/leader"


async def worker(client: Consul, name: str, done: asyncio.Event) -> None:
    # lock_delay=0: the other worker may take over as soon as this one steps down.
    # aclosing: leaving the loop closes the generator at once, which releases the lock.
    async with aclosing(elect(client, KEY, value=name, ttl=10, lock_delay=0)) as changes:
        async for change in changes:
            if not change.leader:
                print(f"{name} lost leadership: {change.reason}", flush=True)
                continue
            print(f"{name} is the leader", flush=True)
            for unit in range(1, 4):
                print(f"{name} works on unit {unit}", flush=True)
                await asyncio.sleep(0.1)  # stands for real work
            print(f"{name} steps down", flush=True)
            break
    done.set()


async def main() -> None:
    async with consul() as client:
        finished = [asyncio.Event(), asyncio.Event()]
        tasks = [
            asyncio.create_task(worker(client, name, event))
            for name, event in zip(("worker-a", "worker-b"), finished, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        await client.kv.delete(KEY)
        print("both workers led once", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
